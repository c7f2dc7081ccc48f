"""One cluster's Service proxy: kube-proxy in nftables mode for the Process pools' pod network
(`lks.net.podnet`), programming the table of `rules.py` in the cluster's network namespace.

It reads Services, EndpointSlices, Nodes and (for hostPorts) Pods from the API server's watch
caches, as cluster DNS does (`lks.net.dns.records`): handlers only note which Service, pod or
node changed and wake the sync loop. A sync recomputes the changed Services' pieces and applies
the difference from what the kernel has (partial sync, as kube-proxy's): a changed endpoint
touches its Service's chains and nothing else; the first sync, and one after a failure, replaces
the whole table in one transaction. Changes arriving during a sync are coalesced into the next.
Nodes' InternalIPs become addresses of the namespace, where NodePorts and hostPorts answer.

The process runtime (`lks.nodes.process`) starts one per control plane and stops it with the
pod network; the table goes with the namespace (also after kill -9: the sweep removes it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from lks import tasks
from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster
from lks.net import podnet
from lks.net.proxy import model, nft, rules

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SERVICE_NAME = "kubernetes.io/service-name"  # the label tying a slice to its Service
RETRY = 1.0  # seconds before a failed sync is tried again (as a whole table)


class Proxier:
    def __init__(self, cluster: Cluster, network: podnet.PodNetwork, *, skip_ips: frozenset[str] = frozenset()):
        self.cluster = cluster
        self.network = network
        self.skip_ips = skip_ips  # Service IPs lks answers itself in the namespace (cluster DNS)
        self.services: dict[tuple[str, str], Obj] = {}
        self.slices: dict[tuple[str, str], dict[str, Obj]] = defaultdict(dict)  # Service -> its slices
        self._slice_owner: dict[tuple[str, str], str] = {}  # (namespace, slice) -> its Service
        self.nodes: dict[str, model.Node] = {}
        self.pods: dict[str, Obj] = {}  # uid -> pod, for pods with a hostPort
        self._pieces: dict[tuple[str, ...], rules.Piece] = {}
        self._dirty: set[tuple[str, ...]] = set()
        self._nodes_changed = False
        self._applied: rules.Piece | None = None  # what the kernel has (None: not known)
        self._wake = asyncio.Event()
        self._changes = 0  # changes noted so far
        self._synced = 0  # changes applied so far
        self._synced_cond = asyncio.Condition()
        self.syncs = 0  # syncs applied (for tests and the benchmark)
        self._task: asyncio.Task[None] | None = None
        self._informers = [
            Informer(cluster.registry("", "v1", "nodes"), self._on_node),
            Informer(cluster.registry("", "v1", "services"), self._on_service),
            Informer(cluster.registry("discovery.k8s.io", "v1", "endpointslices"), self._on_slice),
            Informer(cluster.registry("", "v1", "pods"), self._on_pod),
        ]

    async def start(self) -> None:
        reason = nft.available()
        if reason is not None:
            log.warning("no Service virtual IPs in the pod network of %s: %s", self.cluster.name, reason)
            return
        cidrs = [c.strip() for c in self.cluster.service_cidr.split(",") if c.strip()]
        await self.network.service_routes(cidrs)
        for informer in self._informers:
            await informer.start()
        self._changes += 1  # the first sync writes the table, even with nothing in it
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"service proxy {self.cluster.name}")

    async def stop(self) -> None:
        """Stop watching; the table stays until the namespace goes (a restarted control plane's
        proxier replaces it)."""
        for informer in self._informers:
            await informer.stop()
        await tasks.cancel(self._task)
        self._task = None

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Until every change written to the cluster so far is in the kernel (for tests and the
        benchmark): the watch caches catch up with the store, then the sync loop with them."""
        await self.cluster.feed.wait_for(await self.cluster.store.current_revision(), timeout)
        target = self._changes
        async with self._synced_cond:
            await self._synced_cond.wait_for(lambda: self._synced >= target)

    # -- the feed (informer handlers: note and wake) ------------------------------------------

    def _note(self, key: tuple[str, ...]) -> None:
        self._dirty.add(key)
        self._changes += 1
        self._wake.set()

    def _on_service(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.services.pop(key, None)
        else:
            self.services[key] = obj
        self._note(("svc", *key))

    def _on_slice(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = self._slice_owner.pop((ns, name), None)
        if owner is not None:
            slices = self.slices.get((ns, owner))
            if slices is not None:
                slices.pop(name, None)
                if not slices:
                    del self.slices[(ns, owner)]
            self._note(("svc", ns, owner))
        service = (meta.get("labels") or {}).get(SERVICE_NAME)
        if kind != "DELETED" and service:
            self._slice_owner[(ns, name)] = service
            self.slices[(ns, service)][name] = obj
            self._note(("svc", ns, service))

    def _on_node(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        node = None if kind == "DELETED" else model.node(obj)
        if self.nodes.get(name) == node:
            return  # a heartbeat: nothing the rules use
        if node is None:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node
        self._nodes_changed = True
        self._note(("nodes",))

    def _on_pod(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        uid = obj["metadata"]["uid"]
        if kind != "DELETED" and any(p.get("hostPort") for c in (obj.get("spec") or {}).get("containers") or []
                                     for p in c.get("ports") or []):
            old = self.pods.get(uid)
            self.pods[uid] = obj
            if old is not None and _host_port_view(old) == _host_port_view(obj):
                return
        elif self.pods.pop(uid, None) is None:
            return
        self._note(("pod", uid))

    # -- syncing ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self._changes
            try:
                await self._sync()
            except (nft.NftError, OSError, ValueError) as err:
                log.warning("service proxy of %s: %s (the whole table again in %.0f s)", self.cluster.name, err, RETRY)
                self._applied = None
                await asyncio.sleep(RETRY)
                self._wake.set()
                continue
            self._synced = target
            async with self._synced_cond:
                self._synced_cond.notify_all()

    async def _sync(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if self._nodes_changed:
            self._nodes_changed = False
            try:
                await self.network.node_addresses({n.ip for n in self.nodes.values() if n.ip})
            except BaseException:
                self._nodes_changed = True
                self._dirty |= dirty
                raise
            dirty |= {("svc", *k) for k in self.services} | {("pod", u) for u in self.pods}
        for key in dirty:
            piece = self._piece(key)
            if piece is None:
                self._pieces.pop(key, None)
            else:
                self._pieces[key] = piece
        state = rules.Piece()
        for piece in self._pieces.values():
            state.merge(piece)
        script = rules.update(self._applied, state) if self._applied is not None else None
        if script is None:
            script = rules.full(state)
        if script:
            await nft.apply(self.network.name, script)
            self.syncs += 1
        self._applied = state

    def _piece(self, key: tuple[str, ...]) -> rules.Piece | None:
        if key[0] == "svc":
            service = self.services.get((key[1], key[2]))
            if service is None:
                return None
            piece = rules.Piece()
            slices = self.slices.get((key[1], key[2]), {}).values()
            for sp in model.service_ports(service, slices, skip_ips=self.skip_ips):
                piece.merge(rules.service_piece(sp, nodes=self.nodes, pod_cidr=self.cluster.pod_cidr))
            return piece
        if key[0] == "pod":
            pod = self.pods.get(key[1])
            node = self.nodes.get(((pod or {}).get("spec") or {}).get("nodeName") or "")
            if pod is None or node is None:
                return None
            piece = rules.Piece()
            for hp in model.host_ports(pod, node.ip):
                piece.merge(rules.host_port_piece(hp))
            return piece
        return None


def _host_port_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod its hostPort rules depend on (its other changes are not the proxy's)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (spec.get("nodeName"), status.get("podIP"), status.get("phase"))
