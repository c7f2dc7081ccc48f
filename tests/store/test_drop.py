"""`Backend.drop`: a deleted cluster's store leaves nothing behind (its SQLite files, its keys
under an etcd prefix, and only those); and compaction forgets the old values that rows keep."""

from __future__ import annotations

import contextlib
import sqlite3

from lks import store as stores
from lks.store.backends import etcd, sqlite


async def test_drop_leaves_nothing_behind(store):
    await store.create("/a/1", b"secret")
    await store.create("/a/2", b"secret")
    if isinstance(store, etcd.EtcdBackend):
        # a neighbour prefix of the same etcd keeps its keys
        neighbour = stores.open_store(f"etcd://{store.endpoints[0]}{store.prefix.decode()[:-1]}-other")
        await neighbour.start()
        await neighbour.create("/kept", b"x")
    await store.drop()
    if isinstance(store, sqlite.SQLiteBackend):
        assert [p.name for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)] == []
    if isinstance(store, etcd.EtcdBackend):
        again = stores.open_store(f"etcd://{store.endpoints[0]}{store.prefix.decode()[:-1]}")
        await again.start()
        try:
            assert (await again.list("/")).items == []
            assert [kv.key for kv in (await neighbour.list("/")).items] == ["/kept"]
        finally:
            await again.close()
            await neighbour.close()


async def test_sqlite_compaction_forgets_old_values(tmp_path):
    backend = stores.open_store(f"sqlite://{tmp_path / 'lks.db'}")
    await backend.start()
    rev = await backend.create("/record", b"ca-key")
    rev = await backend.update("/record", b"scrubbed", mod_revision=rev)
    deleted, _ = await backend.delete("/record")
    await backend.compact(deleted)
    await backend.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "lks.db")) as db:
        rows = db.execute("SELECT value, old_value FROM log").fetchall()
    assert all(b"ca-key" not in (value or b"") + (old or b"") for value, old in rows)
