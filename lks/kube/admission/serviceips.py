"""Service cluster IPs and node ports: the allocators behind upstream's Service REST storage
(`pkg/registry/core/service/storage/alloc.go` over the `ipallocator` and `portallocator`
bitmaps), as an admission plugin that runs after validation and before the store.

A new Service gets a random free address of the cluster's service CIDR (or the one it asks for,
if free), NodePort and LoadBalancer Services get node ports in 30000–32767, and a LoadBalancer
with `externalTrafficPolicy: Local` a `healthCheckNodePort`. An update keeps what the Service
holds, allocates what a type change needs and frees what it no longer needs; a deletion frees
everything (`released`). As upstream, dynamic picks start in the upper band of a range so that
the lower band stays for addresses chosen on purpose (`kubernetes` at the first address, DNS
at `.10`).

The tables live in memory and are rebuilt from the stored Services on first use, so they
survive restarts. A write that fails after admission (a lost conflict, a later plugin refusing)
leaves a claim nobody stores: a claim counts only while it is fresh or while the stored Service
still holds the value, so such leftovers free themselves (upstream runs a repair loop for the
same reason). `lks.controllers.kubernetesservice` creates the `kubernetes` Service through here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lks.kube import admission, errors, registry
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.kube.typevalidation import field
from lks.kube.typevalidation.service import NODE_PORTS

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

FRESH = 30.0  # seconds a claim holds without a stored Service behind it (a write in flight)
IP, PORT = "ip", "port"


@dataclass(slots=True)
class _Holder:
    key: str  # the Service's store key
    uid: str
    since: float  # clock.monotonic() of the admission that claimed it


class _Table:
    """One range: index -> holder, and upstream's random scan with a reserved lower band."""

    def __init__(self, size: int, offset: int):
        self.size = size
        self.offset = offset  # dynamic picks prefer [offset, size)
        self.held: dict[int, _Holder] = {}

    def candidates(self) -> Iterator[int]:
        """Every index once: the upper band from a random start, then the lower band."""
        for lo, hi in ((self.offset, self.size), (0, self.offset)):
            if hi <= lo:
                continue
            start = random.randrange(lo, hi)
            yield from range(start, hi)
            yield from range(lo, start)


