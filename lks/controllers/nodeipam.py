"""Node IPAM: every Node without a pod CIDR gets one (`spec.podCIDR` and `spec.podCIDRs`) out of
the cluster's pod CIDR, as kube-controller-manager's range allocator does with
`--allocate-node-cidrs` (a /24 per node for IPv4, `--node-cidr-mask-size`; a /64 for IPv6).

The allocator hands out subnets in turn, starting after the last one given and wrapping around,
so a deleted node's CIDR is free again but not reused at once. It keeps no state of its own: on
start it marks the CIDRs the existing Nodes hold, which is how it survives a restart. When the
range is full a node waits, with a `CIDRNotAvailable` event, until a deletion frees a CIDR.
The node agents' pod workers (`lks.nodes.pods`) wait for a node's CIDR before giving its pods
IPs out of it.

Azure CNI (flat) nodes get none, as on AKS, where kube-controller-manager allocates no node
CIDRs for that plugin: their pods' addresses are the node subnet's, preallocated with the node
(`lks.nodes.pool`); the node says so with the annotation `lks.dev/pod-ips: node-subnet`.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from lks.controllers.controller import Controller
from lks.controllers.events import EventRecorder
from lks.kube import errors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_POD_CIDR = "10.244.0.0/16"
NODE_MASK = {4: 24, 6: 64}  # kube-controller-manager's --node-cidr-mask-size defaults
# lks.nodes.template.POD_IPS_ANNOTATION (a layer above): pod IPs from the node subnet, no pod CIDR
POD_IPS_ANNOTATION, NODE_SUBNET = "lks.dev/pod-ips", "node-subnet"
WORKERS = 30  # upstream's range allocator `cidrUpdateWorkers`: a node is NotReady until its CIDR is written


class CIDRSet:
    """The node-sized subnets of a cluster CIDR, by index, allocated in turn (upstream's
    `cidrset.CidrSet`)."""

    def __init__(self, cluster_cidr: str, mask: int | None = None):
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        self.mask = max(mask or NODE_MASK[self.network.version], self.network.prefixlen)
        self._shift = self.network.max_prefixlen - self.mask
        self.size = 1 << (self.mask - self.network.prefixlen)
        self._base = int(self.network.network_address)
        self._used: set[int] = set()
        self._next = 0

    def allocate(self) -> str | None:
        """The next free subnet after the last one given, or None if all are taken."""
        if len(self._used) >= self.size:
            return None
        i = self._next
        while i in self._used:  # ends: at least one is free
            i = (i + 1) % self.size
        self._used.add(i)
        self._next = (i + 1) % self.size
        return self._cidr(i)

    def occupy(self, cidr: str) -> bool:
        """Mark a subnet a Node already holds; False if it is not one of this set's."""
        i = self._index(cidr)
        if i is None:
            return False
        self._used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self._used.discard(i)

    def _cidr(self, i: int) -> str:
        address = ipaddress.ip_address(self._base + (i << self._shift))
        return f"{address}/{self.mask}"

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - self._base) >> self._shift


class NodeIPAMController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="nodeipam", workers=WORKERS)
        self.nodes = cluster.registry("", "v1", "nodes")
        self.cidrs = CIDRSet(getattr(cluster, "pod_cidr", None) or DEFAULT_POD_CIDR)
        self.informer = self.watch(self.nodes, self._on_event)
        self.events = EventRecorder(cluster, component="cidrAllocator")
        self._owners: dict[str, str] = {}  # CIDR -> the node holding it
        self._waiting: set[str] = set()  # nodes that found the range full

    def _on_event(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        # the informer's first delivery (every Node, before the workers start) marks what they
        # hold before anything is handed out: a restart keeps them all
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self._waiting.discard(name)
            for cidr in _cidrs(obj):
                if self._owners.get(cidr) == name:
                    self._release(cidr)
            return
        if _cidrs(obj):
            self._occupy(obj)
        elif not _subnet_ips(obj):
            self.queue.add(name)

    def _occupy(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for cidr in _cidrs(node):
            if self._owners.get(cidr, name) != name:
                log.warning("nodes %s and %s both hold pod CIDR %s", self._owners[cidr], name, cidr)
            if self.cidrs.occupy(cidr):
                self._owners[cidr] = name

    def _release(self, cidr: str) -> None:
        del self._owners[cidr]
        self.cidrs.release(cidr)
        for name in self._waiting:  # room again for a node that found none
            self.queue.add(name)
        self._waiting.clear()

    async def sync(self, name: str) -> None:
        node = self.informer.get(None, name)
        if node is None or _cidrs(node) or _subnet_ips(node):
            return
        cidr = self.cidrs.allocate()
        if cidr is None:
            self._waiting.add(name)
            await self.events.record(node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            return
        self._owners[cidr] = name

        def assign(current: Obj) -> Obj:
            spec = current.setdefault("spec", {})
            if not spec.get("podCIDR") and not spec.get("podCIDRs"):  # else someone was first
                spec["podCIDR"], spec["podCIDRs"] = cidr, [cidr]
            return current

        try:
            updated = await self.nodes.patch(None, name, assign)
        except errors.APIError as err:
            self._release(cidr)
            if err.code == 404:
                return
            await self.events.record(node, "Warning", "CIDRAssignmentFailed",
                                     f"Node {name} status is now: CIDRAssignmentFailed")
            raise
        if cidr not in _cidrs(updated):
            self._release(cidr)
            self._occupy(updated)
        else:
            log.debug("node %s: pod CIDR %s", name, cidr)


def _cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def _subnet_ips(node: Obj) -> bool:
    """Whether the node's pods take addresses of its subnet (Azure CNI) rather than a pod CIDR."""
    return (node["metadata"].get("annotations") or {}).get(POD_IPS_ANNOTATION) == NODE_SUBNET
