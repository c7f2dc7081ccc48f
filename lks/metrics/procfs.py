"""What Process pods' containers really use, read from /proc (lks runs no cgroups): a container
is the session its main process leads (`lks.nodes.children` starts each one with
`start_new_session`), so its cpu time is the sum over the session's live processes of their
own and their reaped children's time (`utime + stime + cutime + cstime`: a child that exits
and is waited for adds its time to its parent's `c*` fields, so nothing is counted twice), and
its memory the sum of their resident sets. A process that leaves the session (`setsid`) or is
orphaned to init is no longer counted, as it would leave a cgroup-less container.

`Sampler` keeps the last two samples of each container (by container id) and turns them into
a rate, as metrics-server does with two scrapes of kubelet's cumulative counters;
`lks.metrics.source` decides when to sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class Totals:
    cpu: float  # cpu seconds used so far (cumulative)
    rss: int  # bytes resident now


def _parse_stat(text: str) -> tuple[int, float, int] | None:
    """(session id, cumulative cpu seconds, rss bytes) from a /proc/<pid>/stat line."""
    # the command (field 2) is in parentheses and may hold spaces or ")": split after the last ")"
    end = text.rfind(")")
    if end < 0:
        return None
    fields = text[end + 2:].split()
    try:  # fields[0] is field 3 (state): session is 6, utime..cstime 14..17, rss 24
        session = int(fields[3])
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        rss = int(fields[21])
    except (IndexError, ValueError):
        return None
    return session, ticks / TICKS, max(rss, 0) * PAGE


def scan(root: Path = Path("/proc")) -> dict[int, Totals]:
    """Every session's totals (by session id), from one pass over /proc."""
    sums: dict[int, list[float]] = {}
    try:
        entries = os.listdir(root)
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"{root}/{entry}/stat") as f:
                parsed = _parse_stat(f.read())
        except OSError:  # gone meanwhile
            continue
        if parsed is None:
            continue
        session, cpu, rss = parsed
        acc = sums.get(session)
        if acc is None:
            sums[session] = [cpu, rss]
        else:
            acc[0] += cpu
            acc[1] += rss
    return {sid: Totals(cpu, int(rss)) for sid, (cpu, rss) in sums.items()}


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # the cluster clock's time of the sample
    real: float  # the real (monotonic) time of it: cpu seconds are real ones, whatever the clock's scale
    pid: int  # the container's main process then
    totals: Totals


@dataclass(frozen=True, slots=True)
class Rate:
    cpu: float  # cores over the window
    memory: int  # bytes at its end
    timestamp: float
    window: float


class Sampler:
    """The last two samples per container; `rate` is the usage between them."""

    def __init__(self) -> None:
        self._samples: dict[str, tuple[Sample | None, Sample]] = {}  # container id -> (previous, last)

    def record(self, containers: dict[str, int], sessions: dict[int, Totals], at: float,
               real: float | None = None) -> None:
        """Take a sample at `at` (real time `real`, by default `at`) of each running container
        (`containers`: id -> main pid) from a `scan`; containers not given are forgotten."""
        real = at if real is None else real
        kept: dict[str, tuple[Sample | None, Sample]] = {}
        for cid, pid in containers.items():
            totals = sessions.get(pid)
            if totals is None:  # exited meanwhile
                continue
            now = Sample(at, real, pid, totals)
            old = self._samples.get(cid)
            if old is not None and old[1].pid == pid and old[1].real < real:
                kept[cid] = (old[1], now)
            elif old is not None and old[1].pid == pid:
                kept[cid] = old  # same instant: keep the window
            else:
                kept[cid] = (None, now)
        self._samples = kept

    def __len__(self) -> int:
        return len(self._samples)

    def last(self, cid: str) -> Sample | None:
        found = self._samples.get(cid)
        return found[1] if found is not None else None

    def complete(self, cid: str) -> bool:
        found = self._samples.get(cid)
        return found is not None and found[0] is not None

    def rate(self, cid: str) -> Rate | None:
        """Usage over the last window, None before a container has two samples."""
        found = self._samples.get(cid)
        if found is None or found[0] is None:
            return None
        prev, last = found
        window = last.real - prev.real
        # a process that exits takes its time along unless reaped in the session: never negative
        cpu = max(last.totals.cpu - prev.totals.cpu, 0.0) / window
        return Rate(cpu, last.totals.rss, last.at, window)
