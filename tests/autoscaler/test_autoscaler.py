"""The cluster autoscaler in-process on a `ManualClock`: pending pods that fit no node grow an
autoscaled pool to its max in one scan (the ARM pool shows the count), the Events and the status
ConfigMap say so; once the load goes the pool shrinks, empty nodes in bulk, a node whose pod a
PodDisruptionBudget protects stays until the budget goes, and never below minCount."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lks.clock import ManualClock
from lks.kube import selectors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.server import Service

API = "api-version=2026-08-01"
START = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
SCAN = 10.0


class Management:
    def __init__(self, svc: Service, http: aiohttp.ClientSession):
        config = json.loads((svc.home / "config.json").read_text())
        self.base = f"{svc.endpoint}/subscriptions/{config['subscription_id']}/resourcegroups/rg"
        self.cluster = f"{self.base}/providers/Microsoft.ContainerService/managedClusters/c1"
        self.http = http

    async def call(self, method: str, url: str, body: Any = None, api: str = API) -> tuple[int, Any]:
        async with self.http.request(method, f"{url}?{api}", json=body) as r:
            return r.status, (await r.json() if r.content_length != 0 and r.status != 204 else None)


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 120.0) -> Any:
    """Polls on the wall clock: the service's own work (controllers, node agents) is real; a
    generous budget because a loaded CI machine is slow, not wrong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


PROFILE = {"scan-interval": "10s", "scale-down-delay-after-add": "0m", "scale-down-unneeded-time": "1m"}


