"""`lks.arm.operations`: the answer to the request that started an operation is its final state
when the operation succeeds within the budget, and ARM's asynchronous answer (monitor URLs)
when it is still running or failed; a status monitor waits for the end the same way; the
request's wait never cancels the operation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from lks import store
from lks.arm.errors import ARMError
from lks.arm.operations import Operations

API = "2026-08-01"
SUB = "00000000-0000-0000-0000-000000000001"
RID = f"/subscriptions/{SUB}/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c"


@pytest.fixture
async def ops() -> AsyncIterator[Operations]:
    backend = store.open_store("memory://")
    await backend.start()
    # a long budget: a quick operation is answered synchronously however loaded the machine
    operations = Operations(backend, url=lambda path, version: f"https://lks.test{path}?api-version={version}",
                            sync_budget=30.0)
    yield operations
    await operations.stop()
    await backend.close()


async def _begin(ops: Operations, kind: str, location: str | None = "westeurope") -> dict[str, Any]:
    return await ops.begin(kind, subscription=SUB, location=location, resource_id=RID, action=kind)


async def _final() -> dict[str, Any]:
    return {"name": "c", "properties": {"provisioningState": "Succeeded"}}


def _body(resp) -> Any:
    return orjson.loads(resp.body)


async def test_a_quick_put_is_answered_with_the_final_resource(ops):
    async def work(_op):
        await asyncio.sleep(0)
        return None

    ops.register("quick", work)
    resp = await ops.answer_put(await _begin(ops, "quick"), API, status=201,
                                accepted={"properties": {"provisioningState": "Creating"}}, final=_final)
    assert resp.status == 201 and _body(resp)["properties"]["provisioningState"] == "Succeeded"
    assert "Azure-AsyncOperation" not in resp.headers and "Location" not in resp.headers


@pytest.mark.parametrize(("location", "done", "async_operation"), [("westeurope", 204, True), (None, 200, False)],
                         ids=["managed-cluster", "resource-group"])
async def test_a_quick_delete_is_answered_done(ops, location, done, async_operation):
    ops.register("quick", lambda _op: asyncio.sleep(0))
    resp = await ops.answer_action(await _begin(ops, "quick", location), API, done=done,
                                   async_operation=async_operation)
    assert resp.status == done and resp.body is None and "Location" not in resp.headers


async def test_a_running_operation_is_answered_asynchronously_and_keeps_running(ops):
    release = asyncio.Event()

    async def held(_op):
        await release.wait()

    ops.register("held", held)
    ops.sync_budget = 0.01
    op = await _begin(ops, "held")
    accepted = {"properties": {"provisioningState": "Creating"}}
    resp = await ops.answer_put(op, API, status=201, accepted=accepted, final=_final)
    assert resp.status == 201 and _body(resp) == accepted
    status_url = f"https://lks.test/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/" \
                 f"operations/{op['name']}?api-version={API}"
    assert resp.headers["Azure-AsyncOperation"] == status_url and resp.headers["Retry-After"] == "1"

    resp = await ops.answer_action(op, API)
    assert resp.status == 202 and resp.headers["Location"] == status_url.replace("/operations/", "/operationresults/")
    assert ops.running(RID) is op  # the requests' waits did not end it
    assert (await ops.settle(op["name"]))["status"] == "InProgress"

    release.set()
    ops.sync_budget = 30.0
    assert (await ops.settle(op["name"]))["status"] == "Succeeded"  # the monitor waits for the end
    assert ops.running(RID) is None


async def test_a_failed_operation_is_answered_asynchronously_with_its_error_at_the_monitor(ops):
    async def fails(_op):
        raise ARMError("PodDrainFailure", "drain failed", 400)

    ops.register("fails", fails)
    op = await _begin(ops, "fails")
    resp = await ops.answer_action(op, API)
    assert resp.status == 202 and "Azure-AsyncOperation" in resp.headers
    record = await ops.settle(op["name"])
    assert record["status"] == "Failed" and record["error"]["code"] == "PodDrainFailure"
