"""Flat Azure CNI on the real kernel (`lks.net.podnet`): every node's pods take addresses of the
one node subnet, so each bridge is its gateway and pods on different nodes reach each other."""

from __future__ import annotations

import pytest

from lks.net import netns, podnet

from .test_podnet import _reaches, _serve, networks  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not netns.supported(), reason="needs root and network namespaces")

SUBNET = "10.224.0.0/16"  # AKS's default node subnet: node .4 has pods .5-.34, node .35 has .36-.65


async def test_pods_on_two_nodes_of_one_subnet_reach_each_other(networks):  # noqa: F811 (the fixture)
    net = await networks("flat")
    await net.add_pod(uid="p1", node="n1", cidr=SUBNET, ip="10.224.0.5")
    await net.add_pod(uid="p2", node="n1", cidr=SUBNET, ip="10.224.0.6")
    await net.add_pod(uid="p3", node="n2", cidr=SUBNET, ip="10.224.0.36")
    servers = [await _serve(net, "p1", 80), await _serve(net, "p3", 80)]
    try:
        assert await _reaches(net, "p3", "10.224.0.5", 80)
        assert await _reaches(net, "p1", "10.224.0.36", 80)
        assert await _reaches(net, "p2", "10.224.0.5", 80)  # the same node, bridged
        assert await _reaches(net, "p2", "10.224.0.36", 80)
    finally:
        for s in servers:
            s.close()
    await net.close()
    assert podnet.leftovers(net.data_dir) == []
