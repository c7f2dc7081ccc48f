"""The node-local filters and scores of the default profile, worded and weighted as upstream:

filters (in upstream's order) NodeUnschedulable, TaintToleration (NoSchedule, NoExecute),
NodeAffinity (`nodeSelector` and required terms), NodePorts, NodeResourcesFit (cpu, memory,
ephemeral-storage, extended resources and the pod count against `allocatable.pods`);

scores NodeResourcesFit (LeastAllocated over cpu and memory, weight 1),
NodeResourcesBalancedAllocation (weight 1), TaintToleration (PreferNoSchedule, weight 3),
NodeAffinity (preferred terms, weight 2). PodTopologySpread and InterPodAffinity, which look
beyond one node, live in `spread` and `affinity`; `framework` runs them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.controllers.scheduler import status, terms
from lks.controllers.scheduler.resources import Requests
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo

if TYPE_CHECKING:
    from lks.controllers.scheduler.framework import Cycle

MAX_SCORE = 100
WEIGHT_TAINT, WEIGHT_NODE_AFFINITY, WEIGHT_SPREAD, WEIGHT_INTERPOD = 3, 2, 2, 2
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}

_fit_statuses: dict[tuple[int, tuple[str, ...]], status.Status] = {}


# -- filters ---------------------------------------------------------------------------------------------

def node_unschedulable(cycle: Cycle, node: NodeInfo) -> status.Status | None:
    if node.unschedulable and not cycle.tolerates_unschedulable:
        return status.NODE_UNSCHEDULABLE
    return None


def taint_toleration(cycle: Cycle, node: NodeInfo) -> status.Status | None:
    for taint in node.hard_taints:
        if not terms.tolerated(cycle.tolerations, taint):
            return status.UNTOLERATED_TAINT
    return None


def node_affinity(cycle: Cycle, node: NodeInfo) -> status.Status | None:
    if not cycle.node_affinity.matches(node.labels, node.name):
        return status.NODE_AFFINITY
    return None


def _conflict(port: tuple[str, str, int], used: dict[tuple[str, str, int], int]) -> bool:
    """`HostPortInfo.CheckConflict`: 0.0.0.0 clashes with every address of the same port."""
    ip, proto, number = port
    if ip == "0.0.0.0":
        return any(p[1] == proto and p[2] == number for p in used)
    return (ip, proto, number) in used or ("0.0.0.0", proto, number) in used


def node_ports(cycle: Cycle, node: NodeInfo) -> status.Status | None:
    if node.ports and any(_conflict(p, node.ports) for p in cycle.pod.ports):
        return status.NODE_PORTS
    nominated = cycle.nominated.get(node.name)
    if nominated:
        used = {p: 1 for other in nominated for p in other.ports}
        if any(_conflict(p, used) for p in cycle.pod.ports):
            return status.NODE_PORTS
    return None


def fits(req: Requests, node: NodeInfo) -> bool:
    """The fast yes of NodeResourcesFit (no allocation; `fit` words a no)."""
    alloc = node.alloc
    if len(node.pods) >= alloc.pods:
        return False
    if (req.cpu and req.cpu > alloc.cpu - node.cpu) or (req.mem and req.mem > alloc.mem - node.mem) \
            or (req.eph and req.eph > alloc.eph - node.eph):
        return False
    if req.scalars:
        for name, want in req.scalars.items():
            if want > alloc.scalars.get(name, 0) - node.scalars.get(name, 0):
                return False
    return True


def fit(req: Requests, node: NodeInfo, nominated: list[PodInfo] | None = None) -> status.Status | None:
    """NodeResourcesFit's filter with every failure reason; UnschedulableAndUnresolvable when a
    request exceeds what the node has at all (preemption cannot help there)."""
    alloc = node.alloc
    pods, cpu, mem, eph = len(node.pods), node.cpu, node.mem, node.eph
    scalars = node.scalars
    if nominated:
        scalars = dict(scalars)
        for other in nominated:
            pods += 1
            cpu, mem, eph = cpu + other.req.cpu, mem + other.req.mem, eph + other.req.eph
            for k, v in (other.req.scalars or {}).items():
                scalars[k] = scalars.get(k, 0) + v
    reasons: list[str] = []
    code = status.UNSCHEDULABLE
    if pods + 1 > alloc.pods:
        reasons.append("Too many pods")
    if not req.empty():
        for name, want, have, used in (("cpu", req.cpu, alloc.cpu, cpu), ("memory", req.mem, alloc.mem, mem),
                                       ("ephemeral-storage", req.eph, alloc.eph, eph)):
            if want > 0 and want > have - used:
                reasons.append(f"Insufficient {name}")
                if want > have:
                    code = status.UNRESOLVABLE
        for name, want in (req.scalars or {}).items():
            have = alloc.scalars.get(name, 0)
            if want > have - scalars.get(name, 0):
                reasons.append(f"Insufficient {name}")
                if want > have:
                    code = status.UNRESOLVABLE
    if not reasons:
        return None
    key = (code, tuple(reasons))
    st = _fit_statuses.get(key)
    if st is None:
        st = _fit_statuses[key] = status.Status(code, key[1], "NodeResourcesFit")
    return st


# -- scores ----------------------------------------------------------------------------------------------

def _least(requested: int, capacity: int) -> int:
    if requested > capacity:
        return 0
    return (capacity - requested) * MAX_SCORE // capacity


def resource_score(req: Requests, node: NodeInfo, balanced: bool) -> int:
    """LeastAllocated (non-zero requests) plus BalancedAllocation (actual requests), weight 1
    each; cached per node and pod shape by the framework."""
    alloc = node.alloc
    total, weights = 0, 0
    if alloc.cpu:
        total += _least(node.nz_cpu + req.nz_cpu, alloc.cpu)
        weights += 1
    if alloc.mem:
        total += _least(node.nz_mem + req.nz_mem, alloc.mem)
        weights += 1
    score = total // weights if weights else 0
    if balanced:
        fractions = []
        if alloc.cpu:
            fractions.append(min((node.cpu + req.cpu) / alloc.cpu, 1.0))
        if alloc.mem:
            fractions.append(min((node.mem + req.mem) / alloc.mem, 1.0))
        std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
        score += int((1 - std) * MAX_SCORE)
    return score


def normalize(raw: list[int], reverse: bool) -> list[int]:
    """`DefaultNormalizeScore`."""
    high = max(raw) if raw else 0
    if high == 0:
        return [MAX_SCORE if reverse else 0] * len(raw)
    out = [MAX_SCORE * s // high for s in raw]
    return [MAX_SCORE - s for s in out] if reverse else out


def prefer_tolerations(tolerations: list[dict]) -> list[dict]:
    return [t for t in tolerations if t.get("effect") in (None, "", "PreferNoSchedule")]


def taint_score(cycle: Cycle, nodes: list[NodeInfo]) -> list[int]:
    tolerations = cycle.prefer_tolerations
    raw = [sum(1 for t in node.soft_taints if not terms.tolerated(tolerations, t)) for node in nodes]
    return normalize(raw, True)


def node_affinity_score(cycle: Cycle, nodes: list[NodeInfo]) -> list[int]:
    prefs = cycle.pref_node_terms
    raw = [sum(w for w, term in prefs if term.matches(node.labels, node.name)) for node in nodes]
    return normalize(raw, False)
