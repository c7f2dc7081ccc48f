"""Service virtual IPs (`lks.net.proxy`) on the real kernel: a cluster on the memory store, its
pod network, and the proxier's nftables table; pods connect to ClusterIPs, NodePorts and
hostPorts from their own namespaces, following API changes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from lks.net import netns, podnet
from lks.net.proxy import Proxier, nft, rules

pytestmark = pytest.mark.skipif(not netns.supported() or nft.available() is not None,
                                reason="needs root, network namespaces and nft")

N1, N2 = ("aks-n1", "10.224.0.4", "10.244.0.0/24"), ("aks-n2", "10.224.0.5", "10.244.1.0/24")
PODS = {"p1": (N1, "10.244.0.2"), "p2": (N1, "10.244.0.3"), "p3": (N2, "10.244.1.2")}


@pytest.fixture
async def env(tmp_path, cluster):
    net = podnet.PodNetwork(data_dir=tmp_path / "net")
    assert await net.start(), net.error
    servers = []
    try:
        for uid, ((node, _, cidr), ip) in PODS.items():
            await net.add_pod(uid=uid, node=node, cidr=cidr, ip=ip)
            servers.append(await asyncio.start_server(_answer(uid), sock=await net.listen(uid, "0.0.0.0", 8080)))
        core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
        for name, ip, cidr in (N1, N2):
            await core("nodes").create(None, {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
                                              "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
        proxier = Proxier(cluster, net, skip_ips=frozenset({cluster.dns_service_ip}))
        await proxier.start()
        yield net, proxier
        await proxier.stop()
    finally:
        for s in servers:
            s.close()
        await net.close()
        for name in podnet.leftovers(net.data_dir):
            netns.remove(name)


def _answer(uid: str):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(uid.encode())
        await writer.drain()
        writer.close()
    return handle


async def _get(net: podnet.PodNetwork, uid: str, ip: str, port: int, timeout: float = 3) -> str:
    """Who answers a connection from pod `uid` to ip:port ("refused", "timeout")."""
    try:
        reader, writer = await asyncio.wait_for(net.open_connection(uid, ip, port), timeout)
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    try:
        return (await asyncio.wait_for(reader.read(), timeout)).decode()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _from_the_namespace(net: podnet.PodNetwork, ip: str, port: int) -> str:
    """Who answers a connection made in the cluster's namespace itself (the output hook)."""
    sock = await netns.run(lambda: netns.socket_in(net.name))
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (ip, port)), 3)
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        return (await asyncio.wait_for(reader.read(), 3)).decode()
    finally:
        writer.close()


async def _answers(net: podnet.PodNetwork, uid: str, ip: str, port: int, n: int = 12) -> set[str]:
    return {await _get(net, uid, ip, port) for _ in range(n)}


async def _service(cluster, name: str, spec: dict, endpoints: list[str]) -> None:
    spec = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    await cluster.registry("", "v1", "services").create("default", {"metadata": {"name": name}, "spec": spec})
    await _endpoints(cluster, name, endpoints)


