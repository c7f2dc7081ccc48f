"""The LoadBalancer service controller and its cloud provider (`lks.net.loadbalancer`) on the
memory store: addresses from the pool (requested, internal, taken, outside), status, finalizer,
upstream's events, release on type change and delete, `loadBalancerClass` ignored, addresses
unique across clusters and kept over a restart, and the host data path to endpoints that
listen on the host's loopback (pods without network namespaces)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from lks import store
from lks.clock import ManualClock
from lks.controllers import endpointslice
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.net.loadbalancer import LoadBalancers
from lks.net.loadbalancer.controller import FINALIZER
from lks.net.loadbalancer.frontends import Frontend, Frontends, Unavailable

from .conftest import ADMIN, CA, TOKEN

NS = "default"
RANGE = "127.231.7.0/24"
EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))


@pytest.fixture
async def meta() -> AsyncIterator[store.Backend]:
    b = store.open_store("memory://")
    await b.start()
    yield b
    await b.close()


@pytest.fixture
async def lbs(cluster: Cluster, meta: store.Backend) -> AsyncIterator[LoadBalancers]:
    balancers = LoadBalancers(meta=meta, public_range=RANGE)
    await balancers.start()
    await balancers.start_cluster(cluster)
    yield balancers
    await balancers.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def service(cluster: Cluster, name: str = "web", *, annotations: dict | None = None, port: int | None = None,
                  **spec: object) -> dict:
    body = {"metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "http", "port": port or free_port(), "targetPort": 8080}], **spec}}
    return await cluster.registry("", "v1", "services").create(NS, body)


async def until(cluster: Cluster, name: str, check, tries: int = 2000) -> dict:
    services = cluster.registry("", "v1", "services")
    for _ in range(tries):
        svc = await services.get_or_none(NS, name)
        if check(svc):
            return svc
        await asyncio.sleep(0.001 if _ > 100 else 0)
    raise AssertionError(f"service {name} never got there: {svc}")


def ingress_ip(svc: dict | None) -> str | None:
    ingress = ((svc or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    return ingress[0]["ip"] if ingress else None


async def ask(ip: str, port: int) -> bytes:
    """What a load balancer frontend answers a line with (nothing: the connection was closed)."""
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(b"lb\n")
        await writer.drain()
        return await reader.read()
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def reasons(cluster: Cluster, name: str) -> list[tuple[str, str, str]]:
    listed = await cluster.registry("", "v1", "events").list(NS, EVERYTHING)
    return [(e["type"], e["reason"], e["message"]) for e in listed["items"] if e["involvedObject"]["name"] == name]


async def test_address_status_finalizer_and_events(cluster: Cluster, lbs: LoadBalancers) -> None:
    await service(cluster)
    svc = await until(cluster, "web", ingress_ip)
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "127.231.7.1", "ipMode": "VIP"}]
    assert FINALIZER in svc["metadata"]["finalizers"]
    seen = await reasons(cluster, "web")
    assert ("Normal", "EnsuringLoadBalancer", "Ensuring load balancer") in seen
    assert ("Normal", "EnsuredLoadBalancer", "Ensured load balancer") in seen
    assert ("Warning", "UnAvailableLoadBalancer", "There are no available nodes for LoadBalancer") in seen
    events = await cluster.registry("", "v1", "events").list(NS, EVERYTHING)
    assert {e["source"]["component"] for e in events["items"]} == {"service-controller"}
    frontend = lbs.frontends.held_by(cluster.id, svc["metadata"]["uid"])
    assert frontend is not None and frontend.ip == "127.231.7.1" and frontend.ports[0]["name"] == "http"


async def test_an_address_another_program_serves_is_skipped(cluster: Cluster, lbs: LoadBalancers) -> None:
    """Another program on the host (another lks with the same range) listens on the first
    address at the Service's port: the next address is taken instead."""
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.231.7.1", port))
        other.listen()
        await service(cluster, "web", port=port)
        assert ingress_ip(await until(cluster, "web", ingress_ip)) == "127.231.7.2"


