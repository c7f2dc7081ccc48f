"""Node IPAM leaves Azure CNI (flat) nodes alone: their pods take addresses of the node subnet,
so, as on AKS, they get no pod CIDR, and the range stays for the nodes that need one."""

from __future__ import annotations

import pytest

from lks.controllers import nodeipam


@pytest.fixture
async def ipam(cluster):
    c = nodeipam.NodeIPAMController(cluster)
    await c.start()
    yield c
    await c.stop()


async def test_azure_cni_nodes_get_no_pod_cidr(cluster, ipam, settle):
    nodes = cluster.registry("", "v1", "nodes")
    await nodes.create(None, {"metadata": {"name": "flat", "annotations": {"lks.dev/pod-ips": "node-subnet"}}})
    await nodes.create(None, {"metadata": {"name": "overlay"}})

    async def done():
        return (await nodes.get(None, "overlay"))["spec"].get("podCIDR")

    await settle(done)
    assert (await nodes.get(None, "overlay"))["spec"]["podCIDR"] == "10.244.0.0/24"  # the first: nothing skipped
    assert not ((await nodes.get(None, "flat")).get("spec") or {}).get("podCIDR")
