"""The append-only log in SQL: schema and every statement, as plain functions of a connection.

Like kine's `sqllog`, one table `log` holds every write as a row whose id is its revision
(creates, updates, and deletes as tombstones), with the previous value in the row so a watch
can report `prev` without a join. `latest` maps each live key to its newest row (the state at
the current revision, cheap to list and count); `meta` keeps the compact revision. The functions
here block; `sqlite` runs writes on the event loop's thread, reads on reader threads, and
does the asyncio side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lks.store.types import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyValue,
    ListResult,
    NotFound,
    RevisionConflict,
    StoreError,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the revision; AUTOINCREMENT keeps it after compaction
    name TEXT NOT NULL,
    created INTEGER NOT NULL,              -- 1 when this write created the key
    deleted INTEGER NOT NULL,              -- 1 for a tombstone (value is the deleted value)
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,        -- the row this one supersedes, 0 on create
    value BLOB NOT NULL,
    old_value BLOB                         -- the superseded row's value, for watch `prev`
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS latest (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL,
    create_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""

_INSERT = (
    "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_LATEST = "SELECT l.id, l.create_revision, g.value FROM latest l JOIN log g ON g.id = l.id WHERE l.name = ?"


READ_CACHE_KIB = 256
WRITE_CACHE_KIB = 512


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # Autocommit mode: transactions are the explicit BEGIN/COMMIT below. Connections are closed
    # by another thread at shutdown, hence check_same_thread=False.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Pages cached per connection, in KiB. Reads come from the watch caches: readers serve a
    # cache's first list and old revisions, the writer touches the log's tail and the index of
    # `latest`, and the OS keeps the file's pages anyway. SQLite's default (2 MiB each) filled up
    # in every idle cluster: 2.6 of its 9.2 MiB (bench/density_bench.py).
    conn.execute(f"PRAGMA cache_size=-{READ_CACHE_KIB if readonly else WRITE_CACHE_KIB}")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


def _meta(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


def _set_meta(conn: sqlite3.Connection, name: str, value: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


def _current(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return row[0] if row else 0


def setup(conn: sqlite3.Connection) -> tuple[int, int]:
    """Create the schema if needed; the current and compact revisions."""
    conn.executescript(SCHEMA)
    return _current(conn), _meta(conn, "compact_revision")


def prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix` (None: no bound)."""
    for i in range(len(prefix) - 1, -1, -1):
        c = ord(prefix[i])
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:  # surrogates do not encode; skip to the next scalar
                c = 0xE000
            return prefix[:i] + chr(c)
    return None


def _name_range(column: str, lower: str, prefix: str) -> tuple[str, list[Any]]:
    upper = prefix_end(prefix)
    if upper is None:
        return f"{column} >= ?", [lower]
    return f"{column} >= ? AND {column} < ?", [lower, upper]


# -- reads


@contextmanager
def _read_txn(conn: sqlite3.Connection) -> Iterator[tuple[int, int]]:
    """A read snapshot across several statements; yields (current, compact) revisions."""
    conn.execute("BEGIN")
    try:
        yield _current(conn), _meta(conn, "compact_revision")
    finally:
        conn.execute("COMMIT")


def _check(revision: int, current: int, compact: int) -> None:
    if revision > current:
        raise FutureRevision(revision, current)
    if revision < compact:
        raise Compacted(revision, compact)


def get_latest(conn: sqlite3.Connection, key: str) -> KeyValue | None:
    row = conn.execute(_LATEST, (key,)).fetchone()
    return KeyValue(key, row[2], row[1], row[0]) if row else None


def get_at(conn: sqlite3.Connection, key: str, revision: int) -> KeyValue | None:
    with _read_txn(conn) as (current, compact):
        _check(revision, current, compact)
        row = conn.execute(
            "SELECT id, deleted, create_revision, value FROM log WHERE name = ? AND id <= ?"
            " ORDER BY id DESC LIMIT 1",
            (key, revision),
        ).fetchone()
    if row is None or row[1]:
        return None
    return KeyValue(key, row[3], row[2], row[0])


def list_range(
    conn: sqlite3.Connection, prefix: str, revision: int | None, start: str | None, limit: int | None
) -> ListResult:
    lower = max(prefix, start or "")
    fetch = limit + 1 if limit is not None else -1  # one extra row tells whether there is more
    with _read_txn(conn) as (current, compact):
        if revision is None or revision == current:
            revision = current
            where, params = _name_range("l.name", lower, prefix)
            rows = conn.execute(
                "SELECT l.name, g.value, l.create_revision, l.id FROM latest l JOIN log g ON g.id = l.id"
                f" WHERE {where} ORDER BY l.name LIMIT ?",
                (*params, fetch),
            ).fetchall()
        else:
            _check(revision, current, compact)
            where, params = _name_range("name", lower, prefix)
            # The newest row of each key at `revision`, walked in index order. CROSS JOIN keeps
            # that order, so SQLite need not sort the rows (values included) again: 5x faster.
            rows = conn.execute(
                "SELECT g.name, g.value, g.create_revision, g.id FROM"
                f" (SELECT MAX(id) AS id FROM log WHERE {where} AND id <= ? GROUP BY name ORDER BY name) m"
                " CROSS JOIN log g ON g.id = m.id WHERE g.deleted = 0 LIMIT ?",
                (*params, revision, fetch),
            ).fetchall()
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    return ListResult(items=[KeyValue(*row) for row in rows], revision=revision, more=more)