async def test_a_new_ready_node_updates_the_load_balancers(cluster: Cluster, lbs: LoadBalancers) -> None:
    await service(cluster)
    await until(cluster, "web", ingress_ip)
    nodes = cluster.registry("", "v1", "nodes")
    await nodes.create(None, {"metadata": {"name": "n1"}})

    def ready(current: dict) -> dict:
        current["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        return current

    await nodes.patch(None, "n1", ready, subresource="status")
    for _ in range(2000):
        if ("Normal", "UpdatedLoadBalancer", "Updated load balancer with new hosts") in await reasons(cluster, "web"):
            break
        await asyncio.sleep(0.001)
    else:
        raise AssertionError("no UpdatedLoadBalancer event")
    await service(cluster, "later")
    await until(cluster, "later", ingress_ip)
    assert not [r for _, r, _ in await reasons(cluster, "later") if r == "UnAvailableLoadBalancer"]


async def test_requested_internal_taken_and_outside(cluster: Cluster, lbs: LoadBalancers) -> None:
    await service(cluster, "a", annotations={"service.beta.kubernetes.io/azure-load-balancer-ipv4": "127.231.7.50"})
    assert ingress_ip(await until(cluster, "a", ingress_ip)) == "127.231.7.50"
    await service(cluster, "b", loadBalancerIP="127.231.7.60")
    assert ingress_ip(await until(cluster, "b", ingress_ip)) == "127.231.7.60"
    await service(cluster, "i", annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
    assert ingress_ip(await until(cluster, "i", ingress_ip)) == "10.224.255.254"  # the node subnet, from the top
    await service(cluster, "taken", loadBalancerIP="127.231.7.50")
    await service(cluster, "outside", loadBalancerIP="127.9.9.9")
    await service(cluster, "garbage", annotations={"service.beta.kubernetes.io/azure-load-balancer-ipv4": "x.y"})
    for name, words in (("taken", "127.231.7.50 is already in use by service default/a"),
                        ("outside", "127.9.9.9 is not in the load balancer range 127.231.7.0/24"),
                        ("garbage", "the IP address 'x.y' is not valid")):
        for _ in range(2000):
            failed = [m for t, r, m in await reasons(cluster, name) if r == "SyncLoadBalancerFailed"]
            if failed:
                break
            await asyncio.sleep(0.001)
        assert failed and failed[0].startswith("Error syncing load balancer: failed to ensure load balancer: ")
        assert words in failed[0]
        assert ingress_ip(await cluster.registry("", "v1", "services").get(NS, name)) is None


async def test_type_change_and_delete_release(cluster: Cluster, lbs: LoadBalancers) -> None:
    services = cluster.registry("", "v1", "services")
    svc = await service(cluster)
    uid = svc["metadata"]["uid"]
    await until(cluster, "web", ingress_ip)

    def to_cluster_ip(current: dict) -> dict:
        current["spec"]["type"] = "ClusterIP"
        for p in current["spec"]["ports"]:
            p.pop("nodePort", None)
        current["spec"].pop("allocateLoadBalancerNodePorts", None)
        current["spec"].pop("externalTrafficPolicy", None)
        return current

    await services.patch(NS, "web", to_cluster_ip)
    svc = await until(cluster, "web", lambda s: not (s["metadata"].get("finalizers")) and not ingress_ip(s))
    assert lbs.frontends.held_by(cluster.id, uid) is None
    seen = await reasons(cluster, "web")
    assert ("Normal", "Type", "LoadBalancer -> ClusterIP") in seen
    assert ("Normal", "DeletingLoadBalancer", "Deleting load balancer") in seen
    assert ("Normal", "DeletedLoadBalancer", "Deleted load balancer") in seen

    again = await service(cluster, "gone")
    await until(cluster, "gone", ingress_ip)
    from lks.kube import deletion
    await services.delete(NS, "gone", deletion.DeleteOptions())
    await until(cluster, "gone", lambda s: s is None)  # the finalizer went with the load balancer
    assert lbs.frontends.held_by(cluster.id, again["metadata"]["uid"]) is None


async def test_load_balancer_class_is_ignored(cluster: Cluster, lbs: LoadBalancers) -> None:
    await service(cluster, "classy", loadBalancerClass="example.com/other")
    await service(cluster, "plain")
    await until(cluster, "plain", ingress_ip)
    svc = await cluster.registry("", "v1", "services").get(NS, "classy")
    assert ingress_ip(svc) is None and FINALIZER not in (svc["metadata"].get("finalizers") or [])
    assert await reasons(cluster, "classy") == []


async def test_addresses_unique_across_clusters_and_kept(meta: store.Backend) -> None:
    pool = Frontends(meta=meta, public_range=RANGE)
    await pool.load()
    a = await pool.claim(Frontend("", "c1", NS, "web", "u1"), requested=None)
    b = await pool.claim(Frontend("", "c2", NS, "web", "u2"), requested=None)
    assert (a.ip, b.ip) == ("127.231.7.1", "127.231.7.2")
    with pytest.raises(Unavailable, match="in use by a service of another cluster"):
        await pool.claim(Frontend("", "c2", NS, "other", "u3"), requested="127.231.7.1")
    internal_a = await pool.claim(Frontend("", "c1", NS, "i", "u4", internal=True), requested=None)
    internal_b = await pool.claim(Frontend("", "c2", NS, "i", "u5", internal=True), requested=None)
    assert internal_a.ip == internal_b.ip == "10.224.255.254"  # private: per cluster's own subnet
    moved = Frontends(meta=meta, public_range="127.232.0.0/24")  # the range changed: a new address in it
    await moved.load()
    assert (await moved.claim(Frontend("", "c1", NS, "web", "u1"), requested=None)).ip == "127.232.0.1"
    assert (await moved.claim(Frontend("", "c1", NS, "web", "u1"), requested=None)).ip == "127.232.0.1"
    restarted = Frontends(meta=meta, public_range=RANGE)
    await restarted.load()
    assert restarted.held_by("c1", "u1").ip == "127.232.0.1"  # type: ignore[union-attr]
    assert restarted.held_by("c2", "u2").ip == "127.231.7.2"  # type: ignore[union-attr]
    await restarted.forget("c1")
    assert (await restarted.claim(Frontend("", "c3", NS, "web", "u6"), requested=None)).ip == "127.231.7.1"

    async def alive(cluster: str) -> bool:
        return cluster != "c2"

    reclaimed = Frontends(meta=meta, public_range=RANGE, alive=alive)  # c2 was deleted meanwhile
    await reclaimed.load()
    assert (await reclaimed.claim(Frontend("", "c4", NS, "x", "u7"), requested="127.231.7.2")).ip == "127.231.7.2"


async def test_restart_keeps_the_address(cluster: Cluster, meta: store.Backend, clock: ManualClock) -> None:
    first = LoadBalancers(meta=meta, public_range=RANGE)
    await first.start()
    await first.start_cluster(cluster)
    await service(cluster, "one")
    await service(cluster, "two")
    one = ingress_ip(await until(cluster, "one", ingress_ip))
    two = ingress_ip(await until(cluster, "two", ingress_ip))
    await first.stop()
    second = LoadBalancers(meta=meta, public_range=RANGE)
    await second.start()
    await second.start_cluster(cluster)
    try:
        await service(cluster, "three")
        assert ingress_ip(await until(cluster, "three", ingress_ip)) not in (one, two)
        assert ingress_ip(await cluster.registry("", "v1", "services").get(NS, "one")) == one
    finally:
        await second.stop()


async def test_data_path_to_host_loopback_endpoints(cluster: Cluster, lbs: LoadBalancers) -> None:
    """Without pod network namespaces an endpoint's process listens on the host: the frontend
    forwards there (to 127.0.0.1 at the endpoint's port)."""
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello " + await reader.readline())
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = backend.sockets[0].getsockname()[1]
    slices = endpointslice.EndpointSliceController(cluster)
    await slices.start()
    try:
        port = free_port()
        body = {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                                                      "ports": [{"name": "http", "port": port, "targetPort": target}]}}
        await cluster.registry("", "v1", "services").create(NS, body)
        pods = cluster.registry("", "v1", "pods")
        await pods.create(NS, {"metadata": {"name": "web-0", "labels": {"app": "web"}},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}})

        def running(current: dict) -> dict:
            current["status"] = {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                                 "conditions": [{"type": "Ready", "status": "True"}]}
            return current

        await pods.patch(NS, "web-0", running, subresource="status")
        ip = ingress_ip(await until(cluster, "web", ingress_ip))
        for _ in range(2000):
            answer = await ask(ip, port)
            if answer:
                break
            await asyncio.sleep(0.002)  # the slice not yet seen: the connection was closed
        assert answer == b"hello lb\n"

        def ranges(cidrs: list[str]):
            def change(current: dict) -> dict:
                current["spec"]["loadBalancerSourceRanges"] = cidrs
                return current
            return change

        services = cluster.registry("", "v1", "services")
        await services.patch(NS, "web", ranges(["10.0.0.0/8"]))  # this test's 127.0.0.1 is kept out
        for _ in range(2000):
            answer = await ask(ip, port)
            if not answer:
                break
            await asyncio.sleep(0.002)
        assert answer == b""
        await services.patch(NS, "web", ranges(["10.0.0.0/8", "127.0.0.0/8"]))
        for _ in range(2000):
            answer = await ask(ip, port)
            if answer:
                break
            await asyncio.sleep(0.002)
        assert answer == b"hello lb\n"
    finally:
        await slices.stop()
        backend.close()
    await lbs.stop()
    with pytest.raises(OSError):  # nothing left listening on the host
        await asyncio.open_connection(ip, port)


