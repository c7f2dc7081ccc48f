"""Raw store throughput of the SQLite backend: creates/s with 1 and 32 concurrent writers, gets/s,
and the time to list 10,000 keys.

The 32-writer figure shows group commit at work (concurrent writes share one transaction and
one commit). `run()` returns the figures for a bench runner; run as a script it prints them.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from lks import store as stores

OBJECTS = 10_000
VALUE = os.urandom(512).hex().encode()  # ~1 KB, incompressible like a real object


def _key(i: int) -> str:
    return f"/registry/configmaps/bench/object-{i:05d}"


async def _creates(url: str, writers: int) -> tuple[float, stores.Backend]:
    backend = stores.open_store(url)
    await backend.start()

    async def writer(w: int) -> None:
        for i in range(w, OBJECTS, writers):
            await backend.create(_key(i), VALUE)

    began = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return OBJECTS / (time.perf_counter() - began), backend


async def _gets(backend: stores.Backend, readers: int, n: int = 10_000) -> float:
    keys = [_key(random.randrange(OBJECTS)) for _ in range(n)]

    async def reader(r: int) -> None:
        for key in keys[r::readers]:
            assert await backend.get(key) is not None

    began = time.perf_counter()
    await asyncio.gather(*(reader(r) for r in range(readers)))
    return n / (time.perf_counter() - began)


async def _best_ms(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - began)
    return best * 1000


async def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-store-bench-") as tmp:
        one, backend = await _creates(f"sqlite://{Path(tmp) / 'one.db'}", 1)
        await backend.close()
        many, backend = await _creates(f"sqlite://{Path(tmp) / 'many.db'}", 32)
        try:
            figures["sqlite creates/s, 1 writer"] = round(one)
            figures["sqlite creates/s, 32 writers"] = round(many)
            figures["sqlite gets/s, 1 reader"] = round(await _gets(backend, 1))
            figures["sqlite gets/s, 32 readers"] = round(await _gets(backend, 32))

            async def list_all() -> None:
                result = await backend.list("/registry/configmaps/")
                assert len(result.items) == OBJECTS

            figures["sqlite list 10,000 keys, ms"] = round(await _best_ms(list_all), 1)
            old = await backend.current_revision()
            await backend.update(_key(0), b"changed", mod_revision=(await backend.get(_key(0))).mod_revision)

            async def list_old() -> None:
                result = await backend.list("/registry/configmaps/", revision=old)
                assert len(result.items) == OBJECTS

            figures["sqlite list 10,000 keys at an old revision, ms"] = round(await _best_ms(list_old), 1)
        finally:
            await backend.close()
    return figures


def main() -> None:
    for name, value in asyncio.run(run()).items():
        print(f"{name:>48}: {value:,}")


if __name__ == "__main__":
    main()
