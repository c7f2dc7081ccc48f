"""Automatic upgrades through the management API, in-process on a `ManualClock`: a `patch`
channel waits for its maintenance window and upgrades the cluster once the clock enters it."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from lks.arm import model, nodeshape
from lks.arm.errors import ARMError
from lks.clock import ManualClock
from lks.server import Service
from lks.upgrade import auto

API = "api-version=2026-08-01"
MONDAY = datetime(2026, 12, 7, tzinfo=UTC).timestamp()


class Management:
    """The management API of a Service over HTTPS with its CA and token."""

    def __init__(self, svc: Service, http: aiohttp.ClientSession):
        config = json.loads((svc.home / "config.json").read_text())
        self.base = f"{svc.endpoint}/subscriptions/{config['subscription_id']}/resourcegroups/rg"
        self.cluster = f"{self.base}/providers/Microsoft.ContainerService/managedClusters/c1"
        self.http = http

    async def call(self, method: str, url: str, body: Any = None, api: str = API) -> tuple[int, Any]:
        async with self.http.request(method, f"{url}?{api}", json=body) as r:
            return r.status, (await r.json() if r.content_length != 0 and r.status != 204 else None)


@pytest.fixture
async def service(tmp_path) -> AsyncIterator[tuple[Service, ManualClock, Management]]:
    clock = ManualClock(start=MONDAY)
    svc = Service(home=tmp_path, port=0, clock=clock)
    await svc.start()
    config = json.loads((tmp_path / "config.json").read_text())
    tls = ssl.create_default_context(cafile=config["ca_file"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls),
                                     headers={"Authorization": f"Bearer {config['token']}"}) as http:
        try:
            yield svc, clock, Management(svc, http)
        finally:
            await svc.stop()


async def _settled(svc: Service, api: Management) -> dict:
    """The cluster once no operation runs on it and the scheduler has had its turn."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        _, doc = await api.call("GET", api.cluster)
        if svc.plane.operations.running(doc["id"]) is None and doc["properties"]["provisioningState"] == "Succeeded":
            await asyncio.sleep(0.05)  # the scheduler's pass after the last change
            if svc.plane.operations.running(doc["id"]) is None:
                return doc
    raise AssertionError(f"the cluster did not settle: {doc['properties']['provisioningState']}")


async def test_patch_channel_upgrades_inside_the_window_and_not_before(service):
    svc, clock, api = service
    status, _ = await api.call("PUT", api.base, {"location": "eastus"}, "api-version=2025-04-01")
    assert status == 201
    status, _ = await api.call("PUT", api.cluster, {"location": "eastus", "properties": {
        "kubernetesVersion": "1.36.2", "agentPoolProfiles": [
            {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}]}})
    assert status in (200, 201)
    await _settled(svc, api)
    # Wednesdays 02:00-06:00 at +05:30: Tuesday 20:30 UTC on
    status, config = await api.call("PUT", f"{api.cluster}/maintenanceConfigurations/aksManagedAutoUpgradeSchedule", {
        "properties": {"maintenanceWindow": {"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Wednesday"}},
                                             "durationHours": 4, "utcOffset": "+05:30", "startTime": "02:00"}}})
    assert status == 201, config
    assert config["properties"]["maintenanceWindow"]["startDate"] == "2026-12-07"

    _, doc = await api.call("GET", api.cluster)
    doc["properties"]["autoUpgradeProfile"] = {"upgradeChannel": "patch"}
    status, _ = await api.call("PUT", api.cluster, {"location": "eastus", "properties": doc["properties"]})
    assert status == 200
    doc = await _settled(svc, api)
    assert doc["properties"]["currentKubernetesVersion"] == "1.36.2"
    window = datetime(2026, 12, 8, 20, 30, tzinfo=UTC).timestamp()
    assert await svc.auto_upgrades.run_once() == window  # it sleeps until then

    await clock.advance(window - clock.now() - 60)  # a minute before the window
    doc = await _settled(svc, api)
    assert doc["properties"]["currentKubernetesVersion"] == "1.36.2"

    await clock.advance(120)  # inside it
    doc = await _upgrade_started(svc, api)
    props = doc["properties"]
    assert props["currentKubernetesVersion"] == props["kubernetesVersion"] == "1.36.4"
    assert [p["orchestratorVersion"] for p in props["agentPoolProfiles"]] == ["1.36.4"]  # as az aks upgrade sends
    op = svc.plane.operations.running(doc["id"]) or {}
    assert op.get("startTime", "").startswith("2026-12-08T20:31")  # on the service's clock, in the window
    assert await svc.auto_upgrades.run_once() is None  # nothing left to do: no wake-up either


