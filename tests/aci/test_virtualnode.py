"""The virtual node add-on in one cluster (`lks.aci.virtualnode`): the Node as the ACI virtual
kubelet registers it, its Lease renewed on the clock, the aci-connector-linux Deployment kept,
and everything gone when the add-on is turned off."""

from __future__ import annotations

import asyncio

import pytest
from support import backend, clock, cluster  # noqa: F401 (fixtures)

from lks.aci import virtualnode
from lks.controllers.nodelifecycle import NodeLifecycleController

NODE = "virtual-node-aci-linux"


@pytest.fixture
async def vnode(cluster):  # noqa: F811
    await virtualnode.configure(cluster, enabled=True, subnet="virtual-node-subnet")
    yield virtualnode.running(cluster.id)
    await virtualnode.stop(cluster.id)


async def test_node_as_the_virtual_kubelet_registers_it(cluster, vnode):  # noqa: F811
    node = await cluster.registry("", "v1", "nodes").get(None, NODE)
    labels = node["metadata"]["labels"]
    assert labels["type"] == "virtual-kubelet" and labels["kubernetes.io/role"] == "agent"
    assert labels["kubernetes.azure.com/managed"] == "false" and labels["kubernetes.io/os"] == "linux"
    assert node["spec"]["taints"] == [{"key": "virtual-kubelet.io/provider", "value": "azure",
                                       "effect": "NoSchedule"}]
    assert node["status"]["capacity"]["cpu"] == "10k" and node["status"]["capacity"]["memory"] == "4Ti"
    assert node["status"]["capacity"]["pods"] == "5k"
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    deploy = await cluster.registry("apps", "v1", "deployments").get("kube-system", "aci-connector-linux")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ACI_SUBNET_NAME"] == "virtual-node-subnet"


async def test_lease_renewed_on_the_clock(cluster, clock, vnode):  # noqa: F811
    leases = cluster.registry("coordination.k8s.io", "v1", "leases")
    first = await leases.get("kube-node-lease", NODE)
    assert first["spec"]["holderIdentity"] == NODE and first["spec"]["leaseDurationSeconds"] == 40
    assert first["metadata"]["ownerReferences"][0]["name"] == NODE
    await clock.advance(10.0)
    for _ in range(200):
        renewed = await leases.get("kube-node-lease", NODE)
        if renewed["spec"]["renewTime"] != first["spec"]["renewTime"]:
            break
        await asyncio.sleep(0)
    assert renewed["spec"]["renewTime"] > first["spec"]["renewTime"]


async def test_disabling_removes_node_lease_and_deployment(cluster, vnode):  # noqa: F811
    await virtualnode.configure(cluster, enabled=False)
    assert virtualnode.running(cluster.id) is None
    assert await cluster.registry("", "v1", "nodes").get_or_none(None, NODE) is None
    assert await cluster.registry("coordination.k8s.io", "v1", "leases").get_or_none("kube-node-lease", NODE) is None
    assert await cluster.registry("apps", "v1", "deployments").get_or_none("kube-system", "aci-connector-linux") is None


async def test_stays_ready_under_the_node_lifecycle_controller(cluster, clock, vnode):  # noqa: F811
    """Its Lease is its sign of life, as for any node: minutes later it is still Ready and untainted
    by the lifecycle controller (its status is posted once, as the provider's)."""
    lifecycle = NodeLifecycleController(cluster)
    await lifecycle.start()
    try:
        for _ in range(12):  # two minutes, past the 40 s grace period
            await clock.advance(10.0)
            for _ in range(50):
                await asyncio.sleep(0)
        node = await cluster.registry("", "v1", "nodes").get(None, NODE)
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        assert [t["key"] for t in node["spec"]["taints"]] == ["virtual-kubelet.io/provider"]
    finally:
        await lifecycle.stop()
