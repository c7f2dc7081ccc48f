"""Scale-down (upstream's planner): which nodes of the autoscaled groups are unneeded, and
which of those may go now.

A node is unneeded when its utilization (the larger of requested CPU and memory over
allocatable; DaemonSet and mirror pods counted unless `ignore-daemonsets-utilization`) is
below `scale-down-utilization-threshold` (or it is not Ready), it is not annotated
`cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"`, and every pod on it can move:
none is blocked (`blocker`: PodDisruptionBudgets, kube-system pods, pods without a controller,
local storage, `safe-to-evict: "false"`), each budget's allowed disruptions are not spent by the pods of the
nodes before it, and each pod fits another node, with the places found memorised so two nodes
do not count on the same room. A pool's own profile keys (`Group.settings`) decide for its
nodes. `lks.autoscaler.autoscaler` keeps how long each has been unneeded and removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lks.autoscaler.groups import Group
from lks.autoscaler.profile import Profile
from lks.autoscaler.simulator import MIRROR_ANNOTATION, Picture, is_daemon, owner_kind
from lks.controllers.scheduler import preemption
from lks.controllers.scheduler.snapshot import PodInfo

Obj = dict[str, Any]
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
TAINT = "ToBeDeletedByClusterAutoscaler"


def covers(budget: preemption.Budget, pod: PodInfo) -> bool:
    return budget.namespace == pod.namespace and budget.selector is not None and budget.selector.matches(pod.labels)


@dataclass
class Verdict:
    node: str
    group: Group
    utilization: float
    pods: list[PodInfo] = field(default_factory=list)  # what must move (empty: an empty node)
    daemons: list[PodInfo] = field(default_factory=list)  # DaemonSet pods, which go with the node
    reason: str | None = None  # why not unneeded (None: unneeded)
    ready: bool = True  # an unready node goes whatever its utilization, after scale-down-unready-time
    blocking: str | None = None  # the pod that blocks it
    resource: str = "cpu"  # the resource whose share is `utilization`
    settings: Profile = field(default_factory=Profile)  # the profile its pool's nodes follow


def dominant(picture: Picture, name: str, settings: Profile) -> tuple[float, str]:
    """The node's utilization and the resource it is of (the larger share, as upstream's)."""
    node = picture.snapshot.nodes[name]
    cpu, mem = node.cpu, node.mem
    if settings.ignore_daemonsets_utilization:
        for pod in node.pods.values():
            if is_daemon(pod.obj):
                cpu -= pod.req.cpu
                mem -= pod.req.mem
    return max((cpu / node.alloc.cpu if node.alloc.cpu else 0.0, "cpu"),
               (mem / node.alloc.mem if node.alloc.mem else 0.0, "memory"), key=lambda share: share[0])


def _ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


def _local_storage(pod: PodInfo) -> bool:
    return any("hostPath" in v or ("emptyDir" in v and (v["emptyDir"] or {}).get("medium") != "Memory")
               for v in pod.spec.get("volumes") or ())


def blocker(pod: PodInfo, budgets: list[preemption.Budget], settings: Profile) -> str | None:
    """Why `pod` keeps its node (upstream's drainability rules), or None."""
    annotations = pod.obj["metadata"].get("annotations") or {}
    safe = annotations.get(SAFE_TO_EVICT)
    if safe == "false":
        return "NotSafeToEvictAnnotation"
    for budget in budgets:
        if covers(budget, pod) and budget.allowed < 1:
            return "NotEnoughPdb"
    if safe == "true":
        return None
    if owner_kind(pod.obj) is None:
        return "NotReplicated"
    if settings.skip_nodes_with_system_pods and pod.namespace == "kube-system" \
            and not any(covers(b, pod) for b in budgets):
        return "UnmovableKubeSystemPod"
    if settings.skip_nodes_with_local_storage and _local_storage(pod):
        return "LocalStorageRequested"
    return None


def movable(pod: PodInfo) -> bool:
    """Whether the drain moves `pod` (DaemonSet and mirror pods stay and go with the node)."""
    return not is_daemon(pod.obj) and MIRROR_ANNOTATION not in (pod.obj["metadata"].get("annotations") or {})


def find_unneeded(picture: Picture, groups: list[Group], budgets: list[preemption.Budget], settings: Profile,
                  *, deleting: set[str]) -> list[Verdict]:
    """A verdict on every node of the groups; the pods of the unneeded ones are placed on other
    nodes in `picture` (so each node's verdict counts the room the ones before it took)."""
    out = []
    gone = set(deleting)
    remaining = [b.allowed for b in budgets]  # disruptions each budget has left (upstream's PDB tracker)
    for group in groups:
        own = group.settings(settings)
        for name in group.nodes:
            node = picture.snapshot.nodes.get(name)
            if node is None or node.obj is None or name in deleting:
                continue
            annotations = node.obj["metadata"].get("annotations") or {}
            util, resource = dominant(picture, name, own)
            verdict = Verdict(name, group, util, ready=_ready(node.obj), resource=resource, settings=own)
            out.append(verdict)
            if annotations.get(SCALE_DOWN_DISABLED) == "true":
                verdict.reason = "ScaleDownDisabledAnnotation"
                continue
            if verdict.ready and util >= own.scale_down_utilization_threshold:
                verdict.reason = "NotUnderutilized"
                continue
            pods = [p for p in node.pods.values() if movable(p)]
            need = [0] * len(budgets)
            for pod in pods:
                why = blocker(pod, budgets, own)
                for i, budget in enumerate(budgets):
                    if why is None and covers(budget, pod):
                        need[i] += 1
                        if need[i] > remaining[i]:  # the budget's disruptions are spent on other pods
                            why = "NotEnoughPdb"
                if why is not None:
                    verdict.reason, verdict.blocking = why, pod.key
                    break
            if verdict.reason is not None:
                continue
            moved: list[tuple[PodInfo, str]] = []
            for pod in pods:
                placed = picture.place_anywhere(pod, gone | {name})
                if placed is None:
                    verdict.reason, verdict.blocking = "NoPlaceToMovePods", pod.key
                    break
                moved.append((pod, placed))
            if verdict.reason is not None:
                for pod, _placed in moved:  # back where it was: this node stays
                    picture.snapshot.assume(pod, name)
                continue
            verdict.pods = pods
            verdict.daemons = [p for p in node.pods.values() if owner_kind(p.obj) == "DaemonSet"]
            gone.add(name)
            remaining = [r - n for r, n in zip(remaining, need, strict=True)]
    return out