async def _upgrade_started(svc: Service, api: Management) -> dict:
    """The cluster once an upgrade operation runs on it (how the node pools go is lks.upgrade.surge's)."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        _, doc = await api.call("GET", api.cluster)
        if doc["properties"]["provisioningState"] == "Upgrading":
            return doc
    raise AssertionError(f"no upgrade started: {doc['properties']['provisioningState']}")


async def test_node_image_channel_waits_for_the_node_os_window(service, monkeypatch):
    svc, clock, api = service
    await api.call("PUT", api.base, {"location": "eastus"}, "api-version=2025-04-01")
    await api.call("PUT", api.cluster, {"location": "eastus", "properties": {"agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}]}})
    first = (await _settled(svc, api))["properties"]["agentPoolProfiles"][0]["nodeImageVersion"]
    monkeypatch.setattr(nodeshape, "NODE_IMAGE_RELEASES", (*nodeshape.NODE_IMAGE_RELEASES, "202612.07.0"))
    newest = first.rsplit("-", 1)[0] + "-202612.07.0"
    # every day 06:00-10:00 UTC; the clock stands at Monday 00:00 (the PUT also wakes the scheduler)
    status, _ = await api.call("PUT", f"{api.cluster}/maintenanceConfigurations/aksManagedNodeOSUpgradeSchedule", {
        "properties": {"maintenanceWindow": {"schedule": {"daily": {"intervalDays": 1}}, "durationHours": 4,
                                             "startTime": "06:00"}}})
    assert status == 201
    doc = await _settled(svc, api)
    assert doc["properties"]["agentPoolProfiles"][0]["nodeImageVersion"] == first  # the default NodeImage channel
    assert await svc.auto_upgrades.run_once() == MONDAY + 6 * 3600

    await clock.advance(6 * 3600)
    for _ in range(500):
        await asyncio.sleep(0.01)
        _, doc = await api.call("GET", api.cluster)
        if doc["properties"]["provisioningState"] != "Succeeded":
            break
    assert doc["properties"]["provisioningState"] == "UpgradingNodeImageVersion"
    assert doc["properties"]["agentPoolProfiles"][0]["nodeImageVersion"] == newest
    assert doc["properties"]["currentKubernetesVersion"] == doc["properties"]["agentPoolProfiles"][0][
        "currentOrchestratorVersion"]  # the version stays


async def test_maintenance_configurations_crud_and_cluster_deletion(service):
    svc, _clock, api = service
    await api.call("PUT", api.base, {"location": "eastus"}, "api-version=2025-04-01")
    await api.call("PUT", api.cluster, {"location": "eastus", "properties": {"agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}]}})
    await _settled(svc, api)
    configs = f"{api.cluster}/maintenanceConfigurations"
    status, body = await api.call("PUT", f"{configs}/nightly", {"properties": {}})
    assert status == 400 and body["error"]["code"] == "InvalidParameter"
    status, body = await api.call("PUT", f"{configs}/default", {"properties": {"timeInWeek": [
        {"day": "Monday", "hourSlots": [1, 2]}]}})
    assert status == 201 and body["name"] == "default"
    assert body["type"] == "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
    status, body = await api.call("PUT", f"{configs}/default", {"properties": {"timeInWeek": [
        {"day": "Monday", "hourSlots": [3]}]}})
    assert status == 200
    status, body = await api.call("GET", configs)
    assert [c["properties"]["timeInWeek"] for c in body["value"]] == [[{"day": "Monday", "hourSlots": [3]}]]
    assert (await api.call("DELETE", f"{configs}/default"))[0] == 200
    assert (await api.call("DELETE", f"{configs}/default"))[0] == 204
    status, body = await api.call("GET", f"{configs}/default")
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"

    await api.call("PUT", f"{configs}/default", {"properties": {"timeInWeek": [{"day": "Monday", "hourSlots": [1]}]}})
    assert (await api.call("DELETE", api.cluster))[0] in (200, 202, 204)
    for _ in range(500):
        if (await api.call("GET", api.cluster))[0] == 404:
            break
        await asyncio.sleep(0.01)
    assert await svc.plane.docs.list(api.cluster.split(svc.endpoint, 1)[1]) == []


@pytest.mark.parametrize(("channel", "current", "target"), [
    pytest.param("patch", "1.35.7", "1.35.9", id="patch"),
    pytest.param("patch", "1.37.2", None, id="patch-at-newest"),
    pytest.param("stable", "1.35.9", "1.36.4", id="stable-one-minor"),
    pytest.param("stable", "1.34.10", "1.35.9", id="stable-one-minor-at-a-time"),
    pytest.param("stable", "1.37.1", "1.37.2", id="stable-above-n-1-patches-only"),
    pytest.param("rapid", "1.36.4", "1.37.2", id="rapid"),
    pytest.param("none", "1.35.7", None, id="none"),
    pytest.param("node-image", "1.35.7", None, id="node-image-keeps-the-version"),
])
def test_channel_targets(channel, current, target):
    assert auto.channel_target(channel, current) == target


def _profile(profile: dict, old: dict | None = None) -> dict:
    body = {"location": "eastus", "properties": {"autoUpgradeProfile": profile, "agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}]}}
    existing = None
    if old is not None:
        existing = model.managed_cluster({**body, "properties": {**body["properties"], "autoUpgradeProfile": old}},
                                         existing=None, resource_id="/x", name="c1", group="rg", subscription="s")
    return model.managed_cluster(body, existing=existing, resource_id="/x", name="c1", group="rg",
                                 subscription="s")["properties"]["autoUpgradeProfile"]


def test_auto_upgrade_profile_is_validated_as_aks():
    assert _profile({}) == {"nodeOSUpgradeChannel": "NodeImage"}
    assert _profile({"upgradeChannel": "Patch", "nodeOSUpgradeChannel": "securitypatch"}) == {
        "upgradeChannel": "patch", "nodeOSUpgradeChannel": "SecurityPatch"}
    assert _profile({"upgradeChannel": "node-image"}, old={"nodeOSUpgradeChannel": "None"}) == {
        "upgradeChannel": "node-image", "nodeOSUpgradeChannel": "NodeImage"}
    with pytest.raises(ARMError) as err:
        _profile({"upgradeChannel": "weekly"})
    assert (err.value.code, err.value.target) == ("InvalidParameter", "autoUpgradeProfile.upgradeChannel")
    with pytest.raises(ARMError) as err:
        _profile({"upgradeChannel": "node-image", "nodeOSUpgradeChannel": "Unmanaged"})
    assert err.value.target == "autoUpgradeProfile.nodeOSUpgradeChannel"
