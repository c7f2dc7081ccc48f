"""The Events kubelet records about pods (Pulling, Pulled, Created, Started, Killing, BackOff),
worded as upstream's, and the background sink that records them.

Events are best effort upstream: kubelet's broadcaster queues them and drops them when 1000
wait. Here too a pod sync (`lks.nodes.pods`) never waits for its events: they go to a bounded
queue that a few workers drain through each node's `lks.controllers.events.EventRecorder`, each
event written as the kubelet of its node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lks.clock import go_duration as go_duration_ns
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.kube.authn import User, acting_as
from lks.nodes.runtime import Container, image_size

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Event = tuple[str, str, str]  # (type, reason, message)

QUEUE_LIMIT = 10_000  # events waiting beyond this are dropped
WORKERS = 8


def started(spec: Obj, container: Container, *, pulled: bool) -> list[Event]:
    """What kubelet says when it starts a container, after pulling its image or not."""
    name, image = spec["name"], spec.get("image") or ""
    if pulled:
        took = go_duration(container.started - container.created)
        out = [(NORMAL, "Pulling", f'Pulling image "{image}"'),
               (NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                                  f"Image size: {image_size(container.image)} bytes.")]
    else:
        out = [(NORMAL, "Pulled", f'Container image "{image}" already present on machine')]
    return out + [(NORMAL, "Created", f"Created container: {name}"), (NORMAL, "Started", f"Started container {name}")]


def killing(container: Container) -> Event:
    return (NORMAL, "Killing", f"Stopping container {container.name}")


def back_off(pod: Obj, name: str) -> Event:
    return (WARNING, "BackOff", f"Back-off restarting failed container {name} in pod {pod_ref(pod)}")


def pod_ref(pod: Obj) -> str:
    """A pod as kubelet names it in messages: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


def go_duration(seconds: float) -> str:
    """A duration as kubelet prints it: a Go `time.Duration` truncated to milliseconds (12ms, 1.5s, 1m20s)."""
    return go_duration_ns(int(seconds * 1000) * 1_000_000)


class EventSink:
    """Records events in the background, `WORKERS` at a time."""

    def __init__(self, *, workers: int = WORKERS, limit: int = QUEUE_LIMIT):
        self._queue: asyncio.Queue[tuple[EventRecorder, User | None, Obj, Event]] = asyncio.Queue(limit)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def add(self, recorder: EventRecorder, obj: Obj, events: list[Event], *, user: User | None = None) -> None:
        """Record `events` about `obj` through `recorder`, written as `user` (the node's kubelet)."""
        for event in events:
            try:
                self._queue.put_nowait((recorder, user, obj, event))
            except asyncio.QueueFull:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("kubelet events are dropped: %d waiting (%d dropped so far)",
                                self._queue.qsize(), self.dropped)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name="kubelet events") for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _work(self) -> None:
        while True:
            recorder, user, obj, (type_, reason, message) = await self._queue.get()
            with acting_as(user):
                await recorder.record(obj, type_, reason, message)  # never raises an API error
