"""A hosted cluster's API served over plain HTTP on a loopback port, in the bench's own process
(no TLS, no `lks up`): for benchmarks that measure the API server's own work."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from lks.kube.cluster import Cluster
from lks.kube.http.app import KubeAPI


@contextlib.asynccontextmanager
async def serve(cluster: Cluster) -> AsyncIterator[str]:
    """Yields the cluster's base URL (`http://127.0.0.1:<port>/clusters/<id>`)."""
    app = web.Application()
    app.add_routes(KubeAPI(lambda cid: cluster if cid == cluster.id else None).routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/clusters/{cluster.id}"
    finally:
        await runner.cleanup()


async def throughput(token: str, call: Callable[[aiohttp.ClientSession, int], Awaitable[None]], *,
                     n: int = 3_000, concurrency: int = 32) -> float:
    """Requests/s of `call(session, i)` for i in range(n), from `concurrency` clients of one
    session with `token` (a call raises on an answer it did not expect)."""
    counter = iter(range(n))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                     connector=aiohttp.TCPConnector(limit=0)) as http:
        async def worker() -> None:
            for i in counter:
                await call(http, i)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)
