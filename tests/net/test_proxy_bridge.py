"""The node bridges as Service VIPs and network policy need them (`lks.net.podnet`): bridged
packets pass the inet netfilter hooks (`nf_call_iptables`), and every pod's port is in hairpin
mode, so a pod reaching itself through a VIP gets its packets back."""

from __future__ import annotations

import pytest

from lks.net import netns, podnet

pytestmark = pytest.mark.skipif(not netns.supported(), reason="needs root and network namespaces")


@pytest.fixture
async def net(tmp_path):
    network = podnet.PodNetwork(data_dir=tmp_path / "c")
    assert await network.start(), network.error
    yield network
    await network.close()
    for name in podnet.leftovers(network.data_dir):
        netns.remove(name)


def _bridge_and_port(net: podnet.PodNetwork, node: str, uid: str) -> tuple[int, int]:
    with netns.entered(net.name), netns.rtnl() as ipr:
        bridge = ipr.link("get", index=ipr.link_lookup(ifname=podnet.bridge_name(node))[0])[0]
        data = bridge.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        port = ipr.brport("show", index=ipr.link_lookup(ifname=podnet.veth_name(uid))[0])[0]
        return data.get_attr("IFLA_BR_NF_CALL_IPTABLES"), port.get_attr("IFLA_PROTINFO").get_attr("IFLA_BRPORT_MODE")


async def test_bridges_call_netfilter_and_pod_ports_hairpin(net):
    await net.add_pod(uid="p1", node="n1", cidr="10.244.0.0/24", ip="10.244.0.2")
    nf_call_iptables, hairpin = await netns.run(lambda: _bridge_and_port(net, "n1", "p1"))
    assert nf_call_iptables == 1
    assert hairpin == 1