async def test_udp_flows_to_host_loopback_endpoints(cluster: Cluster, lbs: LoadBalancers) -> None:
    """A UDP port forwards datagrams per client, and the replies come back to that client."""
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: object) -> None:
            self.transport.sendto(b"echo " + data, addr)  # type: ignore[attr-defined]

    backend, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    target = backend.get_extra_info("sockname")[1]
    slices = endpointslice.EndpointSliceController(cluster)
    await slices.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    try:
        port = free_port()
        body = {"metadata": {"name": "dns"}, "spec": {"type": "LoadBalancer", "selector": {"app": "dns"}, "ports": [
            {"name": "dns", "port": port, "targetPort": target, "protocol": "UDP"}]}}
        await cluster.registry("", "v1", "services").create(NS, body)
        pods = cluster.registry("", "v1", "pods")
        await pods.create(NS, {"metadata": {"name": "dns-0", "labels": {"app": "dns"}},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "coredns"}]}})

        def running(current: dict) -> dict:
            current["status"] = {"phase": "Running", "podIP": "10.244.0.6", "podIPs": [{"ip": "10.244.0.6"}],
                                 "conditions": [{"type": "Ready", "status": "True"}]}
            return current

        await pods.patch(NS, "dns-0", running, subresource="status")
        ip = ingress_ip(await until(cluster, "dns", ingress_ip))
        for _ in range(200):
            if lbs._controllers[cluster.id].balancer._slices.get((NS, "dns")):
                break
            await asyncio.sleep(0.005)
        await loop.sock_connect(client, (ip, port))
        await loop.sock_sendall(client, b"one")
        assert await asyncio.wait_for(loop.sock_recv(client, 100), 5) == b"echo one"
        await loop.sock_sendall(client, b"two")  # the same flow
        assert await asyncio.wait_for(loop.sock_recv(client, 100), 5) == b"echo two"
    finally:
        client.close()
        await slices.stop()
        backend.close()