@contextlib.asynccontextmanager
async def service(home: Path, *, profile: dict, count: int = 1,
                  ) -> AsyncIterator[tuple[Service, ManualClock, Management, Cluster]]:
    """A service with cluster c1: a System pool and `burst`, tainted, autoscaled from 1 to 5."""
    clock = ManualClock(start=START)
    svc = Service(home=home, port=0, clock=clock)
    await svc.start()
    config = json.loads((home / "config.json").read_text())
    tls = ssl.create_default_context(cafile=config["ca_file"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls),
                                     headers={"Authorization": f"Bearer {config['token']}"}) as http:
        api = Management(svc, http)
        try:
            status, _ = await api.call("PUT", api.base, {"location": "eastus"}, "api-version=2025-04-01")
            assert status == 201
            status, body = await api.call("PUT", api.cluster, {"location": "eastus", "properties": {
                "kubernetesVersion": "1.36.2", "autoScalerProfile": profile,
                "agentPoolProfiles": [
                    {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"},
                    {"name": "burst", "count": count, "vmSize": "Standard_DS2_v2", "mode": "User",
                     "enableAutoScaling": True, "minCount": 1, "maxCount": 5,
                     "nodeTaints": ["workload=burst:NoSchedule"]}]}})
            assert status in (200, 201), body
            doc = await settled(svc, api)
            stored = await svc.plane.docs.get(doc["id"])
            cluster = svc.planes.get(stored.doc["properties"]["_lks"]["controlPlane"])
            yield svc, clock, api, cluster
        finally:
            await svc.stop()


@pytest.fixture
async def setup(tmp_path) -> AsyncIterator[tuple[Service, ManualClock, Management, Cluster]]:
    async with service(tmp_path, profile=PROFILE) as got:
        yield got


async def settled(svc: Service, api: Management) -> dict:
    async def check() -> dict | None:
        _, doc = await api.call("GET", api.cluster)
        if svc.plane.operations.running(doc["id"]) is None and doc["properties"]["provisioningState"] == "Succeeded":
            return doc
        return None

    return await until(check, "the cluster to settle")


def burst(doc: dict) -> dict:
    return next(p for p in doc["properties"]["agentPoolProfiles"] if p["name"] == "burst")


async def pods(cluster: Cluster) -> list[dict]:
    reg = cluster.registry("", "v1", "pods")
    return (await reg.list("default", ListOptions(selectors.parse_labels("app=load"),
                                                  selectors.FieldSelector([]))))["items"]


async def burst_nodes(cluster: Cluster) -> list[str]:
    cache = await cluster.registry("", "v1", "nodes").cache()
    return sorted(n["metadata"]["name"] for n in cache.objects.values()
                  if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == "burst")


async def events(cluster: Cluster, reason: str) -> list[dict]:
    cache = await cluster.registry("", "v1", "events").cache()
    return [e for e in cache.objects.values() if e.get("reason") == reason]


def pending(items: list[dict]) -> list[dict]:
    return [p for p in items if any(c.get("reason") == "Unschedulable"
                                    for c in (p.get("status") or {}).get("conditions") or ())]


def deployment(replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "load"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "load"}},
        "template": {"metadata": {"labels": {"app": "load"}}, "spec": {
            "nodeSelector": {"kubernetes.azure.com/agentpool": "burst"},
            "tolerations": [{"key": "workload", "operator": "Equal", "value": "burst", "effect": "NoSchedule"}],
            "containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "500m"}}}]}}}}


async def scale(cluster: Cluster, replicas: int) -> None:
    def change(current: dict) -> dict:
        current["spec"]["replicas"] = replicas
        return current

    await cluster.registry("apps", "v1", "deployments").patch("default", "load", change)


async def scan(svc: Service, clock: ManualClock, api: Management, seconds: float = SCAN) -> dict:
    """Let the clock run `seconds`, one scan interval at a time, each time waiting for the scan
    that falls due and for the operation it started."""
    doc = None
    for _ in range(round(seconds / SCAN)):
        await clock.advance(SCAN)
        await until(lambda: _scanned(svc, clock), "the autoscaler's scan")
        doc = await settled(svc, api)
    return doc


async def _scanned(svc: Service, clock: ManualClock) -> bool:
    assert svc.autoscaler is not None
    return all(state.next_scan > clock.now() for state in svc.autoscaler.states.values())


async def test_pending_pods_grow_the_pool_to_max_in_one_scan_then_it_shrinks_past_a_budget(setup):
    svc, clock, api, cluster = setup
    await cluster.registry("apps", "v1", "deployments").create("default", deployment(40))
    # a DS2_v2 node takes three 500m pods: 37 stay pending
    await until(lambda: _count(pending, cluster, 37), "37 pods marked Unschedulable")

    doc = await scan(svc, clock, api)
    pool = burst(doc)
    assert pool["count"] == 5 and pool["maxCount"] == 5
    assert len(await burst_nodes(cluster)) == 5
    vmss = (await burst_nodes(cluster))[0][:-6]
    triggered = await until(lambda: events(cluster, "TriggeredScaleUp"), "TriggeredScaleUp events")
    assert triggered[0]["message"] == f"pod triggered scale-up: [{{{vmss} 1->5 (max: 5)}}]"
    assert triggered[0]["source"]["component"] == "cluster-autoscaler"
    configmap = await cluster.registry("", "v1", "configmaps").get("kube-system", "cluster-autoscaler-status")
    text = configmap["data"]["status"]
    assert "autoscalerStatus: Running" in text and f"- name: {vmss}" in text
    assert "cloudProviderTarget: 5" in text and "maxSize: 5" in text and "minSize: 1" in text
    assert "clusterWide:\n  health:\n    status: Healthy\n" in text
    assert "  scaleUp:\n    status: InProgress\n" in text
    assert "cluster-autoscaler.kubernetes.io/last-updated" in configmap["metadata"]["annotations"]
    scaled = await events(cluster, "ScaledUpGroup")
    assert scaled[0]["message"] == f"Scale-up: setting group {vmss} size to 5 instead of 1 (max: 5)"

    # 15 run, 25 wait: at max, the next scan says why it does not grow
    await until(lambda: _count(pending, cluster, 25, exact=True), "25 pods left pending")
    await scan(svc, clock, api)
    refused = await until(lambda: events(cluster, "NotTriggerScaleUp"), "NotTriggerScaleUp events")
    assert refused[0]["message"] == "pod didn't trigger scale-up: 1 max node group size reached"
    explained = svc.autoscaler.explain(doc["id"])
    assert len(explained["pendingPods"]) == 25
    assert explained["pendingPods"][0]["reasons"] == {"max node group size reached": 1}
    await scan(svc, clock, api)  # the same Event again is counted, not created anew
    refused = await events(cluster, "NotTriggerScaleUp")
    assert len(refused) == 25 and {e["count"] for e in refused} == {2}

    # the load goes; two pods of another ReplicaSet stay, on two nodes, under a
    # budget that allows no disruption
    await scale(cluster, 0)
    await until(lambda: _count(lambda items: items, cluster, 0, exact=True), "no pods left")
    nodes = await burst_nodes(cluster)
    await keep(cluster)
    holding = {p["spec"]["nodeName"] for p in await _keep_pods(cluster)}
    assert len(holding) == 2
    await cluster.registry("policy", "v1", "poddisruptionbudgets").create("default", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "keep"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "keep"}}}})
    await until(lambda: _pdb_settled(cluster), "the budget's status")
    doc = await scan(svc, clock, api, 70.0)  # unneeded for a minute: the empty ones go at once
    assert burst(doc)["count"] == 2
    assert set(await burst_nodes(cluster)) == holding
    gone = set(nodes) - holding
    empties = [e for e in await events(cluster, "ScaleDownEmpty")]
    assert {e["message"] for e in empties} == {f"Scale-down: removing empty node {n}" for n in gone}
    marked = await events(cluster, "ScaleDown")
    assert {e["involvedObject"]["name"] for e in marked
            if e["message"] == "marked the node as toBeDeleted/unschedulable"} == gone
    doc = await scan(svc, clock, api, 120.0)
    assert burst(doc)["count"] == 2  # the budget keeps both
    verdicts = svc.autoscaler.states[doc["id"].lower()].last_verdicts
    assert {v.node: v.reason for v in verdicts} == dict.fromkeys(holding, "NotEnoughPdb")
    assert {n["name"]: n["reason"] for n in svc.autoscaler.explain(doc["id"])["nodes"]} == \
        dict.fromkeys(holding, "NotEnoughPdb")

    # without the budget one node's pod moves to the other, and that node goes
    await cluster.registry("policy", "v1", "poddisruptionbudgets").delete("default", "keep", _delete_opts())
    doc = await scan(svc, clock, api, 80.0)
    assert burst(doc)["count"] == 1
    (left,) = await burst_nodes(cluster)
    assert left in holding
    await until(lambda: _keep_running_on(cluster, left), "the moved pod running on the node left")
    evicted = [e for e in await events(cluster, "ScaleDown") if e["message"] == "deleting pod for node scale down"]
    assert len(evicted) == 1

    # nothing left: the pool stays at minCount
    await cluster.registry("apps", "v1", "replicasets").delete("default", "keep", _delete_opts())
    doc = await scan(svc, clock, api, 120.0)
    assert burst(doc)["count"] == 1
    assert len(await burst_nodes(cluster)) == 1


