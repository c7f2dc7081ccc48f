"""A watch client that stops reading costs the server a bounded amount of memory: the events
for it wait in bounded buffers, and once it stays behind it is cut off, its watcher gone, while
the server keeps serving. A healthy watch of many objects is not mistaken for a slow one."""

from __future__ import annotations

import asyncio
import socket

import orjson
from support import TOKEN

from lks.kube import watchcache
from lks.kube.http import app

from .conftest import AUTH

BASE = "/clusters/c1/api/v1/namespaces/default/configmaps"


async def _until(check, what: str, timeout: float = 20.0):
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.01)
    assert result, what
    return result


async def test_a_watch_client_that_never_reads_is_cut_off(client, cluster, monkeypatch):
    monkeypatch.setattr(app, "_PUMP_EVENTS", 20)
    monkeypatch.setattr(app, "_STALL_SECONDS", 0.2)
    monkeypatch.setattr(watchcache, "WATCHER_QUEUE", 50)
    reg = cluster.registry("", "v1", "configmaps")
    cache = await reg.cache()
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, never read
    sock.setblocking(False)
    await loop.sock_connect(sock, (client.host, client.port))
    await loop.sock_sendall(sock, (f"GET {BASE}?watch=1&resourceVersion=0 HTTP/1.1\r\nHost: lks\r\n"
                                   f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
    await _until(lambda: len(cache.watchers) == 1, "the watch started")
    watcher = next(iter(cache.watchers))
    await reg.create("default", {"metadata": {"name": "big"}, "data": {"k": "0"}})
    writes = 0
    while cache.watchers and writes < 5_000:  # new versions of a 64 KiB object until it is cut off
        cm = await reg.get("default", "big")
        cm["data"] = {"k": str(writes) * (65536 // len(str(writes)))}
        await reg.update("default", "big", cm)
        writes += 1
        assert watcher.backlog <= watchcache.WATCHER_QUEUE
    assert not cache.watchers, f"the watcher still runs after {writes} writes"
    assert watcher.closed and watcher.queue.qsize() <= 1  # what it had queued is let go
    # the connection is closed: what the socket still holds ends, then nothing more comes
    sock.setblocking(True)
    sock.settimeout(10)
    ended = False
    while not ended:
        try:
            ended = not await loop.run_in_executor(None, sock.recv, 1 << 20)
        except ConnectionResetError:
            ended = True
    sock.close()
    resp = await client.get(f"{BASE}/big", headers=AUTH)  # and the server serves on
    assert resp.status == 200


async def test_a_healthy_watch_of_many_objects_is_not_cut_off(client, cluster, monkeypatch):
    monkeypatch.setattr(app, "_PUMP_EVENTS", 20)
    monkeypatch.setattr(app, "_STALL_SECONDS", 0.2)
    monkeypatch.setattr(watchcache, "WATCHER_QUEUE", 50)
    reg = cluster.registry("", "v1", "configmaps")
    count = 300  # initial events are the cache's own objects: they do not count as falling behind
    await asyncio.gather(*(reg.create("default", {"metadata": {"name": f"c{i:03d}"}}) for i in range(count)))
    resp = await client.get(BASE, params={"watch": "1", "resourceVersion": "0", "timeoutSeconds": "30"},
                            headers=AUTH)
    assert resp.status == 200
    names = set()
    while len(names) < count:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        assert line, f"the watch ended after {len(names)} events"
        names.add(orjson.loads(line)["object"]["metadata"]["name"])
    await reg.create("default", {"metadata": {"name": "late"}})
    line = await asyncio.wait_for(resp.content.readline(), 10)
    assert orjson.loads(line)["object"]["metadata"]["name"] == "late"
    resp.close()
