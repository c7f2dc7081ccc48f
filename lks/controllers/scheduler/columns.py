"""The scheduling cycle of the common pod in numpy: one that asks for nothing beyond cpu,
memory and ephemeral storage, with no node affinity, host ports, affinity terms or spread
constraints of its own, in a cluster without PreferNoSchedule taints (a Deployment's replica).

The numbers the filters and scores read are kept per node in columns (rows in the order of
`Snapshot.node_list()`, refreshed row by row for the nodes that changed since the last
cycle), so NodeResourcesFit, LeastAllocated, BalancedAllocation and the system-default
spreading run over every node at once instead of node by node. The results are the ones the
node-by-node path (`framework`) gives: the same round-robin start, the same feasible nodes,
the same integer and float arithmetic in the same order, the same random tie-break; the tests
compare the two.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lks.controllers.scheduler import affinity, plugins, terms
from lks.controllers.scheduler.resources import Requests
from lks.controllers.scheduler.snapshot import NodeInfo, Snapshot

if TYPE_CHECKING:
    from lks.controllers.scheduler.framework import Cycle, Framework
    from lks.controllers.scheduler.spread import Constraint, Counts

MAX_SCORE = 100
WEIGHT_SPREAD = 2
_SHAPES = 8  # pod shapes whose resource scores are kept
_FIELDS = ("free_cpu", "free_mem", "free_eph", "free_pods", "nz_cpu", "nz_mem", "cpu", "mem")


class Columns:
    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.order: list[NodeInfo] | None = None  # the node_list the rows follow
        self.rows: dict[str, int] = {}
        self.layout = 0  # bumped when rows are renumbered (count arrays are rebuilt then)
        self.ints: dict[str, np.ndarray] = {}
        self.alloc_cpu = self.alloc_mem = np.zeros(0, np.int64)
        self.plain = np.zeros(0, bool)
        self.zone = np.zeros(0, np.int64)  # a code per zone label value
        self.zones: dict[str | None, int] = {}
        self.odd: set[int] = set()  # rows of nodes that are not plain (filtered node by node)
        self.no_alloc: set[int] = set()  # rows without allocatable cpu or memory (scored otherwise)
        # pod shape -> the resource scores per row, and the rows changed since they were computed
        self.rscores: dict[tuple, tuple[np.ndarray, set[int]]] = {}

    def refresh(self, nodes: list[NodeInfo]) -> None:
        touched = self.snapshot.touched
        if nodes is not self.order:
            self._rebuild(nodes)
        elif touched:
            rows = [self.rows[name] for name in touched if name in self.rows]
            for row in rows:
                self._set(row, nodes[row])
            for _, stale in self.rscores.values():
                stale.update(rows)
        touched.clear()

    def _rebuild(self, nodes: list[NodeInfo]) -> None:
        n = len(nodes)
        self.order = nodes
        self.rows = {node.name: i for i, node in enumerate(nodes)}
        self.rscores = {}
        self.layout += 1
        self.ints = {f: np.zeros(n, np.int64) for f in _FIELDS}
        self.alloc_cpu, self.alloc_mem = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.plain = np.zeros(n, bool)
        self.zone = np.zeros(n, np.int64)
        self.zones = {}
        self.odd, self.no_alloc = set(), set()
        for i, node in enumerate(nodes):
            self._set(i, node)

    def _set(self, row: int, node: NodeInfo) -> None:
        for f, column in self.ints.items():
            column[row] = getattr(node, f)
        self.alloc_cpu[row] = node.alloc.cpu
        self.alloc_mem[row] = node.alloc.mem
        self.plain[row] = node.plain
        if node.plain:
            self.odd.discard(row)
        else:
            self.odd.add(row)
        if node.alloc.cpu and node.alloc.mem:
            self.no_alloc.discard(row)
        else:
            self.no_alloc.add(row)
        self.zone[row] = self.zones.setdefault(node.zone, len(self.zones))

    def resource_scores(self, req: Requests, nodes: list[NodeInfo]) -> np.ndarray:
        """Every row's resource score for a pod of `req`'s shape: kept per shape, and only the
        rows of nodes that changed are scored again (node by node, by `plugins`)."""
        shape = (req.cpu, req.mem, req.nz_cpu, req.nz_mem)
        hit = self.rscores.get(shape)
        if hit is None:
            if len(self.rscores) >= _SHAPES:
                self.rscores.clear()
            scores = _resource_scores(self, req)
            self.rscores[shape] = (scores, set())
            return scores
        scores, stale = hit
        if stale:
            balanced = bool(req.cpu or req.mem)
            for row in stale:
                scores[row] = plugins.resource_score(req, nodes[row], balanced)
            stale.clear()
        return scores

    def counts(self, entry: Counts) -> np.ndarray:
        """`entry.per_node` as a column (kept in step with the entry's changes)."""
        arr = entry.arr
        if arr is None or entry.layout != self.layout:
            arr = np.zeros(len(self.rows), np.int64)
            for name, cnt in entry.per_node.items():
                row = self.rows.get(name)
                if row is not None:
                    arr[row] = cnt
            entry.arr, entry.layout = arr, self.layout
        elif entry.pending:
            rows = self.rows
            for name, delta in entry.pending:
                row = rows.get(name)
                if row is not None:
                    arr[row] += delta
        entry.pending.clear()
        return arr


def applies(fw: Framework, cycle: Cycle, soft: list[Constraint]) -> bool:
    """Whether the pod and the cluster are the common case `schedule` handles."""
    snap, pod = fw.snapshot, cycle.pod
    if cycle.pre or cycle.post or cycle.nominated or cycle.req.scalars or cycle.pref_node_terms:
        return False
    if snap.soft_tainted or pod.spec.get("topologySpreadConstraints") or pod.pref_aff or pod.pref_anti:
        return False
    if snap.affinity_pods and affinity.ScoreState(cycle, snap, fw.ns_labels).scores:
        return False  # placed pods' preferred terms score this pod
    return not soft or (not snap.unlabelled and len(soft) == 2 and soft[0].key == terms.HOSTNAME
                        and soft[1].key == terms.ZONE)


def schedule(fw: Framework, cycle: Cycle, nodes: list[NodeInfo], want: int, soft: list[Constraint]) -> str | None:
    """The chosen node's name, or None when no node fits (the node-by-node path then words why)."""
    cols = fw.columns
    cols.refresh(nodes)
    if cols.no_alloc:
        return None
    ints = cols.ints
    req = cycle.req
    mask = cols.plain & (ints["free_pods"] > 0)
    if req.cpu:
        mask &= ints["free_cpu"] >= req.cpu
    if req.mem:
        mask &= ints["free_mem"] >= req.mem
    if req.eph:
        mask &= ints["free_eph"] >= req.eph
    for row in cols.odd:
        mask[row] = fw.check(cycle, nodes[row]) is None
    idx = np.flatnonzero(mask)
    if not len(idx):
        return None
    n = len(nodes)
    start = fw.next_start % n
    cut = int(np.searchsorted(idx, start))
    if cut:
        idx = np.concatenate((idx[cut:], idx[:cut]))
    if len(idx) >= want:
        idx = idx[:want]
        fw.next_start = (int(idx[-1]) + 1) % n
    else:
        fw.next_start = start
    if len(idx) == 1:
        return nodes[int(idx[0])].name
    totals = cols.resource_scores(cycle.req, nodes)[idx]
    if soft:
        totals += WEIGHT_SPREAD * _spread_scores(fw, cycle, idx, soft)
    best = totals.max()
    ties = np.flatnonzero(totals == best)
    pick = ties[fw.rng.randrange(len(ties))] if len(ties) > 1 else ties[0]
    return nodes[int(idx[pick])].name


def _resource_scores(cols: Columns, req: Requests) -> np.ndarray:
    """`plugins.resource_score` of every row: LeastAllocated, plus BalancedAllocation for a pod
    that requests cpu or memory (the same integer and float steps)."""
    ints = cols.ints
    cap_cpu, cap_mem = cols.alloc_cpu, cols.alloc_mem
    used_cpu = ints["nz_cpu"] + req.nz_cpu
    used_mem = ints["nz_mem"] + req.nz_mem
    least = (np.where(used_cpu > cap_cpu, 0, (cap_cpu - used_cpu) * MAX_SCORE // cap_cpu)
             + np.where(used_mem > cap_mem, 0, (cap_mem - used_mem) * MAX_SCORE // cap_mem)) // 2
    if req.cpu or req.mem:
        frac_cpu = np.minimum((ints["cpu"] + req.cpu) / cap_cpu, 1.0)
        frac_mem = np.minimum((ints["mem"] + req.mem) / cap_mem, 1.0)
        least += ((1 - np.abs(frac_cpu - frac_mem) / 2) * MAX_SCORE).astype(np.int64)
    return least


def _spread_scores(fw: Framework, cycle: Cycle, idx: np.ndarray, soft: list[Constraint]) -> np.ndarray:
    """`spread.ScoreState` for the system defaults (hostname, then zone), normalized."""
    cols = fw.columns
    host, zone = soft
    entry = fw.index.get(cycle.pod.namespace, host.selector, host.sel_key)
    zone_entry = entry if zone.sel_key == host.sel_key else fw.index.get(cycle.pod.namespace, zone.selector, zone.sel_key)
    codes = cols.zone[idx]
    present = np.flatnonzero(np.bincount(codes, minlength=len(cols.zones)))
    w_host = math.log(len(idx) + 2)
    w_zone = math.log(len(present) + 2)
    totals = zone_entry.by_value(zone.key, fw.snapshot)
    names = list(cols.zones)  # every node has a zone label here (`applies`)
    part = np.zeros(len(names), np.float64)
    for code in present.tolist():
        part[code] = totals.get(names[code], 0) * w_zone + zone.max_skew - 1
    raw = (cols.counts(entry)[idx] * w_host + (host.max_skew - 1) + part[codes] + 0.5).astype(np.int64)
    high = int(raw.max())
    if high == 0:
        return np.full(len(idx), MAX_SCORE, np.int64)
    return MAX_SCORE * (high + int(raw.min()) - raw) // high
