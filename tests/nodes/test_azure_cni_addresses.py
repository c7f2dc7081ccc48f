"""Azure CNI (flat) addresses on the node side: a node holds its own address of the node subnet
and `maxPods` after it (AKS preallocates them on the NIC), the next node starts after that
block; its pods' IPAM hands out exactly that block; a node of a cluster without a CNI is
network-ready only once one is installed."""

from __future__ import annotations

import pytest

from lks.nodes import runtime
from lks.nodes.pool import Addresses


def test_nodes_hold_blocks_of_the_subnet():
    a = Addresses("10.20.0.0/24")
    assert a.allocate(2, in_use=set(), block=31) == ["10.20.0.4", "10.20.0.35"]
    # another node found running at .70 (with its block) is skipped, and a freed block comes back
    in_use = {f"10.20.0.{i}" for i in range(70, 101)}
    assert a.allocate(1, in_use=in_use, block=31) == ["10.20.0.101"]
    a.release("10.20.0.35", 31)
    assert a.allocate(1, in_use=in_use, block=31) == ["10.20.0.35"]
    assert not a.claim("10.20.0.40", in_use=set(), block=31)  # inside a held block
    with pytest.raises(Exception, match="no free address"):
        a.allocate(4, in_use=in_use, block=31)  # room for three more blocks only
    assert a.allocate(3, in_use=in_use, block=31) == ["10.20.0.132", "10.20.0.163", "10.20.0.194"]


def test_pod_ipam_hands_out_the_nodes_block():
    cidr = runtime.pod_range(None, pod_network=runtime.NODE_SUBNET, address="10.20.0.35", subnet="10.20.0.0/24",
                             max_pods=3)
    assert cidr == "10.20.0.36-10.20.0.38/24"
    ipam = runtime.HostLocal(cidr)
    assert str(ipam.network) == "10.20.0.0/24"
    assert [ipam.allocate() for _ in range(4)] == ["10.20.0.36", "10.20.0.37", "10.20.0.38", None]
    ipam.release("10.20.0.37")
    assert ipam.allocate() == "10.20.0.37"
    assert not ipam.claim("10.20.0.39")


def test_network_readiness_by_plugin():
    assert runtime.network_error(None, runtime.NODE_SUBNET) is None  # addresses from boot
    assert runtime.network_error("10.244.0.0/24", runtime.NO_CNI) == runtime.NETWORK_NOT_READY  # no CNI installed
    assert runtime.network_error(None) == runtime.NETWORK_NOT_READY
    assert runtime.network_error("10.244.0.0/24") is None
    assert runtime.pod_range({"podCIDR": "10.244.0.0/24"}, pod_network=runtime.NO_CNI) is None
    # a CNI installed (the Node's lks.dev/cni-config): the pod CIDR's addresses, as kubenet's
    assert runtime.network_error("10.244.0.0/24", runtime.NO_CNI, "cilium") is None
    assert runtime.network_error(None, runtime.NO_CNI, "cilium") == runtime.NETWORK_NOT_READY
    assert runtime.pod_range({"podCIDR": "10.244.0.0/24"}, pod_network=runtime.NO_CNI, cni="cilium") == "10.244.0.0/24"
