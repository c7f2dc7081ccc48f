"""The node pools of every running managed cluster: agent pool documents turned into
`lks.nodes.NodePool`s of a hosted cluster, as AKS turns them into VM scale sets.

`sync` makes a cluster's Nodes match its `agentPoolProfiles` (new pools, counts, labels,
taints; removed pools); a pool whose version or node image changed is upgraded by
`lks.upgrade.surge`, node by node, its progress reported to the operation; `delete_pool`
removes one pool (`DELETE agentPools/{name}`);
`stop` removes them (cluster stop) or lets them go quiet (service shutdown, so the next start
adopts them); with `keep_processes` (the control plane restarts on another version) the
containers of Process pools run on, parked here until `sync` gives them to the new control
plane's pod workers (`lks.nodes.pods.PodWorkers.hand_over`); `forget` drops a deleted
cluster's pools.

Nodes leave a pool as on AKS: cordoned, drained through the Eviction API and then deleted
(`lks.nodes.drain`), each drain bounded by the pool's `upgradeSettings.drainTimeoutInMinutes`.
A drain that runs out of time fails the operation with `PodDrainFailure` and AKS's message.
`LKS_DRAIN_MINUTE_SECONDS` (default 60) is how long one of those minutes lasts, so that tests
and demos can wait seconds where AKS waits minutes.

New nodes come at once by default; with a `provisioning_time` (`lks up --node-provisioning-time`)
the nodes a change adds to a pool (a scale-up, a new pool) register only once that much of the
clock has passed, as AKS's VMs take a minute or two to boot and join, while the operation (the
pool `Scaling` or `Creating`) runs on. `abandon` gives up on the instances a pool is waiting for
(the cluster autoscaler's `max-node-provision-time`): the pool keeps the nodes it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from lks.arm import addressing, documents, nodeshape, vmsizes
from lks.arm.errors import ARMError
from lks.clock import Clock
from lks.kube.cluster import Cluster
from lks.nodes import NodePool, NodeTemplate, drain, parse_taint
from lks.nodes import runtime as runtimes
from lks.nodes.pods import PodWorkers
from lks.nodes.process import ProcessRuntime
from lks.nodes.template import POD_IPS_ANNOTATION
from lks.upgrade import surge

Doc = dict[str, Any]
Progress = Callable[[float], Awaitable[None]]  # the operation's percentComplete

DRAIN_MINUTE_ENV = "LKS_DRAIN_MINUTE_SECONDS"
_AT_REST = ("Succeeded", "Failed")  # no operation running: a sync only brings back what runs


def control_plane_id(doc: Doc) -> str | None:
    return doc["properties"].get("_lks", {}).get("controlPlane")


def drain_timeout(pool: Doc, minute: float = 60.0) -> float:
    """Seconds the drain of one of the pool's nodes may take: `drainTimeoutInMinutes`, 30 by default."""
    minutes = (pool.get("upgradeSettings") or {}).get("drainTimeoutInMinutes") or drain.DEFAULT_TIMEOUT_MINUTES
    return float(minutes) * minute


@contextlib.contextmanager
def _as_pod_drain_failure() -> Iterator[None]:
    """A node drain that failed fails the operation with AKS's `PodDrainFailure`."""
    try:
        yield
    except drain.DrainError as err:
        raise ARMError("PodDrainFailure", err.message, 400) from err


