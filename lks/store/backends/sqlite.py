"""The SQLite backend, kine-like: one append-only table where every write is a new row.

A row's id is the revision of the write that made it; creates, updates and deletes (as
tombstones) all append. Two small tables sit beside the log: `latest` maps each live key to its
newest row, so listing and counting the current state costs one index range instead of a
`MAX(id) GROUP BY name` over history, and `meta` keeps the compact revision. The SQL itself
lives in `sqllog`; this module owns the threads and the asyncio side.

This process is the only writer, which shapes everything:

- Writes run on the event loop's thread (see `_Database` for why not on a thread of their
  own): those queued during one loop turn are applied in one transaction and committed once
  (group commit). Each write is decided on its own against the state including the earlier
  writes of its batch, so a conflict never aborts its neighbours.
- Reads run on reader threads, batched the same way (one thread hop for all the reads queued
  meanwhile); WAL lets them proceed beside writes.
- Watches never poll: after each commit the batch's events go to a `broadcaster`, and a new
  watch replays history rows from the table before following that live stream.

URL: `sqlite:///abs/path/file.db`. Registers the `sqlite` scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

log = logging.getLogger(__name__)

# Revisions per compaction transaction: each blocks the loop for a millisecond or two.
COMPACT_CHUNK = 1_000
PAGE = 4096  # SQLite's default page size
CHECKPOINT_BYTES = 1000 * PAGE  # SQLite's default auto-checkpoint


class _Database:
    """The one wrapper through which sqlite calls run.

    The event loop's thread owns the write connection: writes run there, synchronously. They
    take microseconds of C each, while a writer thread paid for every statement with a GIL
    hand-off from a busy loop: under load it spent 4-5x its CPU waiting for the GIL, and a
    write's latency was mostly that wait. Without fsyncs on commit (WAL, synchronous=NORMAL)
    nothing here blocks; the one fsync left, the checkpoint that copies the WAL back into the
    database, runs on a thread of its own (`wal_autocheckpoint` is off).

    Each reader thread owns a read connection and takes every read queued while it was busy in
    one hop; results come back as one callback on the loop per hop, not through futures
    awaited by tasks (each a loop turn under load).
    """

    def __init__(self, path: Path, *, readers: int):
        self._path = path
        self._conn: sqlite3.Connection | None = None  # the loop thread's
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="lks-sqlite-checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._wal_bytes = 0  # written since the last checkpoint began
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
        self._conn = sqllog.connect(self._path, readonly=False)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        revisions = self.write(sqllog.setup)
        for executor in self._readers:
            conn = await loop.run_in_executor(executor, partial(sqllog.connect, self._path, readonly=True))
            self._read_conns.append(conn)
        self._idle_readers = list(range(len(self._readers)))
        return revisions

    def write(self, fn: Callable[..., T], *args: Any, size: int = 0) -> T:
        """`fn(write_conn, *args)`, now; `size` is about how many bytes it adds to the WAL."""
        if self._closing or self._conn is None:
            raise StoreError("store is closed")
        result = fn(self._conn, *args)
        self._wal_bytes += size
        if self._wal_bytes >= CHECKPOINT_BYTES and self._checkpointing is None:
            self._checkpoint()
        return result

    def _checkpoint(self) -> None:
        """Copy the WAL into the database on the checkpoint thread. PASSIVE never waits for
        the writer; the next write after a complete checkpoint starts the WAL over."""
        self._wal_bytes = 0
        self._checkpointing = asyncio.get_running_loop().run_in_executor(self._checkpointer, self._run_checkpoint)
        self._checkpointing.add_done_callback(self._checkpointed)

    def _run_checkpoint(self) -> None:
        # the connection (and the thread) only once needed: an idle cluster's store never is
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqllog.connect(self._path, readonly=False)
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpointed(self, future: asyncio.Future[Any]) -> None:
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("sqlite checkpoint of %s failed: %s", self._path, future.exception())

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
        """Finish queued reads and a running checkpoint, then close every connection on its
        own thread (the write connection last: closing it checkpoints what is left)."""
        self._closing = True
        await self._reads_done.wait()
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        loop = asyncio.get_running_loop()
        for executor, conn in zip(self._readers, self._read_conns, strict=True):
            await loop.run_in_executor(executor, conn.close)
        if self._checkpoint_conn is not None:
            await loop.run_in_executor(self._checkpointer, self._checkpoint_conn.close)
        if self._conn is not None:
            self._conn.close()
        for executor in [*self._readers, self._checkpointer]:
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
        self._committing = False  # a commit is due at the end of this loop turn
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

    async def drop(self) -> None:
        await self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

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

    # -- writes: queued during a loop turn, committed at its end in one transaction

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
        """Commit the queued writes once this loop turn is done, with those it adds (group commit)."""
        self._committing = True
        self._idle.clear()
        asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        batch, self._queue = self._queue, []
        # what the commit adds to the WAL: a row keeps the value it replaces too, and a commit
        # rewrites at least three pages (the log's, its index's and `latest`'s)
        size = 2 * sum(len(w.value) for w in batch if w.value is not None) + 3 * PAGE
        try:
            self._rev, outcomes = self._database.write(sqllog.apply_batch, self._rev, batch, size=size)
        except Exception as exc:  # the transaction rolled back: every write of it failed
            for write in batch:
                if not write.future.done():
                    error = StoreError(f"write failed: {exc}")
                    error.__cause__ = exc
                    write.future.set_exception(error)
        else:
            # Watchers hear of a write no later than its writer does.
            self._broadcaster.publish([o for o in outcomes if isinstance(o, Event)])
            for write, outcome in zip(batch, outcomes, strict=True):
                if write.future.done():  # the caller gave up; the write stands anyway
                    continue
                if isinstance(outcome, Event):
                    write.future.set_result(outcome)
                else:
                    write.future.set_exception(outcome)
        self._committing = False
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
            lo = db.write(sqllog.begin_compaction, revision)
            self._compact_rev = revision
            while lo < revision and not self._closing:  # the next compaction resumes from lo
                hi = min(lo + COMPACT_CHUNK, revision)
                db.write(sqllog.compact_chunk, lo, hi)
                lo = hi
                await asyncio.sleep(0)  # queued writes go in between


store.register("sqlite", SQLiteBackend)
