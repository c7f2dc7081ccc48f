"""Surge upgrades of a node pool: how AKS rolls a VM scale set onto a new Kubernetes version or
node image (`upgrade-conceptual.md`, `upgrade-aks-node-pools-rolling.md`, `upgrade-options.md`;
aks.md §3.3).

The pool's `upgradeSettings` decide the pace: `maxSurge` buffer nodes of the new version are
added first (numbered after the highest VMSS instance), then batches of old nodes (as many as
there are surge nodes, plus `maxUnavailable`) are cordoned and drained through the Eviction API
(`lks.nodes.drain`, so PodDisruptionBudgets hold: never fewer pods than a budget allows), left to
soak `nodeSoakDurationInMinutes`, and reimaged to the new version under their own names; at the
end the surge nodes are cordoned, drained and deleted, restoring `count` (when the node subnet
has no room for the full surge, a surge of one, as AKS falls back to from 1.35). A node whose drain
runs out of `drainTimeoutInMinutes` is undrainable: with `undrainableNodeBehavior: Schedule`
(default) it is made schedulable again, stays on its version, the surge nodes go and the
upgrade fails; with `Cordon` it stays cordoned, labelled
`kubernetes.azure.com/upgrade-status=Quarantined`, a surge node stays in its place, the other
nodes are still upgraded, and the upgrade fails at the end. Either way `DrainError` is raised
(`lks.arm.fleet` makes it AKS's `PodDrainFailure`).

Every step is decided from the nodes as they are (`plan`): which run the target version, which
do not, how many are there. So an upgrade that failed or was interrupted (a restart of the
service) continues where it stopped when it runs again, as AKS resumes on the next PUT.

Node Events as AKS's upgrader posts them (source `upgrader`): `Surge` "Created a surge node
<node> for agentpool <pool>", `Drain` "Draining node: <node>" (`lks.nodes.drain`), `Upgrade`
"Successfully upgraded node: <node>", and `Delete` when a surge node goes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lks.controllers.events import EventRecorder
from lks.kube import errors
from lks.nodes import NodePool, NodeTemplate, drain

Obj = dict[str, Any]
Progress = Callable[[int], Awaitable[None]]  # called with the number of nodes done so far

IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
STATUS_LABEL = "kubernetes.azure.com/upgrade-status"
QUARANTINED = "Quarantined"
DEFAULT_MAX_SURGE = "10%"
_COUNT = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Settings:
    """A pool's `upgradeSettings`, durations in seconds."""

    max_surge: str = DEFAULT_MAX_SURGE
    max_unavailable: str = "0"
    drain_timeout: float = drain.DEFAULT_TIMEOUT_MINUTES * 60.0
    soak: float = 0.0
    undrainable: str = "Schedule"  # Schedule | Cordon

    @classmethod
    def of(cls, upgrade_settings: Obj | None, *, minute: float = 60.0) -> Settings:
        """From the ARM `upgradeSettings`; `minute` is how many seconds a minute lasts."""
        s = upgrade_settings or {}
        return cls(max_surge=str(s.get("maxSurge") or DEFAULT_MAX_SURGE),
                   max_unavailable=str(s.get("maxUnavailable") or "0"),
                   drain_timeout=float(s.get("drainTimeoutInMinutes") or drain.DEFAULT_TIMEOUT_MINUTES) * minute,
                   soak=float(s.get("nodeSoakDurationInMinutes") or 0) * minute,
                   undrainable=str(s.get("undrainableNodeBehavior") or "Schedule"))

    def batch(self, count: int) -> tuple[int, int]:
        """(surge nodes, nodes that may be unavailable) for a pool of `count` nodes: a number,
        or a percentage of `count` rounded up; a surge of at least 1 unless maxUnavailable > 0."""
        surge, unavailable = nodes(self.max_surge, count), nodes(self.max_unavailable, count)
        if surge == 0 and unavailable == 0:
            surge = 1
        return surge, unavailable


def nodes(value: str | int, count: int) -> int:
    """A `maxSurge`/`maxUnavailable` value as a number of nodes ("33%" of 10 is 4)."""
    m = _COUNT.match(str(value))
    if m is None:
        raise ValueError(f"not a node count or percentage: {value!r}")
    n = int(m[1])
    return math.ceil(count * n / 100) if m[2] else n


def generation(template: NodeTemplate) -> tuple[str, str]:
    """What an upgrade changes on a node: its kubelet version and node image."""
    return template.kubelet_version, template.labels.get(IMAGE_LABEL, "")


@dataclass
class Step:
    """What to do next: surge nodes to add, old nodes to drain and reimage, or (once every
    node is upgraded) surplus new nodes to remove."""

    add: list[int] = field(default_factory=list)
    drain: list[int] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.drain or self.remove)


