"""What an idle SQLite store keeps in SQLite's own heap (page caches, schemas): bounded per
connection, not SQLite's default 2 MiB each, which every idle hosted cluster filled (its writer
with the log's tail as Leases renew, its readers with the watch caches' first lists)."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest

from lks import store as stores

_name = ctypes.util.find_library("sqlite3")
pytestmark = pytest.mark.skipif(_name is None, reason="no libsqlite3 to ask sqlite3_memory_used")


def _sqlite_heap() -> int:
    fn = ctypes.CDLL(_name).sqlite3_memory_used
    fn.restype = ctypes.c_int64
    return fn()


async def test_a_store_that_wrote_and_listed_megabytes_holds_little_sqlite_memory(tmp_path: Path) -> None:
    before = _sqlite_heap()
    backend = stores.open_store(f"sqlite://{tmp_path / 'state.db'}")
    await backend.start()
    try:
        value = b"x" * 1000
        for i in range(4000):  # ~4 MB through the writer, more than its cache holds
            await backend.create(f"/registry/configmaps/default/cm-{i:05d}", value)
        for _ in range(4):  # both readers list it all
            listed = await backend.list("/registry/configmaps/")
            assert len(listed.items) == 4000
        held = _sqlite_heap() - before
        # three connections: their caches (1 MiB in all) and ~110 KiB each of schema and lookaside
        bound = 2 * 1024 * 1024  # with SQLite's default caches: 4.4 MiB, now ~1 MiB
        assert held <= bound, f"{held / 1024:.0f} KiB of SQLite memory, more than {bound / 1024:.0f}"
    finally:
        await backend.close()
