"""The ARM face of container groups (`lks.arm.containergroups`) in process, with an operation
budget of 0 so every create answers asynchronously: 201 with `Azure-AsyncOperation` pointing at
ACI's own `locations/{l}/operations/{id}`, which ends `Succeeded`; the group is then Running."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lks import store
from lks.aci.groups import ContainerGroups
from lks.arm import containergroups, documents
from lks.arm.app import ManagementAPI
from lks.arm.operations import Operations

SUB = "00000000-0000-0000-0000-000000000001"
TOKEN = "t0ken"
BASE = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups"
Q = "?api-version=2023-05-01"


async def test_create_answers_with_acis_operation_when_it_takes_longer(tmp_path: Path) -> None:
    backend = store.open_store("memory://")
    await backend.start()
    ops = Operations(backend, sync_budget=0.0)
    service = ContainerGroups(docs=documents.Documents(backend), operations=ops, data_dir=tmp_path, network=False)
    await service.start()
    endpoint: list[str] = []

    async def require_group(_sub: str, _name: str) -> None:
        return None

    api = containergroups.ContainerGroupsAPI(service, require_group=require_group,
                                             url=lambda p, v: f"{endpoint[0]}{p}?api-version={v}",
                                             endpoint=lambda: endpoint[0])
    mgmt = ManagementAPI(token=TOKEN, subscription_id=SUB, routes=api.routes())
    app = web.Application()
    app.router.add_routes(mgmt.aiohttp_routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    endpoint.append(str(client.make_url("")).rstrip("/"))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        body = {"location": "westeurope", "properties": {"containers": [{"name": "c", "properties": {
            "image": "x", "command": ["sleep", "30"], "environment": None,
            "environmentVariables": [{"name": "PATH", "value": os.environ["PATH"]}]}}]}}
        r = await client.put(f"{BASE}/g1{Q}", json=body, headers=headers)
        assert r.status == 201
        assert (await r.json())["properties"]["provisioningState"] == "Pending"
        monitor = r.headers["Azure-AsyncOperation"]
        assert "/providers/Microsoft.ContainerInstance/locations/westeurope/operations/" in monitor
        for _ in range(100):
            status = (await (await client.get(monitor.removeprefix(endpoint[0]), headers=headers)).json())["status"]
            if status != "InProgress":
                break
            await asyncio.sleep(0.05)
        assert status == "Succeeded"
        got = await (await client.get(f"{BASE}/g1{Q}", headers=headers)).json()
        assert got["properties"]["provisioningState"] == "Succeeded"
        assert got["properties"]["instanceView"]["state"] == "Running"
        assert got["properties"]["billing"]["requestedCpu"] == 1.0  # ACI's default request
        r = await client.delete(f"{BASE}/g1{Q}", headers=headers)
        assert r.status in (200, 202)
        missing = await client.get(f"{BASE}/nope{Q}", headers=headers)
        assert missing.status == 404 and (await missing.json())["error"]["code"] == "ResourceNotFound"
    finally:
        await client.close()
        await service.stop()
        await ops.stop()
        await backend.close()
