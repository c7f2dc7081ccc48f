"""Node provisioning latency (`lks up --node-provisioning-time`) on a `ManualClock`: the nodes a
change adds register only once that time has passed while the pool shows the operation; the
autoscaler keeps scanning during its own scale-up, counts the nodes on their way so their pods
trigger no second scale-up, and gives a scale-up whose nodes miss `max-node-provision-time` up
(upstream's ScaleUpTimedOut: backoff, the Event, the status ConfigMap, the count back)."""

from __future__ import annotations

import re

from lks.clock import ManualClock
from lks.kube.cluster import Cluster
from lks.server import Service

from .test_autoscaler import (
    PROFILE,
    SCAN,
    Management,
    _count,
    burst,
    burst_nodes,
    deployment,
    events,
    pending,
    pods,
    scale,
    service,
    settled,
    until,
)


async def tick(svc: Service, clock: ManualClock, seconds: float = SCAN) -> None:
    """Let the clock run `seconds` and wait for the scan that falls due (an operation may run on)."""
    await clock.advance(seconds)
    await until(lambda: _scanned(svc, clock), "the autoscaler's scan")


async def _scanned(svc: Service, clock: ManualClock) -> bool:
    return all(state.next_scan > clock.now() for state in svc.autoscaler.states.values())


async def booting(svc: Service, cluster: Cluster, pool: str) -> None:
    async def check() -> bool:
        return pool in svc.plane.fleet.booting(cluster)

    await until(check, f"pool {pool}'s new instances booting")


async def current(api: Management) -> dict:
    _, doc = await api.call("GET", api.cluster)
    return doc


async def status_text(cluster: Cluster) -> str:
    configmap = await cluster.registry("", "v1", "configmaps").get("kube-system", "cluster-autoscaler-status")
    return configmap["data"]["status"]


async def test_new_nodes_register_once_the_provisioning_time_has_passed(tmp_path):
    async with service(tmp_path, profile=PROFILE) as (svc, clock, api, cluster):
        svc.plane.fleet.provisioning_time = 90.0
        status, body = await api.call("PUT", f"{api.cluster}/agentPools/extra", {"properties": {
            "count": 2, "vmSize": "Standard_DS2_v2", "mode": "User"}})
        assert status in (200, 201), body
        await booting(svc, cluster, "extra")
        await clock.advance(89.0)
        _, pool = await api.call("GET", f"{api.cluster}/agentPools/extra")
        assert pool["properties"]["provisioningState"] == "Creating"
        assert not await _nodes(cluster, "extra")
        await clock.advance(1.0)
        await until(lambda: _nodes(cluster, "extra", 2), "the two nodes of the new pool")
        doc = await settled(svc, api)
        assert next(p for p in doc["properties"]["agentPoolProfiles"] if p["name"] == "extra")["count"] == 2