async def test_a_second_cluster_gets_another_address(meta: store.Backend, clock: ManualClock,
                                                     cluster: Cluster) -> None:
    other = Cluster(id="c2", name="c2", kubernetes_version="1.36", backend=store.open_store("memory://"), ca=CA,
                    tokens={TOKEN: ADMIN}, clock=clock)
    await other.store.start()
    await other.start()
    balancers = LoadBalancers(meta=meta, public_range=RANGE)
    await balancers.start()
    await balancers.start_cluster(cluster)
    await balancers.start_cluster(other)
    try:
        await service(cluster, "web")
        await service(other, "web")
        ips = {ingress_ip(await until(c, "web", ingress_ip)) for c in (cluster, other)}
        assert ips == {"127.231.7.1", "127.231.7.2"}
    finally:
        await balancers.stop()
        await other.stop()
        await other.store.close()


async def test_a_full_range_refuses_services_and_the_cluster_runs_on(cluster: Cluster, meta: store.Backend) -> None:
    balancers = LoadBalancers(meta=meta, public_range="127.234.0.0/31")  # no host address at all
    await balancers.start()
    await balancers.start_cluster(cluster)  # without an outbound IP
    try:
        await service(cluster, "web")
        for _ in range(2000):
            failed = [m for _, r, m in await reasons(cluster, "web") if r == "SyncLoadBalancerFailed"]
            if failed:
                break
            await asyncio.sleep(0.001)
        assert failed[0] == ("Error syncing load balancer: failed to ensure load balancer: "
                             "no free IP address is left in 127.234.0.0/31")
    finally:
        await balancers.stop()


