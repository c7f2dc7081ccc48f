"""The matching rules a pod spec states about nodes and other pods, compiled once per pod:
label selectors (a nil selector matches nothing, `{}` everything, as `LabelSelectorAsSelector`),
node selector terms (`nodeaffinity.NodeSelector`: ORed terms of ANDed requirements, `Gt`/`Lt`,
`matchFields` on `metadata.name`), pod affinity terms (`framework.AffinityTerm`) and
tolerations (`Toleration.ToleratesTaint`).

`lks.controllers.scheduler.snapshot` builds these into each `PodInfo`; the filters and scores
in `plugins` only call `matches`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lks.kube import selectors

Obj = dict[str, Any]
Labels = Mapping[str, str]
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"

_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector(sel: Any, *, extra: list[selectors.Requirement] | None = None) -> selectors.LabelSelector | None:
    """A `metav1.LabelSelector` as a matcher; None when it matches nothing (nil or invalid)."""
    if not isinstance(sel, dict):
        return None
    reqs = [selectors.Requirement(k, "=", frozenset([v])) for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or ():
        op = _OPS.get(expr.get("operator")) if isinstance(expr, dict) else None
        if op is None:
            return None
        reqs.append(selectors.Requirement(expr.get("key", ""), op, frozenset(expr.get("values") or ())))
    return selectors.LabelSelector(reqs + (extra or []))


def label_keys(keys: Any, labels: Labels, op: str) -> list[selectors.Requirement]:
    """`matchLabelKeys` (`in`) / `mismatchLabelKeys` (`notin`): the pod's own values of the keys."""
    return [selectors.Requirement(k, op, frozenset([labels[k]])) for k in keys or () if k in labels]


def matches(sel: selectors.LabelSelector | None, labels: Labels) -> bool:
    return sel is not None and sel.matches(labels)


# -- nodes -------------------------------------------------------------------------------------------

def _requirement(expr: Any, fields: bool) -> Callable[[Labels, str], bool] | None:
    if not isinstance(expr, dict):
        return None
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    if fields:
        if key != "metadata.name" or op not in ("In", "NotIn") or len(values) != 1:
            return None
        name, want = values[0], op == "In"
        return lambda _labels, node: (node == name) == want
    if op == "In":
        allowed = frozenset(values)
        return lambda labels, _node: labels.get(key) in allowed
    if op == "NotIn":
        banned = frozenset(values)
        return lambda labels, _node: labels.get(key) not in banned
    if op == "Exists":
        return lambda labels, _node: key in labels
    if op == "DoesNotExist":
        return lambda labels, _node: key not in labels
    if op in ("Gt", "Lt") and len(values) == 1:
        try:
            bound = int(values[0])
        except ValueError:
            return None

        def compare(labels: Labels, _node: str) -> bool:
            try:
                value = int(labels[key])
            except (KeyError, ValueError):
                return False
            return value > bound if op == "Gt" else value < bound
        return compare
    return None


class NodeSelectorTerm:
    """ANDed requirements; a term without any, or with an invalid one, matches no node."""

    __slots__ = ("reqs",)

    def __init__(self, term: Any):
        reqs: list[Callable[[Labels, str], bool]] | None = []
        if isinstance(term, dict):
            for fields, key in ((False, "matchExpressions"), (True, "matchFields")):
                for expr in term.get(key) or ():
                    req = _requirement(expr, fields)
                    if req is None:
                        reqs = None
                        break
                    reqs.append(req)
                if reqs is None:
                    break
        self.reqs = reqs or None

    def matches(self, labels: Labels, node: str) -> bool:
        return self.reqs is not None and all(r(labels, node) for r in self.reqs)