def _range_offset(size: int, *, step: int, most: int) -> int:
    """Upstream's `calculateRangeOffset`: how much of a range is kept for static requests."""
    if size < 16:
        return 0
    return max(16, min(size // step, most))


# -- what a Service holds ----------------------------------------------------------------

def _type(spec: Obj) -> str:
    return spec.get("type") or "ClusterIP"


def _needs_ip(spec: Obj) -> bool:
    return _type(spec) != "ExternalName"


def _needs_node_ports(spec: Obj) -> bool:
    return _type(spec) in ("NodePort", "LoadBalancer")


def _allocates_node_ports(spec: Obj) -> bool:
    """Whether ports without a nodePort get one (upstream's `shouldAllocateNodePorts`)."""
    if _type(spec) == "NodePort":
        return True
    return _type(spec) == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _needs_health_check(spec: Obj) -> bool:
    return _type(spec) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _cluster_ips(spec: Obj) -> list[str]:
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if isinstance(ip, str)]


def _node_ports(spec: Obj) -> set[int]:
    """Upstream's `collectServiceNodePorts`: the ports' node ports and the health check port."""
    ports = {p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(spec["healthCheckNodePort"])
    return ports


@admission.plugin
class ServiceIPs:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.network = ipaddress.ip_network(getattr(cluster, "service_cidr", "10.0.0.0/16"), strict=False)
        # IPv4 loses its network and broadcast addresses, IPv6 its subnet-router anycast one
        self._base = int(self.network.network_address) + 1
        size = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        self.tables: dict[str, _Table] | None = None  # built on first use
        self._sizes = {IP: (max(size, 0), _range_offset(max(size, 0), step=16, most=256)),
                       PORT: (NODE_PORTS[1] - NODE_PORTS[0] + 1,
                              _range_offset(NODE_PORTS[1] - NODE_PORTS[0] + 1, step=32, most=128))}
        self._lock = asyncio.Lock()

    # -- admission hooks -----------------------------------------------------------------

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if (reg.rt.group, reg.rt.resource) != ("", "services"):
            return
        async with self._lock:
            await self._load(reg)
            txn = _Txn(self, reg, obj, await reg.cache())
            if old is None:
                txn.create()
            else:
                txn.update(old)
            if not opts.dry_run:
                txn.commit()

    async def released(self, reg: Registry, obj: Obj) -> None:
        if (reg.rt.group, reg.rt.resource) != ("", "services") or self.tables is None:
            return
        async with self._lock:
            key = reg.key(obj["metadata"].get("namespace"), obj["metadata"]["name"])
            for kind, index in self._holdings(obj.get("spec") or {}):
                holder = self.tables[kind].held.get(index)
                if holder is not None and holder.key == key:
                    del self.tables[kind].held[index]

    # -- tables --------------------------------------------------------------------------

    async def _load(self, reg: Registry) -> None:
        """Build the tables from the stored Services, once (the allocations of a restart)."""
        if self.tables is not None:
            return
        tables = {kind: _Table(size, offset) for kind, (size, offset) in self._sizes.items()}
        listed = await reg.list(None, registry.ListOptions(LabelSelector([]), FieldSelector([])))
        for svc in listed["items"]:
            meta = svc["metadata"]
            holder = _Holder(reg.key(meta.get("namespace"), meta["name"]), meta.get("uid", ""), float("-inf"))
            for kind, index in self._holdings(svc.get("spec") or {}):
                tables[kind].held[index] = holder
        self.tables = tables

    def _holdings(self, spec: Obj) -> Iterator[tuple[str, int]]:
        for ip in _cluster_ips(spec):
            index = self.ip_index(ip)
            if index is not None:
                yield IP, index
        for port in _node_ports(spec):
            if NODE_PORTS[0] <= port <= NODE_PORTS[1]:
                yield PORT, port - NODE_PORTS[0]

    def ip_index(self, ip: str) -> int | None:
        """Where `ip` sits in the service range, None outside it (or not an address)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        index = int(addr) - self._base
        if addr.version != self.network.version or not 0 <= index < self._sizes[IP][0]:
            return None
        return index

    def ip_at(self, index: int) -> str:
        return str(ipaddress.ip_address(self._base + index))


class _Txn:
    """One admission's claims and releases; applied by `commit` unless it is a dry run."""

    def __init__(self, plugin: ServiceIPs, reg: Registry, obj: Obj, cache: Any):
        assert plugin.tables is not None
        self.plugin = plugin
        self.tables = plugin.tables
        self.obj = obj
        self.cache = cache
        meta = obj["metadata"]
        self.name = meta["name"]
        self.key = reg.key(meta.get("namespace"), meta["name"])
        self.now = plugin.cluster.clock.monotonic()
        self.owner = _Holder(self.key, meta.get("uid", ""), self.now)
        self.claims: set[tuple[str, int]] = set()
        self.releases: set[tuple[str, int]] = set()

    def commit(self) -> None:
        for kind, index in self.releases - self.claims:
            holder = self.tables[kind].held.get(index)
            if holder is not None and holder.key == self.key:
                del self.tables[kind].held[index]
        for kind, index in self.claims:
            self.tables[kind].held[index] = self.owner

    # -- create and update ---------------------------------------------------------------

    def create(self) -> None:
        spec = self.obj.setdefault("spec", {})
        if _needs_ip(spec):
            self._check_families(spec)
            ips = _cluster_ips(spec)
            if ips[:1] == ["None"]:
                spec["clusterIPs"] = ["None"]  # upstream's NormalizeClusterIPs
            else:
                self._allocate_ip(spec, ips[0] if ips else "")
        if _needs_node_ports(spec):
            self._init_node_ports(spec)
        if _needs_health_check(spec):
            self._allocate_health_check(spec, set())

    def update(self, old: Obj) -> None:
        spec, old_spec = self.obj.setdefault("spec", {}), old.get("spec") or {}
        _patch_allocated(spec, old_spec)
        if _needs_ip(spec):
            self._check_families(spec)
            ips = _cluster_ips(spec)
            if ips[:1] == ["None"]:
                spec["clusterIPs"] = ["None"]
            elif not ips or not _needs_ip(old_spec):
                # from ExternalName, or a Service stored before lks allocated addresses
                self._allocate_ip(spec, ips[0] if ips else "")
        # what the old Service held and the new one keeps is claimed again (a retried write
        # may follow a failed one); the rest is released once the write is admitted
        old_held = set(self.plugin._holdings(old_spec))
        old_ports = _node_ports(old_spec)
        if _needs_node_ports(spec):
            self._update_node_ports(spec, old_ports)
        if _needs_health_check(spec):
            self._allocate_health_check(spec, old_ports)
        new_held = set(self.plugin._holdings(spec))
        self.claims |= {h for h in old_held & new_held if self._free(*h)}
        self.releases |= old_held - new_held

    # -- cluster IPs ---------------------------------------------------------------------

    def _check_families(self, spec: Obj) -> None:
        """Upstream's `initIPFamilyFields` checks on a single-stack cluster."""
        if spec.get("clusterIP") == "None" and not spec.get("selector"):
            return  # headless without a selector may name both families
        causes = []
        families = spec.get("ipFamilies") or []
        policy = spec.get("ipFamilyPolicy")
        if policy == "SingleStack" and len(families) == 2:
            causes.append(field.invalid(
                "spec.ipFamilyPolicy", policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
        if policy == "RequireDualStack":
            causes.append(field.invalid("spec.ipFamilyPolicy", policy,
                                        "this cluster is not configured for dual-stack services"))
        for i, family in enumerate(families):
            if family != self.plugin.family:
                causes.append(field.invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster"))
        if causes:
            raise errors.invalid("Service", "", self.name, causes)

    def _allocate_ip(self, spec: Obj, wanted: str) -> None:
        if wanted:
            index = self.plugin.ip_index(wanted)
            problem = None
            if index is None:
                problem = (f"the provided IP ({wanted}) is not in the valid range. The range of valid IPs is "
                           f"{self.plugin.network}")
            elif not self._free(IP, index):
                problem = "provided IP is already allocated"
            if problem:
                raise errors.invalid("Service", "", self.name, [field.invalid(
                    "spec.clusterIPs", _cluster_ips(spec), f"failed to allocate IP {wanted}: {problem}")])
        else:
            index = self._next(IP)
            if index is None:
                raise errors.internal("failed to allocate a serviceIP: range is full")
        assert index is not None
        ip = self.plugin.ip_at(index)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        spec["ipFamilies"] = [self.plugin.family]
        self.claims.add((IP, index))

    # -- node ports ----------------------------------------------------------------------

    def _init_node_ports(self, spec: Obj) -> None:
        """Upstream's `initNodePorts`: one node port per service port number (a TCP and a UDP
        port of the same number share it), requested ones first."""
        by_port: dict[Any, int] = {}
        ports = spec.get("ports") or []
        for i, port in enumerate(ports):
            if not port.get("nodePort") and not _allocates_node_ports(spec):
                continue
            shared = by_port.get(port.get("port"))
            if shared is None:
                requested = next((p["nodePort"] for p in ports[i:]
                                  if p.get("port") == port.get("port") and p.get("nodePort")), 0)
                port["nodePort"] = self._claim_port(requested, i) if requested else self._next_port()
                by_port[port.get("port")] = port["nodePort"]
            elif port.get("nodePort") != shared:
                if port.get("nodePort"):
                    self._claim_port(port["nodePort"], i)
                else:
                    port["nodePort"] = shared

    def _update_node_ports(self, spec: Obj, old_ports: set[int]) -> None:
        """Upstream's `updateNodePorts`: keep what the Service had, claim new requests, fill
        missing ones."""
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if not wanted and not _allocates_node_ports(spec):
                continue
            if not wanted:
                port["nodePort"] = self._next_port()
            elif wanted not in old_ports and (PORT, wanted - NODE_PORTS[0]) not in self.claims:
                self._claim_port(wanted, i)

    def _allocate_health_check(self, spec: Obj, old_ports: set[int]) -> None:
        wanted = spec.get("healthCheckNodePort")
        if not wanted:
            spec["healthCheckNodePort"] = self._next_port(health_check=True)
        elif wanted not in old_ports:
            index = wanted - NODE_PORTS[0]
            if not 0 <= index < self.tables[PORT].size or not self._free(PORT, index):
                reason = ("provided port is already allocated" if 0 <= index < self.tables[PORT].size
                          else f"provided port is not in the valid range. The range of valid ports is "
                               f"{NODE_PORTS[0]}-{NODE_PORTS[1]}")
                raise errors.internal(f"failed to allocate requested HealthCheck NodePort {wanted}: {reason}")
            self.claims.add((PORT, index))

    def _claim_port(self, port: int, i: int) -> int:
        index = port - NODE_PORTS[0]
        if (PORT, index) in self.claims or not self._free(PORT, index):
            raise errors.invalid("Service", "", self.name, [field.invalid(
                f"spec.ports[{i}].nodePort", port, "provided port is already allocated")])
        self.claims.add((PORT, index))
        return port

    def _next_port(self, *, health_check: bool = False) -> int:
        index = self._next(PORT)
        if index is None:
            if health_check:
                raise errors.internal("failed to allocate a HealthCheck NodePort 0: range is full")
            raise errors.internal("failed to allocate a nodePort: range is full")
        return NODE_PORTS[0] + index

    # -- the tables, read ----------------------------------------------------------------

    def _next(self, kind: str) -> int | None:
        for index in self.tables[kind].candidates():
            if (kind, index) not in self.claims and self._free(kind, index):
                self.claims.add((kind, index))
                return index
        return None

    def _free(self, kind: str, index: int) -> bool:
        """Whether this Service may take `index`: nobody holds it, this Service does, or the
        holder's claim went stale (not fresh, and its stored Service does not hold it)."""
        holder = self.tables[kind].held.get(index)
        if holder is None or holder.key == self.key:
            return True
        if self.now - holder.since < FRESH:
            return False
        stored = self.cache.objects.get(holder.key)
        if stored is None or stored["metadata"].get("uid") != holder.uid:
            return True
        return (kind, index) not in set(self.plugin._holdings(stored.get("spec") or {}))


def _patch_allocated(spec: Obj, old: Obj) -> None:
    """Upstream's `patchAllocatedValues`: an update that leaves out what was allocated (a PUT
    of the original manifest) keeps it."""
    if _needs_ip(old) and _needs_ip(spec):
        if not spec.get("clusterIP") and old.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    if _needs_node_ports(old) and _needs_node_ports(spec):
        used = {p.get("nodePort") for p in old.get("ports") or []} & {p.get("nodePort") for p in spec.get("ports") or []}
        by_name = {p.get("name", ""): p.get("nodePort") for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                previous = by_name.get(port.get("name", ""))
                if previous and previous not in used:
                    port["nodePort"] = previous
    if _needs_health_check(old) and _needs_health_check(spec) and not spec.get("healthCheckNodePort"):
        if old.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old["healthCheckNodePort"]
