"""Kubelet's pod actions, for the pod workers (`lks.nodes.pods`, whose mixin this is): run the
sandbox, start init containers in turn (sidecars stay running), then every container; restart
exited ones per `restartPolicy` with the crash loop's back-off; stop containers; and say when
the pod's status will next change (`lks.nodes.wakeups`). Each action asks the runtime
(`lks.nodes.runtime`) and records the outcome in the pod's `lks.nodes.podrecords.PodRecord`.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

from lks.nodes import podevents, podrecords, podstatus
from lks.nodes import runtime as runtimes
from lks.nodes.podrecords import NodeRecord, PodRecord

if TYPE_CHECKING:
    from lks.nodes.pods import PodWorkers

log = logging.getLogger("lks.nodes.pods")

Obj = dict[str, Any]

FIRST_BACKOFF, MAX_BACKOFF = 10.0, 300.0  # kubelet's crash loop back-off: 10 s doubling to 5 min
BACKOFF_RESET = 2 * MAX_BACKOFF  # a container that ran this long starts its back-off over


class PodActions:
    """`_advance` (kubelet's `computePodActions` and what it calls), `_stop_containers` and
    `_schedule`, as methods of `PodWorkers`."""

    async def _advance(self: PodWorkers, pod: Obj, rec: PodRecord, node: NodeRecord, now: float,
                       events: list[podevents.Event]) -> None:
        """Kubelet's `computePodActions`: the sandbox, then init containers one at a time
        (sidecars stay running), then every container; exited ones restart per policy."""
        spec = pod["spec"]
        if rec.sandbox is None:
            try:
                rec.sandbox = await rec.runtime.run_sandbox(pod, node=node.name, pod_cidr=self._pod_cidr(node.name),
                                                            host_ip=node.host_ip)
            except runtimes.NetworkNotReady as err:
                log.debug("pod %s waits: %s", rec.key, err)
                self._no_network.setdefault(node.name, set()).add(rec.key)
                return
        policy = spec.get("restartPolicy") or "Always"
        containers = spec.get("containers") or []
        initialized = any(c["name"] in rec.containers for c in containers)
        for c in spec.get("initContainers") or ():
            cr = rec.containers.get(c["name"])
            if cr is None or cr.current is None:
                if not held_back(rec, cr, now):
                    await self._start_container(pod, rec, node, c, events, init=True)
                return
            cur = cr.current
            if c.get("restartPolicy") == "Always":  # a sidecar: the next one starts once it has
                if cur.exited(now):
                    await self._restart(pod, rec, node, c, cr, now, events, init=True)
                    if not initialized:
                        return
                elif not initialized and now < cur.started + podstatus.probe_delays(c)[0]:
                    return
                continue
            if not cur.exited(now):
                return
            if cur.exit_code == 0:
                continue
            if policy != "Never":
                await self._restart(pod, rec, node, c, cr, now, events, init=True)
            return
        for c in containers:
            cr = rec.containers.get(c["name"])
            if cr is None or cr.current is None:
                if not held_back(rec, cr, now):
                    await self._start_container(pod, rec, node, c, events, init=False)
                continue
            cur = cr.current
            if cur.exited(now) and (policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0)):
                await self._restart(pod, rec, node, c, cr, now, events, init=False)

    async def _start_container(self: PodWorkers, pod: Obj, rec: PodRecord, node: NodeRecord, spec: Obj,
                               events: list[podevents.Event], *, init: bool, restart: bool = False) -> None:
        assert rec.sandbox is not None
        name, image = spec["name"], spec.get("image") or ""
        policy = spec.get("imagePullPolicy") or "IfNotPresent"
        pull = policy == "Always" or (policy == "IfNotPresent" and not rec.runtime.has_image(node.name, image))
        cr = rec.containers.get(name)
        if cr is None:
            cr = rec.containers[name] = podstatus.Containers()
        try:
            container = await rec.runtime.start_container(rec.sandbox, pod, spec, init=init, restart=restart)
        except runtimes.CreateError as err:
            # kubelet tries again on later syncs; here after the crash loop's back-off steps
            now = self.clock.now()
            delay = min(FIRST_BACKOFF * 2 ** cr.backoff, MAX_BACKOFF)
            cr.backoff += 1
            cr.waiting, cr.retry_at = (err.reason, err.message), now + delay
            if self.events:
                events.append((podevents.WARNING, *err.event))
            podrecords.note(rec, now)
            podrecords.note(rec, cr.retry_at)
            return
        if restart:
            cr.previous = cr.current
            cr.restarts += 1
        cr.current, cr.waiting = container, None
        podrecords.note(rec, container.started)
        if self.events:
            events.extend(podevents.started(spec, container, pulled=pull))

    async def _restart(self: PodWorkers, pod: Obj, rec: PodRecord, node: NodeRecord, spec: Obj,
                       cr: podstatus.Containers, now: float, events: list[podevents.Event], *, init: bool) -> None:
        """Restart an exited container, or hold it back (CrashLoopBackOff): the first restart
        is immediate, then 10 s doubling to 5 min after each exit."""
        cur = cr.current
        assert cur is not None and cur.exits is not None
        if cur.exits - cur.started >= BACKOFF_RESET:
            cr.backoff = 0
        delay = 0.0 if cr.backoff == 0 else min(FIRST_BACKOFF * 2 ** (cr.backoff - 1), MAX_BACKOFF)
        cr.retry_at = max(cur.exits + delay, cr.retry_at if cr.waiting is not None else 0.0)
        if now < cr.retry_at:
            if cr.waiting is None:
                cr.waiting = ("CrashLoopBackOff", f"back-off {podevents.go_duration(delay)} restarting failed "
                                                  f"container={spec['name']} pod={podevents.pod_ref(pod)}")
                events.append(podevents.back_off(pod, spec["name"]))
                podrecords.note(rec, now)  # write the waiting state now
            podrecords.note(rec, cr.retry_at)
            return
        cr.backoff += 1
        await self._start_container(pod, rec, node, spec, events, init=init, restart=True)

    async def _stop_containers(self: PodWorkers, pod: Obj, rec: PodRecord, live: list[runtimes.Container],
                               grace: float, events: list[podevents.Event]) -> None:
        for cr in rec.containers.values():
            cr.waiting = None  # nothing restarts any more
        events.extend(podevents.killing(c) for c in live if not c.stopping)
        if rec.sandbox is not None and live:
            await rec.runtime.stop_containers(rec.sandbox, pod, live, grace=grace)
        podrecords.note(rec, self.clock.now())
        for c in live:
            if c.exits is not None:
                podrecords.note(rec, c.exits)

    def _schedule(self: PodWorkers, pod: Obj, rec: PodRecord, now: float) -> None:
        """Wake the pod when its status will change: a container starts, exits, becomes
        started or ready (probe delays), or its back-off ends; or at once if an action did."""
        due, rec.next = rec.next, None
        spec = pod["spec"]
        for c in itertools.chain(spec.get("initContainers") or (), spec.get("containers") or ()):
            cr = rec.containers.get(c["name"])
            if cr is None:
                continue
            if cr.current is None:
                if cr.waiting is not None and cr.retry_at > now and (due is None or cr.retry_at < due):
                    due = cr.retry_at
                continue
            cur = cr.current
            times = [cur.next_change(now), cr.retry_at if cr.waiting else None]
            if "readinessProbe" in c or "startupProbe" in c:
                started_after, ready_after = podstatus.probe_delays(c)
                times += [cur.started + started_after, cur.started + ready_after]
            for t in times:
                if t is not None and t > now and (due is None or t < due):
                    due = t
        if due is not None:
            self._wakeups.at(rec.key, due)


def held_back(rec: PodRecord, cr: podstatus.Containers | None, now: float) -> bool:
    """Whether a container that could not be created waits for its next try."""
    if cr is None or cr.waiting is None or now >= cr.retry_at:
        return False
    podrecords.note(rec, cr.retry_at)
    return True