def template(doc: Doc, pool: Doc) -> NodeTemplate:
    """What every node of `pool` looks like on AKS."""
    props = doc["properties"]
    size = vmsizes.lookup(pool["vmSize"])
    version = pool.get("currentOrchestratorVersion") or props["currentKubernetesVersion"]
    zones = pool.get("availabilityZones") or []
    network = props.get("networkProfile") or {}
    subnet = ((props.get(documents.PRIVATE) or {}).get("nodeSubnets") or {}).get(pool["name"]) or {}
    labels = nodeshape.node_labels(
        pool=pool["name"], mode=pool["mode"], node_name="", vm=size, location=doc["location"],
        node_resource_group=props["nodeResourceGroup"], kubernetes_version=version,
        node_image_version=pool["nodeImageVersion"], os_sku=pool.get("osSKU", "Ubuntu"),
        zone=zones[0] if zones else None, network_plugin=network.get("networkPlugin"),
        network_plugin_mode=network.get("networkPluginMode"), os_disk_type=pool.get("osDiskType", "Managed"),
        vnet_name=subnet.get("vnet"), subnet_name=subnet.get("subnet"), user_labels=pool.get("nodeLabels") or {},
    )
    # pod addresses: a node CIDR (kubenet, overlay), the node subnet's (Azure CNI), none (BYO CNI)
    pod_network = runtimes.NODE_SUBNET if addressing.flat_cni(network) else runtimes.NO_CNI \
        if network.get("networkPlugin") == "none" else runtimes.NODE_CIDR
    labels.pop("kubernetes.io/hostname", None)  # per node: the template adds it
    info = nodeshape.node_info(version, os_sku=pool.get("osSKU", "Ubuntu"))
    disk = pool.get("osDiskSizeGB") or nodeshape.OS_DISK_GB_DEFAULT
    return NodeTemplate(
        pool=pool["name"],
        name_digits=nodeshape.name_suffix(doc["id"]),
        subscription_id=doc["id"].split("/")[2],
        node_resource_group=props["nodeResourceGroup"],
        mode=pool["mode"],
        labels=labels,
        taints=tuple(parse_taint(t) for t in pool.get("nodeTaints") or []),
        capacity=nodeshape.capacity(size, max_pods=pool["maxPods"], os_disk_gb=disk),
        allocatable=nodeshape.allocatable(size, pool["maxPods"], version, os_disk_gb=disk),
        kubelet_version=info["kubeletVersion"],
        container_runtime_version=info["containerRuntimeVersion"],
        kernel_version=info["kernelVersion"],
        os_image=info["osImage"],
        workload_runtime=pool.get("workloadRuntime") or "OCIContainer",
        subnet=subnet.get("cidr") or addressing.MANAGED_SUBNET,
        pod_network=pod_network,
        max_pods=pool["maxPods"],
        annotations={POD_IPS_ANNOTATION: pod_network} if pod_network == runtimes.NODE_SUBNET else {},
    )


def _adopted(doc: Doc, pool: Doc, current: NodeTemplate) -> Callable[[Doc], NodeTemplate]:
    """The template of a Node found running: the pool's, or (an upgrade not finished) that of
    the version and node image the Node reports."""

    def of(node: Doc) -> NodeTemplate:
        version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "").lstrip("v")
        image = (node["metadata"].get("labels") or {}).get(surge.IMAGE_LABEL, "")
        if not version or (f"v{version}", image) == surge.generation(current):
            return current
        return template(doc, {**pool, "currentOrchestratorVersion": version,
                              "nodeImageVersion": image or pool["nodeImageVersion"]})

    return of


async def _until(clock: Clock, deadline: float) -> None:
    """Sleep until the clock reads `deadline`, measured when this task runs (not when made)."""
    delay = deadline - clock.now()
    if delay > 0:
        await clock.sleep(delay)


class _Booting:
    """The new instances one change of a cluster waits for: the pools growing, those given up."""

    def __init__(self, pools: set[str]):
        self.pools = pools
        self.abandoned: set[str] = set()
        self.all_abandoned = asyncio.Event()


