"""A node pool: `count` simulated nodes from one `NodeTemplate`, kept like a VM scale set.

Scale-out adds the lowest free instance indexes (a Uniform VMSS may reuse the ids of deleted
instances); scale-in removes the highest ones, which is what the VMSS default scale-in policy
comes to within one zone (balance zones, then delete the highest instance id). A node that
goes (scale-in, pool deletion) is first cordoned and drained as AKS does (`lks.nodes.drain`,
bounded by the pool's drain timeout); one whose drain fails is made schedulable again and
stays, and the `DrainError` is raised once the other nodes are done. `apply` rolls a
changed template (labels, taints) onto the existing Nodes, as AKS does for `nodeLabels` and
`nodeTaints`. `stop` deletes the Nodes (a stopped AKS cluster or pool has none) and remembers
their indexes, so `start` brings them back under the same names; `close` is the service
shutting down: heartbeats end, the Nodes stay, and the next `start` (of a new `NodePool` over the
same store) finds them by their `kubernetes.azure.com/agentpool` label and adopts them instead
of creating duplicates; with `adopted` each adopted Node keeps the template of the version
it runs (an upgrade interrupted halfway resumes from what the Nodes say).

`add_nodes`, `cordon_and_drain`, `reimage` and `remove_nodes` are the steps of a surge upgrade
(`lks.upgrade.surge` decides which nodes each step takes).

All of a pool's heartbeats run on one `lks.nodes.agent.Heartbeats` task. Node IPs come from the
pool's node subnet through `Addresses`, shared by all pools of a cluster on the same subnet (as
AKS pools share `aks-subnet`). The management layer (`lks.arm`) drives pools from agent pool
resources.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lks.kube import errors, selectors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.nodes import agent as agents
from lks.nodes import drain
from lks.nodes.template import POD_IPS_ANNOTATION, POOL_LABEL, NodeTemplate

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_AZURE_RESERVED_LOW = 4  # Azure keeps a subnet's first four addresses (and its last)


class Addresses:
    """The free host addresses of a node subnet, lowest first, as Azure hands out dynamic
    private IPs: a subnet's first node is .4, then .5, and so on. An Azure CNI node holds a
    block: its own address and its pods' after it (`NodeTemplate.addresses_per_node`), so the
    next node of a maxPods-30 pool is .35."""

    _shared: weakref.WeakKeyDictionary[Cluster, dict[str, Addresses]] = weakref.WeakKeyDictionary()

    def __init__(self, subnet: str):
        self.network = ipaddress.ip_network(subnet)
        self._held: set[str] = set()

    @classmethod
    def shared(cls, cluster: Cluster, subnet: str) -> Addresses:
        """The one `Addresses` of `cluster`'s `subnet`, so that pools never hand out one IP twice."""
        per_cluster = cls._shared.setdefault(cluster, {})
        return per_cluster.setdefault(subnet, cls(subnet))

    def hold(self, address: str, block: int = 1) -> None:
        self._held.update(_block(address, block))

    def release(self, address: str, block: int = 1) -> None:
        self._held.difference_update(_block(address, block))

    def claim(self, address: str, *, in_use: set[str], block: int = 1) -> bool:
        """Take this particular address (an adopted or restarted node's own), if it is free."""
        if not address:
            return False
        wanted = _block(address, block)
        if any(a in self._held or a in in_use for a in wanted):
            return False
        self._held.update(wanted)
        return True

    def allocate(self, count: int, *, in_use: set[str], block: int = 1) -> list[str]:
        """The first addresses of the `count` lowest runs of `block` addresses that are neither
        held nor `in_use`."""
        out: list[str] = []
        taken: list[str] = []
        first = int(self.network.network_address) + _AZURE_RESERVED_LOW
        last = int(self.network.broadcast_address) - 1
        n = first
        while len(out) < count:
            if n + block - 1 > last:
                self._held.difference_update(taken)
                raise errors.APIError(409, "Conflict", f"subnet {self.network} has no free address left")
            run = [str(ipaddress.ip_address(n + i)) for i in range(block)]
            busy = next((i for i, a in enumerate(run) if a in self._held or a in in_use), None)
            if busy is not None:
                n += busy + 1
                continue
            out.append(run[0])
            taken.extend(run)
            self._held.update(run)
            n += block
        return out


