"""DefaultPreemption (upstream's PostFilter plugin and `preemption.Evaluator`): when a pod fits
nowhere, find a node where evicting pods of lower priority would make it fit, and choose the
victims there.

Only nodes rejected with `Unschedulable` are candidates (`UnschedulableAndUnresolvable` ones,
such as a taint or a request bigger than the node, cannot be helped). On each, every lower
priority pod is removed and the filters re-run; if the pod then fits, victims are reprieved
one by one, most important first and PodDisruptionBudget-protected ones before the others,
as long as it still fits. The node whose victims hurt least wins (`pickOneNodeForPreemption`).

The caller (`lks.controllers.scheduler.scheduler`) deletes the victims, with their graceful
termination, and nominates the node in `status.nominatedNodeName`; the pod is scheduled there
once the victims are gone. Inter-pod affinity and topology spread counts are not re-counted
without the victims (upstream does, through PreFilter extensions).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lks.controllers.scheduler import framework, status
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo
from lks.kube import selectors

Obj = dict[str, Any]
MIN_CANDIDATES_PERCENTAGE = 10  # DefaultPreemptionArgs.minCandidateNodesPercentage
MIN_CANDIDATES = 100  # minCandidateNodesAbsolute
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo] = field(default_factory=list)
    violations: int = 0


@dataclass
class Outcome:
    node: str | None  # the node to nominate; "": clear any nomination; None: leave it as it is
    victims: list[PodInfo]
    message: str  # PostFilterMsg ("" on success)


def terminating_by_preemption(pod: PodInfo) -> bool:
    if not pod.terminating:
        return False
    for c in (pod.obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == "DisruptionTarget":
            return c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler"
    return False


class Budget:
    """A PodDisruptionBudget as preemption reads it."""

    def __init__(self, pdb: Obj):
        self.namespace = pdb["metadata"].get("namespace")
        sel = (pdb.get("spec") or {}).get("selector")
        self.selector = selectors.from_label_selector_object(sel) if sel else None
        st = pdb.get("status") or {}
        self.allowed = int(st.get("disruptionsAllowed") or 0)
        self.disrupted = set((st.get("disruptedPods") or {}).keys())


def split_by_budgets(pods: list[PodInfo], budgets: list[Budget]) -> tuple[list[PodInfo], list[PodInfo]]:
    """`filterPodsWithPDBViolation`: (violating, non-violating), order kept."""
    allowed = [b.allowed for b in budgets]
    violating, fine = [], []
    for pod in pods:
        broken = False
        if pod.labels:
            for i, b in enumerate(budgets):
                if b.namespace != pod.namespace or not b.selector or not b.selector.matches(pod.labels):
                    continue
                if pod.name in b.disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    broken = True
        (violating if broken else fine).append(pod)
    return violating, fine


class Evaluator:
    def __init__(self, fw: framework.Framework, *, budgets: Callable[[], list[Budget]],
                 policy: Callable[[PodInfo], str] | None = None, rng: random.Random | None = None):
        """`policy` gives a pod's preemptionPolicy (None: its spec's, for tests)."""
        self.fw = fw
        self.budgets = budgets
        self.policy = policy or (lambda pod: pod.spec.get("preemptionPolicy") or "PreemptLowerPriority")
        self.rng = rng or random.Random()

    def preempt(self, pod: PodInfo, err: framework.FitError, nominated: dict[str, list[PodInfo]]) -> Outcome:
        if self.policy(pod) == "Never":
            return Outcome(None, [], NEVER)
        snapshot = self.fw.snapshot
        if pod.nominated:
            st = err.statuses.get(pod.nominated)
            info = snapshot.nodes.get(pod.nominated)
            if (st is None or st.code != status.UNRESOLVABLE) and info is not None and any(
                    p.priority < pod.priority and terminating_by_preemption(p) for p in info.pods.values()):
                return Outcome(None, [], TERMINATING)
        nodes = snapshot.node_list()
        potential = [n for n in nodes if (st := err.statuses.get(n.name)) is not None
                     and st.code == status.UNSCHEDULABLE]
        if not potential:
            return Outcome("", [], self._message(pod, len(nodes), {}))
        if not snapshot.any_below(pod.priority):  # nothing anywhere to preempt: skip the dry runs
            return Outcome("", [], self._message(pod, len(nodes), {n.name: status.NO_VICTIMS for n in potential}))
        cycle = self.fw.prepare(pod, nominated)
        budgets = self.budgets()
        want = min(max(len(potential) * MIN_CANDIDATES_PERCENTAGE // 100, MIN_CANDIDATES), len(potential))
        offset = self.rng.randrange(len(potential))
        candidates: list[Candidate] = []
        statuses: dict[str, status.Status] = {}
        for i in range(len(potential)):
            node = potential[(offset + i) % len(potential)]
            found = self._victims(cycle, pod, node, budgets)
            if isinstance(found, status.Status):
                statuses[node.name] = found
                continue
            candidates.append(found)
            if len(candidates) >= want and any(c.violations == 0 for c in candidates):
                break
        if not candidates:
            return Outcome("", [], self._message(pod, len(nodes), statuses))
        best = pick(candidates)
        return Outcome(best.node, best.victims, "")

    def _message(self, pod: PodInfo, num_nodes: int, statuses: dict[str, status.Status]) -> str:
        err = framework.FitError(pod, num_nodes, statuses, absent=status.NOT_HELPFUL)
        return "preemption: " + err.message()

    def _victims(self, cycle: framework.Cycle, pod: PodInfo, node: NodeInfo,
                 budgets: list[Budget]) -> Candidate | status.Status:
        """`SelectVictimsOnNode`, simulated on the node itself and undone before returning."""
        potential = [p for p in node.pods.values() if p.priority < pod.priority]
        if not potential:
            return status.NO_VICTIMS
        for p in potential:
            node.remove(p)
        try:
            st = self.fw.check(cycle, node)
            if st is not None:
                return st
            potential.sort(key=_importance)
            violating, fine = split_by_budgets(potential, budgets)
            victims: list[PodInfo] = []
            violations = 0
            for group, counts in ((violating, True), (fine, False)):
                for p in group:
                    node.add(p)
                    if self.fw.check(cycle, node) is not None:
                        node.remove(p)
                        victims.append(p)
                        violations += counts
            if violating and fine:
                victims.sort(key=_importance)
            return Candidate(node.name, victims, violations)
        finally:
            for p in potential:
                if p.key not in node.pods:
                    node.add(p)


def _importance(p: PodInfo) -> tuple:
    """Most important first: higher priority, then earlier start."""
    return (-p.priority, p.created)


def pick(candidates: list[Candidate]) -> Candidate:
    """`pickOneNodeForPreemption`: fewest budget violations, lowest highest victim priority,
    smallest priority sum, fewest victims, latest start of the highest priority victims."""
    for c in candidates:
        if not c.victims:
            return c

    def highest(c: Candidate) -> int:
        return max(v.priority for v in c.victims)

    def earliest_start(c: Candidate) -> str:
        top = highest(c)
        return min(v.created for v in c.victims if v.priority == top)

    scores: list[Callable[[Candidate], Any]] = [
        lambda c: -c.violations,
        lambda c: -highest(c),
        lambda c: -sum(v.priority + 2**31 for v in c.victims),
        lambda c: -len(c.victims),
        earliest_start,
    ]
    left = candidates
    for fn in scores:
        best = max(fn(c) for c in left)
        left = [c for c in left if fn(c) == best]
        if len(left) == 1:
            break
    return left[0]