class Fleet:
    def __init__(self, *, clock: Clock | None = None, data_dir: Path | None = None,
                 tls: ssl.SSLContext | None = None, drain_minute: float | None = None,
                 provisioning_time: float = 0.0):
        """`data_dir` holds each cluster's node data (`<data_dir>/<cluster id>/nodes`: the pod
        directories and container logs of Process pools); `tls` is the API server's own TLS
        context, which the in-cluster API endpoint of Process pods serves with;
        `drain_minute` is how many seconds one minute of a drain timeout lasts (default: from
        `LKS_DRAIN_MINUTE_SECONDS`, else 60); `provisioning_time` is how many seconds of the
        clock a new node takes to register (0: at once)."""
        self.clock = clock or Clock()
        self.data_dir = data_dir
        self.tls = tls
        # the clock's scale (`lks up --time-scale`) speeds drain minutes up as well
        self.drain_minute = drain_minute if drain_minute is not None else \
            float(os.environ.get(DRAIN_MINUTE_ENV) or 60) / self.clock.scale
        self.pools: dict[tuple[str, str], NodePool] = {}  # (control plane id, pool name) -> pool
        self._parked: dict[str, ProcessRuntime] = {}  # control plane id -> containers running on
        self.provisioning_time = provisioning_time
        self._booting: dict[str, _Booting] = {}  # control plane id -> the new instances it waits for

    def _of(self, cp_id: str) -> dict[str, NodePool]:
        return {name: pool for (cp, name), pool in self.pools.items() if cp == cp_id}

    async def sync(self, doc: Doc, cluster: Cluster, *, progress: Progress | None = None) -> None:
        """Make the cluster's pools match the document. Nodes that go are drained first; a
        drain that fails raises `PodDrainFailure`. A document at rest (no operation running:
        the service starting) removes no nodes and upgrades none, since that would drain: it
        brings back what runs. `progress` hears the share of node upgrades done (0-100)."""
        cp_id = cluster.id
        wanted = {p["name"]: p for p in doc["properties"]["agentPoolProfiles"]}
        at_rest = doc["properties"].get("provisioningState") in _AT_REST
        if self.data_dir is not None:
            PodWorkers.configure(cluster, data_dir=self.data_dir / cp_id / "nodes", tls=self.tls)
        parked = self._parked.pop(cp_id, None)
        if parked is not None:
            PodWorkers.configure(cluster, process=parked)
        try:
            await self._sync(doc, cluster, wanted, at_rest, progress)
        finally:
            if parked is not None and (left := PodWorkers.unclaimed(cluster)) is not None:
                await left.close()  # no Process node came back to take its containers

    async def _sync(self, doc: Doc, cluster: Cluster, wanted: dict[str, Doc], at_rest: bool,
                    progress: Progress | None) -> None:
        cp_id = cluster.id
        with _as_pod_drain_failure():
            for name, pool in self._of(cp_id).items():
                if name not in wanted:
                    await pool.delete()
                    del self.pools[(cp_id, name)]
            running: dict[str, tuple[NodePool, NodeTemplate, int]] = {}
            delayed = self.provisioning_time > 0 and not at_rest
            for name, spec in wanted.items():
                tmpl = template(doc, spec)
                count = spec["count"] if spec.get("powerState", {}).get("code", "Running") == "Running" else 0
                timeout = drain_timeout(spec, self.drain_minute)
                pool = self.pools.get((cp_id, name))
                if pool is None or pool.cluster is not cluster:  # new, or the control plane restarted
                    if pool is not None:
                        await pool.close()
                    # with a provisioning time a new pool starts with the Nodes it finds; the rest boot
                    pool = self.pools[(cp_id, name)] = NodePool(cluster=cluster, template=tmpl,
                                                                count=0 if delayed else count,
                                                                drain_timeout=timeout,
                                                                adopted=_adopted(doc, spec, tmpl))
                    # scaling in waits for the upgrade, which counts surge nodes as its own
                    await pool.start(scale_in=False)
                running[name] = (pool, tmpl, count)
            if not at_rest:
                await self._upgrade(wanted, running, progress)
            abandoned: set[str] = set()
            if delayed:
                abandoned = await self._boot(cp_id, [n for n, (pool, _, count) in running.items()
                                                     if count > len(pool.agents)])
            for name, (pool, tmpl, count) in running.items():
                if at_rest or name in abandoned:
                    count = max(count, len(pool.agents)) if at_rest else min(count, len(pool.agents))
                await pool.apply(tmpl, count, drain_timeout=drain_timeout(wanted[name], self.drain_minute))

    async def _boot(self, cp_id: str, growing: list[str]) -> set[str]:
        """Wait `provisioning_time` for the new instances of these pools to boot; the pools
        `abandon` gave up on meanwhile."""
        if not growing:
            return set()
        booting = self._booting[cp_id] = _Booting(set(growing))
        sleep = asyncio.ensure_future(_until(self.clock, self.clock.now() + self.provisioning_time))
        given_up = asyncio.ensure_future(booting.all_abandoned.wait())
        try:
            await asyncio.wait({sleep, given_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            given_up.cancel()
            if self._booting.get(cp_id) is booting:
                del self._booting[cp_id]
        return booting.abandoned

    def booting(self, cluster: Cluster) -> set[str]:
        """The pools of the cluster whose new instances are still booting."""
        booting = self._booting.get(cluster.id)
        return booting.pools - booting.abandoned if booting is not None else set()

    def abandon(self, cluster: Cluster, pool_name: str) -> bool:
        """Give up on the instances `pool_name` is waiting for, as a VMSS deletes instances that
        failed to come up: the running change keeps the nodes the pool has. False: none booting."""
        booting = self._booting.get(cluster.id)
        if booting is None or pool_name not in booting.pools - booting.abandoned:
            return False
        booting.abandoned.add(pool_name)
        if booting.abandoned >= booting.pools:
            booting.all_abandoned.set()
        return True

    async def _upgrade(self, wanted: dict[str, Doc], running: dict[str, tuple[NodePool, NodeTemplate, int]],
                       progress: Progress | None) -> None:
        """Surge-upgrade each pool that has nodes of another version or image, one pool after
        another as AKS does; `progress` hears the share of old nodes upgraded so far."""
        todo = {name: entry for name, entry in running.items() if entry[2] > 0 and surge.outdated(entry[0], entry[1])}
        target = {name: surge.generation(tmpl) for name, (_, tmpl, _) in todo.items()}
        total = sum(sum(surge.generation(a.template) != target[name] for a in pool.agents.values())
                    for name, (pool, _, _) in todo.items())
        before = 0
        for name, (pool, tmpl, count) in todo.items():
            settings = surge.Settings.of(wanted[name].get("upgradeSettings"), minute=self.drain_minute)

            async def report(done: int, before: int = before) -> None:
                if progress is not None and total:
                    await progress(100.0 * min(before + done, total) / total)

            old = sum(surge.generation(a.template) != target[name] for a in pool.agents.values())
            await surge.upgrade(pool, tmpl, count, settings, progress=report)
            before += old

    async def delete_pool(self, doc: Doc, cluster: Cluster, name: str, *, ignore_pdb: bool = False) -> None:
        """Delete the pool `name` of `doc` (still listed there): its nodes are cordoned, drained
        (honouring PodDisruptionBudgets unless `ignore_pdb`) and deleted. A pool this service
        does not run yet (the service restarted meanwhile) is adopted first, so its nodes are
        drained too. `PodDrainFailure` leaves the pool running with the nodes left."""
        spec = next((p for p in doc["properties"]["agentPoolProfiles"] if p["name"] == name), None)
        pool = self.pools.get((cluster.id, name))
        if pool is None or pool.cluster is not cluster:
            if spec is None:
                return
            if pool is not None:
                await pool.close()
            pool = self.pools[(cluster.id, name)] = NodePool(
                cluster=cluster, template=template(doc, spec), count=0,
                drain_timeout=drain_timeout(spec, self.drain_minute))
            await pool.start(scale_in=False)
        elif spec is not None:
            pool.drain_timeout = drain_timeout(spec, self.drain_minute)
        with _as_pod_drain_failure():
            await pool.delete(ignore_pdb=ignore_pdb)
        del self.pools[(cluster.id, name)]

    async def retire_nodes(self, cluster: Cluster, pool_name: str, names: list[str], *,
                           timeout: float | None = None) -> None:
        """Remove these very nodes of a running pool, as a VMSS deletes named instances (the
        cluster autoscaler's scale-down): cordoned, drained (within `timeout` seconds if given,
        else the pool's drain timeout), deleted, and the pool's count lowered by as many. A
        `DrainError` leaves the nodes that could not be drained."""
        pool = self.pools.get((cluster.id, pool_name))
        if pool is None:
            return
        indexes = [i for i in map(pool.template.index_of, names) if i is not None and i in pool.agents]
        saved = pool.drain_timeout
        if timeout is not None:
            pool.drain_timeout = timeout
        try:
            await pool.remove_nodes(indexes)
        finally:
            if pool.drain_timeout == timeout:
                pool.drain_timeout = saved
            pool.count = min(pool.count, len(pool.agents))

    async def stop(self, doc: Doc, *, delete_nodes: bool, cluster: Cluster | None = None,
                   keep_processes: bool = False) -> None:
        """Close the cluster's pools; `delete_nodes` deletes their Nodes too (cluster stop).
        `keep_processes`: the control plane restarts (an upgrade) and the nodes do not, so
        the containers of Process pools run on for the next `sync` to hand to it."""
        cp_id = control_plane_id(doc)
        if cp_id is None:
            return
        pools = self._of(cp_id)
        handed = PodWorkers.hand_over(next(iter(pools.values())).cluster) if keep_processes and pools else None
        for name, pool in pools.items():
            if delete_nodes:
                await pool.stop()
            await pool.close()
            del self.pools[(cp_id, name)]
        if handed is not None:
            self._parked[cp_id] = handed
        elif not keep_processes and (parked := self._parked.pop(cp_id, None)) is not None:
            await parked.close()

    async def forget(self, doc: Doc) -> None:
        await self.stop(doc, delete_nodes=False)

    async def shutdown(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        self.pools.clear()
        parked, self._parked = list(self._parked.values()), {}
        for runtime in parked:
            await runtime.close()
