"""The scheduler controller: watches pods, nodes and what the plugins read, keeps the snapshot
current from those events, and runs one scheduling cycle after another (upstream's
`Scheduler.ScheduleOne`).

A cycle pops the most important pending pod from the `queue`, asks the `framework` for a node,
assumes the pod onto it in the `snapshot` and hands the binding to a task, so the next cycle
starts at once while up to `MAX_BINDS` bindings are being written (through the binding
subresource's `assign`, which also sets PodScheduled=True). A pod that fits nowhere goes to
`preemption`; then it gets the PodScheduled=False/Unschedulable condition and a
FailedScheduling event worded like upstream's, and waits in the queue until a cluster event
may help. Status writes for failures go through a work queue, deduplicated per pod.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from lks import tasks
from lks.clock import rfc3339
from lks.controllers import events, identities
from lks.controllers.informer import Informer
from lks.controllers.scheduler import framework, listers, preemption, queue, snapshot
from lks.controllers.scheduler.snapshot import PodInfo
from lks.controllers.workqueue import WorkQueue
from lks.kube import deletion, errors
from lks.kube.authn import acting_as
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.kube.subresources import binding
from lks.observability import logs
from lks.observability.histogram import SCHEDULING_BUCKETS, Histogram

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAME = "default-scheduler"
MAX_BINDS = 1024  # bindings in flight (upstream binds each pod in a goroutine of its own)
SLICE = 0.005  # seconds of back-to-back cycles before other tasks run (upstream's scheduler has its own thread)
EVENT_QPS, EVENT_BURST, EVENT_QUEUE = 50.0, 300, 1000  # Scheduled events are best effort, as upstream's
MAX_MESSAGE = 1024  # events' note limit
GATED, GATED_MESSAGE = "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"
_TERMINAL = ("Succeeded", "Failed")
_WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-scheduler")


def truncate(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."


class _Unchanged(Exception):
    """A status write found nothing to change (or the pod moved on)."""


class Scheduler:
    def __init__(self, cluster: Cluster, *, percentage: int = 0, seed: int | None = None):
        self.cluster = cluster
        self.clock = cluster.clock
        self.pods = cluster.registry("", "v1", "pods")
        self.snapshot = snapshot.Snapshot()
        rng = random.Random(seed)
        self.listers = listers.Listers(cluster, namespace_labels_changed=self._namespace_labels_changed)
        self.fw = framework.Framework(self.snapshot, ns_labels=self.listers.ns_labels,
                                      default_selector=self.listers.default_selector, percentage=percentage, rng=rng)
        self.preemption = preemption.Evaluator(self.fw, budgets=self.listers.budgets,
                                               policy=self.listers.preemption_policy, rng=rng)
        self.queue = queue.SchedulingQueue(self.clock.monotonic)
        self.recorder = events.EventRecorder(cluster, component=NAME)
        self.nominated: dict[str, dict[str, PodInfo]] = {}  # node -> pod key -> pod
        self.nominations: dict[str, str] = {}  # pod key -> node
        self._failures: dict[str, tuple[PodInfo, str, str, str | None]] = {}  # key -> (pod, reason, message, node)
        self.status_queue: WorkQueue[str] = WorkQueue(self._write_failure, name="scheduler status", workers=8,
                                                      clock=self.clock)
        self._informers = {
            **self.listers.informers,
            "nodes": Informer(cluster.registry("", "v1", "nodes"), self._on_node),
            "pods": Informer(self.pods, self._on_pod),
        }
        self._work = asyncio.Event()
        # scheduler_schedule_attempts_total and scheduler_scheduling_attempt_duration_seconds, by result
        self.attempts = {"scheduled": 0, "unschedulable": 0, "error": 0}
        self.attempt_durations = {result: Histogram(SCHEDULING_BUCKETS) for result in self.attempts}
        self._timer = asyncio.Event()
        self._timer_deadline: float | None = None
        self._binds = asyncio.Semaphore(MAX_BINDS)
        self._events: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(EVENT_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self.scheduled = 0  # pods bound, for benchmarks and tests

    # -- lifecycle

    async def start(self) -> None:
        for name, inf in self._informers.items():
            # they list and watch as system:kube-scheduler; PriorityClasses are lks's own read
            # (upstream's scheduler has no informer on them, nor the bootstrap role a rule)
            inf.identity = None if name == "priorityclasses" else identities.SCHEDULER
            await inf.start()
        with acting_as(identities.SCHEDULER):  # its tasks bind and write status as system:kube-scheduler
            if all(inf.synced.is_set() for inf in self._informers.values()):
                self._prime()
                self._task = asyncio.create_task(self._run(), name="scheduler")
            else:  # as WaitForCacheSync: nothing is scheduled before every informer lists
                self._task = asyncio.create_task(self._run_when_synced(), name="scheduler")

    def _prime(self) -> None:
        # from the caches at once, so the first cycles see every node; the informers deliver
        # the same objects again, which the handlers take as no-ops
        for inf in self._informers.values():
            assert inf.cache is not None
            for obj in list(inf.cache.objects.values()):
                inf.handler("ADDED", obj, None)
        self.status_queue.start()

    async def _run_when_synced(self) -> None:
        for inf in self._informers.values():
            await inf.synced.wait()
        self._prime()
        await self._run()

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.cancel(self._task)
            self._task = None
        await self.status_queue.stop()
        for inf in reversed(list(self._informers.values())):
            await inf.stop()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._timers(), name="scheduler timers")
            tg.create_task(self._event_writer(), name="scheduler events")
            await self._loop(tg)

    # -- the scheduling loop

    async def _loop(self, tg: asyncio.TaskGroup) -> None:
        turn_ends = time.perf_counter() + SLICE
        while True:
            if not self.queue.has_active():
                self._work.clear()
                await self._work.wait()
                continue
            await self._binds.acquire()
            qp = self.queue.pop()
            binding_started = False
            try:
                if qp is not None:
                    binding_started = self._schedule_one(qp, tg)
            except Exception:  # a bug must not stop scheduling: retry the pod later
                log.exception("scheduling %s failed", qp.key if qp else None)
                self._attempted("error", time.perf_counter())  # a bug: its duration is not known
                if qp is not None:
                    self.queue.failed(qp, unschedulable=False)
                    self._poke_timer()
            finally:
                if not binding_started:
                    self._binds.release()
            if time.perf_counter() >= turn_ends:  # let informers and bindings run
                await asyncio.sleep(0)
                turn_ends = time.perf_counter() + SLICE

    def _schedule_one(self, qp: queue.QueuedPod, tg: asyncio.TaskGroup) -> bool:
        """One cycle; whether a binding task took over the binding slot."""
        pod = qp.info
        started = time.perf_counter()
        nominated = framework.nominated_for(pod, self.nominated)
        try:
            node = self.fw.schedule(pod, nominated, self.nominations.get(pod.key))
        except framework.FitError as err:
            self._unschedulable(qp, err, nominated, tg)
            self._attempted("unschedulable", started)
            return False
        placed = self.snapshot.assume(pod, node)
        self.queue.done(pod.key)
        self._unnominate(pod.key)
        tg.create_task(self._bind(pod, placed, node, qp.attempts, started))
        return True

    def _attempted(self, result: str, started: float) -> None:
        self.attempts[result] += 1
        self.attempt_durations[result].observe(time.perf_counter() - started)

    async def _bind(self, pod: PodInfo, placed: PodInfo, node: str, attempts: int, started: float) -> None:
        try:
            await binding.assign(self.pods, pod.namespace, pod.name, node, uid=pod.uid)
        except errors.APIError as err:
            # gone, bound by someone else, or replaced by a namesake: the informer brings the truth
            gone = err.code == 404 or "already assigned" in err.message or "Precondition failed" in err.message
            self._bind_failed(pod, attempts, err.message, gone=gone)
            self._attempted("error", started)
            return
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the store failed: the pod is tried again
            log.warning("binding %s to %s failed: %s", pod.key, node, err)
            self._bind_failed(pod, attempts, str(err), gone=False)
            self._attempted("error", started)
            return
        finally:
            self._binds.release()
        self._attempted("scheduled", started)
        self.scheduled += 1
        logs.scheduler_log.info(logs.infos("Successfully bound pod to node", pod=pod.key, node=node))
        self._event(placed.obj, events.NORMAL, "Scheduled",
                    f"Successfully assigned {pod.namespace}/{pod.name} to {node}")

    def _bind_failed(self, pod: PodInfo, attempts: int, message: str, *, gone: bool) -> None:
        """`handleBindingCycleError`: forget the assumed pod and retry it after a back-off."""
        self.snapshot.forget(pod.key, pod.uid)
        queued = self.queue.pods.get(pod.key)
        if gone or (queued is not None and queued.info.uid != pod.uid):
            return
        self.queue.requeue(pod, attempts=attempts)
        self._poke_timer()
        self._event(pod.obj, events.WARNING, "FailedScheduling", truncate(f"Binding rejected: {message}"))

    def _unschedulable(self, qp: queue.QueuedPod, err: framework.FitError,
                       nominated: dict[str, list[PodInfo]], tg: asyncio.TaskGroup) -> None:
        pod = qp.info
        nominate: str | None = None  # None: leave status.nominatedNodeName; "": clear it
        if err.num_nodes:
            outcome = self.preemption.preempt(pod, err, nominated)
            err.postfilter = outcome.message
            nominate = outcome.node
            if outcome.node:
                self._nominate(pod, outcome.node)
                tg.create_task(self._evict(pod, outcome.node, outcome.victims))
            elif outcome.node == "":
                self._unnominate(pod.key)
        message = err.message()
        self.queue.failed(qp, unschedulable=True, plugins=err.plugins())
        self._poke_timer()
        self._failures[pod.key] = (pod, "Unschedulable", message, nominate)
        self.status_queue.add(pod.key)

    async def _write_failure(self, key: str) -> None:
        """Record FailedScheduling and set PodScheduled=False (and any nomination) on the pod."""
        item = self._failures.pop(key, None)
        if item is None:
            return
        pod, reason, message, nominate = item
        if reason == "Unschedulable":
            await self.recorder.record(pod.obj, events.WARNING, "FailedScheduling", truncate(message))
        now = self.clock.now()

        def update(current: Obj) -> Obj:
            meta, spec = current["metadata"], current.get("spec") or {}
            if meta.get("uid") != pod.uid or spec.get("nodeName"):
                raise _Unchanged
            status = current.setdefault("status", {})
            old = status.get("conditions") or []
            conds = binding.pod_scheduled(old, "False", rfc3339(now), reason=reason, message=message)
            if conds == old and (nominate is None or (status.get("nominatedNodeName") or "") == nominate):
                raise _Unchanged
            status["conditions"] = conds
            if nominate:
                status["nominatedNodeName"] = nominate
            elif nominate == "":
                status.pop("nominatedNodeName", None)
            return current

        cached = self.pods.key(pod.namespace, pod.name)
        informer_obj = self._informers["pods"].cache.objects.get(cached) if self._informers["pods"].cache else None
        try:
            if informer_obj is not None:
                update({**informer_obj, "status": dict(informer_obj.get("status") or {})})  # cheap pre-check
            await self.pods.patch(pod.namespace, pod.name, update, _WRITE, subresource="status")
        except _Unchanged:
            pass
        except errors.APIError as err:
            if err.code != 404:
                raise

    # -- preemption

    def _nominate(self, pod: PodInfo, node: str) -> None:
        self._unnominate(pod.key)
        self.nominations[pod.key] = node
        self.nominated.setdefault(node, {})[pod.key] = pod

    def _unnominate(self, key: str) -> None:
        node = self.nominations.pop(key, None)
        if node is not None:
            pods = self.nominated.get(node)
            if pods is not None:
                pods.pop(key, None)
                if not pods:
                    del self.nominated[node]

    async def _evict(self, pod: PodInfo, node: str, victims: list[PodInfo]) -> None:
        try:
            await self._preempt_victims(pod, node, victims)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store failed: the preemptor's next attempt tries again
            log.exception("preempting on %s for %s failed", node, pod.key)

    async def _preempt_victims(self, pod: PodInfo, node: str, victims: list[PodInfo]) -> None:
        """`prepareCandidate`: mark each victim as preempted, delete it gracefully, tell it why;
        lower-priority pods nominated to the node lose their nomination."""
        now = rfc3339(self.clock.now())
        for victim in victims:
            def mark(current: Obj, victim: PodInfo = victim) -> Obj:
                if current["metadata"].get("uid") != victim.uid:
                    raise _Unchanged
                status = current.setdefault("status", {})
                conds = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"]
                conds.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                              "lastTransitionTime": now, "reason": "PreemptionByScheduler",
                              "message": f"{NAME}: preempting to accommodate a higher priority pod"})
                status["conditions"] = conds
                return current

            try:
                await self.pods.patch(victim.namespace, victim.name, mark, _WRITE, subresource="status")
                await self.pods.delete(victim.namespace, victim.name,
                                       deletion.DeleteOptions(preconditions={"uid": victim.uid}))
            except _Unchanged:
                continue
            except errors.APIError as err:
                if err.code not in (404, 409):
                    log.warning("preempting %s failed: %s", victim.key, err.message)
                continue
            await self.recorder.record(victim.obj, events.NORMAL, "Preempted",
                                       f"Preempted by pod {pod.uid} on node {node}")
        for other in list(self.nominated.get(node, {}).values()):
            if other.priority < pod.priority:
                self._unnominate(other.key)
                self.queue.requeue(other, attempts=0)
        self._poke_timer()

    # -- informer handlers (only update state and the queue; never await)

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        key = snapshot.pod_key(obj)
        spec = obj.get("spec") or {}
        meta = obj["metadata"]
        if kind == "DELETED" or (obj.get("status") or {}).get("phase") in _TERMINAL:
            self.queue.delete(key)
            self._unnominate(key)
            if self.snapshot.remove_pod(key) is not None:
                self._moved(self.queue.move_all(_room_related))  # its room is free
            return
        existing = self.snapshot.pods.get(key)
        node = spec.get("nodeName")
        if not node:
            if existing is not None and existing.uid == meta.get("uid"):
                return  # an older view of a pod we placed: pods never lose their node
            if spec.get("schedulerName", NAME) != NAME or "deletionTimestamp" in meta:
                self.queue.delete(key)
                self._unnominate(key)
                return
            if spec.get("schedulingGates"):
                # not to be scheduled until its gates are removed (SchedulingGates' PreEnqueue)
                self.queue.delete(key)
                cond = next((c for c in (obj.get("status") or {}).get("conditions") or ()
                             if c.get("type") == "PodScheduled"), None)
                if cond is None or cond.get("reason") != GATED:
                    self._failures[key] = (PodInfo(obj, 0), GATED, GATED_MESSAGE, None)
                    self.status_queue.add(key)
                return
            info = PodInfo(obj, self.listers.priority(obj))
            if info.nominated and key not in self.nominations:
                self._nominate(info, info.nominated)
            self.queue.add(info)
            self._work.set()
            return
        if key in self.queue.pods:
            self.queue.delete(key)  # bound by someone else
        if key in self.nominations:
            self._unnominate(key)
        if existing is not None and existing.uid == meta.get("uid") and existing.node == node \
                and existing.terminating == ("deletionTimestamp" in meta) and existing.labels == (meta.get("labels") or {}):
            if self.snapshot.is_assumed(key):
                existing.obj = obj  # our binding, as we assumed it: nothing else changed
                self.snapshot.confirm(key)
                return
            if existing.spec == spec:
                existing.obj = obj  # only its status moved
                return
        info = PodInfo(obj, self.listers.priority(obj))
        was_assumed = self.snapshot.is_assumed(key)
        self.snapshot.set_pod(info)
        if not was_assumed and (existing is None or existing.labels != info.labels):
            # a pod placed by someone else, or relabelled: affinity and spreading may change
            self._moved(self.queue.move_all(_affinity_related))

    def _on_node(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        if kind == "DELETED":
            self.snapshot.remove_node(obj["metadata"]["name"])
            return
        old = self.snapshot.nodes.get(obj["metadata"]["name"])
        old_labels = old.labels if old is not None else None
        if self.snapshot.set_node(obj):
            if old_labels is not None and old_labels != (obj["metadata"].get("labels") or {}):
                self.fw.index.labels_changed()
            self._moved(self.queue.move_all())

    def _namespace_labels_changed(self) -> None:
        self._moved(self.queue.move_all(lambda qp: "InterPodAffinity" in qp.plugins))

    def _moved(self, count: int) -> None:
        if count:
            self._poke_timer()
            if self.queue.has_active():
                self._work.set()

    # -- timers and events

    def _poke_timer(self) -> None:
        deadline = self.queue.next_deadline()
        if deadline is not None and (self._timer_deadline is None or deadline < self._timer_deadline):
            self._timer.set()

    async def _timers(self) -> None:
        """Move pods whose back-off ran out, and long-unschedulable ones, to active."""
        while True:
            self.queue.flush()
            if self.queue.has_active():
                self._work.set()
            self._timer.clear()
            deadline = self._timer_deadline = self.queue.next_deadline()
            if deadline is None:
                await self._timer.wait()
                continue
            delay = deadline - self.clock.monotonic()
            if delay <= 0:
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            poked = asyncio.ensure_future(self._timer.wait())
            try:
                await asyncio.wait({sleeper, poked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, poked):
                    t.cancel()

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self._events.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            pass  # dropped, as upstream's broadcaster drops when its queue is full

    async def _event_writer(self) -> None:
        """Write queued events, at most EVENT_QPS a second after a burst of EVENT_BURST."""
        tokens, last = float(EVENT_BURST), self.clock.monotonic()
        while True:
            obj, type_, reason, message = await self._events.get()
            now = self.clock.monotonic()
            tokens = min(EVENT_BURST, tokens + (now - last) * EVENT_QPS)
            last = now
            if tokens < 1:
                continue  # over the rate: dropped
            tokens -= 1
            try:
                await self.recorder.record(obj, type_, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception:  # events are best effort
                log.debug("event %s not recorded", reason, exc_info=True)


def _room_related(qp: queue.QueuedPod) -> bool:
    """Whether a pod leaving a node may help (upstream's queueing hints for a Pod/Delete)."""
    return not qp.plugins or bool(qp.plugins & {"NodeResourcesFit", "NodePorts", "InterPodAffinity",
                                                "PodTopologySpread", "DefaultPreemption"})


def _affinity_related(qp: queue.QueuedPod) -> bool:
    return bool(qp.plugins & {"InterPodAffinity", "PodTopologySpread"})
