"""The pod network's plumbing (`lks.net.podnet`) on the real kernel: pods of one cluster reach
each other across nodes, another cluster's pods do not, and nothing is left behind."""

from __future__ import annotations

import asyncio
import socket

import pytest

from lks.net import netns, podnet

pytestmark = pytest.mark.skipif(not netns.supported(), reason="needs root and network namespaces")


@pytest.fixture
async def networks(tmp_path):
    made: list[podnet.PodNetwork] = []

    async def make(name: str) -> podnet.PodNetwork:
        net = podnet.PodNetwork(data_dir=tmp_path / name)
        assert await net.start(), net.error
        made.append(net)
        return net

    yield make
    for net in made:
        await net.close()
        for name in podnet.leftovers(net.data_dir):  # a failed test still leaves nothing
            netns.remove(name)


async def _serve(net: podnet.PodNetwork, uid: str, port: int) -> socket.socket:
    def listen() -> socket.socket:
        with netns.entered(net.pod_netns(uid)):
            s = socket.socket()
        s.bind(("0.0.0.0", port))
        s.listen()
        return s
    return await netns.run(listen)


async def _reaches(net: podnet.PodNetwork, uid: str, ip: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(net.open_connection(uid, ip, port), 2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


def _host_forwarding() -> str:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read()


async def test_pods_across_nodes_reach_each_other_and_other_clusters_do_not(networks):
    forwarding = _host_forwarding()
    a = await networks("a")
    await a.add_pod(uid="p1", node="n1", cidr="10.244.0.0/24", ip="10.244.0.2")
    await a.add_pod(uid="p2", node="n1", cidr="10.244.0.0/24", ip="10.244.0.3")
    await a.add_pod(uid="p3", node="n2", cidr="10.244.1.0/24", ip="10.244.1.2")
    b = await networks("b")  # the same pod CIDR: AKS's overlay allows it, each cluster apart
    await b.add_pod(uid="q1", node="n1", cidr="10.244.0.0/24", ip="10.244.0.4")
    servers = [await _serve(a, "p1", 80), await _serve(a, "p2", 80)]  # the same port, side by side
    try:
        assert await _reaches(a, "p3", "10.244.0.2", 80)
        assert await _reaches(a, "p3", "10.244.0.3", 80)
        assert await _reaches(a, "p2", "10.244.0.2", 80)
        assert not await _reaches(b, "q1", "10.244.0.2", 80)
    finally:
        for s in servers:
            s.close()
    assert _host_forwarding() == forwarding  # forwarding is on in the cluster's namespace only
    a.remove_pod("p1")
    assert not netns.exists(f"{a.name}-p1")
    a.remove_node("n2")
    assert not netns.exists(f"{a.name}-p3")
    await a.close()
    assert podnet.leftovers(a.data_dir) == []


async def test_start_sweeps_what_a_killed_service_left(networks, tmp_path):
    a = await networks("a")
    await a.add_pod(uid="p1", node="n1", cidr="10.244.0.0/24", ip="10.244.0.2")
    # as after kill -9: nobody closed it; the next run of the same data directory sweeps
    again = podnet.PodNetwork(data_dir=tmp_path / "a")
    assert await again.start()
    assert podnet.leftovers(tmp_path / "a") == [again.name]
    await again.close()
    assert podnet.leftovers(tmp_path / "a") == []
