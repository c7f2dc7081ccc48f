"""The nftables form of NetworkPolicy (`lks.net.netpol.rules`, applied by `lks.net.netpol.nft`)
on the real kernel: a cluster network (`lks.net.podnet`) with pods on two nodes, TCP probes
between them on ports 80 and 81, the same upstream cases as the evaluator's, and the verdicts
compared with the evaluator's (`lks.net.netpol.model`) pair by pair."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from lks.net import netns, podnet
from lks.net.netpol import model, nft, rules

pytestmark = pytest.mark.skipif(not netns.supported() or nft.binary() is None,
                                reason="needs root, network namespaces and nft")

# ns/pod -> (node, its CIDR, IP); x/a and x/b share a node (bridged), the others are routed
PLACES = {"x/a": ("n1", "10.244.0.0/24", "10.244.0.2"), "x/b": ("n1", "10.244.0.0/24", "10.244.0.3"),
          "y/a": ("n2", "10.244.1.0/24", "10.244.1.2"), "y/b": ("n2", "10.244.1.0/24", "10.244.1.3")}
PORTS = (("serve-80-tcp", 80, "TCP"), ("serve-81-tcp", 81, "TCP"))
PODS = {key: model.Pod(key[0], key[2], {"pod": key[2]}, (ip,), PORTS) for key, (_, _, ip) in PLACES.items()}
NAMESPACES = {"x": {}, "y": {}}
A = {"pod": "a"}


def policy(name: str, labels: dict | None = None, ns: str = "x", **spec) -> dict:
    spec = {"podSelector": {"matchLabels": labels or {}}, **spec}
    spec.setdefault("policyTypes", [t for t, k in (("Ingress", "ingress"), ("Egress", "egress")) if k in spec])
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


@pytest.fixture
async def cluster_net(tmp_path):
    net = podnet.PodNetwork(data_dir=tmp_path / "net")
    assert await net.start(), net.error
    servers: list[socket.socket] = []
    try:
        for key, (node, cidr, ip) in PLACES.items():
            uid = key.replace("/", "-")
            await net.add_pod(uid=uid, node=node, cidr=cidr, ip=ip)
            for port in (80, 81):
                servers.append(await net.listen(uid, "0.0.0.0", port))
        yield net
    finally:
        for s in servers:
            s.close()
        await net.close()
        for name in podnet.leftovers(net.data_dir):
            netns.remove(name)


async def _reaches(net: podnet.PodNetwork, src: str, dst: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(net.open_connection(src.replace("/", "-"), PLACES[dst][2], port), 1.5)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def _matrix(net: podnet.PodNetwork, port: int) -> dict[tuple[str, str], bool]:
    pairs = [(a, b) for a, b in itertools.product(PLACES, PLACES) if a != b]
    found = await asyncio.gather(*(_reaches(net, a, b, port) for a, b in pairs))
    return dict(zip(pairs, found, strict=True))


def _expected(policies: list[dict], port: int) -> dict[tuple[str, str], bool]:
    return {(a, b): model.check(policies, NAMESPACES, PODS[a], PODS[b], port).allowed
            for a, b in itertools.product(PLACES, PLACES) if a != b}


NS_Y = {"matchLabels": {model.NAMESPACE_NAME: "y"}}
CASES = [
    pytest.param([policy("deny-ingress", ingress=[])], id="default-deny-ingress"),
    pytest.param([policy("deny-all", ingress=[], egress=[])], id="default-deny-all"),
    pytest.param([policy("deny", ingress=[]), policy("from-y-80", A, ingress=[
        {"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": 80, "protocol": "TCP"}]}])],
        id="namespace-on-a-port"),
    pytest.param([policy("named", ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
                                            "ports": [{"port": "serve-81-tcp"}]}])], id="pod-selector-named-port"),
    pytest.param([policy("egress-y-a", A, egress=[{"to": [{"namespaceSelector": NS_Y, "podSelector": {
        "matchLabels": A}}]}])], id="egress-pod-and-namespace"),
    pytest.param([policy("cidr", A, egress=[{"to": [{"ipBlock": {"cidr": "10.244.0.0/16",
                                                                 "except": ["10.244.1.3/32"]}}],
                                             "ports": [{"port": 80, "endPort": 80}]}])], id="ipblock-except-endport"),
]


@pytest.mark.parametrize("policies", CASES)
async def test_the_kernel_agrees_with_the_evaluator(cluster_net, policies):
    await nft.apply(cluster_net.name, rules.script(policies, PODS.values(), NAMESPACES))
    for port in (80, 81):
        assert await _matrix(cluster_net, port) == _expected(policies, port), port


async def test_a_new_script_replaces_the_table_and_removal_reopens(cluster_net):
    deny = [policy("deny", ingress=[])]
    await nft.apply(cluster_net.name, rules.script(deny, PODS.values(), NAMESPACES))
    await nft.apply(cluster_net.name, rules.script(deny, PODS.values(), NAMESPACES))  # again: one table
    assert (await nft.listed(cluster_net.name, rules.TABLE)).count("chain ingress {") == 1
    assert not await _reaches(cluster_net, "y/a", "x/a", 80)
    await nft.apply(cluster_net.name, rules.removal())
    assert await nft.listed(cluster_net.name, rules.TABLE) == ""
    assert await _reaches(cluster_net, "y/a", "x/a", 80)
