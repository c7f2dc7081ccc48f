"""Node images through the management API of an in-process service: a new release reaches the
pool's upgrade profile (`latestNodeImageVersion`), `upgradeNodeImageVersion` moves the pool and
its nodes to it, the previous pair lands in `recentlyUsedVersions`, and a PUT of the pool with
that pair rolls it back (any other `nodeImageVersion` is refused). A new release is simulated
by adding it to the catalog, as a new lks would ship it."""

from __future__ import annotations

import asyncio

import pytest

from lks.arm import nodeshape
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.server import Service
from tests.test_operations_resume import API, Management

NEW_RELEASE = "202612.07.0"


async def _settled(http, svc, path: str) -> dict:
    for _ in range(400):
        async with http.get(f"{svc.endpoint}{path}?{API}") as r:
            doc = await r.json()
        if doc["properties"]["provisioningState"] in ("Succeeded", "Failed"):
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not settle: {doc}")


async def _image_labels(svc: Service, want: str) -> set[str]:
    """The nodes' node-image-version labels, once they all say `want` (or after 10 s)."""
    cp = next(iter(svc.planes.clusters.values()))
    for _ in range(200):
        nodes = await cp.registry("", "v1", "nodes").list(None, ListOptions(LabelSelector([]), FieldSelector([])))
        labels = {n["metadata"]["labels"]["kubernetes.azure.com/node-image-version"] for n in nodes["items"]}
        if labels == {want}:
            break
        await asyncio.sleep(0.05)
    return labels


@pytest.fixture
async def service(tmp_path):
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    yield svc
    await svc.stop()


async def test_node_image_upgrade_and_rollback(service, tmp_path, monkeypatch):
    svc = service
    api = Management(tmp_path)
    pool_path = f"{api.cluster}/agentPools/nodepool1"
    async with api.session() as http:
        assert (await api.create(http, svc, nodes=1)).status in (200, 201)
        await _settled(http, svc, api.cluster)
        pool = await _settled(http, svc, pool_path)
        first = pool["properties"]["nodeImageVersion"]
        assert first.endswith("-" + nodeshape.NODE_IMAGE_RELEASES[-1])

        monkeypatch.setattr(nodeshape, "NODE_IMAGE_RELEASES", (*nodeshape.NODE_IMAGE_RELEASES, NEW_RELEASE))
        newest = first.rsplit("-", 1)[0] + "-" + NEW_RELEASE
        async with http.get(f"{svc.endpoint}{pool_path}/upgradeProfiles/default?{API}") as r:
            profile = (await r.json())["properties"]
        assert profile["latestNodeImageVersion"] == newest
        assert "recentlyUsedVersions" not in profile

        async with http.post(f"{svc.endpoint}{pool_path}/upgradeNodeImageVersion?{API}") as r:
            assert r.status in (200, 202), await r.text()
            body = await r.json()
            if r.status == 202:
                assert body["properties"]["provisioningState"] == "UpgradingNodeImageVersion"
                assert "Azure-AsyncOperation" in r.headers
        pool = await _settled(http, svc, pool_path)
        assert pool["properties"]["nodeImageVersion"] == newest
        assert pool["properties"]["provisioningState"] == "Succeeded"
        assert await _image_labels(svc, newest) == {newest}
        async with http.get(f"{svc.endpoint}{pool_path}/upgradeProfiles/default?{API}") as r:
            profile = (await r.json())["properties"]
        version = pool["properties"]["currentOrchestratorVersion"]
        [used] = profile["recentlyUsedVersions"]
        assert (used["orchestratorVersion"], used["nodeImageVersion"]) == (version, first)

        # an image the pool never ran is not a rollback target: 400, nothing changes
        bad = {"properties": {**pool["properties"], "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202001.01.0"}}
        async with http.put(f"{svc.endpoint}{pool_path}?{API}", json=bad) as r:
            assert r.status == 400
            error = (await r.json())["error"]
        assert error["code"] == "InvalidParameter" and error["target"] == "agentPoolProfile.nodeImageVersion"
        pool = await _settled(http, svc, pool_path)
        assert pool["properties"]["nodeImageVersion"] == newest

        back = {"properties": {**pool["properties"], "nodeImageVersion": first, "orchestratorVersion": version}}
        async with http.put(f"{svc.endpoint}{pool_path}?{API}", json=back) as r:
            assert r.status == 200, await r.text()
        pool = await _settled(http, svc, pool_path)
        assert pool["properties"]["nodeImageVersion"] == first
        assert await _image_labels(svc, first) == {first}
        async with http.get(f"{svc.endpoint}{pool_path}/upgradeProfiles/default?{API}") as r:
            [used] = (await r.json())["properties"]["recentlyUsedVersions"]
        assert used["nodeImageVersion"] == newest  # the rolled-back-from pair; the target left the list
