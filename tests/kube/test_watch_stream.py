"""The watch response itself: bookmarks keep coming while a watch is quiet (the stream stays
open until timeoutSeconds), and a burst of events reaches the client whole and in order."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from lks.kube.http import app

from .conftest import AUTH

BASE = "/clusters/c1/api/v1/namespaces/default/configmaps"


async def _lines(resp, n: int) -> list[dict]:
    out = []
    while len(out) < n:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        if not line:
            break
        out.append(orjson.loads(line))
    return out


async def test_bookmarks_keep_a_quiet_watch_open(client, cluster, monkeypatch):
    monkeypatch.setattr(app, "_BOOKMARK_EVERY", 0.05)
    resp = await client.get(BASE, params={"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": "0",
                                          "timeoutSeconds": "30"}, headers=AUTH)
    marks = await _lines(resp, 3)
    assert [e["type"] for e in marks] == ["BOOKMARK"] * 3
    await cluster.registry("", "v1", "configmaps").create("default", {"metadata": {"name": "late"}})
    got = next(e for e in await _lines(resp, 50) if e["type"] != "BOOKMARK")
    assert got["type"] == "ADDED" and got["object"]["metadata"]["name"] == "late"
    resp.close()


@pytest.mark.parametrize("count", [500])
async def test_a_burst_arrives_whole_and_in_order(client, cluster, count):
    resp = await client.get(BASE, params={"watch": "1", "resourceVersion": "0", "timeoutSeconds": "30"}, headers=AUTH)
    reg = cluster.registry("", "v1", "configmaps")
    await asyncio.gather(*(reg.create("default", {"metadata": {"name": f"c{i:04d}"}}) for i in range(count)))
    events = await _lines(resp, count)
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert len(events) == count and revisions == sorted(revisions)
    assert {e["object"]["metadata"]["name"] for e in events} == {f"c{i:04d}" for i in range(count)}
    resp.close()
