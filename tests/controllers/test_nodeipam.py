"""Node IPAM: a /24 per Node out of the cluster's pod CIDR, in turn; CIDRs held by existing Nodes
are kept after a restart, a deleted node's CIDR comes back, and a full range waits for one."""

from __future__ import annotations

import pytest

from lks.controllers import nodeipam
from lks.kube import deletion


async def _node(cluster, name, **spec):
    return await cluster.registry("", "v1", "nodes").create(None, {"metadata": {"name": name}, "spec": spec})


async def _cidr(cluster, name):
    node = await cluster.registry("", "v1", "nodes").get(None, name)
    return node["spec"].get("podCIDR"), node["spec"].get("podCIDRs")


@pytest.fixture
async def ipam(cluster):
    c = nodeipam.NodeIPAMController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _assigned(cluster, settle, *names):
    async def done():
        return all([(await _cidr(cluster, n))[0] for n in names])

    await settle(done)


async def test_each_node_gets_a_slash_24_in_turn(cluster, ipam, settle):
    for name in ("n0", "n1", "n2"):
        await _node(cluster, name)
    await _assigned(cluster, settle, "n0", "n1", "n2")
    got = sorted([(await _cidr(cluster, n)) for n in ("n0", "n1", "n2")])
    assert got == [("10.244.0.0/24", ["10.244.0.0/24"]), ("10.244.1.0/24", ["10.244.1.0/24"]),
                   ("10.244.2.0/24", ["10.244.2.0/24"])]


async def test_existing_cidrs_are_kept_and_skipped(cluster, settle):
    await _node(cluster, "old", podCIDR="10.244.0.0/24", podCIDRs=["10.244.0.0/24"])
    c = nodeipam.NodeIPAMController(cluster)  # started after: as after a restart
    await c.start()
    try:
        await _node(cluster, "new")
        await _assigned(cluster, settle, "new")
        assert await _cidr(cluster, "old") == ("10.244.0.0/24", ["10.244.0.0/24"])
        assert (await _cidr(cluster, "new"))[0] == "10.244.1.0/24"
    finally:
        await c.stop()


async def test_a_full_range_waits_for_a_deletion(cluster, settle, monkeypatch):
    monkeypatch.setattr(cluster, "pod_cidr", "10.244.0.0/23")  # room for two nodes
    c = nodeipam.NodeIPAMController(cluster)
    await c.start()
    try:
        for name in ("a", "b", "c"):
            await _node(cluster, name)
        await _assigned(cluster, settle, "a", "b")
        await settle(lambda: "c" in c._waiting)
        assert (await _cidr(cluster, "c"))[0] is None
        await cluster.registry("", "v1", "nodes").delete(None, "a", deletion.DeleteOptions())
        await _assigned(cluster, settle, "c")
        assert (await _cidr(cluster, "c"))[0] == "10.244.0.0/24"  # a's, free again
    finally:
        await c.stop()


@pytest.mark.parametrize("cluster_cidr, taken, first", [
    pytest.param("10.244.0.0/16", [], "10.244.0.0/24", id="ipv4"),
    pytest.param("10.244.0.0/16", ["10.244.0.0/24", "10.244.1.0/24"], "10.244.2.0/24", id="skips-taken"),
    pytest.param("fd00:10:244::/56", [], "fd00:10:244::/64", id="ipv6"),
    pytest.param("10.244.0.0/25", [], "10.244.0.0/25", id="smaller-than-a-node"),
])
def test_cidr_set(cluster_cidr, taken, first):
    s = nodeipam.CIDRSet(cluster_cidr)
    for cidr in taken:
        assert s.occupy(cidr)
    assert s.allocate() == first
    assert not s.occupy("192.168.0.0/24")


def test_cidr_set_hands_out_in_turn():
    s = nodeipam.CIDRSet("10.244.0.0/22")
    assert [s.allocate() for _ in range(2)] == ["10.244.0.0/24", "10.244.1.0/24"]
    s.release("10.244.0.0/24")
    assert s.allocate() == "10.244.2.0/24"  # not the freed one at once
    assert s.allocate() == "10.244.3.0/24"
    assert s.allocate() == "10.244.0.0/24"  # wrapped around to it
    assert s.allocate() is None
