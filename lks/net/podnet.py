"""One cluster's pod network on this machine (kubenet / Azure CNI Overlay shape): the cluster's
own network namespace, `lks-<key>` (its "VNet"), holds one Linux bridge per node, named
`lks<hash of the node>`, which owns the node's pod-CIDR gateway (the .1); each pod gets a
namespace of its own, `lks-<key>-<pod uid>`, with loopback, an `eth0` veth whose peer is on its
node's bridge, its address from the node's range and a default route via the gateway. Nodes of
one cluster reach each other's pods because the cluster namespace forwards between its bridges;
clusters are isolated because their namespaces share no link, and nothing leaves the machine:
the cluster namespace has no uplink, and the host's own forwarding and firewall are untouched.
The same pod CIDR in two clusters is fine (AKS's overlay allows it), each in its namespace.

Addresses come from the pod runtime's IPAM (`lks.nodes.runtime.HostLocal`, rebuilt from the live
pods' `status.podIP` after a restart); this module only plumbs them. An IPAM of another model
(Azure CNI: addresses of the node subnet) plugs in there and hands the same (address, gateway,
prefix) here; as that subnet is every node's, each bridge then holds the gateway as a /32 (with
proxy ARP) and the cluster namespace routes each pod's /32 to its node's bridge.

What lks creates is marked by name (`lks-<key>`, the key a hash of the cluster's data directory,
so two homes never collide) and by a state file in that directory; `start` sweeps what a killed
service left (its processes died with it, so nothing there is live). The process runtime
(`lks.nodes.process`) drives this; `lks.nodes.namespaces` puts a container's process into its
pod's namespace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import hashlib
import ipaddress
import logging
import os
import socket
import ssl as ssllib
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from lks.net import netns

log = logging.getLogger("lks.net")

LOOPBACK = 1  # lo's index in every network namespace
SERVICES_LINK = "lks-services"  # the link the Service CIDRs are routed to (and discarded)
STATE_FILE = "network-namespaces"  # in the runtime's data directory: the prefix of what is ours


@dataclass(slots=True)
class PodLink:
    netns: str
    ip: str
    node: str


def _hash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def bridge_name(node: str) -> str:
    return "lks" + _hash(node, 12)  # 15 characters: IFNAMSIZ - 1


def veth_name(uid: str) -> str:
    return "lksv" + _hash(uid, 11)


class PodNetwork:
    """The pod network of one cluster's Process nodes; every method that touches the kernel runs
    on the namespace thread (`lks.net.netns.run`)."""

    def __init__(self, *, data_dir: Path):
        self.data_dir = data_dir
        self.key = _hash(str(data_dir.resolve()), 10)
        self.name = f"lks-{self.key}"
        self.error: str | None = None  # why there is no pod network here (None: there is)
        self._bridges: dict[str, tuple[str, int]] = {}  # node -> its pod CIDR, its bridge's index
        self._pods: dict[str, PodLink] = {}  # uid -> its namespace
        self._node_ips: set[str] = set()  # the nodes' InternalIPs on the namespace's loopback

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> bool:
        """Sweep what a previous run left, then make the cluster's namespace; False (and
        `error` says why) where namespaces cannot be made: pods then share the host's network."""
        self.error = netns.unsupported_reason()
        if self.error is not None:
            return False
        try:
            await netns.run(self._start)
        except OSError as err:
            self.error = f"network namespaces are not available here: {err.strerror or err}"
            log.warning("Process pods share the host's network: %s", self.error)
            return False
        return True

    def _start(self) -> None:
        self._sweep()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / STATE_FILE).write_text(self.name + "\n")
        netns.create(self.name)
        with netns.entered(self.name), netns.rtnl() as ipr:
            ipr.link("set", index=LOOPBACK, state="up")
            # /proc/sys/net is the namespace of whoever opens it: this turns forwarding on
            # between this cluster's bridges only
            for key in ("ipv4/ip_forward", "ipv6/conf/all/forwarding"):
                with contextlib.suppress(OSError), open(f"/proc/sys/net/{key}", "w") as f:
                    f.write("1")

    def _sweep(self) -> None:
        prefixes = {self.name}
        with contextlib.suppress(OSError):
            prefixes |= {line.strip() for line in (self.data_dir / STATE_FILE).read_text().splitlines() if line.strip()}
        for prefix in prefixes:
            for name in netns.listed(prefix):
                if name == prefix or name.startswith(prefix + "-"):
                    netns.remove(name)

    async def close(self) -> None:
        """Everything goes: the pods' namespaces, the bridges (with the cluster's namespace)."""
        if self.error is None:
            await netns.run(self._close)

    def _close(self) -> None:
        for link in list(self._pods.values()):  # (the loop thread may drop one meanwhile)
            netns.remove(link.netns)
        self._pods.clear()
        self._bridges.clear()
        self._node_ips = set()
        netns.remove(self.name)
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()

    # -- nodes -----------------------------------------------------------------------------

    def remove_node(self, node: str) -> None:
        """The node is gone: its pods' namespaces go now, its bridge on the namespace thread
        (queued: whatever comes next for the cluster runs after it)."""
        for uid, link in list(self._pods.items()):
            if link.node == node:
                self._pods.pop(uid, None)
                netns.remove(link.netns)
        if self._bridges.pop(node, None) is not None:
            netns.submit(lambda: self._remove_bridge(node)).add_done_callback(_log_failure)

    def _remove_bridge(self, node: str) -> None:
        with netns.entered(self.name), netns.rtnl() as ipr:
            for index in ipr.link_lookup(ifname=bridge_name(node)):
                ipr.link("del", index=index)

    def _bridge(self, ipr: IPRoute, node: str, cidr: str) -> int:
        """The index of the node's bridge with its gateway address (made on first use)."""
        name = bridge_name(node)
        known = self._bridges.get(node)
        if known is not None and known[0] == cidr:
            return known[1]
        network = ipaddress.ip_network(cidr, strict=False)
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])  # another range: a node re-created under its old name
        # bridged packets pass the inet hooks (conntrack, nat, filter): a reply from a pod to a
        # Service client on the same node is un-DNATed, and network policy sees same-node traffic
        ipr.link("add", ifname=name, kind="bridge", br_nf_call_iptables=1, br_nf_call_ip6tables=1)
        index = ipr.link_lookup(ifname=name)[0]
        if _shared(network):
            # every node's bridge is the subnet's gateway: a /32 each (the subnet on all of them
            # would route it all to the first), a route per pod, and the bridge answers its pods'
            # ARP for peers on other nodes (they are on-link in the pods' own prefix)
            ipr.addr("add", index=index, address=str(network.network_address + 1), prefixlen=network.max_prefixlen)
            with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv4/conf/{name}/proxy_arp", "w") as f:
                f.write("1")
        else:
            ipr.addr("add", index=index, address=str(network.network_address + 1), prefixlen=network.prefixlen)
        ipr.link("set", index=index, state="up")
        self._bridges[node] = (cidr, index)
        return index

    # -- pods ------------------------------------------------------------------------------

    def pod_netns(self, uid: str) -> str | None:
        link = self._pods.get(uid)
        return link.netns if link is not None else None

    async def add_pod(self, *, uid: str, node: str, cidr: str, ip: str) -> str:
        """The pod's namespace, wired to its node's bridge with address `ip` (idempotent)."""
        link = self._pods.get(uid)
        if link is not None and link.ip == ip and link.node == node:
            return link.netns
        return await netns.run(lambda: self._add_pod(uid, node, cidr, ip))

    def _add_pod(self, uid: str, node: str, cidr: str, ip: str) -> str:
        network = ipaddress.ip_network(cidr, strict=False)
        gateway = str(network.network_address + 1)
        name = f"{self.name}-{uid}"
        if uid in self._pods or netns.exists(name):
            self._pods.pop(uid, None)
            netns.remove(name)  # a new sandbox of the pod (another address): start afresh
        netns.create(name)
        try:
            veth = veth_name(uid)
            with netns.entered(self.name), netns.rtnl() as ipr:
                bridge = self._bridge(ipr, node, cidr)
                peer = {"ifname": "eth0", "net_ns_fd": netns.path(name)}
                try:  # one request: the pair, its host end on the bridge and up
                    ipr.link("add", ifname=veth, kind="veth", master=bridge, state="up", peer=peer)
                except NetlinkError as err:
                    if err.code != errno.EEXIST:
                        raise
                    for stale in ipr.link_lookup(ifname=veth):  # left by a failed attempt
                        ipr.link("del", index=stale)
                    ipr.link("add", ifname=veth, kind="veth", master=bridge, state="up", peer=peer)
                # hairpin (kubenet's): a pod reaching itself through a Service VIP gets its packets
                # back out of the port they came in on
                ipr.brport("set", index=ipr.link_lookup(ifname=veth)[0], mode=1)
                if _shared(network):
                    ipr.route("replace", dst=f"{ip}/{network.max_prefixlen}", oif=bridge)
            with netns.entered(name), netns.rtnl() as ipr:
                ipr.link("set", index=LOOPBACK, state="up")
                eth0 = ipr.link_lookup(ifname="eth0")[0]
                ipr.addr("add", index=eth0, address=ip, prefixlen=network.prefixlen)
                ipr.link("set", index=eth0, state="up")
                ipr.route("add", dst="default", gateway=gateway)
        except (OSError, NetlinkError, IndexError):
            netns.remove(name)
            raise
        self._pods[uid] = PodLink(name, ip, node)
        return name

    def remove_pod(self, uid: str) -> None:
        """The pod's sandbox is gone: its namespace goes (its veth with it, once its last
        process has exited). Two system calls, on the caller's thread."""
        link = self._pods.pop(uid, None)
        if link is not None:
            netns.remove(link.netns)

    async def service_sockets(self, address: str) -> tuple[socket.socket, socket.socket]:
        """An unbound (UDP, TCP) pair of the cluster's namespace for a service that answers on
        `address` there (cluster DNS on its service IP); the address goes on the namespace's
        loopback, so every pod routes to it through its gateway."""
        return await netns.run(lambda: self._service_sockets(address))

    def _service_sockets(self, address: str) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with netns.entered(self.name):
            with netns.rtnl() as ipr:
                try:
                    ipr.addr("add", index=LOOPBACK, address=address, prefixlen=128 if family == socket.AF_INET6 else 32)
                except NetlinkError as err:
                    if err.code != errno.EEXIST:
                        raise
            return socket.socket(family, socket.SOCK_DGRAM), socket.socket(family, socket.SOCK_STREAM)

    async def service_listener(self, address: str, port: int) -> socket.socket:
        """A listening TCP socket on `address`:`port` of the cluster's namespace, the address on
        its loopback (the `kubernetes` Service's IP, answered in process)."""
        def listen() -> socket.socket:
            for unused in self._service_sockets(address):  # (the address on the loopback)
                unused.close()
            return netns.listener_in(self.name, address, port)
        return await netns.run(listen)

    async def node_addresses(self, addresses: set[str]) -> None:
        """The nodes' InternalIPs are addresses of the cluster's namespace (on its loopback): its
        pods reach NodePorts and hostPorts there, as on a node. Addresses no longer given go."""
        if self.error is None:
            await netns.run(lambda: self._node_addresses(set(addresses)))

    def _node_addresses(self, addresses: set[str]) -> None:
        with netns.entered(self.name), netns.rtnl() as ipr:
            for address in self._node_ips - addresses:
                with contextlib.suppress(NetlinkError):
                    ipr.addr("del", index=LOOPBACK, address=address, prefixlen=128 if ":" in address else 32)
            for address in addresses - self._node_ips:
                try:
                    ipr.addr("add", index=LOOPBACK, address=address, prefixlen=128 if ":" in address else 32)
                except NetlinkError as err:
                    if err.code != errno.EEXIST:
                        raise
        self._node_ips = addresses

    async def service_routes(self, cidrs: list[str]) -> None:
        """Routes for the Service CIDRs in the cluster's namespace, out of a link that discards
        what it is given (as a node's default route takes it away): a connection made in
        the namespace (a load balancer's) has a route to a ClusterIP, so the output hook's DNAT
        sees it; traffic to an unused Service IP goes nowhere."""
        if self.error is None:
            await netns.run(lambda: self._service_routes(cidrs))

    def _service_routes(self, cidrs: list[str]) -> None:
        with netns.entered(self.name), netns.rtnl() as ipr:
            found = ipr.link_lookup(ifname=SERVICES_LINK)
            if not found:  # a veth whose peer stays down (no dummy links on every kernel)
                ipr.link("add", ifname=SERVICES_LINK, kind="veth", peer={"ifname": SERVICES_LINK + "-x"})
                found = ipr.link_lookup(ifname=SERVICES_LINK)
            ipr.link("set", index=found[0], state="up")
            for cidr in cidrs:
                try:
                    ipr.route("add", dst=cidr, oif=found[0])
                except NetlinkError as err:
                    if err.code != errno.EEXIST:
                        raise

    async def listen(self, uid: str, host: str, port: int) -> socket.socket | None:
        """A listening socket on `host`:`port` inside the pod's namespace (None: it has none)."""
        name = self.pod_netns(uid)
        if name is None:
            return None
        return await netns.run(lambda: netns.listener_in(name, host, port))

    async def open_connection(self, uid: str, host: str, port: int, *,
                              ssl: ssllib.SSLContext | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection made from inside the pod's namespace (kubelet's probes and
        port-forward); from the host's where the pod has none."""
        name = self.pod_netns(uid)
        if name is None:
            return await asyncio.open_connection(host, port, ssl=ssl)
        family = 10 if ":" in host else 2  # AF_INET6 / AF_INET
        sock = await netns.run(lambda: netns.socket_in(name, family))
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, ssl=ssl, server_hostname=host if ssl else None)


def _shared(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether `network` is a node subnet all nodes share (flat Azure CNI: a node's pods take
    addresses of it) rather than one node's own pod range (kubenet, overlay: a /24 each)."""
    return network.version == 4 and network.prefixlen < 24


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    err = future.exception()
    if err is not None:
        log.warning("pod network: %s", err)


def leftovers(data_dir: Path) -> list[str]:
    """The namespaces a runtime with this data directory made that still exist (for tests)."""
    prefix = f"lks-{_hash(str(data_dir.resolve()), 10)}"
    return [n for n in netns.listed(prefix) if n == prefix or n.startswith(prefix + "-")]


def pid_netns(pid: int) -> str:
    """The namespace identity of a process (for tests: `net:[inode]`)."""
    return os.readlink(f"/proc/{pid}/ns/net")
