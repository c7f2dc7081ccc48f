"""Keeps a store's history bounded in time, as kube-apiserver's compactor does for etcd.

Every `interval` the compactor notes (clock time, current revision), then compacts the store to
the newest revision it noted at least `retention` seconds ago. So watches and reads can resume
from any revision younger than `retention` (five minutes by default, like kube-apiserver), and
older history does not pile up. It works on any `Backend` and reads time only from an
injectable `Clock`, so tests drive it with a `ManualClock` and `run_once`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from lks import clock as clocks
from lks.store.types import Backend, StoreError

log = logging.getLogger(__name__)


class Compactor:
    def __init__(
        self,
        *,
        store: Backend,
        clock: clocks.Clock | None = None,
        retention: float = 300.0,
        interval: float = 60.0,
    ):
        self.store = store
        self.clock = clock or clocks.Clock()
        self.retention = retention
        self.interval = interval
        self._marks: deque[tuple[float, int]] = deque()  # (time, revision), oldest first
        self._compacted = 0
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int | None:
        """Note the current revision and compact what is old enough; the revision compacted to,
        or None when nothing was."""
        now = self.clock.now()
        self._marks.append((now, await self.store.current_revision()))
        target = None
        while self._marks and self._marks[0][0] <= now - self.retention:
            target = self._marks.popleft()[1]
        if target is None or target <= self._compacted:
            return None
        await self.store.compact(target)
        self._compacted = target
        return target

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except StoreError as exc:  # e.g. etcd unreachable for a moment: try next round
                log.warning("store compaction failed: %s", exc)
            except Exception:  # a bug must not end compaction for good
                log.exception("store compaction failed")
            await self.clock.sleep(self.interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lks-store-compactor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # Our own cancellation of the task ends here; re-raise if we are being cancelled too.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
