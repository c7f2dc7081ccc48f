"""A work queue of object keys, as client-go's: a key queued many times is processed once, a
key is never processed by two workers at once, and a failed key comes back with exponential
back-off. Controllers' event handlers only `add` keys; `sync(key)` does the work.

Each queue keeps client-go's workqueue metrics as plain numbers (adds, retries, time queued,
time worked); `lks.observability` exposes those of a cluster's controller manager.

Workers are tasks that exist only while there is work: one starts when a key is queued and no
worker is free to take it (up to `workers`), and ends when the queue runs dry. An idle cluster
has ~70 queues; 4 parked workers each cost it ~0.3 MiB (bench/density_bench.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from lks.clock import Clock
from lks.observability.histogram import WORKQUEUE_BUCKETS, Histogram

log = logging.getLogger(__name__)

K = TypeVar("K")

BASE_DELAY = 0.005
MAX_DELAY = 60.0


class WorkQueue(Generic[K]):
    def __init__(self, sync: Callable[[K], Awaitable[None]], *, name: str, workers: int = 4,
                 clock: Clock | None = None):
        self.sync = sync
        self.name = name
        self.clock = clock or Clock()
        self._queue: collections.deque[K] = collections.deque()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()  # added while being processed: run once more after
        self._failures: dict[K, int] = {}
        self._workers = workers
        self._running = 0  # workers started and not yet ended
        self._context: contextvars.Context | None = None  # what start() ran in: its workers' (None: stopped)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        # workqueue_* metrics (real time, as client-go's)
        self.adds = 0
        self.retries = 0
        self.queue_duration = Histogram(WORKQUEUE_BUCKETS)
        self.work_duration = Histogram(WORKQUEUE_BUCKETS)
        self._since: dict[K, float] = {}  # queued keys: since when
        self._working: dict[K, float] = {}  # keys being processed: since when

    def add(self, key: K) -> None:
        self.adds += 1
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._since[key] = time.perf_counter()
            self._queue.append(key)
            self._spawn()

    def add_after(self, key: K, seconds: float) -> None:
        async def later() -> None:
            await self.clock.sleep(seconds)
            self.add(key)

        task = asyncio.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def start(self) -> None:
        """Process keys from now on, in workers that run in the caller's context (acting as
        the controller whose `start` this is)."""
        self._context = contextvars.copy_context()
        self._spawn()

    def _spawn(self) -> None:
        """Start workers for the queued keys that no running worker will take."""
        if self._context is None:
            return
        while self._running < self._workers and self._running - len(self._active) < len(self._queue):
            self._running += 1
            task = asyncio.create_task(self._work(), name=f"{self.name} worker", context=self._context.copy())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self._context = None
        for task in [*self._tasks, *self._timers]:
            task.cancel()
        for task in [*self._tasks, *self._timers]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = set()

    def idle(self) -> bool:
        return not self._queued and not self._active

    def depth(self) -> int:
        return len(self._queued)

    def unfinished_seconds(self) -> tuple[float, float]:
        """(the work in progress, in seconds summed; the longest running of it)."""
        now = time.perf_counter()
        ages = [now - t for t in self._working.values()]
        return sum(ages), max(ages, default=0.0)

    async def _work(self) -> None:
        try:
            while self._queue and self._context is not None:
                await self._process(self._queue.popleft())
        finally:
            self._running -= 1  # at once, as the queue is seen empty: add() then starts another

    async def _process(self, key: K) -> None:
        self._queued.discard(key)
        self._active.add(key)
        started = self._working[key] = time.perf_counter()
        since = self._since.pop(key, None)
        if since is not None:
            self.queue_duration.observe(started - since)
        try:
            await self.sync(key)
            self._failures.pop(key, None)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.retries += 1
            n = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(BASE_DELAY * 2 ** n, MAX_DELAY)
            log.warning("%s: syncing %r failed (attempt %d), retrying in %.3fs", self.name, key, n, delay,
                        exc_info=n == 1 or n % 10 == 0)
            self.add_after(key, delay)
        finally:
            self._active.discard(key)
            self._working.pop(key, None)
            self.work_duration.observe(time.perf_counter() - started)
            if key in self._again:
                self._again.discard(key)
                self.add(key)
