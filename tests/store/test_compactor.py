"""The compactor keeps history for `retention` seconds of clock time, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from lks import clock as clocks
from lks.store import Backend, Compacted, KeyValue
from lks.store.compactor import Compactor


async def test_compacts_only_history_older_than_retention(store: Backend) -> None:
    clock = clocks.ManualClock()
    compactor = Compactor(store=store, clock=clock, retention=300, interval=60)
    r0 = await store.create("/k", b"v0")
    r1 = await store.update("/k", b"v1", mod_revision=r0)
    assert await compactor.run_once() is None  # t=0 notes r1

    await clock.advance(200)
    r2 = await store.update("/k", b"v2", mod_revision=r1)
    assert await compactor.run_once() is None  # t=200 notes r2; nothing is 300 s old yet
    assert (await store.get("/k", revision=r0)).value == b"v0"

    await clock.advance(100)
    r3 = await store.update("/k", b"v3", mod_revision=r2)
    assert await compactor.run_once() == r1  # t=300: what was current at t=0 goes
    with pytest.raises(Compacted):
        await store.get("/k", revision=r0)
    assert await store.get("/k", revision=r1) == KeyValue("/k", b"v1", r0, r1)
    assert (await store.get("/k", revision=r2)).value == b"v2"

    await clock.advance(100)
    assert await compactor.run_once() is None  # t=400: t=200 is not 300 s old yet
    await clock.advance(100)
    assert await compactor.run_once() == r2  # t=500
    with pytest.raises(Compacted):
        await store.get("/k", revision=r1)
    assert await store.get("/k") == KeyValue("/k", b"v3", r0, r3)
    assert await store.compact_revision() == r2


async def test_runs_on_its_clock_until_stopped(store: Backend) -> None:
    clock = clocks.ManualClock()
    compactor = Compactor(store=store, clock=clock, retention=120, interval=60)
    rev = await store.create("/k", b"")
    await compactor.start()
    try:
        for _ in range(200):
            await clock.advance(60)
            await asyncio.sleep(0.005)  # let the compactor's store calls finish
            if await store.compact_revision() >= rev:
                break
        assert await store.compact_revision() >= rev
    finally:
        await compactor.stop()
    await compactor.stop()  # stopping twice is harmless
