"""Audit policies (upstream's `audit.k8s.io/v1` Policy and its checker): rules of levels None,
Metadata, Request and RequestResponse matched on users, userGroups, verbs, resources (with
`*`, `*/sub`, `res/*` and resourceNames), namespaces and nonResourceURLs (a trailing `*`), in
order, the first match winning; no match is level None. `lks.kube.audit` asks `level_of` for
each request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lks import safeyaml

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.http.requestinfo import RequestInfo

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")

DEFAULT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "verbs": ["get", "list", "watch"],
         "resources": [{"group": "", "resources": ["events"]}, {"group": "events.k8s.io", "resources": ["events"]}]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
        {"level": "Metadata"},
    ],
}


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    level: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = ()  # (group, resources, names)
    namespaces: frozenset[str] = frozenset()
    urls: tuple[str, ...] = ()
    omit: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None  # None: as the policy says

    def matches(self, user: User, verb: str, info: RequestInfo) -> bool:
        if self.users and user.name not in self.users:
            return False
        if self.groups and not self.groups.intersection(user.groups):
            return False
        if self.verbs and verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            return info.is_resource and self._resource(info)
        if self.urls:
            return not info.is_resource and any(_path_matches(info.path, spec) for spec in self.urls)
        return True

    def _resource(self, info: RequestInfo) -> bool:
        if self.namespaces and (info.namespace or "") not in self.namespaces:
            return False
        if not self.resources:
            return True
        sub = info.subresource or ""
        combined = f"{info.resource}/{sub}" if sub else info.resource
        for group, resources, names in self.resources:
            if group != info.group:
                continue
            if not resources:
                return True
            if names and (info.name or "") not in names:
                continue
            for res in resources:
                if res in (combined, "*") or (sub and res.startswith("*/") and res[2:] == sub) \
                        or (res.endswith("/*") and res[:-2] == info.resource):
                    return True
        return False


def _path_matches(path: str, spec: str) -> bool:
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    omit: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    def level_of(self, user: User, verb: str, info: RequestInfo) -> tuple[str, frozenset[str], bool]:
        """The level of a request, the stages not to log and whether logged objects leave
        out their managedFields (upstream's EvaluatePolicyRule)."""
        for rule in self.rules:
            if rule.matches(user, verb, info):
                managed = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return rule.level, self.omit | rule.omit, managed
        return "None", self.omit, self.omit_managed_fields


def _strings(obj: dict, key: str, where: str) -> list[str]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}.{key}: must be a list of strings")
    return value


def parse_policy(doc: Any) -> Policy:
    """An audit.k8s.io/v1 Policy document (validated as upstream's: known levels and stages)."""
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or doc.get("apiVersion") not in (
            "audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise PolicyError("not an audit.k8s.io/v1 Policy")
    rules = []
    for i, raw in enumerate(doc.get("rules") or []):
        where = f"rules[{i}]"
        if not isinstance(raw, dict) or raw.get("level") not in LEVELS:
            raise PolicyError(f"{where}.level: must be one of {', '.join(LEVELS)}")
        resources = []
        for gr in raw.get("resources") or []:
            if not isinstance(gr, dict):
                raise PolicyError(f"{where}.resources: must be a list of objects")
            resources.append((gr.get("group") or "", tuple(_strings(gr, "resources", where)),
                              frozenset(_strings(gr, "resourceNames", where))))
        urls = tuple(_strings(raw, "nonResourceURLs", where))
        if urls and (resources or raw.get("namespaces")):
            raise PolicyError(f"{where}: rules cannot apply to both regular resources and non-resource URLs")
        omit = _strings(raw, "omitStages", where)
        if any(s not in STAGES for s in omit):
            raise PolicyError(f"{where}.omitStages: must be one of {', '.join(STAGES)}")
        managed = raw.get("omitManagedFields")
        if managed is not None and not isinstance(managed, bool):
            raise PolicyError(f"{where}.omitManagedFields: must be a boolean")
        rules.append(Rule(raw["level"], frozenset(_strings(raw, "users", where)),
                          frozenset(_strings(raw, "userGroups", where)), frozenset(_strings(raw, "verbs", where)),
                          tuple(resources), frozenset(_strings(raw, "namespaces", where)), urls, frozenset(omit),
                          managed))
    omit = _strings(doc, "omitStages", "policy")
    if any(s not in STAGES for s in omit):
        raise PolicyError(f"omitStages: must be one of {', '.join(STAGES)}")
    return Policy(tuple(rules), frozenset(omit), doc.get("omitManagedFields") is True)


def load_policy(*paths: Path) -> Policy:
    """The first policy file of `paths` that exists, else the default."""
    for path in paths:
        if path.is_file():
            return parse_policy(safeyaml.load(path.read_bytes()))
    return parse_policy(DEFAULT_POLICY)
