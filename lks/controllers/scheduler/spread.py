"""PodTopologySpread: `DoNotSchedule` constraints as a filter, `ScheduleAnyway` constraints
(and, for a pod without constraints, upstream's system defaults: hostname with maxSkew 3 and
zone with maxSkew 5 over the selectors of the pod's Services and controller) as a score.

Upstream counts matching pods by walking every node's pods for every pod it schedules. Here a
`SpreadIndex` keeps, per (namespace, selector), the count of matching pods per node and per
topology value, updated as pods are placed and removed (it listens to the snapshot), so the
score is a dictionary lookup per node. Entries are built on first use and the least recently
used are dropped, so only the selectors of pods being scheduled cost anything.
`lks.controllers.scheduler.framework` calls `filter_state`/`score_state`.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lks.controllers.scheduler import status, terms
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from lks.kube import selectors

if TYPE_CHECKING:
    from lks.controllers.scheduler.framework import Cycle

Obj = dict[str, Any]
SYSTEM_DEFAULTS = ((terms.HOSTNAME, 3), (terms.ZONE, 5))
MAX_ENTRIES = 64
MAX_SCORE = 100


_zone = operator.attrgetter("zone")


def selector_key(namespace: str, sel: selectors.LabelSelector) -> tuple:
    return (namespace, tuple(sorted(sel.requirements, key=lambda r: (r.key, r.op, tuple(sorted(r.values))))))


class Counts:
    """Pods of one namespace matching one selector (terminating pods excluded, as
    `countPodsMatchSelector`), per node and per topology value."""

    __slots__ = ("namespace", "selector", "per_node", "per_value", "arr", "layout", "pending")

    def __init__(self, namespace: str, selector: selectors.LabelSelector):
        self.namespace = namespace
        self.selector = selector
        self.per_node: dict[str, int] = {}
        self.per_value: dict[str, dict[str, int]] = {}  # topology key -> value -> count
        self.arr: Any = None  # `per_node` as a column of `columns.Columns`, and the changes since
        self.layout = 0
        self.pending: list[tuple[str, int]] = []

    def counts(self, pod: PodInfo) -> bool:
        return pod.namespace == self.namespace and not pod.terminating and self.selector.matches(pod.labels)

    def change(self, node: NodeInfo, delta: int) -> None:
        self.per_node[node.name] = self.per_node.get(node.name, 0) + delta
        if self.arr is not None:
            self.pending.append((node.name, delta))
            if len(self.pending) > 4096:  # not read for long: rebuilt on next use instead
                self.arr = None
                self.pending.clear()
        for key, values in self.per_value.items():
            value = node.labels.get(key, "")
            values[value] = values.get(value, 0) + delta

    def by_value(self, key: str, snapshot: Snapshot) -> dict[str, int]:
        values = self.per_value.get(key)
        if values is None:
            values = self.per_value[key] = {}
            for name, n in self.per_node.items():
                info = snapshot.nodes.get(name)
                if info is not None and n:
                    value = info.labels.get(key, "")
                    values[value] = values.get(value, 0) + n
        return values


class SpreadIndex:
    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.entries: OrderedDict[tuple, Counts] = OrderedDict()
        self.by_namespace: dict[str, list[Counts]] = {}
        snapshot.listeners.append(self)

    def get(self, namespace: str, sel: selectors.LabelSelector, key: tuple | None = None) -> Counts:
        key = key or selector_key(namespace, sel)
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
            return entry
        entry = Counts(namespace, sel)
        for pod in self.snapshot.pods.values():
            if entry.counts(pod):
                entry.per_node[pod.node] = entry.per_node.get(pod.node, 0) + 1
        self.entries[key] = entry
        self.by_namespace.setdefault(namespace, []).append(entry)
        if len(self.entries) > MAX_ENTRIES:
            _, old = self.entries.popitem(last=False)
            self.by_namespace[old.namespace].remove(old)
        return entry

    def pod_added(self, pod: PodInfo, node: NodeInfo) -> None:
        for entry in self.by_namespace.get(pod.namespace, ()):
            if entry.counts(pod):
                entry.change(node, 1)

    def pod_removed(self, pod: PodInfo, node: NodeInfo) -> None:
        for entry in self.by_namespace.get(pod.namespace, ()):
            if entry.counts(pod):
                entry.change(node, -1)

    def labels_changed(self) -> None:
        """A node's labels changed: per-value sums are rebuilt on next use."""
        for entry in self.entries.values():
            entry.per_value.clear()