def count(conn: sqlite3.Connection, prefix: str) -> int:
    where, params = _name_range("name", prefix, prefix)
    return conn.execute(f"SELECT COUNT(*) FROM latest WHERE {where}", params).fetchone()[0]


def _event(row: tuple[Any, ...]) -> Event:
    rev, name, created, deleted, create_rev, prev_rev, value, old_value = row
    if deleted:
        return Event("DELETE", KeyValue(name, value, create_rev, rev), KeyValue(name, value, create_rev, prev_rev))
    if created:
        return Event("PUT", KeyValue(name, value, create_rev, rev))
    return Event("PUT", KeyValue(name, value, create_rev, rev), KeyValue(name, old_value, create_rev, prev_rev))


def replay(conn: sqlite3.Connection, prefix: str, revision: int, page: int) -> list[Event]:
    """Events under `prefix` from `revision` on, at most `page` of them."""
    where, params = _name_range("name", prefix, prefix)
    with _read_txn(conn) as (_, compact):
        if revision < compact:
            raise Compacted(revision, compact)
        rows = conn.execute(
            "SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value"
            f" FROM log WHERE id >= ? AND {where} ORDER BY id LIMIT ?",
            (revision, *params, page),
        ).fetchall()
    return [_event(row) for row in rows]


# -- writes


@dataclass(slots=True)
class Write:
    """One queued write; `future` belongs to the event loop and is never touched here."""

    op: Literal["create", "update", "delete"]
    key: str
    value: bytes | None
    mod_revision: int | None = None
    future: Any = None


def _apply(conn: sqlite3.Connection, rev: int, w: Write) -> Event:
    if w.op == "create":
        if conn.execute("SELECT 1 FROM latest WHERE name = ?", (w.key,)).fetchone():
            raise KeyExists(w.key)
        assert w.value is not None
        conn.execute(_INSERT, (rev, w.key, 1, 0, rev, 0, w.value, None))
        conn.execute("INSERT INTO latest (name, id, create_revision) VALUES (?, ?, ?)", (w.key, rev, rev))
        return Event("PUT", KeyValue(w.key, w.value, rev, rev))
    prev = get_latest(conn, w.key)
    if prev is None:
        raise NotFound(w.key)
    if w.mod_revision is not None and prev.mod_revision != w.mod_revision:
        raise RevisionConflict(w.key, prev)
    cr = prev.create_revision
    if w.op == "update":
        assert w.value is not None
        conn.execute(_INSERT, (rev, w.key, 0, 0, cr, prev.mod_revision, w.value, prev.value))
        conn.execute("UPDATE latest SET id = ? WHERE name = ?", (rev, w.key))
        return Event("PUT", KeyValue(w.key, w.value, cr, rev), prev)
    conn.execute(_INSERT, (rev, w.key, 0, 1, cr, prev.mod_revision, prev.value, None))
    conn.execute("DELETE FROM latest WHERE name = ?", (w.key,))
    return Event("DELETE", KeyValue(w.key, prev.value, cr, rev), prev)


def apply_batch(conn: sqlite3.Connection, rev: int, batch: list[Write]) -> tuple[int, list[Event | StoreError]]:
    """Apply `batch` in one transaction after revision `rev`. Each write succeeds or fails on
    its own, seeing the writes before it; returns the new revision and one outcome per write."""
    outcomes: list[Event | StoreError] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for w in batch:
            try:
                outcomes.append(_apply(conn, rev + 1, w))
            except StoreError as exc:
                outcomes.append(exc)
            else:
                rev += 1
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return rev, outcomes


# -- compaction, like kine's CompactSQL but in revision windows so writers wait only briefly


def begin_compaction(conn: sqlite3.Connection, revision: int) -> int:
    """Record `revision` as the compact revision; the revision rows are deleted from."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = _meta(conn, "compact_done")
        _set_meta(conn, "compact_revision", revision)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done


def compact_chunk(conn: sqlite3.Connection, lo: int, hi: int) -> None:
    """Delete rows superseded by a row in [lo, hi) and tombstones in [lo, hi); forget the old
    values the rows left in [lo, hi) carry."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "DELETE FROM log WHERE id IN"
            " (SELECT prev_revision FROM log WHERE id >= ? AND id < ? AND prev_revision != 0)",
            (lo, hi),
        )
        conn.execute("DELETE FROM log WHERE id >= ? AND id < ? AND deleted = 1", (lo, hi))
        # what the rows kept in [lo, hi) superseded is history too: no watch replays them now
        conn.execute("UPDATE log SET old_value = NULL WHERE id >= ? AND id < ? AND old_value IS NOT NULL",
                     (lo, hi))
        _set_meta(conn, "compact_done", hi)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
