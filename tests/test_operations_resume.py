"""A long-running operation interrupted by a stop finishes after the next start: the journal
keeps it InProgress and the new process runs its (level-triggered) work again."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp

from lks.server import Service

API = "api-version=2026-08-01"


class Management:
    """The management API of a Service's home, over HTTPS with its CA and token; `cluster` is
    the path of cluster c1 in resource group rg."""

    def __init__(self, home):
        config = json.loads((home / "config.json").read_text())
        self.ssl = ssl.create_default_context(cafile=config["ca_file"])
        self.headers = {"Authorization": f"Bearer {config['token']}"}
        self.group = f"/subscriptions/{config['subscription_id']}/resourcegroups/rg"
        self.cluster = f"{self.group}/providers/Microsoft.ContainerService/managedClusters/c1"

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl), headers=self.headers)

    async def create(self, http: aiohttp.ClientSession, svc: Service, nodes: int) -> aiohttp.ClientResponse:
        """Create rg and c1 (`nodes` in its System pool); the cluster PUT's response."""
        body = {"location": "eastus", "properties": {"agentPoolProfiles": [
            {"name": "nodepool1", "count": nodes, "vmSize": "Standard_DS2_v2", "mode": "System"}]}}
        async with http.put(f"{svc.endpoint}{self.group}?api-version=2025-04-01", json={"location": "eastus"}) as r:
            assert r.status == 201
        async with http.put(f"{svc.endpoint}{self.cluster}?{API}", json=body) as r:
            await r.read()
            return r


async def test_operation_interrupted_by_a_restart_completes(tmp_path, monkeypatch):
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    assert svc.plane is not None
    started = asyncio.Event()

    async def hang(*_args, **_kwargs):  # the first process dies while materializing nodes
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(svc.plane.fleet, "sync", hang)
    api = Management(tmp_path)
    cluster = api.cluster
    async with api.session() as http:
        r = await api.create(http, svc, nodes=2)
        assert r.status == 201
        op_path = r.headers["Azure-AsyncOperation"].split(svc.endpoint, 1)[1]
    await asyncio.wait_for(started.wait(), 10)
    await svc.stop()  # the operation is still InProgress in the journal

    again = Service(home=tmp_path, port=0)
    await again.start()
    try:
        async with api.session() as http:
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
    api = Management(tmp_path)
    cluster = api.cluster
    async with api.session() as http:
        assert (await api.create(http, svc, nodes=1)).status in (200, 201)
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
        async with api.session() as http:
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
