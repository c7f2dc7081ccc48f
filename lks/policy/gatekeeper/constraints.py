"""A constraint as the webhook and the audit use it: parsed once per resourceVersion, with its
`spec.match` (Gatekeeper's `match.Match`: kinds, scope, namespaces and excludedNamespaces with
their prefix/suffix globs, labelSelector, namespaceSelector, name) turned into one predicate,
and its enforcement action (`deny` when unset, as Gatekeeper's default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lks.kube import selectors

Obj = dict[str, Any]

ACTIONS = ("deny", "dryrun", "warn")


def glob(pattern: str, value: str) -> bool:
    """Gatekeeper's wildcard: a `*` at the front and/or the end only."""
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return pattern[1:-1] in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def any_glob(patterns: list[str], value: str) -> bool:
    return any(glob(p, value) for p in patterns)


@dataclass(slots=True)
class Target:
    """What matching needs of one object under review."""

    group: str
    kind: str
    namespace: str  # "" for a cluster-scoped object
    name: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str] | None  # None: not known (cluster-scoped)

    @property
    def is_namespace(self) -> bool:
        return self.group == "" and self.kind == "Namespace"


class Constraint:
    def __init__(self, obj: Obj):
        self.obj = obj
        meta = obj.get("metadata") or {}
        self.name: str = meta.get("name") or ""
        self.kind: str = obj.get("kind") or ""
        self.uid: str = meta.get("uid") or ""
        self.generation: int = meta.get("generation") or 1
        spec = obj.get("spec") or {}
        self.action: str = spec.get("enforcementAction") or "deny"
        self.parameters: Any = spec.get("parameters")
        match = spec.get("match") or {}
        self.kinds: list[tuple[list[str], list[str]]] = [
            (k.get("apiGroups") or [], k.get("kinds") or []) for k in match.get("kinds") or []]
        self.scope: str = match.get("scope") or "*"
        self.namespaces: list[str] | None = match.get("namespaces")
        self.excluded: list[str] | None = match.get("excludedNamespaces")
        self.labels = selectors.from_label_selector_object(match.get("labelSelector"))
        self.namespace_selector = (selectors.from_label_selector_object(match["namespaceSelector"])
                                   if match.get("namespaceSelector") is not None else None)
        self.match_name: str | None = match.get("name")

    def matches_kind(self, group: str, kind: str) -> bool:
        if not self.kinds:
            return True
        for groups, kinds in self.kinds:
            if (not groups or "*" in groups or group in groups) and (not kinds or "*" in kinds or kind in kinds):
                return True
        return False

    def matches(self, t: Target) -> bool:
        if not self.matches_kind(t.group, t.kind):
            return False
        if self.scope == "Cluster" and t.namespace:
            return False
        if self.scope == "Namespaced" and not t.namespace:
            return False
        # a Namespace is matched by its own name, as Gatekeeper's matcher does
        ns = t.name if t.is_namespace else t.namespace
        if ns:
            if self.namespaces is not None and not any_glob(self.namespaces, ns):
                return False
            if self.excluded and any_glob(self.excluded, ns):
                return False
        if self.match_name is not None and not glob(self.match_name, t.name):
            return False
        if self.labels and not self.labels.matches(t.labels):
            return False
        if self.namespace_selector is not None:
            ns_labels = t.labels if t.is_namespace else t.namespace_labels
            if ns_labels is not None and not self.namespace_selector.matches(ns_labels):
                return False
        return True