async def _nodes(cluster: Cluster, pool: str, n: int | None = None) -> list[str] | bool:
    cache = await cluster.registry("", "v1", "nodes").cache()
    names = [m["metadata"]["name"] for m in cache.objects.values()
             if m["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool]
    return names if n is None else len(names) == n


async def test_nodes_on_their_way_trigger_no_second_scale_up(tmp_path):
    async with service(tmp_path, profile=PROFILE) as (svc, clock, api, cluster):
        svc.plane.fleet.provisioning_time = 60.0
        await cluster.registry("apps", "v1", "deployments").create("default", deployment(10))
        # a DS2_v2 node takes three 500m pods: 7 wait, for three more nodes
        await until(lambda: _count(pending, cluster, 7), "7 pods marked Unschedulable")
        await tick(svc, clock)
        await booting(svc, cluster, "burst")
        doc = await current(api)
        assert doc["properties"]["provisioningState"] == "Scaling"
        assert burst(doc)["count"] == 4 and burst(doc)["provisioningState"] == "Scaling"
        assert len(await burst_nodes(cluster)) == 1

        await tick(svc, clock)  # the operation runs on; the autoscaler scans, its pods fit the nodes to come
        up = svc.autoscaler.states[doc["id"].lower()].last_scale_up
        assert up.increases == {} and up.remaining == [] and not up.needed
        assert len(await events(cluster, "ScaledUpGroup")) == 1
        text = await status_text(cluster)
        assert "unregistered: 3" in text and "cloudProviderTarget: 4" in text
        assert "  scaleUp:\n    status: InProgress\n" in text

        # three more pods while the nodes boot: one more node, once the running scale-up ends
        await scale(cluster, 13)
        await until(lambda: _count(pending, cluster, 10), "10 pods marked Unschedulable")
        await tick(svc, clock)
        assert burst(await current(api))["count"] == 4
        await clock.advance(40.0)  # 60 s after the scale-up: its nodes register
        await until(lambda: _nodes(cluster, "burst", 4), "the three new nodes")
        await settled(svc, api)
        await tick(svc, clock)
        await booting(svc, cluster, "burst")
        assert burst(await current(api))["count"] == 5
        scaled = await events(cluster, "ScaledUpGroup")
        assert sorted(e["message"].split(" size to ")[1] for e in scaled) == \
            ["4 instead of 1 (max: 5)", "5 instead of 4 (max: 5)"]
        await clock.advance(60.0)
        await until(lambda: _nodes(cluster, "burst", 5), "the fifth node")
        await until(lambda: _all_running(cluster, 13), "13 pods running")


async def _all_running(cluster: Cluster, n: int) -> bool:
    items = await pods(cluster)
    return len(items) == n and all(p["status"].get("phase") == "Running" for p in items)


async def test_a_scale_up_whose_nodes_miss_the_max_node_provision_time_fails(tmp_path):
    async with service(tmp_path, profile={**PROFILE, "max-node-provision-time": "15m"}) as (svc, clock, api, cluster):
        svc.plane.fleet.provisioning_time = 1200.0  # 20 minutes: longer than the autoscaler waits
        await cluster.registry("apps", "v1", "deployments").create("default", deployment(10))
        await until(lambda: _count(pending, cluster, 7), "7 pods marked Unschedulable")
        await tick(svc, clock)
        await booting(svc, cluster, "burst")
        state = svc.autoscaler.states[(await current(api))["id"].lower()]
        started = state.requests["burst"].since
        await tick(svc, clock, 890.0)  # within the 15 minutes: still waiting
        assert burst(await current(api))["count"] == 4 and not await events(cluster, "ScaleUpTimedOut")

        await tick(svc, clock, 20.0)
        (timed_out,) = await until(lambda: events(cluster, "ScaleUpTimedOut"), "ScaleUpTimedOut")
        vmss = (await burst_nodes(cluster))[0][:-6]
        assert timed_out["type"] == "Warning"
        assert re.fullmatch(rf"Nodes added to group {vmss} failed to register within 15m\d+s", timed_out["message"])
        assert timed_out["involvedObject"]["name"] == "cluster-autoscaler-status"
        assert state.last_failure > started + 900.0
        doc = await settled(svc, api)  # the count goes back to the node there is
        assert burst(doc)["count"] == 1 and burst(doc)["provisioningState"] == "Succeeded"
        text = await status_text(cluster)
        assert "longUnregistered: 3" in text
        assert re.search(r"  scaleUp:\n    status: Backoff\n    backoffInfo:\n      errorCode: timeout\n"
                         rf"      errorMessage: Scale-up timed out for node group {vmss} after 15m\d+s\n", text)

        await tick(svc, clock)  # backed off for 5 minutes
        refused = await until(lambda: events(cluster, "NotTriggerScaleUp"), "NotTriggerScaleUp")
        assert refused[0]["message"] == "pod didn't trigger scale-up: 1 in backoff after failed scale-up"
        assert "longUnregistered: 0" in await status_text(cluster)
        await tick(svc, clock, 280.0)  # 20 minutes after the scale-up: the instances given up never come
        assert len(await burst_nodes(cluster)) == 1
