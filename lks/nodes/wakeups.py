"""When each pod of a cluster needs its next sync: the containers of a simulated runtime start,
exit and become ready at known times, so the pod workers (`lks.nodes.pods`) ask to be woken
then. One heap and one task serve a whole cluster (as `lks.nodes.agent.Heartbeats` does for
leases), never a sleeping task per pod, and every wait goes through the injectable clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable

from lks import tasks
from lks.clock import Clock


class Wakeups:
    """Due times by key. `fire(key)` runs when a key is due (at once if already due); a key
    keeps only its earliest time, since waking early is harmless (the sync reschedules)."""

    def __init__(self, *, clock: Clock, fire: Callable[[str], None]):
        self.clock = clock
        self.fire = fire
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []  # may hold stale entries
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._sleeping_until = math.inf
        self._task: asyncio.Task[None] | None = None

    def at(self, key: str, when: float) -> None:
        if when <= self.clock.now():
            self._due.pop(key, None)
            self.fire(key)
            return
        due = self._due.get(key)
        if due is not None and due <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        if when < self._sleeping_until:
            self._changed.set()

    def cancel(self, key: str) -> None:
        self._due.pop(key, None)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pod wakeups")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.cancel(task)

    async def _sleep_until(self, when: float) -> None:
        # the time is read when the sleep starts, not when it was asked for: a manual clock
        # moved in between must not push the wake-up later
        await self.clock.sleep(when - self.clock.now())

    async def _run(self) -> None:
        heap = self._heap
        while True:
            while heap and self._due.get(heap[0][2]) != heap[0][0]:
                heapq.heappop(heap)  # rescheduled or cancelled since
            now = self.clock.now()
            if heap and heap[0][0] <= now:
                while heap and heap[0][0] <= now:
                    when, _, key = heapq.heappop(heap)
                    if self._due.get(key) == when:
                        del self._due[key]
                        self.fire(key)
                continue
            self._changed.clear()
            self._sleeping_until = heap[0][0] if heap else math.inf
            waits = [asyncio.ensure_future(self._changed.wait())]
            if heap:
                waits.append(asyncio.ensure_future(self._sleep_until(heap[0][0])))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                self._sleeping_until = math.inf
