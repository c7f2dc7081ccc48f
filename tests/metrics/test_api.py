"""`metrics.k8s.io/v1beta1` of a cluster with simulated pods: PodMetrics and NodeMetrics as
metrics-server writes them, selectors, upstream's errors, and `lks.metrics.usage` for in-process
consumers."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from support import ADMIN

from lks import metrics
from lks.clock import rfc3339
from lks.metrics import api, source

MI = 2**20


async def _node(cluster, name="n1", ready=True):
    nodes = cluster.registry("", "v1", "nodes")
    await nodes.create(None, {"metadata": {"name": name, "labels": {"pool": "a"}}})

    def status(current):
        current["status"] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                              "lastHeartbeatTime": rfc3339(cluster.clock.now()),
                                              "lastTransitionTime": rfc3339(cluster.clock.now())}]}
        return current

    await nodes.patch(None, name, status, subresource="status")


async def _pod(cluster, name, *, ns="default", node="n1", notes=None, labels=None, phase="Running",
               containers=("app",)):
    pods = cluster.registry("", "v1", "pods")
    await pods.create(ns, {"metadata": {"name": name, "labels": labels or {"app": name}, "annotations": notes or {}},
                           "spec": {"nodeName": node, "containers": [{"name": c, "image": "nginx"} for c in containers]}})
    started = rfc3339(cluster.clock.now())

    def status(current):
        current["status"].update(phase=phase, containerStatuses=[
            {"name": c, "ready": True, "restartCount": 0, "image": "nginx", "imageID": "", "started": True,
             "state": {"running": {"startedAt": started}}} for c in containers])
        return current

    await pods.patch(ns, name, status, subresource="status")


@pytest.fixture
async def served(cluster):
    await metrics.serve(cluster)
    yield cluster.aggregator.local[(api.GROUP, api.VERSION)]
    await metrics.stop(cluster)


async def _get(local, path, headers=None, **query):
    cluster = local.usage.cluster  # the watch cache first catches up with what the test wrote
    assert await cluster.feed.wait_for(await cluster.store.current_revision(), 5)
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    req = make_mocked_request("GET", f"/apis/metrics.k8s.io/v1beta1/{path}" + (f"?{qs}" if qs else ""),
                              headers=headers or {})
    resp = await local.handle(req, ADMIN, path)
    return resp.status, orjson.loads(resp.body)


def test_quantities_are_canonical_as_metrics_server_prints_them():
    assert [api.cpu_quantity(c) for c in (0, 0.25, 2, 0.001234567, 0.000001)] == ["0", "250m", "2", "1234567n", "1u"]
    assert [api.memory_quantity(m) for m in (0, 64 * MI, 4096 * 3, 1500)] == ["0", "64Mi", "12Ki", "1500"]


async def test_pod_metrics_follow_the_annotations_with_selectors_and_namespaces(cluster, served, clock):
    await _node(cluster)
    await _pod(cluster, "web", notes={"lks.dev/simulate-cpu": "250m", "lks.dev/simulate-memory": "64Mi"},
               containers=("app", "side"))
    await _pod(cluster, "db", notes={"lks.dev/simulate-cpu-curve": "100m@0s,1@100s"})
    await _pod(cluster, "pending", phase="Pending")
    await _pod(cluster, "other", ns="kube-system")
    await clock.advance(50)
    status, got = await _get(served, "namespaces/default/pods")
    assert status == 200 and got["kind"] == "PodMetricsList" and got["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert [i["metadata"]["name"] for i in got["items"]] == ["db", "web"]
    web = got["items"][1]
    assert web["metadata"]["labels"] == {"app": "web"} and web["metadata"]["namespace"] == "default"
    assert web["window"] == "15s" and web["timestamp"] == rfc3339(clock.now())
    assert web["containers"] == [{"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
                                 {"name": "side", "usage": {"cpu": "250m", "memory": "64Mi"}}]
    assert got["items"][0]["containers"][0]["usage"]["cpu"] == "550m"  # half way up the curve
    _, every = await _get(served, "pods")
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in every["items"]} == {
        ("default", "db"), ("default", "web"), ("kube-system", "other")}
    _, picked = await _get(served, "namespaces/default/pods", labelSelector="app%3Dweb")
    assert [i["metadata"]["name"] for i in picked["items"]] == ["web"]
    status, one = await _get(served, "namespaces/default/pods/web")
    assert status == 200 and one["kind"] == "PodMetrics"
    status, missing = await _get(served, "namespaces/default/pods/pending")
    assert (status, missing["reason"], missing["message"]) == (
        404, "NotFound", 'podmetrics.metrics.k8s.io "default/pending" not found')
    usage = metrics.usage(cluster).pod("default", "web")
    assert usage.containers["app"] == source.ContainerUsage(0.25, 64 * MI) and usage.window == 15.0
    assert metrics.usage(cluster).pod("default", "pending") is None


async def test_node_metrics_sum_their_pods_and_the_nodes_own_usage(cluster, served):
    await _node(cluster, "n1")
    await _node(cluster, "n2", ready=False)
    await _pod(cluster, "a", notes={"lks.dev/simulate-cpu": "1", "lks.dev/simulate-memory": "100Mi"})
    await _pod(cluster, "b", notes={"lks.dev/simulate-cpu": "500m", "lks.dev/simulate-memory": "28Mi"})
    status, got = await _get(served, "nodes")
    assert status == 200 and got["kind"] == "NodeMetricsList"
    [n1] = got["items"]  # a NotReady node is not scraped
    assert n1["metadata"]["name"] == "n1" and n1["metadata"]["labels"] == {"pool": "a"}
    assert n1["usage"] == {"cpu": api.cpu_quantity(1.5 + source.NODE_CPU),
                           "memory": api.memory_quantity(128 * MI + source.NODE_MEMORY)}
    status, one = await _get(served, "nodes/n1")
    assert status == 200 and one["kind"] == "NodeMetrics" and one["usage"] == n1["usage"]
    status, missing = await _get(served, "nodes/n2")
    assert (status, missing["message"]) == (404, 'nodemetrics.metrics.k8s.io "n2" not found')
    _, none = await _get(served, "nodes", labelSelector="pool%3Db")
    assert none["items"] == []


async def test_what_metrics_server_does_not_serve(cluster, served):
    status, body = await _get(served, "pods", watch="true")
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
    status, body = await _get(served, "namespaces/default/deployments")
    assert status == 404
    status, body = await _get(served, "pods", labelSelector="a%20in")
    assert (status, body["reason"]) == (400, "BadRequest")
    req = make_mocked_request("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/n1")
    assert (await served.handle(req, ADMIN, "nodes/n1")).status == 405
    assert {r["name"]: r["kind"] for r in served.resources()} == {"nodes": "NodeMetrics", "pods": "PodMetrics"}


async def test_kubectl_get_gets_metrics_servers_table(cluster, served):
    await _node(cluster)
    await _pod(cluster, "web", notes={"lks.dev/simulate-cpu": "250m", "lks.dev/simulate-memory": "64Mi"},
               containers=("app", "side"))
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    status, got = await _get(served, "namespaces/default/pods", headers=accept)
    assert status == 200 and got["kind"] == "Table"
    assert [c["name"] for c in got["columnDefinitions"]] == ["Name", "cpu", "memory", "Window"]
    assert got["rows"][0]["cells"] == ["web", "500m", "128Mi", "15s"]
    assert got["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    _, none = await _get(served, "namespaces/empty/pods", headers=accept)
    assert none["columnDefinitions"] == [] and none["rows"] == []
    _, node = await _get(served, "nodes/n1", headers=accept)
    assert node["rows"][0]["cells"][0] == "n1"