async def _endpoints(cluster, name: str, uids: list[str]) -> None:
    slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    obj = {"metadata": {"name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
           "endpoints": [{"addresses": [PODS[u][1]], "nodeName": PODS[u][0][0], "conditions": {"ready": True}}
                         for u in uids]}
    old = await slices.get_or_none("default", f"{name}-abc")
    if old is None:
        await slices.create("default", obj)
    else:
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        await slices.update("default", f"{name}-abc", obj)


async def test_cluster_ip_balances_hairpins_and_rejects_without_endpoints(env, cluster):
    net, proxier = env
    await _service(cluster, "web", {"clusterIP": "10.0.0.50", "type": "NodePort"}, ["p1", "p2"])
    await proxier.wait_synced()
    assert await _answers(net, "p3", "10.0.0.50", 80) == {"p1", "p2"}  # from another node
    assert await _answers(net, "p1", "10.0.0.50", 80) == {"p1", "p2"}  # same node, and to itself
    port = (await cluster.registry("", "v1", "services").get("default", "web"))["spec"]["ports"][0]["nodePort"]
    assert await _answers(net, "p3", N1[1], port) == {"p1", "p2"}  # NodePort on each node's IP
    assert await _answers(net, "p1", N2[1], port) == {"p1", "p2"}

    assert await _from_the_namespace(net, "10.0.0.50", 80) in ("p1", "p2")  # a load balancer's connection

    await _endpoints(cluster, "web", [])  # scaled to zero: REJECT, as kube-proxy
    await proxier.wait_synced()
    assert await _get(net, "p3", "10.0.0.50", 80) == "refused"
    assert await _get(net, "p3", N1[1], port) == "refused"
    assert await _get(net, "p3", "10.0.0.50", 81) == "refused"  # a port the Service lacks

    await _endpoints(cluster, "web", ["p3"])
    await proxier.wait_synced()
    assert await _answers(net, "p3", "10.0.0.50", 80) == {"p3"}
    table = await nft.list_table(net.name, rules.TABLE)
    assert cluster.dns_service_ip not in table  # cluster DNS answers there itself


async def test_session_affinity_keeps_one_backend(env, cluster):
    net, proxier = env
    await _service(cluster, "sticky", {"clusterIP": "10.0.0.51", "sessionAffinity": "ClientIP"}, ["p1", "p2"])
    await proxier.wait_synced()
    first = await _get(net, "p3", "10.0.0.51", 80)
    assert first in ("p1", "p2")
    assert await _answers(net, "p3", "10.0.0.51", 80) == {first}


async def test_internal_traffic_policy_local_stays_on_the_node(env, cluster):
    net, proxier = env
    await _service(cluster, "local", {"clusterIP": "10.0.0.52", "internalTrafficPolicy": "Local"}, ["p1", "p3"])
    await proxier.wait_synced()
    assert await _answers(net, "p2", "10.0.0.52", 80, n=6) == {"p1"}
    assert await _answers(net, "p3", "10.0.0.52", 80, n=6) == {"p3"}
    await _endpoints(cluster, "local", ["p1"])
    await proxier.wait_synced()
    assert await _get(net, "p3", "10.0.0.52", 80, timeout=0.5) == "timeout"  # dropped: no local endpoint


async def test_host_port_reaches_the_pod_on_its_node_ip(env, cluster):
    net, proxier = env
    pods = cluster.registry("", "v1", "pods")
    await pods.create("default", {"metadata": {"name": "hp"}, "spec": {
        "nodeName": N1[0], "containers": [{"name": "c", "image": "busybox",
                                          "ports": [{"containerPort": 8080, "hostPort": 9090}]}]}})
    pod = await pods.get("default", "hp")
    pod["status"] = {"phase": "Running", "podIP": PODS["p2"][1]}
    await pods.update("default", "hp", pod, subresource="status")
    await proxier.wait_synced()
    assert await _get(net, "p3", N1[1], 9090) == "p2"


async def test_the_table_goes_with_the_namespace_after_a_kill(tmp_path, cluster):
    net = podnet.PodNetwork(data_dir=tmp_path / "killed")
    assert await net.start(), net.error
    proxier = Proxier(cluster, net)
    await proxier.start()
    await proxier.wait_synced()
    assert "nat-prerouting" in await nft.list_table(net.name, rules.TABLE)
    await proxier.stop()  # the service is killed: nothing is closed
    again = podnet.PodNetwork(data_dir=tmp_path / "killed")  # the next start sweeps
    try:
        assert await again.start(), again.error
        with pytest.raises(nft.NftError):
            await nft.list_table(again.name, rules.TABLE)
    finally:
        await again.close()
        for name in podnet.leftovers(again.data_dir):
            netns.remove(name)
