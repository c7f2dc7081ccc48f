"""Scale-up (upstream's `ScaleUp`): pending pods that the scheduler marked unschedulable, less
the ones that fit an existing node after all, are simulated on a template node of each
autoscaled group; a binpacking estimate says how many new nodes each group needs for the pods
it can take (nodes on their way count as nodes: `add_upcoming`); the expander (`lks.autoscaler.expander`) picks one option; with
`balance-similar-node-groups` the increase is split across groups alike; `maxCount` caps it.

The result says which groups grow to what size, which pods triggered it and, per pod left out,
the reasons each group gave (the `NotTriggerScaleUp` event's text). `lks.autoscaler.autoscaler`
applies it through the management plane.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lks.autoscaler import expander, simulator
from lks.autoscaler.groups import Group
from lks.autoscaler.profile import Profile
from lks.autoscaler.simulator import Picture, TemplateNodes
from lks.controllers.scheduler.snapshot import PodInfo
from lks.controllers.scheduler.status import Status
from lks.nodes.template import POOL_LABEL

MAX_SIZE_REACHED = "max node group size reached"
IN_BACKOFF = "in backoff after failed scale-up"
MIN_PRIORITY = -10  # pods below it never trigger a scale-up (-10 is for overprovisioning pods)
# labels that differ between otherwise similar groups (upstream's ignored labels, AKS's pool ones)
_SIMILAR_IGNORED = {POOL_LABEL, "agentpool", "kubernetes.azure.com/nodepool-type", "topology.kubernetes.io/zone",
                    "failure-domain.beta.kubernetes.io/zone", "topology.disk.csi.azure.com/zone",
                    "kubernetes.azure.com/node-image-version", "kubernetes.azure.com/role"}


@dataclass
class Option:
    """Growing one group by `count` nodes would schedule `pods`."""

    group: Group
    count: int
    pods: list[PodInfo]
    waste: float = 0.0  # least-waste's score: idle CPU share + idle memory share after the scale-up


@dataclass
class Result:
    increases: dict[str, tuple[int, int]] = field(default_factory=dict)  # group name -> (from, to)
    triggered: list[PodInfo] = field(default_factory=list)
    # pod key -> reason -> number of groups giving it
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    by_group: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # pod key -> group -> its reasons
    remaining: list[PodInfo] = field(default_factory=list)  # pods no scale-up helps
    needed: bool = False  # some pod was pending (ScaleUp condition Needed / NotNeeded)


def add_upcoming(picture: Picture, groups: list[Group]) -> int:
    """Nodes on their way (a group's target less its registered Nodes) join the picture as
    template nodes with their DaemonSet pods, so that pending pods they will take count as
    schedulable and trigger no second scale-up (upstream's addUpcomingNodesToClusterSnapshot).
    They are not in any group's `nodes`: never scale-down candidates. How many were added."""
    added = 0
    for group in groups:
        for i in range(group.target - len(group.nodes)):
            name = f"upcoming-{group.id}-{i}"
            picture.snapshot.set_node(simulator.template_node(group.template, name))
            for ds in picture.daemon_pods(name, picture.fw, picture.snapshot.nodes[name]):
                picture.snapshot.set_pod(ds)
            added += 1
    return added


def pending(picture: Picture, *, now: float, settings: Profile, created: dict[str, float]) -> list[PodInfo]:
    """Pods that trigger a scale-up: old enough, of high enough priority, and fitting no
    existing node even once the pods before them are placed (upstream's filterOutSchedulable)."""
    out = []
    hopeless: set[tuple] = set()  # equivalence groups that fit no existing node
    for pod in sorted(picture.pending, key=lambda p: -p.priority):
        if pod.priority < MIN_PRIORITY or now - created.get(pod.key, 0.0) < settings.new_pod_scale_up_delay:
            continue
        key = simulator.equivalence(pod)
        if key is not None and key in hopeless:
            out.append(pod)
        elif picture.place_anywhere(pod, set()) is None:
            out.append(pod)
            if key is not None:
                hopeless.add(key)
    return out


def _size(pod: PodInfo) -> tuple[int, int]:
    return pod.req.cpu, pod.req.mem


def estimate(picture: Picture, group: Group, pods: list[PodInfo], limit: int,
             reasons: dict[str, dict[str, int]]) -> Option | None:
    """Binpack `pods` onto new nodes of `group` (first fit, the newest node first, biggest pods
    first), at most `limit` nodes; the pods that fit no template node record their reasons."""
    nodes = TemplateNodes(picture, group.template)
    empty = nodes.add()  # the empty template: does the pod fit a new node at all?
    placed: list[PodInfo] = []
    opened = [empty]
    used = 0
    start: dict[tuple, int] = {}  # equivalence group -> first new node that may still take one
    refused: dict[tuple, Status] = {}  # equivalence group -> why it fits no new node at all
    for pod in sorted(pods, key=_size, reverse=True):
        key = simulator.equivalence(pod)
        st = refused.get(key) if key is not None else None
        if st is None:
            cycle = nodes.prepare(pod)
            first = start.get(key, 0) if key is not None else 0
            for i in range(first, used):
                if nodes.check_prepared(cycle, opened[i]) is None:
                    nodes.place(pod, opened[i])
                    placed.append(pod)
                    break
                if key is not None:
                    start[key] = i + 1  # full for this group: only fewer pods would fit later
            else:
                if used >= limit:
                    continue
                if used == len(opened):
                    opened.append(nodes.add())
                    cycle = nodes.prepare(pod)  # a new node changes what spreading and affinity see
                st = nodes.check_prepared(cycle, opened[used])
                if st is None:
                    nodes.place(pod, opened[used])
                    used += 1
                    placed.append(pod)
                    continue
                if key is not None:
                    refused[key] = st
        if st is not None:
            per = reasons.setdefault(pod.key, {})
            for reason in st.reasons:
                per[reason] = per.get(reason, 0) + 1
    if not used:
        return None
    option = Option(group, used, placed)
    alloc_cpu = sum(n.alloc.cpu for n in opened[:used]) or 1
    alloc_mem = sum(n.alloc.mem for n in opened[:used]) or 1
    option.waste = (alloc_cpu - sum(n.cpu for n in opened[:used])) / alloc_cpu + \
        (alloc_mem - sum(n.mem for n in opened[:used])) / alloc_mem
    return option


def similar(a: Group, b: Group) -> bool:
    """Upstream's `IsCloudProviderNodeInfoSimilar`, on templates: the same capacity, allocatable,
    taints, and labels but for the ones that differ between pools by nature."""
    ta, tb = a.template, b.template
    if dict(ta.allocatable) != dict(tb.allocatable) or dict(ta.capacity) != dict(tb.capacity) \
            or list(ta.taints) != list(tb.taints):
        return False
    strip = lambda labels: {k: v for k, v in labels.items() if k not in _SIMILAR_IGNORED}  # noqa: E731
    return strip(ta.labels) == strip(tb.labels)


def balance(chosen: Option, groups: list[Group], options: list[Option]) -> dict[str, int]:
    """Spread `chosen.count` new nodes over the groups similar to the chosen one that could take
    the pods too, the smallest first, each within its max (upstream's BalanceScaleUpBetweenGroups)."""
    able = {o.group.name for o in options}
    peers = [g for g in groups if g is chosen.group or (g.name in able and similar(g, chosen.group))]
    sizes = {g.name: g.target for g in peers}
    room = {g.name: g.max_size for g in peers}
    for _ in range(chosen.count):
        open_ = [g for g in peers if sizes[g.name] < room[g.name]]
        if not open_:
            break
        smallest = min(open_, key=lambda g: (sizes[g.name], g.name))
        sizes[smallest.name] += 1
    return {name: size for name, size in sizes.items() if size != next(g.target for g in peers if g.name == name)}


def plan(picture: Picture, groups: list[Group], *, settings: Profile, now: float, created: dict[str, float],
         priorities: str | None = None, rng: random.Random | None = None,
         backoff: frozenset[str] = frozenset()) -> Result:
    """What one scan's scale-up does (nothing applied yet); groups in `backoff` are skipped."""
    result = Result()
    pods = pending(picture, now=now, settings=settings, created=created)
    result.needed = bool(pods)
    if not pods:
        return result
    options = []
    for group in groups:
        room = group.max_size - group.target
        skipped = MAX_SIZE_REACHED if room <= 0 else IN_BACKOFF if group.name in backoff else None
        found: dict[str, dict[str, int]] = {}
        option = None if skipped is not None else estimate(picture, group, pods, room, found)
        if skipped is not None:
            found = {pod.key: {skipped: 1} for pod in pods}
        for key, reasons in found.items():
            per = result.rejected.setdefault(key, {})
            for reason, n in reasons.items():
                per[reason] = per.get(reason, 0) + n
            result.by_group.setdefault(key, {})[group.name] = sorted(reasons)
        if option is not None:
            options.append(option)
    if not options:
        result.remaining = pods
        return result
    best = expander.choose(settings.expander, options, priorities=priorities, rng=rng or random.Random())
    if settings.balance_similar_node_groups:
        targets = balance(best, groups, options)
    else:
        targets = {best.group.name: min(best.group.target + best.count, best.group.max_size)}
    by_name = {g.name: g for g in groups}
    result.increases = {name: (by_name[name].target, size) for name, size in targets.items()}
    result.triggered = best.pods
    helped = {p.key for p in best.pods}
    result.remaining = [p for p in pods if p.key not in helped]
    return result


def info_text(result: Result, groups: list[Group]) -> str:
    """The `TriggeredScaleUp` text: upstream's `[{<group id> <from>-><to> (max: <max>)}]`."""
    by_name = {g.name: g for g in groups}
    parts = [f"{{{by_name[n].id} {a}->{b} (max: {by_name[n].max_size})}}"
             for n, (a, b) in sorted(result.increases.items())]
    return f"[{' '.join(parts)}]"


def reasons_text(reasons: dict[str, int]) -> str:
    """The `NotTriggerScaleUp` text's reasons: `<groups> <reason>`, joined by commas."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
