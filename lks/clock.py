"""The injectable clock every timer in lks reads.

Production code asks a `Clock` for the time and sleeps through it, never through `time` or
`asyncio.sleep` directly, so tests can run minutes of cluster life in milliseconds with a
`ManualClock` and users can ask for instant or realistic timings.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime


class Clock:
    """Wall time and real sleeps."""

    scale = 1.0  # how many of this clock's seconds pass in one real second

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class ScaledClock(Clock):
    """Time that runs `scale` times faster than the wall from the moment it is made (`lks up
    --time-scale`): a week of maintenance windows or drain minutes passes in minutes. Only what
    reads this clock speeds up; certificates, tokens and the hosted clusters keep wall time."""

    def __init__(self, scale: float):
        if scale <= 0:
            raise ValueError(f"time scale must be positive, not {scale}")
        self.scale = scale
        self._wall0, self._mono0 = time.time(), time.monotonic()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.scale

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.scale)


class ManualClock(Clock):
    """A clock that only moves when a test calls `advance`."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        # A deadline already reached is not waited for: a loop that computed its next deadline
        # before an `advance` and sleeps after it would otherwise sleep until the next one.
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)


def rfc3339(ts: float) -> str:
    """Kubernetes' timestamp format: RFC 3339 in UTC at second precision."""
    second = int(ts)
    if second != _last_rfc3339[0]:  # every write stamps the same second many times over
        _last_rfc3339[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return _last_rfc3339[1]


_last_rfc3339: list = [None, ""]


def iso8601(ts: float) -> str:
    """ARM's timestamp format: UTC with fractional seconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "1h0m0s", "1.5s", "300ms", "0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                return sign + _fraction(u, size) + unit
    text = _fraction(u % 60_000_000_000, 1_000_000_000) + "s"
    minutes = u // 60_000_000_000
    if minutes:
        text = f"{minutes % 60}m" + text
        if minutes >= 60:
            text = f"{minutes // 60}h" + text
    return sign + text


def _fraction(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    digits = f"{frac:0{len(str(size)) - 1}d}".rstrip("0")
    return f"{whole}.{digits}"