async def keep(cluster: Cluster, finalizers: tuple[str, ...] = ()) -> None:
    """A ReplicaSet of two whose pods would rather not share a node (the scheduler honours that,
    the autoscaler's simulation, as upstream's, ignores it)."""
    apart = {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "keep"}},
                                                "topologyKey": "kubernetes.io/hostname"}}
    spec = {"tolerations": [{"key": "workload", "operator": "Equal", "value": "burst", "effect": "NoSchedule"}],
            "nodeSelector": {"kubernetes.azure.com/agentpool": "burst"},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [apart]}},
            "containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "500m"}}}]}
    meta = {"labels": {"app": "keep"}, **({"finalizers": list(finalizers)} if finalizers else {})}
    await cluster.registry("apps", "v1", "replicasets").create("default", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "keep"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "keep"}},
                 "template": {"metadata": meta, "spec": spec}}})
    await until(lambda: _adopted(cluster), "the two pods running")


async def _adopted(cluster: Cluster) -> bool:
    items = await _keep_pods(cluster)
    return len(items) == 2 and all(p["metadata"].get("ownerReferences") and p["status"].get("phase") == "Running"
                                   for p in items)


async def _keep_pods(cluster: Cluster) -> list[dict]:
    reg = cluster.registry("", "v1", "pods")
    return (await reg.list("default", ListOptions(selectors.parse_labels("app=keep"),
                                                  selectors.FieldSelector([]))))["items"]


async def _keep_running_on(cluster: Cluster, node: str) -> bool:
    items = await _keep_pods(cluster)
    return len(items) == 2 and all(p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running"
                                   for p in items)


async def _count(select: Callable[[list[dict]], list[dict]], cluster: Cluster, n: int, exact: bool = False) -> bool:
    got = len(select(await pods(cluster)))
    return got == n if exact else got >= n


async def _pdb_settled(cluster: Cluster) -> bool:
    pdb = await cluster.registry("policy", "v1", "poddisruptionbudgets").get("default", "keep")
    st = pdb.get("status") or {}
    return st.get("observedGeneration") == pdb["metadata"].get("generation") and st.get("currentHealthy") == 2


def _delete_opts() -> Any:
    from lks.kube import deletion

    return deletion.DeleteOptions()


async def test_a_drain_that_does_not_finish_fails_the_scale_down_and_the_node_stays(tmp_path):
    # pods that never go (a finalizer holds them) and one second for them to go
    async with service(tmp_path, profile={**PROFILE, "max-graceful-termination-sec": "1"}, count=2) as got:
        svc, clock, api, cluster = got
        await keep(cluster, finalizers=("example.com/hold",))
        holding = {p["spec"]["nodeName"] for p in await _keep_pods(cluster)}
        assert len(holding) == 2
        doc = await scan(svc, clock, api, 80.0)  # one node's pod fits the other: it is tried
        failed = await until(lambda: events(cluster, "ScaleDownFailed"), "ScaleDownFailed")
        assert failed[0]["message"] == "failed to drain the node, aborting ScaleDown"
        assert failed[0]["type"] == "Warning"
        victim = failed[0]["involvedObject"]["name"]
        assert burst(doc)["count"] == 2 and set(await burst_nodes(cluster)) == holding
        node = await cluster.registry("", "v1", "nodes").get(None, victim)
        assert not node["spec"].get("unschedulable")
        assert all(t["key"] != "ToBeDeletedByClusterAutoscaler" for t in node["spec"].get("taints") or ())
        state = svc.autoscaler.states[doc["id"].lower()]
        assert state.last_failure > float("-inf")
        for p in await _keep_pods(cluster):  # let them go
            def release(current: dict) -> dict:
                current["metadata"]["finalizers"] = []
                return current

            await cluster.registry("", "v1", "pods").patch("default", p["metadata"]["name"], release)
