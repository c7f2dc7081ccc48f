"""The scheduling queue (upstream's `PriorityQueue` in `pkg/scheduler/backend/queue`): pods
waiting for a node, in three places.

- *active*: ready to be tried, highest priority first, then oldest first (PrioritySort);
- *backoff*: failed recently; each pod waits 1 s after its first failed attempt, doubling up
  to 10 s (`podInitialBackoffDuration`, `podMaxBackoffDuration`) before it is active again;
- *unschedulable*: fit nowhere; they stay until a cluster event that may help (a node added
  or changed, a bound pod deleted: `move_all`) or for at most 5 minutes
  (`podMaxInUnschedulablePodsDuration`).

A pod that failed while such an event happened during its own attempt goes to backoff rather
than unschedulable, so the event is not lost (upstream's `moveRequestCycle`). The queue is
plain data; `lks.controllers.scheduler.scheduler` pops from it and drives its timers.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from lks.controllers.scheduler.snapshot import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


class QueuedPod:
    __slots__ = ("key", "info", "attempts", "timestamp", "where", "seq", "cycle", "unschedulable_since",
                 "dirty", "plugins")

    def __init__(self, info: PodInfo, now: float):
        self.key = info.key
        self.info = info
        self.attempts = 0
        self.timestamp = now  # when it (re)entered the queue: the tie-break after priority
        self.where = ""
        self.seq = 0
        self.cycle = 0  # the queue's move counter when this attempt began
        self.unschedulable_since = 0.0
        self.dirty = False  # updated while being scheduled: try again rather than park it
        self.plugins: frozenset[str] = frozenset()  # what rejected it last time


class SchedulingQueue:
    def __init__(self, now: Callable[[], float], *, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF, max_unschedulable: float = MAX_UNSCHEDULABLE):
        self.now = now
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []  # (-priority, timestamp, seq, key)
        self._backoff: list[tuple[float, int, str]] = []  # (expiry, seq, key)
        self.unschedulable: dict[str, QueuedPod] = {}
        self.moves = 0  # bumped by every move_all: attempts that overlap one are retried soon
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.pods)

    def pending(self) -> int:
        """Pods in active: ready to be tried now."""
        return sum(1 for qp in self.pods.values() if qp.where == ACTIVE)

    # -- placing

    def _to_active(self, qp: QueuedPod) -> None:
        qp.where = ACTIVE
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, qp.seq, qp.key))

    def _to_backoff(self, qp: QueuedPod) -> None:
        expiry = self.backoff_expiry(qp)
        if expiry <= self.now():
            self._to_active(qp)
            return
        qp.where = BACKOFF
        qp.seq = next(self._seq)
        heapq.heappush(self._backoff, (expiry, qp.seq, qp.key))

    def _to_unschedulable(self, qp: QueuedPod) -> None:
        qp.where = UNSCHEDULABLE
        qp.unschedulable_since = self.now()
        self.unschedulable[qp.key] = qp

    def backoff_expiry(self, qp: QueuedPod) -> float:
        if qp.attempts == 0:
            return qp.timestamp
        duration = self.initial_backoff
        for _ in range(1, qp.attempts):
            duration = min(duration * 2, self.max_backoff)
        return qp.timestamp + min(duration, self.max_backoff)

    # -- informer side

    def add(self, info: PodInfo) -> None:
        """A pending pod, new or a new version of one already queued."""
        qp = self.pods.get(info.key)
        if qp is None:
            qp = self.pods[info.key] = QueuedPod(info, self.now())
            self._to_active(qp)
            return
        changed = qp.info.spec != info.spec or qp.info.labels != info.labels
        qp.info = info
        if qp.where == IN_FLIGHT:
            qp.dirty = qp.dirty or changed
        elif qp.where == UNSCHEDULABLE and changed:
            # its own update may make it fit (upstream: the pod's update event)
            del self.unschedulable[qp.key]
            self._to_backoff(qp)
        elif qp.where == ACTIVE:
            self._to_active(qp)  # re-push: its priority may have changed; the old entry goes stale

    def delete(self, key: str) -> None:
        qp = self.pods.pop(key, None)
        if qp is not None and qp.where == UNSCHEDULABLE:
            del self.unschedulable[key]
        if qp is not None:
            qp.where = ""

    # -- scheduler side

    def pop(self) -> QueuedPod | None:
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is None or qp.where != ACTIVE or qp.seq != seq:
                continue  # stale entry
            qp.where = IN_FLIGHT
            qp.cycle = self.moves
            qp.attempts += 1
            qp.dirty = False
            return qp
        return None

    def done(self, key: str) -> None:
        """The pod got a node (assumed): it leaves the queue."""
        qp = self.pods.get(key)
        if qp is not None and qp.where == IN_FLIGHT:
            del self.pods[key]
            qp.where = ""

    def failed(self, qp: QueuedPod, *, unschedulable: bool, plugins: frozenset[str] = frozenset()) -> None:
        """An attempt ended without a node: park it (unschedulable) or retry after its back-off."""
        if self.pods.get(qp.key) is not qp:
            return  # deleted meanwhile
        qp.timestamp = self.now()
        qp.plugins = plugins
        if unschedulable and not qp.dirty and qp.cycle == self.moves:
            self._to_unschedulable(qp)
        else:
            self._to_backoff(qp)

    def requeue(self, info: PodInfo, *, attempts: int = 1) -> None:
        """A pod whose binding failed comes back, after a back-off."""
        qp = self.pods.get(info.key)
        if qp is None:
            qp = self.pods[info.key] = QueuedPod(info, self.now())
        qp.info = info
        qp.attempts = max(qp.attempts, attempts)
        qp.timestamp = self.now()
        if qp.where == UNSCHEDULABLE:
            del self.unschedulable[qp.key]
        self._to_backoff(qp)

    def move_all(self, wanted: Callable[[QueuedPod], bool] | None = None) -> int:
        """A cluster event that may help: unschedulable pods (those `wanted` says the event
        concerns) go to active, or to backoff while their back-off lasts."""
        self.moves += 1
        moved = [qp for qp in self.unschedulable.values() if wanted is None or wanted(qp)]
        for qp in moved:
            del self.unschedulable[qp.key]
            self._to_backoff(qp)
        return len(moved)

    def flush(self) -> None:
        """Timers: back-offs that ran out, and pods unschedulable for too long."""
        now = self.now()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.where == BACKOFF and qp.seq == seq:
                self._to_active(qp)
        stale = list(itertools.takewhile(lambda qp: now - qp.unschedulable_since >= self.max_unschedulable,
                                         self.unschedulable.values()))
        for qp in stale:
            del self.unschedulable[qp.key]
            self._to_backoff(qp)

    def has_active(self) -> bool:
        return bool(self._active)

    def next_deadline(self) -> float | None:
        """When `flush` has something to do next (None: nothing is waiting on a timer)."""
        deadlines = []
        while self._backoff:
            expiry, seq, key = self._backoff[0]
            qp = self.pods.get(key)
            if qp is not None and qp.where == BACKOFF and qp.seq == seq:
                deadlines.append(expiry)
                break
            heapq.heappop(self._backoff)
        if self.unschedulable:
            # insertion order is arrival order, so the first one has waited longest
            first = next(iter(self.unschedulable.values()))
            deadlines.append(first.unschedulable_since + self.max_unschedulable)
        return min(deadlines) if deadlines else None