class NodeAffinity:
    """`nodeaffinity.RequiredNodeAffinity`: `nodeSelector` and the required terms."""

    __slots__ = ("selector", "terms", "names")

    def __init__(self, spec: Obj):
        self.selector: dict[str, str] = spec.get("nodeSelector") or {}
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution"))
        raw = (required or {}).get("nodeSelectorTerms") if isinstance(required, dict) else None
        self.terms = [NodeSelectorTerm(t) for t in raw] if raw is not None else None
        self.names = _node_names(raw) if raw else None

    def __bool__(self) -> bool:
        return bool(self.selector) or self.terms is not None

    def matches(self, labels: Labels, node: str) -> bool:
        for k, v in self.selector.items():
            if labels.get(k) != v:
                return False
        return self.terms is None or any(t.matches(labels, node) for t in self.terms)


def _node_names(terms: list) -> set[str] | None:
    """NodeAffinity's PreFilter: the node names every term pins with `metadata.name In`
    (None: some term does not pin, so every node is a candidate)."""
    names: set[str] = set()
    for t in terms:
        pinned: set[str] | None = None
        for r in (t or {}).get("matchFields") or ():
            if r.get("key") == "metadata.name" and r.get("operator") == "In":
                vals = set(r.get("values") or ())
                pinned = vals if pinned is None else pinned & vals
        if pinned is None:
            return None
        names |= pinned
    return names


def preferred_node_terms(spec: Obj) -> list[tuple[int, NodeSelectorTerm]]:
    prefs = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("preferredDuringSchedulingIgnoredDuringExecution")) or []
    return [(int(p.get("weight") or 0), NodeSelectorTerm(p.get("preference"))) for p in prefs
            if isinstance(p, dict) and p.get("weight")]


# -- taints ------------------------------------------------------------------------------------------

def tolerates(toleration: Obj, taint: Obj) -> bool:
    """`Toleration.ToleratesTaint`."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: list[Obj], taint: Obj) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


# -- pods --------------------------------------------------------------------------------------------

NamespaceLabels = Callable[[str], Labels]


class AffinityTerm:
    """`framework.AffinityTerm`: which pods (namespaces, selector) and the topology key."""

    __slots__ = ("namespaces", "ns_selector", "selector", "key", "weight")

    def __init__(self, term: Obj, pod_namespace: str, pod_labels: Labels, weight: int = 0):
        names = term.get("namespaces") or []
        ns_sel = term.get("namespaceSelector")
        self.namespaces = frozenset(names) if (names or ns_sel is not None) else frozenset([pod_namespace])
        self.ns_selector = label_selector(ns_sel)
        extra = (label_keys(term.get("matchLabelKeys"), pod_labels, "in")
                 + label_keys(term.get("mismatchLabelKeys"), pod_labels, "notin"))
        self.selector = label_selector(term.get("labelSelector"), extra=extra)
        self.key: str = term.get("topologyKey") or ""
        self.weight = weight

    def matches(self, namespace: str, labels: Labels, ns_labels: NamespaceLabels) -> bool:
        if self.selector is None:
            return False
        if namespace not in self.namespaces and not (
                self.ns_selector is not None and self.ns_selector.matches(ns_labels(namespace))):
            return False
        return self.selector.matches(labels)


def affinity_terms(spec: Obj, namespace: str, labels: Labels) -> tuple[list, list, list, list]:
    """(required affinity, required anti-affinity, preferred affinity, preferred anti-affinity)."""
    affinity = spec.get("affinity") or {}
    out: list[list[AffinityTerm]] = []
    for kind in ("podAffinity", "podAntiAffinity"):
        part = affinity.get(kind) or {}
        out.append([AffinityTerm(t, namespace, labels) for t in
                    part.get("requiredDuringSchedulingIgnoredDuringExecution") or () if isinstance(t, dict)])
    for kind in ("podAffinity", "podAntiAffinity"):
        part = affinity.get(kind) or {}
        out.append([AffinityTerm(w.get("podAffinityTerm") or {}, namespace, labels, int(w.get("weight") or 0))
                    for w in part.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
                    if isinstance(w, dict)])
    return out[0], out[1], out[2], out[3]
