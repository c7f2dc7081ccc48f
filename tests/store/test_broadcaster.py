"""The broadcaster delivers by prefix, and drops a subscriber that falls too far behind."""

from __future__ import annotations

import pytest

from lks.store import Event, KeyValue
from lks.store.broadcaster import Broadcaster, LaggedError


def put(key: str, rev: int) -> Event:
    return Event("PUT", KeyValue(key, b"", rev, rev))


async def test_delivers_by_prefix() -> None:
    b = Broadcaster()
    everything, pods, pod_a = b.subscribe(""), b.subscribe("/pods/"), b.subscribe("/pods/a")
    b.publish([put("/pods/a", 1), put("/nodes/n", 2), put("/pods/b", 3)])
    assert [e.revision for e in await everything.next_batch()] == [1, 2, 3]
    assert [e.revision for e in await pods.next_batch()] == [1, 3]
    assert [e.revision for e in await pod_a.next_batch()] == [1]


async def test_lagging_subscriber_is_dropped() -> None:
    b = Broadcaster(queue_limit=3)
    slow, fine = b.subscribe("/"), b.subscribe("/")
    b.publish([put("/a", 1), put("/b", 2)])
    assert len(await fine.next_batch()) == 2
    b.publish([put("/c", 3), put("/d", 4)])
    with pytest.raises(LaggedError):
        await slow.next_batch()
    assert [e.revision for e in await fine.next_batch()] == [3, 4]
    b.publish([put("/e", 5)])  # the dropped subscriber hears no more
    assert [e.revision for e in await fine.next_batch()] == [5]


async def test_close_ends_subscriptions() -> None:
    b = Broadcaster()
    sub = b.subscribe("/")
    b.close()
    assert await sub.next_batch() is None