async def test_round_robin_and_client_affinity(cluster: Cluster, lbs: LoadBalancers) -> None:
    """Two endpoints (on the host's loopback at ports of their own, a named target port): new
    connections take turns, unless `sessionAffinity: ClientIP` keeps a client on one."""
    servers, ports = [], {}
    for name in ("a", "b"):
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str = name) -> None:
            await reader.readline()
            writer.write(name.encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    slices = endpointslice.EndpointSliceController(cluster)
    await slices.start()
    try:
        port = free_port()
        body = {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                                                      "ports": [{"name": "http", "port": port, "targetPort": "http"}]}}
        services = cluster.registry("", "v1", "services")
        await services.create(NS, body)
        pods = cluster.registry("", "v1", "pods")
        for i, name in enumerate(("a", "b")):
            container = {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": ports[name]}]}
            await pods.create(NS, {"metadata": {"name": f"web-{name}", "labels": {"app": "web"}},
                                   "spec": {"nodeName": "n1", "containers": [container]}})

            def running(current: dict, ip: str = f"10.244.0.{10 + i}") -> dict:
                current["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                                     "conditions": [{"type": "Ready", "status": "True"}]}
                return current

            await pods.patch(NS, f"web-{name}", running, subresource="status")
        ip = ingress_ip(await until(cluster, "web", ingress_ip))
        seen: set[bytes] = set()
        for _ in range(2000):
            seen.add(await ask(ip, port))
            if {b"a", b"b"} <= seen:
                break
            await asyncio.sleep(0.002)
        assert {b"a", b"b"} <= seen  # turns

        def affinity(current: dict) -> dict:
            current["spec"]["sessionAffinity"] = "ClientIP"
            return current

        await services.patch(NS, "web", affinity)
        balancer = lbs._controllers[cluster.id].balancer
        for _ in range(2000):
            svc = balancer.services.get(NS, "web")
            if svc is not None and svc["spec"].get("sessionAffinity") == "ClientIP":
                break
            await asyncio.sleep(0.001)
        assert len({await ask(ip, port) for _ in range(6)}) == 1  # one client, one endpoint
    finally:
        await slices.stop()
        for server in servers:
            server.close()


async def test_a_requested_address_whose_port_is_taken_on_the_host(cluster: Cluster, lbs: LoadBalancers) -> None:
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.231.7.9", port))
        other.listen()
        await service(cluster, "web", port=port, loadBalancerIP="127.231.7.9")
        for _ in range(2000):
            failed = [m for _, r, m in await reasons(cluster, "web") if r == "SyncLoadBalancerFailed"]
            if failed:
                break
            await asyncio.sleep(0.001)
        assert failed[0] == ("Error syncing load balancer: failed to ensure load balancer: "
                             f"listen tcp 127.231.7.9:{port}: bind: address already in use")
