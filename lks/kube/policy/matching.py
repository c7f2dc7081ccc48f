"""Which requests a policy or binding applies to (upstream's `admission/plugin/policy/matching`
and `webhook/predicates`): `matchConstraints` / `matchResources` with their namespaceSelector,
objectSelector, resourceRules, excludeResourceRules and matchPolicy (Equivalent also matches the
same resource served in another group or version: the types sharing its storage).

A `Criteria` is parsed once from the stored object; `Request` carries what matching needs of one
admission request. `lks.kube.policy.compiled` builds both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lks.kube import selectors

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rule:
    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]  # (resource, subresource) with "*" wildcards
    scope: str
    names: frozenset[str]

    @classmethod
    def parse(cls, raw: Obj) -> Rule:
        resources = []
        for r in raw.get("resources") or ():
            res, _, sub = str(r).partition("/")
            resources.append((res, sub))
        return cls(frozenset(raw.get("operations") or ()), frozenset(raw.get("apiGroups") or ()),
                   frozenset(raw.get("apiVersions") or ()), tuple(resources), raw.get("scope") or "*",
                   frozenset(raw.get("resourceNames") or ()))

    def matches(self, req: Request, group: str, version: str, resource: str) -> bool:
        """`rules.Matcher.Matches` for the request as `group/version/resource`."""
        if "*" not in self.operations and req.operation not in self.operations:
            return False
        if "*" not in self.groups and group not in self.groups:
            return False
        if "*" not in self.versions and version not in self.versions:
            return False
        if not any((r == "*" or r == resource) and (s == "*" or s == req.subresource) for r, s in self.resources):
            return False
        if self.scope == "Namespaced":
            return resource != "namespaces" and bool(req.namespace)
        if self.scope == "Cluster":
            return resource == "namespaces" or not req.namespace
        return True

    def resource_names(self) -> set[str]:
        return {r for r, _ in self.resources}


@dataclass(slots=True)
class Request:
    """What matching reads of an admission request."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str  # for a namespace object, its own name (upstream's attributes)
    name: str
    obj: Obj | None
    old: Obj | None
    # the same resource in other groups/versions: [(group, version, resource, kind)]
    equivalents: Callable[[], list[tuple[str, str, str, str]]]
    namespace_labels: Mapping[str, str] | None = None  # filled by the caller before matching
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Criteria:
    namespace_selector: selectors.LabelSelector
    object_selector: selectors.LabelSelector
    rules: tuple[Rule, ...]
    excludes: tuple[Rule, ...]
    equivalent: bool
    rules_given: bool = True
    uses_namespace: bool = field(default=False)

    @classmethod
    def parse(cls, raw: Obj | None) -> Criteria:
        raw = raw or {}
        ns = selectors.from_label_selector_object(raw.get("namespaceSelector"))
        return cls(ns, selectors.from_label_selector_object(raw.get("objectSelector")),
                   tuple(Rule.parse(r) for r in raw.get("resourceRules") or ()),
                   tuple(Rule.parse(r) for r in raw.get("excludeResourceRules") or ()),
                   (raw.get("matchPolicy") or "Equivalent") == "Equivalent",
                   bool(raw.get("resourceRules")), bool(ns))

    def matches(self, req: Request) -> tuple[bool, tuple[str, str, str, str]]:
        """(matched, the (group, version, resource, kind) it matched as), upstream's `Matcher.Matches`."""
        own = (req.group, req.version, req.resource, req.kind)
        if self.namespace_selector and (req.namespace or req.resource == "namespaces"):
            if not self.namespace_selector.matches(req.namespace_labels):
                return False, own
        if self.object_selector and not any(
                o is not None and self.object_selector.matches((o.get("metadata") or {}).get("labels"))
                for o in (req.obj, req.old)):
            return False, own
        if _rules_match(self.excludes, self.equivalent, req)[0]:
            return False, own
        if not self.rules_given:
            return True, own
        return _rules_match(self.rules, self.equivalent, req)

    def resource_names(self) -> set[str] | None:
        """The resource names its rules can match (None: any)."""
        if not self.rules_given:
            return None
        out: set[str] = set()
        for rule in self.rules:
            out |= rule.resource_names()
        return out


def _rules_match(rules: tuple[Rule, ...], equivalent: bool, req: Request) -> tuple[bool, tuple[str, str, str, str]]:
    own = (req.group, req.version, req.resource, req.kind)
    for rule in rules:
        if rule.matches(req, req.group, req.version, req.resource):
            # an empty name list matches any name
            if not rule.names or req.name in rule.names:
                return True, own
    if not equivalent or not rules:
        return False, own
    for eq in req.equivalents():
        if eq[:3] == own[:3]:
            continue
        for rule in rules:
            if rule.matches(req, eq[0], eq[1], eq[2]):
                return True, eq
    return False, own
