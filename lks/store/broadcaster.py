"""Watch fan-out for backends that are the only writer of their data (memory, sqlite).

Such a backend knows every change the moment it commits, so nothing polls: after each commit it
hands the committed events, in revision order, to `Broadcaster.publish`, which appends them to
the bounded queue of every subscription whose prefix matches. `stream` turns a subscription
plus a backend's history reader into the `Backend.watch` iterator: replay history from the
start revision, then follow the live queue, skipping what the replay already delivered. A
subscriber that lags too far is dropped and its stream raises `Compacted`, so the client
re-lists (kine's broadcaster drops lagging subscribers the same way).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from lks.store.types import Compacted, Event

# A watcher this many events behind is dropped: it costs memory for every change and is better
# served by a fresh list.
DEFAULT_QUEUE_LIMIT = 10_000

# How many history events a replay reads per call.
REPLAY_PAGE = 1_000


class Subscription:
    """One watcher's bounded queue of live events under `prefix`."""

    def __init__(self, prefix: str, limit: int):
        self.prefix = prefix
        self._limit = limit
        self._items: deque[Event] = deque()
        self._wake = asyncio.Event()
        self.lagged = False
        self.closed = False

    def push(self, events: Sequence[Event]) -> bool:
        """Queue `events`; False (and the subscription is dropped) when it would overflow."""
        if len(self._items) + len(events) > self._limit:
            self.lagged = True
            self._items.clear()
        else:
            self._items.extend(events)
        self._wake.set()
        return not self.lagged

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next_batch(self) -> list[Event] | None:
        """The queued events (waiting for some), or None once closed. Raises `LaggedError`."""
        while not self._items:
            if self.lagged:
                raise LaggedError
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        batch = list(self._items)
        self._items.clear()
        return batch


class LaggedError(Exception):
    """A subscription overflowed its queue and was dropped."""


class Broadcaster:
    """Fans committed events out to subscriptions by key prefix."""

    def __init__(self, *, queue_limit: int = DEFAULT_QUEUE_LIMIT):
        self.queue_limit = queue_limit
        self._by_prefix: dict[str, set[Subscription]] = {}
        # Distinct prefix lengths: matching an event costs one dict lookup per length, not one
        # startswith per subscriber, so thousands of watchers stay cheap.
        self._lengths: Counter[int] = Counter()

    def subscribe(self, prefix: str) -> Subscription:
        sub = Subscription(prefix, self.queue_limit)
        self._by_prefix.setdefault(prefix, set()).add(sub)
        self._lengths[len(prefix)] += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._by_prefix[sub.prefix]
        self._lengths[len(sub.prefix)] -= 1
        if not self._lengths[len(sub.prefix)]:
            del self._lengths[len(sub.prefix)]

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver committed `events` (in revision order) to every matching subscription."""
        if not self._by_prefix or not events:
            return
        matched: dict[str, list[Event]] = {}
        lengths = list(self._lengths)
        for event in events:
            key = event.kv.key
            for n in lengths:
                if n <= len(key) and key[:n] in self._by_prefix:
                    matched.setdefault(key[:n], []).append(event)
        for prefix, batch in matched.items():
            for sub in list(self._by_prefix[prefix]):
                if not sub.push(batch):
                    self.unsubscribe(sub)

    def close(self) -> None:
        """End every subscription; their streams finish normally."""
        for subs in list(self._by_prefix.values()):
            for sub in list(subs):
                sub.close()
                self.unsubscribe(sub)


# Reads history: events under the prefix with revision >= the given one, in revision order, at
# most REPLAY_PAGE of them; raises `Compacted` when that revision is no longer retained.
ReplayPage = Callable[[int], Awaitable[list[Event]]]


async def stream(
    broadcaster: Broadcaster,
    prefix: str,
    *,
    start_revision: int,
    replay: ReplayPage,
    compact_revision: Callable[[], Awaitable[int]],
) -> AsyncIterator[Event]:
    """The `Backend.watch` iterator: history from `start_revision`, then live events.

    Subscribing before reading history closes the gap: whatever commits after the subscription
    reaches the queue, whatever committed before it is in the history read. Events seen in both
    are skipped by revision.
    """
    sub = broadcaster.subscribe(prefix)
    try:
        last = start_revision - 1
        while True:
            page = await replay(last + 1)
            for event in page:
                last = event.revision
                yield event
            if len(page) < REPLAY_PAGE:
                break
        while True:
            try:
                batch = await sub.next_batch()
            except LaggedError:
                raise Compacted(last + 1, await compact_revision()) from None
            if batch is None:
                return
            for event in batch:
                if event.revision > last:
                    last = event.revision
                    yield event
    finally:
        broadcaster.unsubscribe(sub)
