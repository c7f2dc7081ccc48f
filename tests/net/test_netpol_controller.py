"""The enforcement controller (`lks.net.netpol.controller`) on a hosted cluster and a real
cluster network: policies, pods' addresses and namespace labels written through the API become
the table `inet lks-netpol` of the attached network namespace; connections follow; a cluster
whose network policy is `none` gets no controller at all."""

from __future__ import annotations

import asyncio
import socket

import pytest

from lks.kube import deletion
from lks.net import netns, podnet
from lks.net.netpol import controller, nft, rules

pytestmark = pytest.mark.skipif(not netns.supported() or nft.binary() is None,
                                reason="needs root, network namespaces and nft")


@pytest.fixture
async def net(tmp_path):
    network = podnet.PodNetwork(data_dir=tmp_path / "net")
    assert await network.start(), network.error
    yield network
    await network.close()
    for name in podnet.leftovers(network.data_dir):
        netns.remove(name)


async def _pod(cluster, ns: str, name: str, ip: str, labels: dict) -> None:
    pods = cluster.registry("", "v1", "pods")
    await pods.create(ns, {"metadata": {"name": name, "labels": labels}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 80}]}]}})

    def put(pod: dict) -> dict:
        pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        return pod
    await pods.patch(ns, name, put, subresource="status")


async def _reaches(network: podnet.PodNetwork, uid: str, ip: str) -> bool:
    try:
        _, writer = await asyncio.wait_for(network.open_connection(uid, ip, 80), 1.5)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def test_api_changes_become_the_table_and_the_kernel_follows(cluster, net):
    core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
    for ns in ("shop", "clients"):
        await core("namespaces").create(None, {"metadata": {"name": ns}})
    await net.add_pod(uid="web", node="n1", cidr="10.244.0.0/24", ip="10.244.0.2")
    await net.add_pod(uid="client", node="n1", cidr="10.244.0.0/24", ip="10.244.0.3")
    server: socket.socket = await net.listen("web", "0.0.0.0", 80)
    enforcer = await controller.start(cluster, mode="Azure")
    try:
        controller.attach(cluster.id, net.name)
        await _pod(cluster, "shop", "web", "10.244.0.2", {"app": "web"})
        await _pod(cluster, "clients", "client", "10.244.0.3", {})
        await enforcer.settled()
        assert await nft.listed(net.name, rules.TABLE) == ""  # no policy: no table
        assert await _reaches(net, "client", "10.244.0.2")

        policies = cluster.registry("networking.k8s.io", "v1", "networkpolicies")
        await policies.create("shop", {"metadata": {"name": "from-clients"}, "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "clients"}}}],
                         "ports": [{"port": "http"}]}]}})
        await enforcer.settled()
        table = await nft.listed(net.name, rules.TABLE)
        assert "10.244.0.2 : jump pod" in table and "dport 80" not in table  # no namespace matches yet
        assert not await _reaches(net, "client", "10.244.0.2")

        def label(ns: dict) -> dict:
            ns["metadata"].setdefault("labels", {})["team"] = "clients"
            return ns
        await core("namespaces").patch(None, "clients", label)
        await enforcer.settled()
        assert enforcer.error is None
        assert "dport 80 accept" in await nft.listed(net.name, rules.TABLE)  # the named port, resolved
        assert await _reaches(net, "client", "10.244.0.2")

        # a pod relabelled into a deny policy's selection is cut off (upstream's "updated pod")
        await policies.create("shop", {"metadata": {"name": "lock"}, "spec": {
            "podSelector": {"matchLabels": {"app": "locked"}}, "policyTypes": ["Ingress"]}})
        await policies.delete("shop", "from-clients", deletion.DeleteOptions())
        await enforcer.settled()
        assert await _reaches(net, "client", "10.244.0.2")

        def relabel(pod: dict) -> dict:
            pod["metadata"]["labels"] = {"app": "locked"}
            return pod
        await core("pods").patch("shop", "web", relabel)
        await enforcer.settled()
        assert not await _reaches(net, "client", "10.244.0.2")

        await policies.delete("shop", "lock", deletion.DeleteOptions())
        await enforcer.settled()
        assert await nft.listed(net.name, rules.TABLE) == ""
    finally:
        server.close()
        await controller.stop(cluster.id)
    assert controller.get(cluster.id) is None


async def test_none_enforces_nothing(cluster):
    assert not controller.enforcing("none") and not controller.enforcing(None)
    assert all(controller.enforcing(m) for m in ("azure", "calico", "Cilium"))
    assert await controller.start(cluster, mode="none") is None
    assert controller.get(cluster.id) is None


async def test_a_network_made_anew_under_its_name_gets_the_table_again(cluster, net):
    await cluster.registry("networking.k8s.io", "v1", "networkpolicies").create("default", {
        "metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    enforcer = await controller.start(cluster, mode="calico")
    try:
        controller.attach(cluster.id, net.name)
        await enforcer.settled()
        assert "chain ingress" in await nft.listed(net.name, rules.TABLE)
        await net.close()  # the runtime went (its pool deleted) and a new one starts, same name
        assert await net.start()
        assert await nft.listed(net.name, rules.TABLE) == ""
        controller.attach(cluster.id, net.name)
        await enforcer.settled()
        assert "chain ingress" in await nft.listed(net.name, rules.TABLE)
    finally:
        await controller.stop(cluster.id)
