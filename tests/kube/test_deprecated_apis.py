"""Deprecated API versions: upstream's lifecycle table and warning text, the served set per
minor (flowcontrol.apiserver.k8s.io/v1beta3 until 1.31), and the writes recorded for AKS's
deprecated-API upgrade check."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web
from support import ADMIN, CA, TOKEN

from lks import store
from lks.clock import ManualClock
from lks.kube import apiusage, lifecycle
from lks.kube.cluster import Cluster
from lks.kube.http.app import KubeAPI

AUTH = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "kubectl/v1.31.4 (linux/amd64) kubernetes/abc"}
BETA3 = "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"
V1 = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas"
FS_WARNING = ('299 - "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema is deprecated in v1.29+, unavailable in '
              'v1.32+; use flowcontrol.apiserver.k8s.io/v1 FlowSchema"')


def flow_schema(name: str = "fs") -> dict:
    return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema", "metadata": {"name": name},
            "spec": {"priorityLevelConfiguration": {"name": "global-default"}, "matchingPrecedence": 500}}


@pytest.mark.parametrize(("gvr", "serving", "expected"), [
    pytest.param(("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas"), "1.31",
                 FS_WARNING[7:-1], id="flowschema-v1beta3"),
    pytest.param(("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations"), "1.29",
                 "flowcontrol.apiserver.k8s.io/v1beta3 PriorityLevelConfiguration is deprecated in v1.29+, "
                 "unavailable in v1.32+; use flowcontrol.apiserver.k8s.io/v1 PriorityLevelConfiguration",
                 id="plc-from-its-deprecation"),
    pytest.param(("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas"), "1.28", None, id="before-deprecation"),
    pytest.param(("policy", "v1beta1", "podsecuritypolicies"), "1.24",
                 "policy/v1beta1 PodSecurityPolicy is deprecated in v1.21+, unavailable in v1.25+", id="no-replacement"),
    pytest.param(("autoscaling", "v2beta2", "horizontalpodautoscalers"), "1.25",
                 "autoscaling/v2beta2 HorizontalPodAutoscaler is deprecated in v1.23+, unavailable in v1.26+; "
                 "use autoscaling/v2 HorizontalPodAutoscaler", id="hpa-v2beta2"),
    pytest.param(("flowcontrol.apiserver.k8s.io", "v1", "flowschemas"), "1.31", None, id="ga"),
])
def test_warning_text(gvr, serving, expected):
    assert lifecycle.warning(*gvr, serving) == expected


def test_removals_between_minors():
    def removed(cur, tgt):
        return sorted(f"{g}/{v}/{r}" for (g, v, r), _ in lifecycle.removed_between(cur, tgt))

    assert removed("1.31", "1.32") == ["flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
                                       "flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations"]
    assert removed("1.32", "1.33") == [] and removed("1.36", "1.37") == []
    assert removed("1.25", "1.26") == ["autoscaling/v2beta2/horizontalpodautoscalers",
                                       "flowcontrol.apiserver.k8s.io/v1beta1/flowschemas",
                                       "flowcontrol.apiserver.k8s.io/v1beta1/prioritylevelconfigurations"]
    assert "policy/v1beta1/podsecuritypolicies" in removed("1.24", "1.25")


async def _cluster(version: str, backend: store.Backend, clock: ManualClock) -> Cluster:
    c = Cluster(id="c1", name="c1", kubernetes_version=version, backend=backend, ca=CA, tokens={TOKEN: ADMIN},
                clock=clock)
    await c.start()
    return c


@pytest.fixture
async def backend() -> AsyncIterator[store.Backend]:
    b = store.open_store("memory://")
    await b.start()
    yield b
    await b.close()


async def _client(cluster: Cluster) -> test_utils.TestClient:
    api = KubeAPI(lambda cid: cluster if cid == cluster.id else None)
    app = web.Application()
    app.add_routes(api.routes())
    app.on_response_prepare.append(api.on_response_prepare)
    client = test_utils.TestClient(test_utils.TestServer(app))
    await client.start_server()
    return client


async def test_v1beta3_served_with_warning_until_1_31_then_gone(backend):
    clock = ManualClock()
    cluster = await _cluster("1.31.14", backend, clock)
    client = await _client(cluster)
    try:
        resp = await client.post(f"/clusters/c1{BETA3}", json=flow_schema(), headers=AUTH)
        assert resp.status == 201, await resp.text()
        assert resp.headers.getall("Warning") == [FS_WARNING]
        assert (await resp.json())["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1beta3"
        resp = await client.get(f"/clusters/c1{BETA3}/fs", headers=AUTH)
        assert resp.status == 200 and resp.headers.getall("Warning") == [FS_WARNING]
        resp = await client.get(f"/clusters/c1{BETA3}/missing", headers=AUTH)  # errors carry it too
        assert resp.status == 404 and resp.headers.getall("Warning") == [FS_WARNING]
        resp = await client.get(f"/clusters/c1{V1}/fs", headers=AUTH)
        assert resp.status == 200 and "Warning" not in resp.headers
        assert (await resp.json())["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1"
        group = await (await client.get("/clusters/c1/apis/flowcontrol.apiserver.k8s.io", headers=AUTH)).json()
        assert [v["version"] for v in group["versions"]] == ["v1", "v1beta3"]
        assert group["preferredVersion"]["version"] == "v1"
        # the write counted, with its user agent; the reads did not add anything
        seen = await cluster.api_usage.seen()
        assert seen == {"flowcontrol.apiserver.k8s.io/v1beta3/flowschemas": {AUTH["User-Agent"]: clock.now()}}
    finally:
        await client.close()
        await cluster.stop()
    # the upgrade: the same store served by 1.32
    cluster = await _cluster("1.32.12", backend, clock)
    client = await _client(cluster)
    try:
        resp = await client.get(f"/clusters/c1{BETA3}/fs", headers=AUTH)
        assert resp.status == 404 and "Warning" not in resp.headers
        assert (await resp.json())["reason"] == "NotFound"
        resp = await client.get(f"/clusters/c1{V1}/fs", headers=AUTH)
        assert resp.status == 200 and (await resp.json())["spec"]["matchingPrecedence"] == 500
        group = await (await client.get("/clusters/c1/apis/flowcontrol.apiserver.k8s.io", headers=AUTH)).json()
        assert [v["version"] for v in group["versions"]] == ["v1"]
        resp = await client.get("/clusters/c1/apis/flowcontrol.apiserver.k8s.io/v1beta3", headers=AUTH)
        assert resp.status == 404
        openapi = await client.get("/clusters/c1/openapi/v3", headers=AUTH)
        paths = (await openapi.json())["paths"]
        assert "apis/flowcontrol.apiserver.k8s.io/v1" in paths
        assert "apis/flowcontrol.apiserver.k8s.io/v1beta3" not in paths
        # the usage recorded before the restart is still there (the cluster's store keeps it)
        assert "flowcontrol.apiserver.k8s.io/v1beta3/flowschemas" in await cluster.api_usage.seen()
    finally:
        await client.close()
        await cluster.stop()


async def test_usage_counts_writes_for_twelve_hours(backend):
    clock = ManualClock()
    usage = apiusage.Usage(backend, clock)
    await usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "list", "a")
    await usage.record("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "create", "a")
    assert await usage.seen() == {}
    await usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "patch", "a")
    first = clock.now()
    await clock.advance(30)
    await usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations", "delete", None)
    assert await usage.seen() == {"flowcontrol.apiserver.k8s.io/v1beta3/flowschemas": {"a": first},
                                  "flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations": {"": first + 30}}
    # a new reader of the same store (a restart) sees what was written
    assert await apiusage.Usage(backend, clock).seen() == await usage.seen()
    await clock.advance(12 * 3600 - 30)
    assert list(await usage.seen()) == ["flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations"]
    await clock.advance(31)
    assert await usage.seen() == {}
