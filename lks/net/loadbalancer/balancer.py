"""One cluster's load balancers, as AKS's cloud provider keeps them for the service controller
(`lks.net.loadbalancer.controller`, upstream's `cloudprovider.LoadBalancer`): `ensure` gives a
LoadBalancer Service its frontend address (`lks.net.loadbalancer.frontends`) and, for a public
one, listeners on the host (`lks.net.loadbalancer.forwarder`); `ensure_deleted` takes both away.

Which address: `service.beta.kubernetes.io/azure-load-balancer-ipv4` (AKS's annotation) or
else `spec.loadBalancerIP` asks for one; `service.beta.kubernetes.io/azure-load-balancer-internal:
"true"` takes it from the node subnet (AKS's `kubernetes-internal` load balancer), which only the
cluster's network would reach, so it gets no listener here. A Service annotated
`lks.dev/served-in-process: "true"` gets its address and no listener either: lks serves it
itself (the app-routing ingress controller binds it).

Where a connection (or a UDP flow) goes: into the cluster's network namespace (the pod network
of its Process nodes, `lks.net.podnet`), first to the Service's ClusterIP:port, which
kube-proxy's rules there send to an endpoint, else (no rules: the address does not answer)
straight to its ready endpoints' pod IP:port, round-robin, as the load balancer's rules would
reach them through the nodes. Where pods have no network namespaces (lks not root) their
processes listen on the host's own addresses, so a connection goes to 127.0.0.1 at the
endpoint's port; with `sessionAffinity: ClientIP` a client keeps its endpoint (the rules'
`loadDistribution: SourceIP`). A client outside the Service's `loadBalancerSourceRanges` (or AKS's
`service.beta.kubernetes.io/load-balancer-source-ranges`) is turned away, as the network
security group rules AKS writes for them would.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import ipaddress
import itertools
import logging
import socket
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster
from lks.net import netns
from lks.net.loadbalancer import forwarder
from lks.net.loadbalancer.frontends import Frontend, Frontends, Unavailable

log = logging.getLogger("lks.net.loadbalancer")

Obj = dict[str, Any]

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
IPV4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
IN_PROCESS = "lks.dev/served-in-process"
SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"
SERVICE_NAME = "kubernetes.io/service-name"  # the label tying a slice to its Service
CONNECT_TIMEOUT = 2.0  # seconds a connection into the cluster may take before the next candidate


class PodNetwork(Protocol):
    name: str  # the cluster's network namespace


NetworkOf = Callable[[Cluster], PodNetwork | None]  # the cluster's pod network, None: pods share the host's


def internal(service: Obj) -> bool:
    return (service["metadata"].get("annotations") or {}).get(INTERNAL) == "true"


def in_process(service: Obj) -> bool:
    return (service["metadata"].get("annotations") or {}).get(IN_PROCESS) == "true"


def requested_ip(service: Obj) -> str | None:
    annotations = service["metadata"].get("annotations") or {}
    return annotations.get(IPV4) or (service.get("spec") or {}).get("loadBalancerIP") or None


def allowed(service: Obj, client: str) -> bool:
    """Whether `client` may come in: upstream's `GetLoadBalancerSourceRanges`, the Service's
    `loadBalancerSourceRanges`, else the `service.beta.kubernetes.io/load-balancer-source-ranges`
    annotation (comma-separated), else everyone."""
    ranges = (service.get("spec") or {}).get("loadBalancerSourceRanges") or \
        [r.strip() for r in ((service["metadata"].get("annotations") or {}).get(SOURCE_RANGES) or "").split(",")
         if r.strip()]
    if not ranges:
        return True
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    for text in ranges:
        try:
            if address in ipaddress.ip_network(text, strict=False):
                return True
        except ValueError:
            continue
    return False


def frontend_ports(service: Obj) -> list[Obj]:
    return [{"name": p.get("name") or "", "protocol": p.get("protocol") or "TCP", "port": p["port"],
             **({"nodePort": p["nodePort"]} if p.get("nodePort") else {})}
            for p in (service.get("spec") or {}).get("ports") or []]


class ClusterBalancer:
    def __init__(self, cluster: Cluster, *, frontends: Frontends, network_of: NetworkOf | None = None):
        self.cluster = cluster
        self.frontends = frontends
        self.network_of = network_of or (lambda _cluster: None)
        self.listeners = forwarder.Listeners()
        self._turn: dict[tuple[str, str], itertools.count[int]] = defaultdict(itertools.count)
        self._slices: dict[tuple[str, str], dict[str, Obj]] = defaultdict(dict)  # (ns, Service) -> slices
        self.services = Informer(cluster.registry("", "v1", "services"), lambda *_: None)
        self._slice_informer = Informer(cluster.registry("discovery.k8s.io", "v1", "endpointslices"), self._on_slice)

    async def start(self) -> None:
        await self.services.start()
        await self._slice_informer.start()

    async def stop(self) -> None:
        await self.listeners.close()
        await self._slice_informer.stop()
        await self.services.stop()

    def _on_slice(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta = obj["metadata"]
        service = (meta.get("labels") or {}).get(SERVICE_NAME)
        if not service:
            return
        key = (meta.get("namespace") or "", service)
        if kind == "DELETED":
            self._slices[key].pop(meta["name"], None)
            if not self._slices[key]:
                del self._slices[key]
        else:
            self._slices[key][meta["name"]] = obj

    # -- the cloud provider's load balancer interface ------------------------------------------

    def exists(self, service: Obj) -> bool:
        return self.frontends.held_by(self.cluster.id, service["metadata"]["uid"]) is not None

    async def ensure(self, service: Obj) -> Obj:
        """The Service's load balancer as it should be; its `status.loadBalancer`."""
        meta = service["metadata"]
        wanted = Frontend(ip="", cluster=self.cluster.id, namespace=meta["namespace"], name=meta["name"],
                          uid=meta["uid"], internal=internal(service), ports=frontend_ports(service),
                          client_affinity=(service.get("spec") or {}).get("sessionAffinity") == "ClientIP")
        frontend = await self.frontends.claim(
            wanted, requested=requested_ip(service),
            usable=None if wanted.internal else lambda ip: _free_on_host(ip, wanted.ports))
        if frontend.internal or in_process(service):
            self.listeners.drop(frontend.uid)
        else:
            ports = sorted({(p["protocol"], p["port"]) for p in frontend.ports})
            key = (frontend.namespace, frontend.name)
            try:
                await self.listeners.ensure(frontend.uid, frontend.ip, ports,
                                            lambda port, client: self._connect(key, port, client),
                                            lambda port, client: self._open_datagram(key, port, client))
            except OSError as err:
                raise Unavailable(err.strerror or str(err)) from err
        # served in process (app routing): traffic must reach lks's listener, not be sent by
        # kube-proxy's rules to the Service's (stand-in) pods
        return {"ingress": [{"ip": frontend.ip, "ipMode": "Proxy" if in_process(service) else "VIP"}]}

    async def ensure_deleted(self, service: Obj) -> None:
        uid = service["metadata"]["uid"]
        self.listeners.drop(uid)
        await self.frontends.release(self.cluster.id, uid)

    # -- the data path ---------------------------------------------------------------------------

    def _candidates(self, key: tuple[str, str], port: int, client: str, *, pod_network: bool,
                    protocol: str = "TCP") -> list[tuple[str, int]]:
        """Where a connection from `client` to the frontend's `port` may go, in the order to try
        (none: the Service's source ranges keep the client out, as its security rules would)."""
        service = self.services.get(*key)
        if service is None or not allowed(service, client):
            return []
        spec = service.get("spec") or {}
        sport = next((p for p in spec.get("ports") or []
                      if p["port"] == port and p.get("protocol", "TCP") == protocol), None)
        if sport is None:
            return []
        out: list[tuple[str, int]] = []
        cluster_ip = spec.get("clusterIP")
        if pod_network and cluster_ip and cluster_ip != "None":
            out.append((cluster_ip, port))
        ready: list[tuple[str, int]] = []
        for slice_ in self._slices.get(key, {}).values():
            number = next((p.get("port") for p in slice_.get("ports") or []
                           if (p.get("name") or "") == (sport.get("name") or "") and p.get("protocol", "TCP") == protocol),
                          None)
            if number is None:
                continue
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False or not endpoint.get("addresses"):
                    continue
                ready.append((endpoint["addresses"][0] if pod_network else "127.0.0.1", number))
        if ready:
            if spec.get("sessionAffinity") == "ClientIP":  # a client keeps its endpoint (while the set stays)
                ready.sort()
                turn = int.from_bytes(hashlib.sha256(client.encode()).digest()[:4], "big") % len(ready)
            else:
                turn = next(self._turn[key]) % len(ready)
            out += ready[turn:] + ready[:turn]
        return out

    async def _connect(self, key: tuple[str, str], port: int, client: str) -> forwarder.Streams | None:
        network = self.network_of(self.cluster)
        for host, target in self._candidates(key, port, client, pod_network=network is not None):
            try:
                if network is None:
                    return await asyncio.wait_for(asyncio.open_connection(host, target), CONNECT_TIMEOUT)
                return await _open_in(network.name, host, target)
            except OSError as err:
                log.debug("load balancer %s/%s: %s:%d: %s", *key, host, target, err)
        return None

    async def _open_datagram(self, key: tuple[str, str], port: int, client: str) -> socket.socket | None:
        """A UDP socket connected to where the frontend's UDP `port` goes (the same order as
        TCP's; a UDP connect only fails where there is no route)."""
        network = self.network_of(self.cluster)
        for host, target in self._candidates(key, port, client, pod_network=network is not None, protocol="UDP"):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            if network is None:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
            else:
                sock = await netns.run(lambda name=network.name, family=family: _datagram_in(name, family))
            try:
                sock.connect((host, target))
            except OSError as err:
                sock.close()
                log.debug("load balancer %s/%s: UDP %s:%d: %s", *key, host, target, err)
                continue
            return sock
        return None


def _free_on_host(ip: str, ports: list[Obj]) -> bool:
    """Whether no other program on this host (another lks, say) serves `ip` at one of `ports`:
    only a port in use says no; an address the host does not have is the listener's problem."""
    for port in ports:
        kind = socket.SOCK_DGRAM if port["protocol"] == "UDP" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((ip, port["port"]))
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return False
    return True


def _datagram_in(namespace: str, family: int) -> socket.socket:
    """A UDP socket of network namespace `namespace` (namespace thread only)."""
    with netns.entered(namespace):
        sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


async def _open_in(namespace: str, host: str, port: int) -> forwarder.Streams:
    """A TCP connection made from inside network namespace `namespace`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await netns.run(lambda: netns.socket_in(namespace, family))
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), CONNECT_TIMEOUT)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