class Constraint:
    __slots__ = ("max_skew", "key", "selector", "sel_key", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, max_skew: int, key: str, selector: selectors.LabelSelector, namespace: str,
                 min_domains: int = 0, affinity_policy: str = "Honor", taints_policy: str = "Ignore"):
        self.max_skew = max_skew
        self.key = key
        self.selector = selector
        self.sel_key = selector_key(namespace, selector)
        self.min_domains = min_domains
        self.honor_affinity = affinity_policy != "Ignore"
        self.honor_taints = taints_policy == "Honor"

    def includes(self, cycle: Cycle, node: NodeInfo) -> bool:
        """`matchNodeInclusionPolicies`."""
        if self.honor_affinity and cycle.node_affinity and not cycle.node_affinity.matches(node.labels, node.name):
            return False
        return not (self.honor_taints and any(not terms.tolerated(cycle.tolerations, t) for t in node.hard_taints))


def constraints(pod: PodInfo, action: str) -> list[Constraint]:
    """The pod's own constraints with `whenUnsatisfiable == action` (`matchLabelKeys` merged in)."""
    out = []
    for c in pod.spec.get("topologySpreadConstraints") or ():
        if not isinstance(c, dict) or c.get("whenUnsatisfiable", "DoNotSchedule") != action:
            continue
        sel = terms.label_selector(c.get("labelSelector"),
                                   extra=terms.label_keys(c.get("matchLabelKeys"), pod.labels, "in"))
        if sel is None:
            sel = selectors.LabelSelector([selectors.Requirement("", "in", frozenset())])  # matches nothing
        out.append(Constraint(int(c.get("maxSkew") or 1), c.get("topologyKey") or "", sel, pod.namespace,
                              int(c.get("minDomains") or 0), c.get("nodeAffinityPolicy") or "Honor",
                              c.get("nodeTaintsPolicy") or "Ignore"))
    return out


_defaults: dict[int, tuple[selectors.LabelSelector, str, list[Constraint]]] = {}


def system_defaults(pod: PodInfo, default_selector: Callable[[PodInfo], selectors.LabelSelector | None]) -> list[Constraint]:
    """The system-default constraints over the pod's default selector (the same list, not to
    be changed, for every pod whose selector is the same object: the listers cache it)."""
    sel = default_selector(pod)
    if not sel:
        return []
    hit = _defaults.get(id(sel))
    if hit is not None and hit[0] is sel and hit[1] == pod.namespace:
        return hit[2]
    out = [Constraint(skew, key, sel, pod.namespace) for key, skew in SYSTEM_DEFAULTS]
    if len(_defaults) > 1024:
        _defaults.clear()
    _defaults[id(sel)] = (sel, pod.namespace, out)
    return out


# -- filter (DoNotSchedule) ----------------------------------------------------------------------------

class FilterState:
    """PreFilter's sums: matching pods per topology value, and the global minimum."""

    def __init__(self, cycle: Cycle, index: SpreadIndex, hard: list[Constraint]):
        self.constraints = hard
        self.matches: list[dict[str, int]] = [{} for _ in hard]
        entries = [index.get(cycle.pod.namespace, c.selector, c.sel_key) for c in hard]
        for node in index.snapshot.node_list():
            labels = node.labels
            if not all(c.key in labels for c in hard):
                continue
            for i, c in enumerate(hard):
                if c.includes(cycle, node):
                    value = labels[c.key]
                    self.matches[i][value] = self.matches[i].get(value, 0) + entries[i].per_node.get(node.name, 0)
        self.minimum = []
        for i, c in enumerate(hard):
            counts = self.matches[i]
            low = min(counts.values()) if counts else 0
            if c.min_domains and len(counts) < c.min_domains:
                low = 0  # fewer domains than asked for: the missing ones count as empty
            self.minimum.append(low)
        self.self_match = [c.selector.matches(cycle.pod.labels) for c in hard]

    def filter(self, cycle: Cycle, node: NodeInfo) -> status.Status | None:
        labels = node.labels
        for i, c in enumerate(self.constraints):
            value = labels.get(c.key)
            if value is None:
                return status.SPREAD_LABEL
            if self.matches[i].get(value, 0) + self.self_match[i] - self.minimum[i] > c.max_skew:
                return status.SPREAD
        return None


# -- score (ScheduleAnyway) ----------------------------------------------------------------------------

