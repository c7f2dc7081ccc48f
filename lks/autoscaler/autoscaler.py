"""The cluster autoscaler of every managed cluster with an autoscaled pool: one task of the
management plane, on the plane's clock, scanning each such cluster every `scan-interval` as
upstream's `StaticAutoscaler.RunOnce` does: the unready-node guard, scale-up
(`lks.autoscaler.scaleup`), else scale-down (`lks.autoscaler.scaledown`) once its delays allow,
then the status ConfigMap and Events (`lks.autoscaler.status`).

A pool grows as a user's scale does: its `count` changes in the cluster document and the
plane's reconcile operation adds the nodes (`managedclusters.admit_update`, then
`plane.begin_operation`), so the ARM pool shows the new count. A node goes as upstream removes
it: tainted `ToBeDeletedByClusterAutoscaler`, drained through the Eviction API and deleted by the
fleet as that very VMSS instance (`Fleet.retire_nodes`), then the count drops by one. A cluster
with an operation running is left alone until it ends, unless the autoscaler started it: then
the scans go on (status, the provisioning deadline) but change nothing until it ends.

Nodes on their way (the pool's count less its registered Nodes: `lks up
--node-provisioning-time`) are template nodes in the simulation, so their pods do not trigger a
second scale-up; a scale-up whose nodes have not registered `max-node-provision-time` after it
failed, as upstream's `ScaleUpTimedOut`: the pool is backed off, scale-down waits
`scale-down-delay-after-failure`, the fleet gives up on the instances and the count goes back to
the nodes there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lks import clock as clocks
from lks import store, tasks
from lks.arm import documents, fleet, managedclusters, operations
from lks.arm.errors import ARMError
from lks.autoscaler import expander, explain, groups, profile, scaledown, scaleup, status
from lks.autoscaler.profile import Profile
from lks.autoscaler.simulator import Picture, PodCache
from lks.clock import Clock
from lks.controllers.events import EventRecorder
from lks.controllers.scheduler import preemption
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.kube.subresources import eviction
from lks.nodes import drain

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

log = logging.getLogger(__name__)

Doc = dict[str, Any]
_WRITE = WriteOptions(field_validation="Ignore", trusted=True)
_AT_REST = ("Succeeded", "Failed")


def _timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


BACKOFF_FIRST, BACKOFF_MAX = 300.0, 1800.0


def _back_off(state: ClusterState, pool: str, now: float) -> None:
    _until, length = state.backoff.get(pool, (0.0, 0.0))
    length = min(length * 2, BACKOFF_MAX) if length else BACKOFF_FIRST
    state.backoff[pool] = (now + length, length)


def _profile(doc: Doc) -> Profile:
    try:
        return profile.parse(doc["properties"].get("autoScalerProfile"))
    except ARMError:  # stored before a rule tightened: AKS's defaults rather than no autoscaling
        log.warning("autoscaler profile of %s unreadable; defaults used", doc["id"])
        return Profile()


def _unneeded_time(v: scaledown.Verdict) -> float:
    """How long the node must stay unneeded before it goes (its pool's profile decides)."""
    return v.settings.scale_down_unneeded_time if v.ready else v.settings.scale_down_unready_time


def _ready(node: Doc) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


@dataclass
class Request:
    """A scale-up of one group not yet done (upstream's ScaleUpRequest): since when, by how many."""

    since: float
    increase: int


@dataclass
class ClusterState:
    """What the autoscaler remembers of one cluster between scans (upstream keeps it in memory
    too: a restart starts the unneeded clocks over)."""

    next_scan: float = 0.0
    unneeded: dict[str, float] = field(default_factory=dict)  # node -> unneeded since
    last_add: float = float("-inf")
    last_delete: float = float("-inf")
    last_failure: float = float("-inf")
    cluster: status.GroupStatus = field(default_factory=status.GroupStatus)
    groups: dict[str, status.GroupStatus] = field(default_factory=dict)
    pods: PodCache = field(default_factory=PodCache)
    last_verdicts: list[scaledown.Verdict] = field(default_factory=list)
    last_scale_up: scaleup.Result | None = None
    recorder: EventRecorder | None = None  # kept: a repeated Event is counted, not created again
    backoff: dict[str, tuple[float, float]] = field(default_factory=dict)  # pool -> (until, its length)
    growing: set[str] = field(default_factory=set)  # pools whose scale-up operation has not been seen end
    operation: str | None = None  # the autoscaler's last resize operation: scans go on while it runs
    requests: dict[str, Request] = field(default_factory=dict)  # pool -> its scale-up whose nodes are due
    backoff_info: dict[str, tuple[str, str]] = field(default_factory=dict)  # pool -> (errorCode, errorMessage)


class ClusterAutoscaler:
    def __init__(self, *, plane: ManagementPlane, clock: Clock | None = None, rng: random.Random | None = None):
        self.plane = plane
        self.clock = clock or plane.clock
        self.rng = rng or random.Random()
        self.states: dict[str, ClusterState] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one pass over the clusters at a time
        self._tasks: asyncio.TaskGroup | None = None  # the running loop's: it owns the scans
        self._scanning: dict[str, asyncio.Task[None]] = {}  # cluster id -> its scan under way

    async def start(self) -> None:
        self.plane.autoscaler = self  # the management API's autoscalerStatus asks it
        self._task = asyncio.create_task(self._run(), name="cluster-autoscaler")

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.cancel(self._task)
            self._task = None
            self._tasks = None
            self._scanning.clear()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._tasks = group
            group.create_task(self._watch(documents.PREFIX + "/"))
            # an operation ends after its last document write: its record's last write wakes the loop then
            group.create_task(self._watch(operations.PREFIX))
            while True:
                self._wake.clear()
                try:
                    due = await self.run_once()
                except Exception:  # a bug must not end autoscaling for every cluster
                    log.exception("autoscaler pass failed")
                    due = None
                await self._sleep_until(due)

    async def _watch(self, prefix: str) -> None:
        """Wake on every change under `prefix` (ARM documents: autoscaling enabled; operation
        records: an operation ended)."""
        backend = self.plane.docs.store
        while True:
            try:
                revision = await backend.current_revision()
                async for _event in backend.watch(prefix, start_revision=revision + 1):
                    self._wake.set()
            except store.StoreError:
                await asyncio.sleep(0.1)

    async def _sleep_until(self, due: float | None) -> None:
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        if due is not None:
            waits.add(asyncio.ensure_future(self._timer(due)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _timer(self, due: float) -> None:
        """Until the clock reads `due`, measured once this task runs (the clock may have moved
        since `due` was computed; a time already past returns at once)."""
        delay = due - self.clock.now()
        if delay > 0:
            await self.clock.sleep(delay)

    async def run_once(self) -> float | None:
        """Start the scan of every cluster whose scan is due (each its own task, so that one
        cluster's drain does not hold up the others; without the task group of `start`, in turn);
        when the next scan falls due. A cluster busy with an operation, or scanning, is not due:
        the end of either wakes the loop."""
        async with self._lock:
            now = self.clock.now()
            due: list[float] = []
            seen = set()
            for doc in await self.plane.all_clusters(None):
                if not groups.autoscaled(doc):
                    continue
                key = doc["id"].lower()
                seen.add(key)
                state = self.states.setdefault(key, ClusterState())
                if key in self._scanning:
                    continue
                if not self._at_rest(doc, state):
                    # the end of its operation wakes the loop; a timer as well, should that wake
                    # have come while the operation was still registered as running
                    due.append(max(state.next_scan, now + _profile(doc).scan_interval))
                    continue
                if state.next_scan <= now:
                    scan = self._scan(doc, state, now)
                    if self._tasks is None:
                        await scan
                    else:
                        self._scanning[key] = self._tasks.create_task(scan, name=f"autoscaler scan {doc['name']}")
                        continue
                due.append(state.next_scan)
            for key in set(self.states) - seen - set(self._scanning):  # autoscaling off or cluster gone
                del self.states[key]
            return min(due, default=None)

    async def _scan(self, doc: Doc, state: ClusterState, now: float) -> None:
        settings = _profile(doc)
        try:
            await self.scan(doc, state, settings)
        except (ARMError, errors.APIError) as err:
            log.warning("autoscaler scan of %s: %s", doc["id"], err)
        except Exception:  # a bug in one cluster's scan must not end the others'
            log.exception("autoscaler scan of %s failed", doc["id"])
        finally:
            state.next_scan = now + settings.scan_interval  # set once done: tests wait on it
            self._scanning.pop(doc["id"].lower(), None)
            self._wake.set()

    def explain(self, cluster_id: str, doc: Doc | None = None) -> Doc:
        """What the last scan of the cluster concluded, for a user asking why (`lks.autoscaler.explain`);
        `doc`, the cluster's document, tells a cluster without autoscaled pools from one not scanned yet."""
        state = self.states.get(cluster_id.lower())
        if state is None or state.last_scale_up is None or (doc is not None and (
                not groups.autoscaled(doc) or doc["properties"]["powerState"]["code"] != "Running")):
            return explain.unscanned(doc)
        return explain.report(state, now=self.clock.now())

    def _at_rest(self, doc: Doc, state: ClusterState) -> bool:
        """Running, and no operation under way but one of the autoscaler's own."""
        props = doc["properties"]
        if props["powerState"]["code"] != "Running":
            return False
        op = self.plane.operations.running(doc["id"])
        if op is not None:
            return op["name"] == state.operation
        return props.get("provisioningState") in _AT_REST

    def _busy(self, doc: Doc) -> bool:
        """An operation (the autoscaler's own) is changing the cluster: no resize until it ends."""
        return self.plane.operations.running(doc["id"]) is not None

    # -- one scan -------------------------------------------------------------------------------

    async def scan(self, doc: Doc, state: ClusterState, settings: Profile) -> None:
        cluster = self.plane.planes.get(fleet.control_plane_id(doc) or "")
        if cluster is None:
            return
        now = self.clock.now()
        picture, pdbs, priorities = await self._read(cluster, state)
        node_groups = groups.of(doc, picture.nodes)
        if state.recorder is None or state.recorder.cluster is not cluster:
            state.recorder = EventRecorder(cluster, component=status.COMPONENT)
        recorder = state.recorder
        late = self._track(node_groups, state, settings, now)
        healthy = self._health(picture, node_groups, state, settings, now)
        if late:
            await self._give_up(doc, cluster, late, state, recorder, now)
            await self._write_status(cluster, state, now)
            return
        busy = self._busy(doc)
        up = scaleup.Result()
        if healthy:
            scaleup.add_upcoming(picture, node_groups)
            # a pod's age is on the cluster's clock, which stamped it; new-pod-scale-up-delay on the plane's
            wall, rate = cluster.clock.now(), self.clock.scale / cluster.clock.scale
            created = {p.key: now - (wall - _timestamp(p.obj["metadata"].get("creationTimestamp"))) * rate
                       for p in picture.pending}
            up = scaleup.plan(picture, node_groups, settings=settings, now=now, created=created,
                              priorities=priorities, rng=self.rng, backoff=self._backoff(doc, state, now))
        state.last_scale_up = up
        if busy and up.increases:  # pods beyond the nodes on their way: grown once the running operation ends
            await self._write_status(cluster, state, now)
            return
        op = await self._resize(doc["id"], {n: b for n, (_a, b) in up.increases.items()}) if up.increases else None
        resized = op is not None
        state.cluster.scale_up.set("InProgress" if resized or state.requests else "NoActivity", now)
        if up.increases and not resized:
            for name in up.increases:
                _back_off(state, name, now)
        if op is not None:
            state.operation = op["name"]
            state.growing = set(up.increases)
            for name, (before, after) in up.increases.items():
                request = state.requests.setdefault(name, Request(now, 0))
                request.since, request.increase = now, request.increase + after - before
        backed_off = {name for name, (until, _length) in state.backoff.items() if until > now}
        for g in node_groups:
            gs = state.groups[g.name]
            if resized and g.name in up.increases:
                gs.target = up.increases[g.name][1]
            gs.scale_up.set("InProgress" if g.name in state.requests else
                            "Backoff" if g.name in backed_off else "NoActivity", now)
            gs.backoff_info = state.backoff_info.get(g.name) if g.name in backed_off else None
        if up.increases:
            if resized:
                state.last_add = now
                configmap = await self._write_status(cluster, state, now)
                text = scaleup.info_text(up, node_groups)
                for name, (before, after) in sorted(up.increases.items()):
                    group = next(g for g in node_groups if g.name == name)
                    await recorder.record(configmap, "Normal", "ScaledUpGroup",
                                          f"Scale-up: setting group {group.id} size to {after} instead of {before} "
                                          f"(max: {group.max_size})")
                for pod in up.triggered:
                    await recorder.record(pod.obj, "Normal", "TriggeredScaleUp", f"pod triggered scale-up: {text}")
        else:
            for pod in up.remaining:
                reasons = up.rejected.get(pod.key)
                if reasons:
                    await recorder.record(pod.obj, "Normal", "NotTriggerScaleUp",
                                          f"pod didn't trigger scale-up: {scaleup.reasons_text(reasons)}")
            if healthy and not busy:
                await self._scale_down(doc, cluster, picture, node_groups, pdbs, state, settings, recorder, now)
        await self._write_status(cluster, state, now)

    async def _read(self, cluster: Cluster, state: ClusterState) -> tuple[Picture, list[preemption.Budget], str | None]:
        async def objects(group: str, resource: str) -> list[Doc]:
            return list((await cluster.registry(group, "v1", resource).cache()).objects.values())

        picture = Picture.build(nodes=await objects("", "nodes"), pods=await objects("", "pods"), cache=state.pods,
                                daemonsets=await objects("apps", "daemonsets"),
                                namespaces=await objects("", "namespaces"))
        pdbs = [preemption.Budget(p) for p in await objects("policy", "poddisruptionbudgets")]
        cm = await cluster.registry("", "v1", "configmaps").get_or_none(status.NAMESPACE, expander.CONFIGMAP)
        return picture, pdbs, ((cm or {}).get("data") or {}).get("priorities")

    def _backoff(self, doc: Doc, state: ClusterState, now: float) -> frozenset[str]:
        """The pools not to grow now: a scale-up whose operation failed backs its pools off, 5
        minutes and doubling up to 30 (upstream's exponential backoff; AKS's "up to 30 min")."""
        if state.growing and not self._busy(doc):
            if doc["properties"].get("provisioningState") == "Failed":
                for name in state.growing:
                    _back_off(state, name, now)
            else:
                for name in state.growing:  # it worked: the next failure starts over
                    state.backoff.pop(name, None)
                    state.backoff_info.pop(name, None)
            state.growing = set()
        return frozenset(name for name, (until, _length) in state.backoff.items() if until > now)

    def _health(self, picture: Picture, node_groups: list[groups.Group], state: ClusterState, settings: Profile,
                now: float) -> bool:
        """Node counts per group and overall; False (Unhealthy: no scaling at all) when more nodes
        are unready than max(ok-total-unready-count, max-total-unready-percentage of them)."""
        total = status.Counts()
        for node in picture.nodes.values():
            total.total += 1
            total.ready += _ready(node)
        for group in node_groups:
            gs = state.groups.setdefault(group.name, status.GroupStatus())
            missing = max(group.target - len(group.nodes), 0)
            request = state.requests.get(group.name)
            # nodes of a scale-up still in time are unregistered; past it (or never asked for) long unregistered
            due = min(missing, request.increase) if request is not None else 0
            gs.counts = status.Counts(total=len(group.nodes),
                                      ready=sum(_ready(picture.nodes[n]) for n in group.nodes),
                                      unregistered=due, long_unregistered=missing - due)
            total.unregistered += gs.counts.unregistered
            total.long_unregistered += gs.counts.long_unregistered
            gs.target, gs.min_size, gs.max_size = group.target, group.min_size, group.max_size
            # upstream's IsNodeGroupHealthy: fewer ready nodes than the target less the nodes
            # excused (on their way, or long unregistered) are unready nodes unaccounted for
            unjustified = max(group.target - gs.counts.long_unregistered - due - gs.counts.ready, 0)
            gs.health.set("Unhealthy" if unjustified > settings.ok_total_unready_count and unjustified >
                          settings.max_total_unready_percentage / 100.0 * gs.counts.total else "Healthy", now)
        for name in set(state.groups) - {g.name for g in node_groups}:
            del state.groups[name]
        state.cluster.counts = total
        unready = total.total - total.ready
        healthy = unready <= max(settings.ok_total_unready_count,
                                 settings.max_total_unready_percentage / 100.0 * total.total)
        state.cluster.health.set("Healthy" if healthy else "Unhealthy", now)
        return healthy

    def _track(self, node_groups: list[groups.Group], state: ClusterState, settings: Profile,
               now: float) -> list[tuple[groups.Group, Request]]:
        """Upstream's updateScaleRequests: a scale-up whose nodes have all registered is done;
        one whose nodes are not all there `max-node-provision-time` after it timed out (its
        missing nodes are long unregistered from now on). The groups whose scale-up timed out."""
        late = []
        by_name = {g.name: g for g in node_groups}
        for name, request in list(state.requests.items()):
            group = by_name.get(name)
            if group is None or len(group.nodes) >= group.target:
                del state.requests[name]
            elif now > request.since + group.settings(settings).max_node_provision_time:  # the pool's own, if set
                late.append((group, state.requests.pop(name)))
        return late

    async def _give_up(self, doc: Doc, cluster: Cluster, late: list[tuple[groups.Group, Request]], state: ClusterState,
                       recorder: EventRecorder, now: float) -> None:
        """Scale-ups that timed out: each group is backed off with upstream's event and backoff
        info, scale-down waits `scale-down-delay-after-failure`, the fleet stops waiting for the
        instances, and the pool's count goes back to the nodes it has (not below minCount)."""
        configmap = await self._write_status(cluster, state, now)
        sizes = {}
        for group, request in late:
            took = clocks.go_duration(round((now - request.since) * 1e9))
            await recorder.record(configmap, "Warning", "ScaleUpTimedOut",
                                  f"Nodes added to group {group.id} failed to register within {took}")
            log.warning("scale-up of %s timed out after %s", group.id, took)
            _back_off(state, group.name, now)
            state.backoff_info[group.name] = ("timeout", f"Scale-up timed out for node group {group.id} after {took}")
            state.growing.discard(group.name)  # its operation will succeed: that must not lift the backoff
            self.plane.fleet.abandon(cluster, group.name)
            sizes[group.name] = max(len(group.nodes), group.min_size)
        state.last_failure = now
        op = self.plane.operations.running(doc["id"])
        if op is not None and op["name"] == state.operation:
            await self.plane.operations.wait(op["name"])  # the fleet keeps the nodes it has, and ends it
        op = await self._resize(doc["id"], sizes)
        if op is not None:
            state.operation = op["name"]
        for group, _request in late:
            gs = state.groups[group.name]
            gs.scale_up.set("Backoff", now)
            gs.backoff_info = state.backoff_info[group.name]
            if op is not None:
                gs.target = sizes[group.name]
        state.cluster.scale_up.set("InProgress" if state.requests else "NoActivity", now)

    # -- scale-down -------------------------------------------------------------------------------

    async def _scale_down(self, doc: Doc, cluster: Cluster, picture: Picture, node_groups: list[groups.Group],
                          pdbs: list[preemption.Budget], state: ClusterState, settings: Profile,
                          recorder: EventRecorder, now: float) -> None:
        verdicts = scaledown.find_unneeded(picture, node_groups, pdbs, settings, deleting=set())
        state.last_verdicts = verdicts
        unneeded = {v.node: v for v in verdicts if v.reason is None}
        state.unneeded = {n: state.unneeded.get(n, now) for n in unneeded}
        state.cluster.scale_down.set("CandidatesPresent" if unneeded else "NoCandidates", now)
        for g in node_groups:
            state.groups[g.name].scale_down.set(
                "CandidatesPresent" if any(v.group is g for v in unneeded.values()) else "NoCandidates", now)
        if now - state.last_add < settings.scale_down_delay_after_add \
                or now - state.last_delete < settings.scale_down_delay_after_delete \
                or now - state.last_failure < settings.scale_down_delay_after_failure:
            return
        ripe = [unneeded[n] for n, since in state.unneeded.items()
                if now - since >= _unneeded_time(unneeded[n])]
        room = {g.name: g.target - g.min_size for g in node_groups}
        empty, busy = [], []
        for v in ripe:
            if room[v.group.name] <= 0:
                continue
            if not v.pods and len(empty) < settings.max_empty_bulk_delete:
                empty.append(v)
                room[v.group.name] -= 1
            elif v.pods and not busy and not empty:
                busy.append(v)
                room[v.group.name] -= 1
        todo = empty or busy  # empty nodes in bulk, else one node with pods
        if todo:
            await self._remove(doc, cluster, todo, state, settings, recorder, now)

    async def _remove(self, doc: Doc, cluster: Cluster, verdicts: list[scaledown.Verdict], state: ClusterState,
                      settings: Profile, recorder: EventRecorder, now: float) -> None:
        nodes = cluster.registry("", "v1", "nodes")
        removed: dict[str, int] = {}
        configmap = await self._write_status(cluster, state, now)
        for v in verdicts:
            node = await _taint(nodes, v.node, now)
            if node is None:
                continue
            await recorder.record(node, "Normal", "ScaleDown", status.MARKED)
            for pod in v.pods:
                await recorder.record(pod.obj, "Normal", "ScaleDown", status.DELETING_POD)
            if settings.daemonset_eviction_for_occupied_nodes if v.pods else settings.daemonset_eviction_for_empty_nodes:
                await _evict(cluster, v.daemons)
            try:
                # upstream gives the pods max-graceful-termination-sec; the plane's clock may run fast
                await self.plane.fleet.retire_nodes(cluster, v.group.name, [v.node],
                                                    timeout=settings.max_graceful_termination_sec / self.clock.scale)
            except drain.DrainError:
                state.last_failure = now
                await _untaint(nodes, v.node)
                await recorder.record(node, "Warning", "ScaleDownFailed", status.DRAIN_FAILED)
                continue
            removed[v.group.name] = removed.get(v.group.name, 0) + 1
            state.unneeded.pop(v.node, None)
            await recorder.record(configmap, "Normal", "ScaleDownEmpty" if not v.pods else "ScaleDown",
                                  (status.REMOVING_EMPTY if not v.pods else status.REMOVING).format(v.node))
        if removed:
            state.last_delete = now
            targets = {v.group.name: v.group.target for v in verdicts}
            op = await self._resize(doc["id"], {n: targets[n] - k for n, k in removed.items()})
            if op is not None:
                state.operation = op["name"]

    # -- writes ----------------------------------------------------------------------------------

    async def _resize(self, cluster_id: str, sizes: dict[str, int]) -> Doc | None:
        """Set these pools' counts as a user's scale would: the document, then the operation
        (returned; None: not done)."""
        stored = await self.plane.docs.get(cluster_id)
        if stored is None or self.plane.operations.running(cluster_id) is not None:
            return None
        current = stored.doc
        new = copy.deepcopy(current)
        for pool in new["properties"]["agentPoolProfiles"]:
            if pool["name"] in sizes:
                pool["count"] = sizes[pool["name"]]
        try:
            await managedclusters.admit_update(self.plane, current, new)
            op = await self.plane.begin_operation(None, new, stored, "Scaling", created=False)
        except ARMError as err:
            log.warning("autoscaler could not resize %s to %s: %s %s", cluster_id, sizes, err.code, err.message)
            return None
        log.info("autoscaler resized %s: %s", cluster_id, sizes)
        return op

    async def _write_status(self, cluster: Cluster, state: ClusterState, now: float) -> Doc:
        """The status ConfigMap, created or replaced; returns it (Events about the autoscaler go there)."""
        data = {"status": status.text(now, state.cluster, {self._group_id(cluster, n): g
                                                          for n, g in state.groups.items()})}
        annotations = {status.LAST_UPDATED: status.go_time(now)}
        configmaps = cluster.registry("", "v1", "configmaps")

        def replace(current: Doc) -> Doc:
            current.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
            current["data"] = data
            return current

        try:
            return await configmaps.patch(status.NAMESPACE, status.NAME, replace, _WRITE)
        except errors.APIError as err:
            if err.code != 404:
                raise
        return await configmaps.create(status.NAMESPACE, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": status.NAME, "namespace": status.NAMESPACE, "annotations": annotations},
            "data": data}, _WRITE)

    def _group_id(self, cluster: Cluster, pool: str) -> str:
        running = self.plane.fleet.pools.get((cluster.id, pool))
        return running.template.vmss_name if running is not None else pool


async def _evict(cluster: Cluster, pods: list[Any]) -> None:
    """Evict these DaemonSet pods, best effort and without waiting (upstream's
    daemonset-eviction-for-empty/occupied-nodes): the taint keeps their DaemonSets from
    putting them back."""
    registry = cluster.registry("", "v1", "pods")
    for pod in pods:
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": pod.name, "namespace": pod.namespace},
                "deleteOptions": {"preconditions": {"uid": pod.uid}}}
        try:
            await eviction.evict(registry, pod.namespace, pod.name, "create", body, _WRITE)
        except errors.APIError as err:
            log.debug("DaemonSet pod %s not evicted: %s", pod.key, err.message)


async def _taint(nodes: Any, name: str, now: float) -> Doc | None:
    def add(current: Doc) -> Doc:
        taints = current.setdefault("spec", {}).setdefault("taints", [])
        if not any(t.get("key") == scaledown.TAINT for t in taints):
            taints.append({"key": scaledown.TAINT, "value": str(int(now)), "effect": "NoSchedule"})
        return current

    try:
        return await nodes.patch(None, name, add, _WRITE)
    except errors.APIError as err:
        if err.code != 404:
            raise
        return None


async def _untaint(nodes: Any, name: str) -> None:
    def drop(current: Doc) -> Doc:
        spec = current.setdefault("spec", {})
        spec["taints"] = [t for t in spec.get("taints") or () if t.get("key") != scaledown.TAINT] or None
        if spec["taints"] is None:
            del spec["taints"]
        return current

    with contextlib.suppress(errors.APIError):
        await nodes.patch(None, name, drop, _WRITE)
