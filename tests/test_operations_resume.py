"""A long-running operation interrupted by a stop finishes after the next start: the journal
keeps it InProgress and the new process runs its (level-triggered) work again."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp

from lks.server import Service

API = "api-version=2026-08-01"


async def test_operation_interrupted_by_a_restart_completes(tmp_path, monkeypatch):
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    assert svc.plane is not None
    started = asyncio.Event()

    async def hang(*_args, **_kwargs):  # the first process dies while materializing nodes
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(svc.plane.fleet, "sync", hang)
    config = json.loads((tmp_path / "config.json").read_text())
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    headers = {"Authorization": f"Bearer {config['token']}"}
    base = f"/subscriptions/{config['subscription_id']}/resourcegroups/rg"
    cluster = f"{base}/providers/Microsoft.ContainerService/managedClusters/c1"
    body = {"location": "eastus", "properties": {"agentPoolProfiles": [
        {"name": "nodepool1", "count": 2, "vmSize": "Standard_DS2_v2", "mode": "System"}]}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as http:
        async with http.put(f"{svc.endpoint}{base}?api-version=2025-04-01", json={"location": "eastus"}) as r:
            assert r.status == 201
        async with http.put(f"{svc.endpoint}{cluster}?{API}", json=body) as r:
            assert r.status == 201
            op_path = r.headers["Azure-AsyncOperation"].split(svc.endpoint, 1)[1]
    await asyncio.wait_for(started.wait(), 10)
    await svc.stop()  # the operation is still InProgress in the journal

    again = Service(home=tmp_path, port=0)
    await again.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as http:
            for _ in range(200):
                async with http.get(f"{again.endpoint}{op_path}") as r:
                    status = (await r.json())["status"]
                if status != "InProgress":
                    break
                await asyncio.sleep(0.05)
            assert status == "Succeeded"
            async with http.get(f"{again.endpoint}{cluster}?{API}") as r:
                doc = await r.json()
        assert doc["properties"]["provisioningState"] == "Succeeded"
        assert again.planes is not None
        cp = next(iter(again.planes.clusters.values()))
        nodes = await cp.registry("", "v1", "nodes").list(None, _everything())
        assert len(nodes["items"]) == 2
    finally:
        await again.stop()


def _everything():
    from lks.kube.registry import ListOptions
    from lks.kube.selectors import FieldSelector, LabelSelector

    return ListOptions(LabelSelector([]), FieldSelector([]))


async def test_a_delete_stopped_before_its_operation_was_journaled_completes(tmp_path):
    """The cluster was marked Deleting but the process died before the operation was written:
    the next start begins the delete itself, and the cluster and its folder go."""
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    assert svc.plane is not None
    config = json.loads((tmp_path / "config.json").read_text())
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    headers = {"Authorization": f"Bearer {config['token']}"}
    base = f"/subscriptions/{config['subscription_id']}/resourcegroups/rg"
    cluster = f"{base}/providers/Microsoft.ContainerService/managedClusters/c1"
    body = {"location": "eastus", "properties": {"agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}]}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as http:
        async with http.put(f"{svc.endpoint}{base}?api-version=2025-04-01", json={"location": "eastus"}) as r:
            assert r.status == 201
        async with http.put(f"{svc.endpoint}{cluster}?{API}", json=body) as r:
            assert r.status in (200, 201)
        for _ in range(200):
            async with http.get(f"{svc.endpoint}{cluster}?{API}") as r:
                doc = await r.json()
            if doc["properties"]["provisioningState"] != "Creating":
                break
            await asyncio.sleep(0.05)
    assert doc["properties"]["provisioningState"] == "Succeeded"
    folders = list((tmp_path / "clusters").iterdir())
    assert len(folders) == 1
    stored = await svc.plane.docs.get(doc["id"])
    assert stored is not None
    stored.doc["properties"]["provisioningState"] = "Deleting"  # ... and then the process died
    await svc.plane.docs.update(stored.doc, stored.revision)
    await svc.stop()

    again = Service(home=tmp_path, port=0)
    await again.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as http:
            for _ in range(200):
                async with http.get(f"{again.endpoint}{cluster}?{API}") as r:
                    status = r.status
                if status == 404:
                    break
                await asyncio.sleep(0.05)
        assert status == 404
        assert not folders[0].exists()
    finally:
        await again.stop()