class ScoreState:
    """PreScore's sums and Score for ScheduleAnyway constraints. Nodes lacking a key of the
    pod's own constraints are ignored (score 0); with the system defaults they are not."""

    def __init__(self, cycle: Cycle, index: SpreadIndex, soft: list[Constraint], feasible: list[NodeInfo],
                 require_all: bool):
        self.constraints = soft
        self.snapshot = index.snapshot
        self.entries = [index.get(cycle.pod.namespace, c.selector, c.sel_key) for c in soft]
        self.ignored: set[str] = set()
        if require_all:
            keys = [c.key for c in soft]
            self.ignored = {n.name for n in feasible if not all(k in n.labels for k in keys)}
        # the topology values present among the feasible nodes (hostname is counted per node)
        values: list[dict[str, int] | None] = []
        for c in soft:
            if c.key == terms.HOSTNAME:
                values.append(None)
            elif c.key == terms.ZONE and not self.ignored:
                present = set(map(_zone, feasible))
                if None in present:
                    present.discard(None)
                    present.add("")
                values.append(dict.fromkeys(present, 0))
            else:
                values.append(dict.fromkeys({n.labels.get(c.key, "") for n in feasible
                                             if n.name not in self.ignored}, 0))
        self.weights = [math.log((len(feasible) - len(self.ignored) if v is None else len(v)) + 2) for v in values]
        plain = not require_all and not cycle.node_affinity and not any(c.honor_taints for c in soft)
        for i, (v, c) in enumerate(zip(values, soft, strict=True)):
            if v is None:
                continue
            if plain:
                totals = self.entries[i].by_value(c.key, index.snapshot)
                for value in v:
                    v[value] = totals.get(value, 0)
                continue
            per_node = self.entries[i].per_node
            keys = [k.key for k in soft]
            for node in index.snapshot.node_list():
                labels = node.labels
                if (require_all and not all(k in labels for k in keys)) or not c.includes(cycle, node):
                    continue
                value = labels.get(c.key, "")
                if value in v:
                    v[value] += per_node.get(node.name, 0)
        self.values = values

    def raw(self, nodes: list[NodeInfo]) -> list[int]:
        """Per node: the sum over constraints of count x weight + maxSkew - 1, rounded."""
        cons = self.constraints
        if (len(cons) == 2 and not self.ignored and cons[0].key == terms.HOSTNAME and cons[1].key == terms.ZONE):
            # the system defaults' shape, in one comprehension: it runs for every pod of every
            # Deployment, over hundreds of nodes
            get, wh, sh = self.entries[0].per_node.get, self.weights[0], cons[0].max_skew - 1
            assert self.values[1] is not None
            part = {v: cnt * self.weights[1] + cons[1].max_skew - 1 for v, cnt in self.values[1].items()}
            if not self.snapshot.unlabelled:
                zone = part.__getitem__
                return [int(get(n.name, 0) * wh + sh + zone(n.zone) + 0.5) for n in nodes]
            zone = part.get
            return [int((get(n.name, 0) * wh + sh if n.hostname is not None else 0.0)
                        + (zone(n.zone, 0.0) if n.zone is not None else 0.0) + 0.5) for n in nodes]
        out = []
        cons = list(zip(self.constraints, self.entries, self.weights, self.values, strict=True))
        for node in nodes:
            if node.name in self.ignored:
                out.append(-1)
                continue
            labels = node.labels
            score = 0.0
            for c, entry, weight, values in cons:
                value = labels.get(c.key)
                if value is None:
                    continue
                cnt = entry.per_node.get(node.name, 0) if values is None else values.get(value, 0)
                score += cnt * weight + (c.max_skew - 1)
            out.append(math.floor(score + 0.5))  # Go's math.Round, for non-negative values
        return out

    @staticmethod
    def add_normalized(totals: list[int], raw: list[int], weight: int) -> None:
        """`totals += weight x normalize(raw)`, in one pass for the common case."""
        if -1 in raw or not raw or max(raw) == 0:
            totals[:] = [t + weight * s for t, s in zip(totals, ScoreState.normalize(raw), strict=True)]
            return
        high = max(raw)
        top = high + min(raw)
        totals[:] = [t + weight * (MAX_SCORE * (top - s) // high) for t, s in zip(totals, raw, strict=True)]

    @staticmethod
    def normalize(raw: list[int]) -> list[int]:
        """Fewer matching pods score higher; ignored nodes (-1) score 0."""
        valid = [s for s in raw if s >= 0] if -1 in raw else raw
        if not valid:
            return [0] * len(raw)
        low, high = min(valid), max(valid)
        if high == 0:
            return [0 if s < 0 else MAX_SCORE for s in raw]
        top = high + low
        return [0 if s < 0 else MAX_SCORE * (top - s) // high for s in raw]
