"""The SQLite backend, kine-like: one append-only table where every write is a new row.

A row's id is the revision of the write that made it; creates, updates and deletes (as
tombstones) all append. Two small tables sit beside the log: `latest` maps each live key to its
newest row, so listing and counting the current state costs one index range instead of a
`MAX(id) GROUP BY name` over history, and `meta` keeps the compact revision. The SQL itself
lives in `sqllog`; this module owns the threads and the asyncio side.

This process is the only writer, which shapes everything:

- Writes queue up for one writer thread that applies all pending ones in one transaction and
  commits once (group commit). Each write is decided on its own against the state including the
  earlier writes of its batch, so a conflict never aborts its neighbours.
- Reads run on their own connections and threads, batched the same way (one thread hop for
  all the reads queued meanwhile); WAL lets them proceed while the writer commits.
- Watches never poll: after each commit the batch's events go to a `broadcaster`, and a new
  watch replays history rows from the table before following that live stream.

URL: `sqlite:///abs/path/file.db`. Registers the `sqlite` scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from lks import store
from lks.store import broadcaster
from lks.store.backends import sqllog
from lks.store.types import Event, FutureRevision, KeyValue, ListResult, StoreError

T = TypeVar("T")

# Revisions per compaction transaction: small enough that queued writes wait only milliseconds.
COMPACT_CHUNK = 5_000


class _Database:
    """The one wrapper through which blocking sqlite calls run.

    A writer thread owns the write connection. Each reader thread owns a read connection and
    takes every read queued while it was busy in one hop: a hop to a thread and back costs
    ~100-200 µs, far more than a point read, so concurrent readers share hops. Results come
    back as one callback on the loop per hop, not through futures awaited by tasks (each of
    those is a loop turn, and a loop turn under load is milliseconds).
    """

    def __init__(self, path: Path, *, readers: int):
        self._path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lks-sqlite-write")
        self._write_conn: sqlite3.Connection | None = None
        self._readers = [ThreadPoolExecutor(1, thread_name_prefix="lks-sqlite-read") for _ in range(readers)]
        self._read_conns: list[sqlite3.Connection] = []
        self._reads: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._idle_readers: list[int] = []  # readers without a batch in hand
        self._reads_done = asyncio.Event()  # no read queued or running
        self._reads_done.set()
        self._closing = False

    async def start(self) -> tuple[int, int]:
        """Open the connections (schema first); the current and compact revisions."""
        loop = asyncio.get_running_loop()
        self._write_conn = await loop.run_in_executor(self._writer, partial(sqllog.connect, self._path, readonly=False))
        revisions = await self.write(sqllog.setup)
        for executor in self._readers:
            conn = await loop.run_in_executor(executor, partial(sqllog.connect, self._path, readonly=True))
            self._read_conns.append(conn)
        self._idle_readers = list(range(len(self._readers)))
        return revisions

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(write_conn, *args)` on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, partial(fn, self._write_conn, *args))

    def write_soon(self, fn: Callable[..., T], args: tuple[Any, ...], done: Callable[[bool, Any], None]) -> None:
        """Run `fn(write_conn, *args)` on the writer thread, then `done(ok, result or error)` on
        the loop: one hop back, where awaiting a future from a task costs two more loop turns
        (a write's latency under load is mostly loop turns)."""
        loop = asyncio.get_running_loop()
        conn = self._write_conn

        def run() -> None:
            try:
                outcome: tuple[bool, Any] = (True, fn(conn, *args))
            except BaseException as exc:  # noqa: BLE001 - handed to the loop
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(done, *outcome)

        self._writer.submit(run)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(read_conn, *args)` on a reader thread, batched with other queued reads."""
        if self._closing:
            raise StoreError("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._reads.append((fn, args, future))
        if self._idle_readers:
            self._dispatch_reads()
        return await future

    def _dispatch_reads(self) -> None:
        """Hand every queued read to an idle reader; its results come back in one hop."""
        reader = self._idle_readers.pop()
        batch, self._reads = self._reads, []
        self._reads_done.clear()
        loop = asyncio.get_running_loop()
        conn = self._read_conns[reader]
        calls = [(fn, args) for fn, args, _ in batch]

        def run() -> None:
            outcomes = _run_reads(conn, calls)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._answer, reader, batch, outcomes)

        self._readers[reader].submit(run)

    def _answer(self, reader: int, batch: list, outcomes: list[tuple[bool, Any]]) -> None:
        for (_, _, future), (ok, outcome) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        self._idle_readers.append(reader)
        if self._reads:
            self._dispatch_reads()
        elif len(self._idle_readers) == len(self._readers):
            self._reads_done.set()

    async def close(self) -> None:
        """Finish queued reads, then close every connection on its own thread."""
        self._closing = True
        await self._reads_done.wait()
        loop = asyncio.get_running_loop()
        for executor, conn in zip(self._readers, self._read_conns, strict=True):
            await loop.run_in_executor(executor, conn.close)
        if self._write_conn is not None:
            await loop.run_in_executor(self._writer, self._write_conn.close)
        for executor in [*self._readers, self._writer]:
            executor.shutdown(wait=False)


def _run_reads(
    conn: sqlite3.Connection, batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[tuple[bool, Any]]:
    """Run each read on its own; one failing read does not fail the others."""
    outcomes: list[tuple[bool, Any]] = []
    for fn, args in batch:
        try:
            outcomes.append((True, fn(conn, *args)))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


class SQLiteBackend:
    def __init__(self, url: str, *, readers: int = 2, watch_queue_limit: int = broadcaster.DEFAULT_QUEUE_LIMIT):
        parts = urlsplit(url)
        self.path = Path(unquote(parts.netloc + parts.path))
        self._readers = readers
        self._db: _Database | None = None
        self._rev = 0  # the latest committed revision
        self._compact_rev = 0
        self._queue: list[sqllog.Write] = []
        self._committing = False  # a batch is on the writer thread
        self._idle = asyncio.Event()  # nothing queued or committing
        self._idle.set()
        self._closing = False
        self._started = False
        self._compact_lock = asyncio.Lock()
        self._broadcaster = broadcaster.Broadcaster(queue_limit=watch_queue_limit)

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _Database(self.path, readers=self._readers)
        self._rev, self._compact_rev = await self._db.start()
        self._started = True

    async def close(self) -> None:
        if self._db is None or self._closing:
            return
        self._closing = True
        await self._idle.wait()  # the queued writes are committed first
        async with self._compact_lock:  # a compaction stops at its next chunk
            self._broadcaster.close()
            await self._db.close()

    async def current_revision(self) -> int:
        return self._rev

    async def compact_revision(self) -> int:
        return self._compact_rev

    @property
    def _database(self) -> _Database:
        if self._db is None:
            raise StoreError("store is not started")
        return self._db

    # -- reads

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        if not revision:
            return await self._database.read(sqllog.get_latest, key)
        return await self._database.read(sqllog.get_at, key, revision)

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start: str | None = None,
        limit: int | None = None,
    ) -> ListResult:
        return await self._database.read(sqllog.list_range, prefix, revision or None, start, limit)

    async def count(self, prefix: str) -> int:
        return await self._database.read(sqllog.count, prefix)

    # -- writes: queued for the writer loop, which commits them in batches

    async def _submit(self, write: sqllog.Write) -> Event:
        if self._closing or not self._started:
            raise StoreError("store is closed" if self._closing else "store is not started")
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._queue.append(write)
        write.future = future
        if not self._committing:
            self._commit_queued()
        return await future

    async def create(self, key: str, value: bytes) -> int:
        return (await self._submit(sqllog.Write("create", key, bytes(value)))).revision

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        return (await self._submit(sqllog.Write("update", key, bytes(value), mod_revision))).revision

    async def delete(self, key: str, *, mod_revision: int | None = None) -> tuple[int, KeyValue]:
        event = await self._submit(sqllog.Write("delete", key, None, mod_revision))
        assert event.prev is not None
        return event.revision, event.prev

    def _commit_queued(self) -> None:
        """Send every queued write to the writer thread as one transaction (group commit)."""
        batch, self._queue = self._queue, []
        self._committing = True
        self._idle.clear()
        self._database.write_soon(sqllog.apply_batch, (self._rev, batch), partial(self._committed, batch))

    def _committed(self, batch: list[sqllog.Write], ok: bool, result: Any) -> None:
        self._committing = False
        if ok:
            self._rev, outcomes = result
            # Watchers hear of a write no later than its writer does.
            self._broadcaster.publish([o for o in outcomes if isinstance(o, Event)])
            for write, outcome in zip(batch, outcomes, strict=True):
                if write.future.done():  # the caller gave up; the write stands anyway
                    continue
                if isinstance(outcome, Event):
                    write.future.set_result(outcome)
                else:
                    write.future.set_exception(outcome)
        else:  # the transaction rolled back: every write of it failed
            for write in batch:
                if not write.future.done():
                    error = StoreError(f"write failed: {result}")
                    error.__cause__ = result
                    write.future.set_exception(error)
        if self._queue:
            self._commit_queued()
        else:
            self._idle.set()

    # -- watch and compaction

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        return broadcaster.stream(
            self._broadcaster,
            prefix,
            start_revision=start_revision,
            replay=lambda rev: self._database.read(sqllog.replay, prefix, rev, broadcaster.REPLAY_PAGE),
            compact_revision=self.compact_revision,
        )

    async def compact(self, revision: int) -> None:
        async with self._compact_lock:
            if revision > self._rev:
                raise FutureRevision(revision, self._rev)
            if revision <= self._compact_rev:
                return
            db = self._database
            # Readers see the new compact revision before any row goes, so none reads a
            # half-compacted revision; then delete in chunks, letting queued writes in between.
            lo = await db.write(sqllog.begin_compaction, revision)
            self._compact_rev = revision
            while lo < revision and not self._closing:  # the next compaction resumes from lo
                hi = min(lo + COMPACT_CHUNK, revision)
                await db.write(sqllog.compact_chunk, lo, hi)
                lo = hi


store.register("sqlite", SQLiteBackend)
