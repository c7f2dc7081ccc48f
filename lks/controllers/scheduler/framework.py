"""One scheduling cycle (upstream's `schedulePod`): pick a node for a pod, or say why none fits.

1. PreFilter: work out which filters and scores concern this pod (a pod without host ports
   skips NodePorts, one without affinity terms in a cluster without any skips InterPodAffinity,
   and so on), and the candidate nodes (a `metadata.name` node affinity pins them).
2. Filter: walk the nodes round-robin from where the last cycle stopped, and stop once enough
   feasible nodes are found (`percentageOfNodesToScore`: adaptive 50% - nodes/125, at least 5%
   and 100 nodes), recording each rejected node's status.
3. Score the feasible nodes, normalize per plugin, sum with the profile's weights and pick the
   best, ties broken at random. Resource scores are cached per node and pod shape.

No node: a `FitError` whose `message()` is upstream's `FitError.Error()`. Preemption
(`lks.controllers.scheduler.preemption`) re-runs the filters of one node through `check`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from lks.controllers.scheduler import affinity, columns, plugins, spread, status, terms
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from lks.kube import selectors

MIN_FEASIBLE = 100  # minFeasibleNodesToFind
MIN_PERCENTAGE = 5  # minFeasibleNodesPercentageToFind
NO_NODES = "no nodes available to schedule pods"
CONFLICT = "pod affinity terms conflict"
_CHUNK = 64  # nodes filtered per comprehension before checking whether enough fit
_NONE = -(1 << 62)  # a request of nothing: every node has room for it

Filter = Callable[["Cycle", NodeInfo], "status.Status | None"]


class Cycle:
    """Per-pod state for one attempt (upstream's CycleState)."""

    def __init__(self, pod: PodInfo, nominated: dict[str, list[PodInfo]]):
        spec = pod.spec
        self.pod = pod
        self.req = pod.req
        self.tolerations: list[dict] = [t for t in spec.get("tolerations") or () if isinstance(t, dict)]
        self.tolerates_unschedulable = terms.tolerated(self.tolerations, plugins.UNSCHEDULABLE_TAINT)
        self.prefer_tolerations = plugins.prefer_tolerations(self.tolerations)
        self.node_affinity = terms.NodeAffinity(spec)
        self.pref_node_terms = terms.preferred_node_terms(spec)
        self.nominated = nominated  # node -> pods nominated there that this pod must leave room for
        self.pre: list[Filter] = []  # filters before NodeResourcesFit
        self.post: list[Filter] = []  # filters after it
        self.spread_filter: spread.FilterState | None = None
        self.affinity_filter: affinity.FilterState | None = None


class FitError(Exception):
    """No node fits: the statuses of the rejected nodes, for the message and for preemption."""

    def __init__(self, pod: PodInfo, num_nodes: int, statuses: dict[str, status.Status],
                 absent: status.Status | None = None, prefilter: str = ""):
        super().__init__(pod.key)
        self.pod = pod
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.absent = absent  # the status of nodes not evaluated (outside a PreFilter result)
        self.prefilter = prefilter
        self.postfilter = ""

    def plugins(self) -> frozenset[str]:
        found = {s.plugin for s in self.statuses.values()}
        if self.absent is not None:
            found.add(self.absent.plugin)
        return frozenset(found)

    def message(self) -> str:
        """`FitError.Error()`: "0/X nodes are available: <PreFilter>. <Filter>. <PostFilter>"."""
        if self.num_nodes == 0 and not self.statuses:
            return NO_NODES
        msg = f"0/{self.num_nodes} nodes are available:"
        if self.prefilter:
            msg += f" {self.prefilter}."
        else:
            counts: dict[str, int] = {}
            for st in self.statuses.values():
                for reason in st.reasons:
                    counts[reason] = counts.get(reason, 0) + 1
            if self.absent is not None and len(self.statuses) < self.num_nodes:
                for reason in self.absent.reasons:
                    counts[reason] = counts.get(reason, 0) + self.num_nodes - len(self.statuses)
            histogram = sorted(f"{n} {reason}" for reason, n in counts.items())
            if histogram:
                msg += f" {', '.join(histogram)}."
        if self.postfilter:
            msg += f" {self.postfilter}"
        return msg


class Framework:
    def __init__(self, snapshot: Snapshot, *, ns_labels: terms.NamespaceLabels,
                 default_selector: Callable[[PodInfo], selectors.LabelSelector | None],
                 percentage: int = 0, rng: random.Random | None = None):
        """`percentage` is `percentageOfNodesToScore` (0: upstream's adaptive default)."""
        self.snapshot = snapshot
        self.index = spread.SpreadIndex(snapshot)
        self.ns_labels = ns_labels
        self.default_selector = default_selector
        self.percentage = percentage
        self.rng = rng or random.Random()
        self.next_start = 0
        self._shapes: dict[tuple, tuple] = {}
        self.columns = columns.Columns(snapshot)

    def feasible_to_find(self, num_nodes: int) -> int:
        """`numFeasibleNodesToFind`."""
        if num_nodes < MIN_FEASIBLE:
            return num_nodes
        percentage = self.percentage or max(50 - num_nodes // 125, MIN_PERCENTAGE)
        return max(num_nodes * percentage // 100, MIN_FEASIBLE)

    # -- prefilter

    def prepare(self, pod: PodInfo, nominated: dict[str, list[PodInfo]]) -> Cycle:
        cycle = Cycle(pod, nominated)
        if cycle.node_affinity:
            cycle.pre.append(plugins.node_affinity)
        if pod.ports:
            cycle.pre.append(plugins.node_ports)
        hard = spread.constraints(pod, "DoNotSchedule")
        if hard:
            cycle.spread_filter = spread.FilterState(cycle, self.index, hard)
            cycle.post.append(cycle.spread_filter.filter)
        if affinity.needed(pod, self.snapshot):
            cycle.affinity_filter = affinity.FilterState(cycle, self.snapshot, self.ns_labels)
            cycle.post.append(cycle.affinity_filter.filter)
        return cycle

    # -- filter

    def check(self, cycle: Cycle, node: NodeInfo) -> status.Status | None:
        """Every filter on one node, stopping at the first that rejects it."""
        if not node.plain:
            st = plugins.node_unschedulable(cycle, node) or plugins.taint_toleration(cycle, node)
            if st is not None:
                return st
        for f in cycle.pre:
            st = f(cycle, node)
            if st is not None:
                return st
        nominated = cycle.nominated.get(node.name)
        if nominated or not plugins.fits(cycle.req, node):
            st = plugins.fit(cycle.req, node, nominated)
            if st is not None:
                return st
        for f in cycle.post:
            st = f(cycle, node)
            if st is not None:
                return st
        return None

    def find_feasible(self, cycle: Cycle, nodes: list[NodeInfo], want: int) -> tuple[list[NodeInfo], dict]:
        """Filter `nodes` round-robin from `next_start` until `want` pass; returns (feasible,
        statuses of the rejected). The statuses are only gathered when nothing fits."""
        n = len(nodes)
        if not n:
            return [], {}
        start = self.next_start % n
        rotated = nodes[start:] + nodes[:start] if start else nodes
        req = cycle.req
        if not cycle.pre and not cycle.post and not cycle.nominated and not req.scalars:
            feasible, processed = self._fast(cycle, rotated, want)
            self.next_start = (start + processed) % n
            if feasible:
                return feasible, {}
        feasible = []
        statuses: dict[str, status.Status] = {}
        check = self.check
        processed = 0
        for node in rotated:
            processed += 1
            st = check(cycle, node)
            if st is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = st
        self.next_start = (start + processed) % n
        return feasible, statuses

    def _fast(self, cycle: Cycle, rotated: list[NodeInfo], want: int) -> tuple[list[NodeInfo], int]:
        """The filters for a pod that asks nothing beyond resources, in comprehensions over
        chunks of nodes: NodeResourcesFit inline on plain nodes, everything on the others."""
        req = cycle.req
        cpu, mem, eph = req.cpu or _NONE, req.mem or _NONE, req.eph or _NONE
        check = self.check
        feasible: list[NodeInfo] = []
        for lo in range(0, len(rotated), _CHUNK):
            chunk = rotated[lo:lo + _CHUNK]
            got = [x for x in chunk if (x.plain and x.free_pods > 0 and x.free_cpu >= cpu and x.free_mem >= mem
                                        and x.free_eph >= eph) or (not x.plain and check(cycle, x) is None)]
            if len(feasible) + len(got) >= want:
                got = got[:want - len(feasible)]
                feasible += got
                return feasible, lo + chunk.index(got[-1]) + 1
            feasible += got
        return feasible, len(rotated)

    # -- the cycle

    def schedule(self, pod: PodInfo, nominated: dict[str, list[PodInfo]], nominated_node: str | None = None) -> str:
        """The chosen node's name; raises FitError. A pod nominated to a node (by an earlier
        preemption) takes it if it fits there now (`evaluateNominatedNode`)."""
        nodes = self.snapshot.node_list()
        if not nodes:
            raise FitError(pod, 0, {})
        cycle = self.prepare(pod, nominated)
        nominated_node = nominated_node or pod.nominated
        if nominated_node:
            info = self.snapshot.nodes.get(nominated_node)
            if info is not None and info.obj is not None and self.check(cycle, info) is None:
                return info.name
        candidates = nodes
        absent = None
        pinned = cycle.node_affinity.names
        if pinned is not None:
            if not pinned:
                raise FitError(pod, len(nodes), {}, prefilter=CONFLICT)
            candidates = [n for n in (self.snapshot.nodes.get(name) for name in sorted(pinned))
                          if n is not None and n.obj is not None]
            absent = status.unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]", "NodeAffinity")
        if candidates is nodes:
            want = self.feasible_to_find(len(nodes))
            soft = self._soft_spread(pod)
            if columns.applies(self, cycle, soft):
                chosen = columns.schedule(self, cycle, nodes, want, soft)
                if chosen is not None:
                    return chosen
            feasible, statuses = self.find_feasible(cycle, nodes, want)
        else:  # a pinned pod (a DaemonSet's) leaves the round-robin where it was
            start, self.next_start = self.next_start, 0
            feasible, statuses = self.find_feasible(cycle, candidates, len(candidates))
            self.next_start = start
        if not feasible:
            raise FitError(pod, len(nodes), statuses, absent)
        if len(feasible) == 1:
            return feasible[0].name
        totals = self.score(cycle, feasible)
        best = max(totals)
        ties = totals.count(best)
        pos = totals.index(best)
        for _ in range(self.rng.randrange(ties) if ties > 1 else 0):  # a random one of the best
            pos = totals.index(best, pos + 1)
        return feasible[pos].name

    # -- score

    def score(self, cycle: Cycle, feasible: list[NodeInfo]) -> list[int]:
        """The weighted sum of every score plugin's normalized score, per feasible node."""
        pod = cycle.pod
        req = cycle.req
        balanced = bool(req.cpu or req.mem)  # BalancedAllocation skips best-effort pods
        key = (req.cpu, req.mem, req.nz_cpu, req.nz_mem, balanced)
        shape = self._shapes.setdefault(key, key)  # interned, so the cache check is `is`
        if len(self._shapes) > 1024:
            self._shapes.clear()
        totals = [n.rscore if n.rshape is shape else -1 for n in feasible]
        if -1 in totals:
            for i, node in enumerate(feasible):
                if totals[i] == -1:
                    totals[i] = node.rscore = plugins.resource_score(req, node, balanced)
                    node.rshape = shape
        if self.snapshot.soft_tainted:
            _add(totals, plugins.taint_score(cycle, feasible), plugins.WEIGHT_TAINT)
        if cycle.pref_node_terms:
            _add(totals, plugins.node_affinity_score(cycle, feasible), plugins.WEIGHT_NODE_AFFINITY)
        soft = self._soft_spread(pod)
        if soft:
            state = spread.ScoreState(cycle, self.index, soft, feasible,
                                      require_all=bool(pod.spec.get("topologySpreadConstraints")))
            state.add_normalized(totals, state.raw(feasible), plugins.WEIGHT_SPREAD)
        if affinity.score_needed(pod, self.snapshot):
            astate = affinity.ScoreState(cycle, self.snapshot, self.ns_labels)
            if astate.scores:
                _add(totals, astate.normalize(astate.raw(feasible)), plugins.WEIGHT_INTERPOD)
        return totals


    def _soft_spread(self, pod: PodInfo) -> list[spread.Constraint]:
        """The ScheduleAnyway constraints: the pod's own, or else the system defaults."""
        if pod.spec.get("topologySpreadConstraints"):
            return spread.constraints(pod, "ScheduleAnyway")
        return spread.system_defaults(pod, self.default_selector)


def _add(totals: list[int], scores: list[int], weight: int) -> None:
    totals[:] = [t + s * weight for t, s in zip(totals, scores, strict=True)]


def nominated_for(pod: PodInfo, nominated: dict[str, dict[str, PodInfo]]) -> dict[str, list[PodInfo]]:
    """The pods nominated to each node that `pod` must leave room for: those of no lower
    priority (upstream's `addGENominatedPods`), other than itself."""
    out: dict[str, list[PodInfo]] = {}
    for node, pods in nominated.items():
        keep = [p for p in pods.values() if p.priority >= pod.priority and p.key != pod.key]
        if keep:
            out[node] = keep
    return out