def plan(old: list[int], new: list[int], *, count: int, surge: int, unavailable: int,
         next_index: int) -> Step:
    """The next step of an upgrade whose pool has `old` nodes to upgrade and `new` ones done
    (instance indexes); `next_index` is the first free index after the highest in use.

    While old nodes remain, the pool is kept at `count + surge` nodes, and as many old nodes
    are drained at once as leaves `count - unavailable` nodes in service (lowest index first,
    as AKS goes). Then the new nodes beyond `count` (the highest indexes: the surge nodes) go."""
    old, new = sorted(old), sorted(new)
    if old:
        total = len(old) + len(new)
        add = max(0, count + surge - total)
        batch = min(len(old), total + add - max(0, count - unavailable))
        return Step(add=list(range(next_index, next_index + add)), drain=old[:max(batch, 0)])
    if len(new) > count:
        return Step(remove=new[count:])
    return Step()


def outdated(pool: NodePool, template: NodeTemplate) -> bool:
    """Whether some node of `pool` runs another version or image than `template`."""
    target = generation(template)
    return any(generation(a.template) != target for a in pool.agents.values())


async def upgrade(pool: NodePool, template: NodeTemplate, count: int, settings: Settings, *,
                  progress: Progress | None = None) -> None:
    """Bring every node of `pool` to `template`'s version and image, `count` nodes at the end.
    `progress` hears how many old nodes have been upgraded. Raises the first `DrainError` of an
    undrainable node, after doing what `settings.undrainable` says."""
    pool.template = template  # nodes added meanwhile (and after) are of the new version
    pool.drain_timeout = settings.drain_timeout
    target = generation(template)
    surge, unavailable = settings.batch(count)
    recorder = EventRecorder(pool.cluster, component=drain.COMPONENT)
    blocked: dict[int, drain.DrainError] = {}
    done = 0
    while True:
        old = [i for i, a in pool.agents.items() if generation(a.template) != target and i not in blocked]
        new = [i for i, a in pool.agents.items() if generation(a.template) == target]
        step = plan(old, new, count=count, surge=surge, unavailable=unavailable,
                    next_index=pool.next_indexes(1)[0])
        if not step:
            break
        if step.add:
            try:
                await pool.add_nodes(step.add, template)
            except errors.APIError as err:
                if err.code != 409 or len(step.add) == 1:  # the node subnet has no address left
                    raise
                # AKS from 1.35: without room for the full surge, a surge of one node
                surge = max(1, surge - len(step.add) + 1)
                continue
            for i in step.add:
                name = template.node_name(i)
                await _event(pool, recorder, name, "Surge", f"Created a surge node {name} for agentpool {pool.name}")
        if step.drain:
            cordon = settings.undrainable == "Cordon"
            failed = await pool.cordon_and_drain(step.drain, keep_cordoned=cordon)
            if failed and not cordon:
                await _give_up(pool, recorder, count, template)
                raise next(iter(failed.values()))
            for i in failed:
                await _quarantine(pool, template.node_name(i))
            blocked.update(failed)
            drained = [i for i in step.drain if i not in failed]
            if drained and settings.soak > 0:
                await pool.cluster.clock.sleep(settings.soak)
            await pool.reimage(drained, template)
            for i in drained:
                name = template.node_name(i)
                await _event(pool, recorder, name, "Upgrade", f"Successfully upgraded node: {name}")
            done += len(drained)
            if progress is not None:
                await progress(done)
        elif step.remove:
            await _remove_surge(pool, recorder, step.remove, template)
    if blocked:
        raise next(iter(blocked.values()))


async def _give_up(pool: NodePool, recorder: EventRecorder, count: int, template: NodeTemplate) -> None:
    """An undrainable node under `Schedule`: a best-effort removal of every surge node (the new
    nodes beyond `count`), so that the pool is left at its size."""
    target = generation(template)
    new = sorted(i for i, a in pool.agents.items() if generation(a.template) == target)
    surplus = len(pool.agents) - count
    if surplus > 0:
        try:
            await _remove_surge(pool, recorder, new[::-1][:surplus], template)
        except drain.DrainError:
            pass  # best effort, as AKS: the next run removes what is left


async def _remove_surge(pool: NodePool, recorder: EventRecorder, indexes: list[int], template: NodeTemplate) -> None:
    for i in indexes:
        name = template.node_name(i)
        await _event(pool, recorder, name, "Delete", f"Deleting surge node {name} for agentpool {pool.name}")
    await pool.remove_nodes(indexes)


async def _quarantine(pool: NodePool, node: str) -> None:
    """`undrainableNodeBehavior: Cordon`: the node stays cordoned, labelled as AKS labels it."""

    def mark(current: Obj) -> Obj:
        current["metadata"].setdefault("labels", {})[STATUS_LABEL] = QUARANTINED
        return current

    try:
        await pool.cluster.registry("", "v1", "nodes").patch(None, node, mark)
    except errors.APIError as err:
        if err.code != 404:
            raise


async def _event(pool: NodePool, recorder: EventRecorder, node: str, reason: str, message: str) -> None:
    obj = await pool.cluster.registry("", "v1", "nodes").get_or_none(None, node)
    if obj is not None:
        await recorder.record(obj, "Normal", reason, message)