def _block(address: str, block: int) -> list[str]:
    if block <= 1 or not address:
        return [address]
    start = ipaddress.ip_address(address)
    return [str(start + i) for i in range(block)]


class NodePool:
    def __init__(self, *, cluster: Cluster, template: NodeTemplate, count: int, addresses: Addresses | None = None,
                 drain_timeout: float = drain.DEFAULT_TIMEOUT_MINUTES * 60.0,
                 adopted: Callable[[Obj], NodeTemplate] | None = None):
        """`addresses` defaults to the cluster's shared allocator for the template's subnet;
        `drain_timeout` (seconds) bounds the drain of each node the pool removes; `adopted`
        gives the template of a Node found at start (default: the pool's)."""
        self.cluster = cluster
        self.template = template
        self.adopted = adopted
        self.count = count
        self.drain_timeout = drain_timeout
        self.agents: dict[int, agents.NodeAgent] = {}  # by VMSS instance index
        self.heartbeats = agents.Heartbeats(clock=cluster.clock)
        self.addresses = addresses if addresses is not None else Addresses.shared(cluster, template.subnet)
        self._nodes = cluster.registry("", "v1", "nodes")
        self._leases = cluster.registry("coordination.k8s.io", "v1", "leases")
        self._lock = asyncio.Lock()  # one operation (scale, apply, stop ...) at a time
        self._running = False
        self._stopped: dict[int, str] = {}  # index -> address of the nodes `stop` deleted

    @property
    def name(self) -> str:
        return self.template.pool

    def node_names(self) -> list[str]:
        return [self.agents[i].name for i in sorted(self.agents)]

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, *, scale_in: bool = True) -> None:
        """Adopt this pool's existing Nodes (or bring back the ones `stop` removed), then scale
        to `count`. Without `scale_in` (the service restarting) adopted Nodes beyond `count`
        stay and `count` grows to match: removing them means draining, which is for the next
        change of the pool to do."""
        async with self._lock:
            if self._running:
                return
            await self.heartbeats.start()
            self._running = True
            existing = await self._discover()
            templates: dict[int, NodeTemplate] = {}
            if existing:
                wanted = {i: _internal_ip(node) for i, node in existing.items()}
                if self.adopted is not None:
                    templates = {i: self.adopted(node) for i, node in existing.items()}
            else:
                wanted = dict(self._stopped)
            self._stopped = {}
            await self._add(wanted, templates)
            if not scale_in:
                self.count = max(self.count, len(self.agents))
            await self._scale(self.count)

    async def stop(self) -> None:
        """AKS stop: the VMs are deallocated, so the Nodes go; `start` recreates them."""
        async with self._lock:
            if not self._running:
                return
            self._stopped = {i: a.address for i, a in self.agents.items()}
            await self._remove(list(self.agents), delete_node=True)
            await self.heartbeats.stop()
            self._running = False

    async def close(self) -> None:
        """The service is shutting down: heartbeats end (a node lifecycle controller would see
        the Leases expire) and the Nodes stay for the next start to adopt."""
        async with self._lock:
            await self._remove(list(self.agents), delete_node=False)
            await self.heartbeats.stop()
            self._running = False

    async def delete(self, *, ignore_pdb: bool = False) -> None:
        """The pool is deleted: every Node of it (running or not) and their Leases go, the
        running ones cordoned and drained first, honouring PodDisruptionBudgets unless
        `ignore_pdb` (then pods are deleted rather than evicted). A `DrainError` leaves the pool
        running with the nodes that could not be drained."""
        async with self._lock:
            await self._retire(sorted(self.agents, reverse=True), ignore_pdb=ignore_pdb)
            await self.heartbeats.stop()
            self._running = False
            self._stopped = {}
            self.count = 0
            for index in await self._discover():  # Nodes of a pool that was never started here
                name = self.template.node_name(index)
                await agents.delete_if_present(self._nodes, None, name)
                await agents.delete_if_present(self._leases, agents.LEASE_NAMESPACE, name)

    # -- changes --------------------------------------------------------------------------

    async def scale(self, count: int) -> None:
        async with self._lock:
            self.count = count
            if self._running:
                await self._scale(count)

    async def apply(self, template: NodeTemplate, count: int, *, drain_timeout: float | None = None) -> None:
        """A new template (labels, taints, capacity) for existing and future nodes, a count, and
        (when given) a new drain timeout."""
        if template.vmss_name != self.template.vmss_name:
            raise ValueError(f"pool {self.name}: the VMSS name cannot change")
        async with self._lock:
            changed = template != self.template
            self.template, self.count = template, count
            if drain_timeout is not None:
                self.drain_timeout = drain_timeout
            if not self._running:
                return
            if changed:
                await _each([self.agents[i] for i in sorted(self.agents)], lambda a: a.retemplate(template))
            await self._scale(count)

    # -- the steps of a surge upgrade ----------------------------------------------------------

    def next_indexes(self, n: int) -> list[int]:
        """`n` instance indexes after the highest in use: the VMSS numbering continues."""
        start = max(self.agents, default=-1) + 1
        return list(range(start, start + n))

    async def add_nodes(self, indexes: list[int], template: NodeTemplate) -> None:
        """New nodes of `template` at these instance indexes (surge nodes)."""
        async with self._lock:
            await self._add(dict.fromkeys(indexes, ""), dict.fromkeys(indexes, template))

    async def cordon_and_drain(self, indexes: list[int], *, keep_cordoned: bool = False) -> dict[int, drain.DrainError]:
        """Cordon these nodes, then drain each (bounded by the drain timeout); the nodes stay.
        The ones that could not be drained, by index; they are made schedulable again unless
        `keep_cordoned`."""
        async with self._lock:
            failed: dict[int, drain.DrainError] = {}
            cordoned: set[int] = set()
            targets = [self.agents[i] for i in indexes if i in self.agents]

            async def mark(agent: agents.NodeAgent) -> None:
                if await drain.cordon(self.cluster, agent.name):
                    cordoned.add(agent.index)

            async def empty(agent: agents.NodeAgent) -> None:
                try:
                    await drain.drain(self.cluster, agent.name, timeout=self.drain_timeout)
                except drain.DrainError as err:
                    failed[agent.index] = err
                    if agent.index in cordoned and not keep_cordoned:
                        await drain.uncordon(self.cluster, agent.name)

            await _each(targets, mark)
            await _each(targets, empty)
            return failed

    async def reimage(self, indexes: list[int], template: NodeTemplate) -> None:
        """These (drained) nodes come back on `template`, as a VMSS instance reimaged to a
        new model: the same name and address, a new Node."""
        async with self._lock:
            addresses = {i: self.agents[i].address for i in indexes if i in self.agents}
            await self._remove(list(addresses), delete_node=True)
            await self._add(addresses, dict.fromkeys(addresses, template))

    async def remove_nodes(self, indexes: list[int]) -> None:
        """Cordon, drain and delete these nodes (surge nodes at the end of an upgrade); a
        `DrainError` leaves the ones that could not be drained."""
        async with self._lock:
            await self._retire([i for i in indexes if i in self.agents])

    # -- the work ---------------------------------------------------------------------------

    async def _scale(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"pool {self.name}: count {count} < 0")
        have = len(self.agents)
        if count > have:
            free = (i for i in range(count + have + 1) if i not in self.agents)
            await self._add({next(free): "" for _ in range(count - have)})
        elif count < have:
            await self._retire(sorted(self.agents, reverse=True)[:have - count])

    async def _add(self, wanted: dict[int, str], templates: Mapping[int, NodeTemplate] | None = None) -> None:
        """Start agents for these indexes, on the given addresses where still free, of the
        given templates (default: the pool's)."""
        if not wanted:
            return
        block = self.template.addresses_per_node
        in_use = await self._addresses_in_use()
        in_use.difference_update(a for w in wanted.values() for a in _block(w, block))  # an adopted node's own
        address = {i: a for i, a in sorted(wanted.items()) if self.addresses.claim(a, in_use=in_use, block=block)}
        rest = [i for i in sorted(wanted) if i not in address]
        address.update(zip(rest, self.addresses.allocate(len(rest), in_use=in_use, block=block), strict=True))
        templates = templates or {}
        todo = [agents.NodeAgent(cluster=self.cluster, template=templates.get(i, self.template), index=i,
                                 address=address[i], heartbeats=self.heartbeats) for i in sorted(wanted)]

        async def start(agent: agents.NodeAgent) -> None:
            try:
                await agent.start()
            except BaseException:
                self.addresses.release(agent.address, block)
                raise
            self.agents[agent.index] = agent

        await _each(todo, start)

    async def _retire(self, indexes: list[int], *, ignore_pdb: bool = False) -> None:
        """Remove these nodes as AKS does: cordon them all (so that evicted pods do not land on
        another of them), drain each, then stop its agent and delete the Node. A node whose
        drain fails is made schedulable again (if the drain cordoned it) and kept."""
        retiring = [self.agents[i] for i in indexes]
        cordoned: set[str] = set()

        async def mark(agent: agents.NodeAgent) -> None:
            if await drain.cordon(self.cluster, agent.name):
                cordoned.add(agent.name)

        async def empty_and_remove(agent: agents.NodeAgent) -> None:
            try:
                await drain.drain(self.cluster, agent.name, timeout=self.drain_timeout, disable_eviction=ignore_pdb)
            except drain.DrainError:
                if agent.name in cordoned:
                    await drain.uncordon(self.cluster, agent.name)
                raise
            await self._remove([agent.index], delete_node=True)

        await _each(retiring, mark)
        await _each(retiring, empty_and_remove)

    async def _remove(self, indexes: list[int], *, delete_node: bool) -> None:
        async def stop(agent: agents.NodeAgent) -> None:
            await agent.stop(delete_node=delete_node)
            self.agents.pop(agent.index, None)
            self.addresses.release(agent.address, agent.template.addresses_per_node)

        await _each([self.agents[i] for i in indexes], stop)

    async def _discover(self) -> dict[int, Obj]:
        """This pool's Nodes in the cluster, by instance index."""
        opts = ListOptions(selectors.parse_labels(f"{POOL_LABEL}={self.name}"), selectors.FieldSelector([]))
        found: dict[int, Obj] = {}
        for node in (await self._nodes.list(None, opts))["items"]:
            index = self.template.index_of(node["metadata"]["name"])
            if index is None:
                log.warning("pool %s: node %s carries the pool label but not the pool's VMSS name; left alone",
                            self.name, node["metadata"]["name"])
                continue
            found[index] = node
        return found

    async def _addresses_in_use(self) -> set[str]:
        """Every node InternalIP the cluster shows (other pools', and nodes not yet adopted)."""
        cache = await self._nodes.cache()
        out: set[str] = set()
        for node in cache.objects.values():
            if ip := _internal_ip(node):  # with an Azure CNI node's pod addresses after it
                out.update(_block(ip, 1 + _preallocated(node)))
        return out


def _preallocated(node: Obj) -> int:
    """How many pod addresses of the node subnet an (Azure CNI) Node holds after its own."""
    if (node["metadata"].get("annotations") or {}).get(POD_IPS_ANNOTATION) != "node-subnet":
        return 0
    try:
        return int(((node.get("status") or {}).get("capacity") or {}).get("pods") or 0)
    except ValueError:
        return 0


def _internal_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address") or "")
    return ""


async def _each(items: list[agents.NodeAgent], fn: Callable[[agents.NodeAgent], Awaitable[None]]) -> None:
    """`fn` for every agent, `agents.BATCH` at a time (concurrent writes share a store commit).
    One failure does not stop the others; the first is raised once all have run."""
    failures: list[BaseException] = []

    async def run(item: agents.NodeAgent) -> None:
        try:
            await fn(item)
        except Exception as err:  # collected; the first is raised below
            failures.append(err)

    for i in range(0, len(items), agents.BATCH):
        async with asyncio.TaskGroup() as tg:
            for item in items[i:i + agents.BATCH]:
                tg.create_task(run(item))
    if failures:
        if len(failures) > 1:
            log.warning("%d more node operations failed: %s", len(failures) - 1, failures[1:])
        raise failures[0]
