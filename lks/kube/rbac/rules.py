"""PolicyRules: does a rule allow a request (upstream's `RuleAllows` and the rbac/v1 helpers'
`VerbMatches`, `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`,
`NonResourceURLMatches`), and do some rules cover others (`validation.Covers`, for escalation
checks). Rules are compiled once, when their role enters the index, into sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from lks.kube.authz import Attributes

ALL = "*"


def _strings(rule: dict, key: str) -> tuple[str, ...]:
    value = rule.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


class Rule:
    """One PolicyRule, with its lists as sets for fast matching."""

    __slots__ = ("raw", "verbs", "groups", "resources", "names", "urls", "all_verbs", "all_groups", "all_resources")

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw
        self.verbs = frozenset(_strings(raw, "verbs"))
        self.groups = frozenset(_strings(raw, "apiGroups"))
        self.resources = frozenset(_strings(raw, "resources"))
        self.names = frozenset(_strings(raw, "resourceNames"))
        self.urls = _strings(raw, "nonResourceURLs")
        self.all_verbs = ALL in self.verbs
        self.all_groups = ALL in self.groups
        self.all_resources = ALL in self.resources

    def allows(self, attrs: Attributes) -> bool:
        if not self.all_verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            return url_matches(self.urls, attrs.path)
        if not self.all_groups and attrs.api_group not in self.groups:
            return False
        if not self.all_resources:
            sub, resources = attrs.subresource, self.resources
            if sub:
                if f"{attrs.resource}/{sub}" not in resources and f"*/{sub}" not in resources:
                    return False
            elif attrs.resource not in resources:
                return False
        return not self.names or attrs.name in self.names


def compile_rules(raw: Any) -> tuple[Rule, ...]:
    return tuple(Rule(r) for r in raw if isinstance(r, dict)) if isinstance(raw, list) else ()


def url_matches(urls: Iterable[str], path: str) -> bool:
    for url in urls:
        if url == ALL or url == path or (url.endswith(ALL) and path.startswith(url[:-1])):
            return True
    return False


# -- coverage (escalation checks) ---------------------------------------------------------


def _breakdown(rule: dict) -> list[dict[str, Any]]:
    """A rule as single-verb, single-group, single-resource (single-name) rules
    (upstream's `BreakdownRule`)."""
    out = []
    verbs, names = _strings(rule, "verbs"), _strings(rule, "resourceNames")
    for group in _strings(rule, "apiGroups"):
        for resource in _strings(rule, "resources"):
            for verb in verbs:
                if names:
                    out += [{"verbs": [verb], "apiGroups": [group], "resources": [resource], "resourceNames": [n]}
                            for n in names]
                else:
                    out.append({"verbs": [verb], "apiGroups": [group], "resources": [resource]})
    for url in _strings(rule, "nonResourceURLs"):
        out += [{"verbs": [verb], "nonResourceURLs": [url]} for verb in verbs]
    return out


def _has(values: Iterable[str], value: str) -> bool:
    values = tuple(values)
    return ALL in values or value in values


def _resource_covers(owner: tuple[str, ...], resource: str) -> bool:
    if ALL in owner or resource in owner:
        return True
    # "*/status" covers "pods/status"
    _, sep, sub = resource.partition("/")
    return bool(sep) and f"*/{sub}" in owner


def _url_covers(owner: tuple[str, ...], url: str) -> bool:
    for o in owner:
        if o == url or o == ALL or (o.endswith(ALL) and url.startswith(o[:-1])):
            return True
    return False


def _rule_covers(owner: dict, servant: dict) -> bool:
    """Whether `owner` allows everything the broken-down rule `servant` does
    (upstream's `ruleCovers`)."""
    owner_names, servant_names = _strings(owner, "resourceNames"), _strings(servant, "resourceNames")
    names_match = not owner_names or (bool(servant_names) and all(n in owner_names for n in servant_names))
    owner_resources, owner_urls = _strings(owner, "resources"), _strings(owner, "nonResourceURLs")
    return (names_match
            and all(_has(_strings(owner, "verbs"), v) for v in _strings(servant, "verbs"))
            and all(_has(_strings(owner, "apiGroups"), g) for g in _strings(servant, "apiGroups"))
            and all(_resource_covers(owner_resources, r) for r in _strings(servant, "resources"))
            and all(_url_covers(owner_urls, u) for u in _strings(servant, "nonResourceURLs")))


def uncovered(owner: Iterable[dict], servant: Iterable[dict]) -> list[dict[str, Any]]:
    """The broken-down rules of `servant` that no rule of `owner` covers (upstream's `Covers`)."""
    owner = list(owner)
    missing = []
    for rule in servant:
        for part in _breakdown(rule):
            if not any(_rule_covers(o, part) for o in owner):
                missing.append(part)
    return missing


def describe(rule: dict) -> str:
    """A rule as upstream's `PolicyRule.CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
                       ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        values = _strings(rule, key)
        if values:  # Go's %q of a []string: space-separated quoted strings
            parts.append(f"{label}:[{' '.join(_quote(v) for v in values)}]")
    return "{" + ", ".join(parts) + "}"


def _quote(value: str) -> str:
    return orjson.dumps(value).decode()
