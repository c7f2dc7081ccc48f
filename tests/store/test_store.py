"""The `Backend` contract, checked on every backend through the parametrised `store` fixture.

Revisions are only compared with revisions the test itself saw: on etcd they are global to a
server that earlier tests wrote to as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lks import store as stores
from lks.store import (
    Backend,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyValue,
    NotFound,
    RevisionConflict,
)
from lks.store.backends import memory, sqlite


async def take(events: AsyncIterator[Event], n: int) -> list[Event]:
    """The next `n` events (a hung watch fails the test instead of hanging it)."""
    got: list[Event] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            got.append(await anext(events))
    return got


async def test_create_and_get(store: Backend) -> None:
    rev = await store.create("/a", b"one")
    assert await store.get("/a") == KeyValue("/a", b"one", rev, rev)
    assert await store.get("/missing") is None
    assert await store.current_revision() == rev
    with pytest.raises(KeyExists) as exc:
        await store.create("/a", b"two")
    assert exc.value.key == "/a"
    assert (await store.get("/a")).value == b"one"


async def test_update(store: Backend) -> None:
    created = await store.create("/a", b"one")
    updated = await store.update("/a", b"two", mod_revision=created)
    assert updated > created
    current = KeyValue("/a", b"two", created, updated)
    assert await store.get("/a") == current

    with pytest.raises(RevisionConflict) as exc:
        await store.update("/a", b"stale", mod_revision=created)
    assert exc.value.current == current
    with pytest.raises(NotFound):
        await store.update("/missing", b"x", mod_revision=created)
    assert await store.get("/a") == current


async def test_delete(store: Backend) -> None:
    a = await store.create("/a", b"A")
    rev, deleted = await store.delete("/a")
    assert rev > a
    assert deleted == KeyValue("/a", b"A", a, a)
    assert await store.get("/a") is None
    with pytest.raises(NotFound):
        await store.delete("/a")

    b = await store.create("/b", b"B")
    with pytest.raises(RevisionConflict) as exc:
        await store.delete("/b", mod_revision=b - 1)
    assert exc.value.current == KeyValue("/b", b"B", b, b)
    rev, deleted = await store.delete("/b", mod_revision=b)
    assert deleted.mod_revision == b
    with pytest.raises(NotFound):
        await store.delete("/b", mod_revision=b)

    again = await store.create("/a", b"again")  # a deleted key can be created anew
    assert await store.get("/a") == KeyValue("/a", b"again", again, again)


async def test_list(store: Backend) -> None:
    revs = {key: await store.create(key, key.encode()) for key in ["/r/b", "/r/a", "/r/c", "/r2/x", "/s"]}

    listed = await store.list("/r/")
    assert [kv.key for kv in listed.items] == ["/r/a", "/r/b", "/r/c"]
    assert all(kv.value == kv.key.encode() for kv in listed.items)
    assert all(kv.create_revision == kv.mod_revision == revs[kv.key] for kv in listed.items)
    assert listed.revision == await store.current_revision()
    assert not listed.more

    page = await store.list("/r/", limit=2)
    assert [kv.key for kv in page.items] == ["/r/a", "/r/b"] and page.more
    page = await store.list("/r/", start="/r/b", limit=1)
    assert [kv.key for kv in page.items] == ["/r/b"] and page.more
    page = await store.list("/r/", start="/r/c", limit=1)
    assert [kv.key for kv in page.items] == ["/r/c"] and not page.more
    page = await store.list("/r/", start="/r/d")
    assert page.items == [] and not page.more
    page = await store.list("/r/", start="/a")  # a start below the prefix changes nothing
    assert len(page.items) == 3

    assert [kv.key for kv in (await store.list("/r")).items] == ["/r/a", "/r/b", "/r/c", "/r2/x"]
    assert [kv.key for kv in (await store.list("")).items] == ["/r/a", "/r/b", "/r/c", "/r2/x", "/s"]
    assert (await store.list("/nothing/")).items == []


async def test_list_at_old_revision(store: Backend) -> None:
    a = await store.create("/o/a", b"a1")
    b = await store.create("/o/b", b"b1")
    then = await store.current_revision()
    a2 = await store.update("/o/a", b"a2", mod_revision=a)
    await store.delete("/o/b")
    await store.create("/o/c", b"c1")

    old = await store.list("/o/", revision=then)
    assert old.revision == then
    assert old.items == [KeyValue("/o/a", b"a1", a, a), KeyValue("/o/b", b"b1", b, b)]
    limited = await store.list("/o/", revision=then, limit=1)
    assert limited.items == [KeyValue("/o/a", b"a1", a, a)] and limited.more

    now = await store.list("/o/")
    assert [(kv.key, kv.value) for kv in now.items] == [("/o/a", b"a2"), ("/o/c", b"c1")]
    assert now.items[0] == KeyValue("/o/a", b"a2", a, a2)

    assert await store.get("/o/a", revision=a) == KeyValue("/o/a", b"a1", a, a)
    assert await store.get("/o/b", revision=then) == KeyValue("/o/b", b"b1", b, b)
    assert await store.get("/o/b") is None
    assert await store.get("/o/c", revision=then) is None


async def test_count(store: Backend) -> None:
    for key in ["/n/a", "/n/b", "/n/c", "/m/a"]:
        await store.create(key, b"")
    assert await store.count("/n/") == 3
    await store.delete("/n/b")
    assert await store.count("/n/") == 2
    assert await store.count("/") == 3
    assert await store.count("/none/") == 0


async def test_future_revision(store: Backend) -> None:
    await store.create("/f", b"")
    future = await store.current_revision() + 100
    with pytest.raises(FutureRevision):
        await store.get("/f", revision=future)
    with pytest.raises(FutureRevision):
        await store.list("/", revision=future)
    with pytest.raises(FutureRevision):
        await store.compact(future)


async def test_watch_replays_history_then_follows_live(store: Backend) -> None:
    first = await store.create("/w/a", b"a")
    await store.create("/outside", b"")
    await store.create("/w/b", b"b")

    async with contextlib.aclosing(store.watch("/w/", start_revision=first)) as events:
        replayed = await take(events, 2)
        assert [(e.type, e.kv.key) for e in replayed] == [("PUT", "/w/a"), ("PUT", "/w/b")]
        live_revs = [await store.create(f"/w/live{i}", b"") for i in range(5)]
        await store.create("/outside2", b"")
        live = await take(events, 5)
        assert [e.revision for e in live] == live_revs
        assert [e.kv.key for e in live] == [f"/w/live{i}" for i in range(5)]


async def test_watch_started_during_writes_has_no_gap_or_duplicate(store: Backend) -> None:
    first = await store.create("/g/0", b"")
    written = [first]

    async def writer() -> None:
        for i in range(1, 60):
            written.append(await store.create(f"/g/{i}", b"x" * 100))

    async with contextlib.aclosing(store.watch("/g/", start_revision=first)) as events:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(writer())
            seen = await take(events, 60)
    assert [e.revision for e in seen] == written
    assert [e.kv.key for e in seen] == [f"/g/{i}" for i in range(60)]


async def test_watch_reports_put_and_delete_with_prev(store: Backend) -> None:
    r1 = await store.create("/e/k", b"v1")
    r2 = await store.update("/e/k", b"v2", mod_revision=r1)
    r3, _ = await store.delete("/e/k", mod_revision=r2)

    async with contextlib.aclosing(store.watch("/e/", start_revision=r1)) as events:
        created, updated, deleted = await take(events, 3)
        assert created == Event("PUT", KeyValue("/e/k", b"v1", r1, r1), None)
        assert updated == Event("PUT", KeyValue("/e/k", b"v2", r1, r2), KeyValue("/e/k", b"v1", r1, r1))
        assert deleted == Event("DELETE", KeyValue("/e/k", b"v2", r1, r3), KeyValue("/e/k", b"v2", r1, r2))
        assert deleted.revision == r3

        # and the same live
        r4 = await store.create("/e/k", b"v3")
        r5, _ = await store.delete("/e/k")
        recreated, gone = await take(events, 2)
        assert recreated == Event("PUT", KeyValue("/e/k", b"v3", r4, r4), None)
        assert gone == Event("DELETE", KeyValue("/e/k", b"v3", r4, r5), KeyValue("/e/k", b"v3", r4, r4))


async def test_compaction(store: Backend) -> None:
    r1 = await store.create("/c/k", b"v1")
    r2 = await store.update("/c/k", b"v2", mod_revision=r1)
    gone = await store.create("/c/gone", b"")
    gone_deleted, _ = await store.delete("/c/gone")
    r3 = await store.update("/c/k", b"v3", mod_revision=r2)

    await store.compact(r2)
    assert await store.compact_revision() == r2
    await store.compact(r1)  # compacting less than already done is a no-op
    assert await store.compact_revision() == r2

    with pytest.raises(Compacted) as exc:
        await store.get("/c/k", revision=r1)
    assert exc.value.revision == r1 and exc.value.compact_revision == r2
    with pytest.raises(Compacted):
        await store.list("/c/", revision=r1)
    assert await store.get("/c/k", revision=r2) == KeyValue("/c/k", b"v2", r1, r2)
    assert await store.get("/c/gone", revision=gone) == KeyValue("/c/gone", b"", gone, gone)
    assert (await store.list("/c/", revision=r2)).items == [KeyValue("/c/k", b"v2", r1, r2)]
    assert await store.get("/c/k") == KeyValue("/c/k", b"v3", r1, r3)

    with pytest.raises(Compacted):
        async with contextlib.aclosing(store.watch("/c/", start_revision=r1)) as events:
            await take(events, 1)
    async with contextlib.aclosing(store.watch("/c/", start_revision=r2)) as events:
        assert [e.revision for e in await take(events, 4)] == [r2, gone, gone_deleted, r3]

    # A deletion at exactly the compact revision is still watchable (etcd itself forgets it).
    await store.compact(gone_deleted)
    async with contextlib.aclosing(store.watch("/c/", start_revision=gone_deleted)) as events:
        assert [(e.type, e.revision) for e in await take(events, 2)] == [("DELETE", gone_deleted), ("PUT", r3)]

    await store.compact(r3)  # latest values survive compaction whatever their age
    assert await store.get("/c/k") == KeyValue("/c/k", b"v3", r1, r3)
    assert await store.get("/c/gone") is None
    assert [kv.key for kv in (await store.list("/c/")).items] == ["/c/k"]


async def test_concurrent_creates_all_land_in_order(store: Backend) -> None:
    before = await store.current_revision()
    revs = await asyncio.gather(*(store.create(f"/p/{i:03}", b"x" * 200) for i in range(500)))
    assert len(set(revs)) == 500 and min(revs) > before
    assert await store.count("/p/") == 500

    async with contextlib.aclosing(store.watch("/p/", start_revision=min(revs))) as events:
        seen = await take(events, 500)
    assert [e.revision for e in seen] == sorted(revs)
    assert {e.kv.key: e.revision for e in seen} == {f"/p/{i:03}": rev for i, rev in enumerate(revs)}

    await store.update("/p/000", b"changed", mod_revision=revs[0])
    old = await store.list("/p/", revision=max(revs))  # the history path, in key order too
    assert [kv.key for kv in old.items] == [f"/p/{i:03}" for i in range(500)]
    assert old.items[0].value == b"x" * 200


async def test_concurrent_conflicting_writes_fail_alone(store: Backend) -> None:
    results = await asyncio.gather(
        *(store.create("/x/same", str(i).encode()) for i in range(5)),
        store.create("/x/other", b""),
        return_exceptions=True,
    )
    same, other = results[:5], results[5]
    assert sum(isinstance(r, int) for r in same) == 1
    assert sum(isinstance(r, KeyExists) for r in same) == 4
    assert isinstance(other, int)

    rev = next(r for r in same if isinstance(r, int))
    updates = await asyncio.gather(
        *(store.update("/x/same", b"u", mod_revision=rev) for _ in range(5)), return_exceptions=True
    )
    winners = [r for r in updates if isinstance(r, int)]
    assert len(winners) == 1
    conflicts = [r for r in updates if isinstance(r, RevisionConflict)]
    assert len(conflicts) == 4
    assert all(c.current is not None and c.current.mod_revision == winners[0] for c in conflicts)


async def test_sqlite_reopen_keeps_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite, "COMPACT_CHUNK", 2)  # compaction in many small transactions
    url = f"sqlite://{tmp_path / 'nested' / 'dir' / 'lks.db'}"
    first = stores.open_store(url)
    await first.start()
    a = await first.create("/a", b"1")
    a2 = await first.update("/a", b"2", mod_revision=a)
    b = await first.create("/b", b"B")
    await first.delete("/b")
    c = await first.create("/c", b"C")
    await first.compact(a2)
    current = await first.current_revision()
    await first.close()

    second = stores.open_store(url)
    await second.start()
    try:
        assert await second.current_revision() == current
        assert await second.compact_revision() == a2
        assert await second.get("/a") == KeyValue("/a", b"2", a, a2)
        assert await second.get("/b") is None
        assert await second.get("/b", revision=b) == KeyValue("/b", b"B", b, b)
        assert (await second.list("/", revision=c)).items == [
            KeyValue("/a", b"2", a, a2),
            KeyValue("/c", b"C", c, c),
        ]
        with pytest.raises(Compacted):
            await second.get("/a", revision=a)
        async with contextlib.aclosing(second.watch("/", start_revision=a2)) as events:
            assert [e.revision for e in await take(events, 4)] == [a2, b, b + 1, c]
            d = await second.create("/d", b"")
            assert d == current + 1
            assert (await take(events, 1))[0].revision == d
        await second.compact(d)
    finally:
        await second.close()

    # Compacted to the latest revision, the log holds one row per live key and nothing else.
    with contextlib.closing(sqlite3.connect(tmp_path / "nested" / "dir" / "lks.db")) as db:
        assert db.execute("SELECT name FROM log ORDER BY id").fetchall() == [("/a",), ("/c",), ("/d",)]


async def test_sqlite_checkpoints_the_wal_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes run on the loop with SQLite's auto-checkpoint off: the store's own checkpoint
    thread copies the WAL into the database once enough was written."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_BYTES", 64 << 10)
    path = tmp_path / "lks.db"
    s = stores.open_store(f"sqlite://{path}")
    await s.start()
    try:
        empty = path.stat().st_size
        for i in range(16):  # 16 x 2 x 4 KiB: past the threshold
            await s.create(f"/k{i}", bytes(4096))
        db = s._database  # type: ignore[attr-defined]
        if db._checkpointing is not None:
            await db._checkpointing
        assert path.stat().st_size > empty + 4 * 4096  # rows are in the database file now
        kv = await s.get("/k15")
        assert kv is not None and kv.value == bytes(4096)
    finally:
        await s.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_lagging_watcher_is_ended_with_compacted(backend: str, tmp_path: Path) -> None:
    # etcd buffers slow watchers itself; our broadcaster drops them instead.
    store: Backend
    if backend == "memory":
        store = memory.MemoryBackend(watch_queue_limit=10)
    else:
        store = sqlite.SQLiteBackend(f"sqlite://{tmp_path / 'lks.db'}", watch_queue_limit=10)
    await store.start()
    try:
        first = await store.create("/l/0", b"")
        async with contextlib.aclosing(store.watch("/l/", start_revision=first)) as events:
            await take(events, 1)
            for i in range(1, 30):
                await store.create(f"/l/{i}", b"")
            with pytest.raises(Compacted):
                await take(events, 29)
    finally:
        await store.close()


async def test_close_ends_pending_watches(store: Backend) -> None:
    first = await store.create("/z", b"")
    events = store.watch("/", start_revision=first)
    await take(events, 1)
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)  # let the watch reach its wait
    await store.close()
    with contextlib.suppress(StopAsyncIteration):
        async with asyncio.timeout(5):
            await pending
