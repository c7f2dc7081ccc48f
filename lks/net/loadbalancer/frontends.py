"""The load balancers' frontend IP addresses, as Azure hands them to AKS's cloud provider: a
public one per LoadBalancer Service from the service's range (`lks up --load-balancer-range`,
by default the loopback block 127.224.0.0/16, whose addresses the host can bind without adding
them), unique across every cluster the service runs, or (an internal Service) a private one from
the cluster's node subnet, unique in that cluster.

Each address held is a record in the service's own store (`/lks/loadbalancer/frontends/...`):
which cluster and Service hold it and the ports it serves. The store's create is the claim, so
two Services never hold one address, and the records outlive a restart; `lks.arm.network` reads
them to show the node resource group's load balancers and public IPs. Records of clusters that no
longer exist (`alive` says which) are free again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from lks import store

PREFIX = "/lks/loadbalancer/frontends/"
OUTBOUND = "aks-outbound"  # the uid of a cluster's outbound address (AKS's managed outbound IP)
DEFAULT_RANGE = "127.224.0.0/16"
NODE_SUBNET = "10.224.0.0/16"  # AKS's default aks-subnet (`lks.nodes.template`)
_AZURE_RESERVED_LOW = 4  # a subnet's first four addresses (and its last) are Azure's


class Unavailable(Exception):
    """The address a Service asks for cannot be had, or the range is full."""


@dataclass(slots=True)
class Frontend:
    ip: str
    cluster: str  # the control plane id
    namespace: str
    name: str
    uid: str
    internal: bool = False
    ports: list[dict[str, Any]] = field(default_factory=list)  # name, protocol, port, nodePort
    client_affinity: bool = False  # `sessionAffinity: ClientIP` (the rules' `loadDistribution: SourceIP`)

    @property
    def key(self) -> str:
        return _key(self.cluster, self.ip, self.internal)


def _key(cluster: str, ip: str, internal: bool) -> str:
    return f"{PREFIX}internal/{cluster}/{ip}" if internal else f"{PREFIX}public/{ip}"


class Frontends:
    def __init__(self, *, meta: store.Backend, public_range: str = DEFAULT_RANGE,
                 alive: Callable[[str], Awaitable[bool]] | None = None):
        """`alive(cluster id)`: whether that cluster still exists (None: all do)."""
        self.meta = meta
        self.public_range = ipaddress.ip_network(public_range, strict=False)
        self.alive = alive
        self._held: dict[str, tuple[Frontend, int]] = {}  # key -> (record, its revision)

    async def load(self) -> None:
        res = await self.meta.list(PREFIX)
        self._held = {kv.key: (Frontend(**orjson.loads(kv.value)), kv.mod_revision) for kv in res.items}

    def of_cluster(self, cluster: str) -> list[Frontend]:
        return [f for f, _ in self._held.values() if f.cluster == cluster]

    def held_by(self, cluster: str, uid: str) -> Frontend | None:
        return next((f for f, _ in self._held.values() if f.cluster == cluster and f.uid == uid), None)

    async def claim(self, wanted: Frontend, *, requested: str | None, subnet: str = NODE_SUBNET,
                    usable: Callable[[str], bool] | None = None) -> Frontend:
        """The address of `wanted`'s Service (its `ip` is ignored): the one it holds if that
        still fits (`requested`, the kind), else `requested` or the next free one that is
        `usable` (another program on the host may serve it); what it held before is released.
        Its ports are recorded."""
        network = ipaddress.ip_network(subnet if wanted.internal else self.public_range, strict=False)
        current = self.held_by(wanted.cluster, wanted.uid)
        if current is not None and current.internal == wanted.internal and requested in (None, current.ip) \
                and (current.internal or ipaddress.ip_address(current.ip) in network):  # (the range may have changed)
            wanted.ip = current.ip
            if asdict(current) != asdict(wanted):
                await self._write(wanted)
            return wanted
        if requested is not None:
            await self._check_requested(wanted, requested, network)
            wanted.ip = requested
        else:
            wanted.ip = await self._next_free(wanted, network, usable)
        await self._write(wanted)
        if current is not None:
            await self._drop(current)
        return wanted

    async def release(self, cluster: str, uid: str) -> bool:
        """The Service's address is free again; False if it held none."""
        current = self.held_by(cluster, uid)
        if current is None:
            return False
        await self._drop(current)
        return True

    async def forget(self, cluster: str) -> None:
        """A deleted cluster's addresses are free again."""
        for frontend in self.of_cluster(cluster):
            await self._drop(frontend)

    # -- internals ---------------------------------------------------------------------------

    async def _holder(self, key: str) -> Frontend | None:
        """Who holds `key`: a record of a cluster that is gone holds nothing (and goes)."""
        held = self._held.get(key)
        if held is None:
            return None
        if self.alive is not None and not await self.alive(held[0].cluster):
            await self._drop(held[0])
            return None
        return held[0]

    async def _check_requested(self, wanted: Frontend, ip: str, network: ipaddress._BaseNetwork) -> None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise Unavailable(f"the IP address {ip!r} is not valid") from None
        if address not in network or address in _reserved(network, wanted.internal):
            if wanted.internal:
                raise Unavailable(f"Private static IP address {ip} does not belong to the range of subnet prefix "
                                  f"{network}.")
            raise Unavailable(f"user supplied IP address {ip} is not in the load balancer range {network} of "
                              "this service")
        holder = await self._holder(_key(wanted.cluster, ip, wanted.internal))
        if holder is not None and holder.uid != wanted.uid:
            where = "the cluster's outbound rule" if holder.uid == OUTBOUND and holder.cluster == wanted.cluster \
                else f"service {holder.namespace}/{holder.name}" if holder.cluster == wanted.cluster \
                else "a service of another cluster"
            raise Unavailable(f"the IP address {ip} is already in use by {where}")

    async def _next_free(self, wanted: Frontend, network: ipaddress._BaseNetwork,
                         usable: Callable[[str], bool] | None) -> str:
        """Services' public addresses from the bottom of the range, clusters' outbound ones from
        the top; internal ones from the top of the subnet down, clear of the node addresses that
        pools hand out from the bottom."""
        low = int(network.network_address) + (_AZURE_RESERVED_LOW if wanted.internal else 1)
        high = int(network.broadcast_address) - 1
        hosts = range(high, low - 1, -1) if wanted.internal or wanted.uid == OUTBOUND else range(low, high + 1)
        for n in hosts:
            ip = str(ipaddress.ip_address(n))
            if await self._holder(_key(wanted.cluster, ip, wanted.internal)) is None \
                    and (usable is None or usable(ip)):
                return ip
        raise Unavailable(f"no free IP address is left in {network}")

    async def _write(self, frontend: Frontend) -> None:
        value = orjson.dumps(asdict(frontend))
        held = self._held.get(frontend.key)
        try:
            if held is None:
                revision = await self.meta.create(frontend.key, value)
            else:
                revision = await self.meta.update(frontend.key, value, mod_revision=held[1])
        except (store.KeyExists, store.RevisionConflict) as err:
            raise Unavailable(f"the IP address {frontend.ip} was claimed meanwhile") from err
        self._held[frontend.key] = (frontend, revision)

    async def _drop(self, frontend: Frontend) -> None:
        self._held.pop(frontend.key, None)
        try:
            await self.meta.delete(frontend.key)
        except store.NotFound:
            pass


def _reserved(network: ipaddress._BaseNetwork, internal: bool) -> set[Any]:
    if not internal:
        return {network.network_address, network.broadcast_address}
    low = int(network.network_address)
    return {ipaddress.ip_address(low + i) for i in range(_AZURE_RESERVED_LOW)} | {network.broadcast_address}
