"""The simulated kubelet of one node: it registers the Node, keeps the node's Lease in
`kube-node-lease` fresh, and reports node status the way kubelet does with leases.

Kubelet's heartbeat has two parts (KEP-589): the Lease, renewed every 10 s (`renewInterval`,
a quarter of the 40 s `leaseDurationSeconds`), and the Node's status, posted only when it
changed or every 5 minutes (`nodeStatusReportFrequency`), which refreshes the conditions'
`lastHeartbeatTime`. Keeping status writes that rare is what lets thousands of nodes share one
store. The Lease names the Node as its owner, so the garbage collector removes it with the Node.

Ready is kubelet's `ReadyCondition`: True unless the container runtime's network is not ready,
which for the runtimes here means the Node has no `spec.podCIDR` yet (`lks.nodes.runtime.
network_error`: pods get their IPs out of it, as on AKS kubenet and Azure CNI overlay nodes).
Until `lks.controllers.nodeipam` gives it one (never, while the cluster's pod CIDR is full) the
node posts Ready=False, reason KubeletNotReady, "container runtime network not ready: ...", and
the node lifecycle controller taints it `node.kubernetes.io/not-ready`, so nothing that needs the
network is scheduled there. The pod workers' node informer tells the agent when the pod CIDR
arrives (`network_changed`), and it posts Ready at once rather than at its next report.

The timers of many agents are one `Heartbeats` task (a pool passes its own; an agent alone
makes one), not one sleeping task per node; see `Heartbeats` for why. `stop()` ends the
heartbeats, after which a node lifecycle controller sees the Lease expire and marks the Node
NotReady; `stop(delete_node=True)` also deletes the Node and its Lease, as the cloud node
manager does when a VM goes away. `lks.nodes.pool` keeps a pool's agents. The pods bound to the
node are run by the cluster's shared `lks.nodes.pods.PodWorkers`, which the agent joins on
start and leaves on stop.

The agent writes as its kubelet would, with the node's client certificate: as
`system:node:<name>` in `system:nodes` (`identity`), so the Node authorizer and NodeRestriction
decide its writes (`@_as_kubelet` marks the methods that make them; the pod workers act as the
node of each pod they write). What is AKS's rather than kubelet's is written as the caller:
rolling the pool's labels and taints onto a Node (kubelet may not change its taints), and
deleting the Node when its VM goes.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from lks import tasks
from lks.clock import Clock, rfc3339
from lks.kube import deletion, errors
from lks.kube.authn import acting_as
from lks.kube.cluster import Cluster
from lks.kube.rbac.nodegraph import node_user
from lks.net import netns
from lks.nodes import pods, streams
from lks.nodes import runtime as runtimes
from lks.nodes.template import NodeTemplate

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40  # seconds; kubelet's nodeLeaseDurationSeconds
RENEW_INTERVAL = 10.0  # kubelet renews at a quarter of the lease duration
STATUS_REPORT_INTERVAL = 300.0  # kubelet's nodeStatusReportFrequency
RETRY_FIRST, RETRY_MAX = 0.2, 7.0  # kubelet's lease controller backs off 200 ms .. 7 s
BATCH = 64  # heartbeats written at once: enough to fill a store's group commit
_STATUS_PHASES = int(STATUS_REPORT_INTERVAL // RENEW_INTERVAL)  # beats per status report

POD_NETWORK_ANNOTATION = "lks.dev/pod-network"
_KUBELET_ANNOTATIONS = {
    "node.alpha.kubernetes.io/ttl": "0",
    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
}
# (type, status, reason, message) of the conditions a healthy kubelet posts; Ready last, as kubelet does
_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


P = ParamSpec("P")
T = TypeVar("T")


def _as_kubelet(method: Callable[Concatenate[NodeAgent, P], Awaitable[T]]
                ) -> Callable[Concatenate[NodeAgent, P], Awaitable[T]]:
    """Make `method`'s writes as the agent's kubelet (`NodeAgent.identity`), whoever calls it:
    the pool, the shared heartbeat task, the pod workers' node informer."""
    @functools.wraps(method)
    async def run(self: NodeAgent, *args: P.args, **kwargs: P.kwargs) -> T:
        with acting_as(self.identity):
            return await method(self, *args, **kwargs)
    return run


def micro_time(ts: float) -> str:
    """A `MicroTime` as the API writes it: RFC 3339 with 6 fraction digits."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    def __init__(
        self, *, cluster: Cluster, template: NodeTemplate, index: int, address: str,
        pod_cidrs: Sequence[str] = (), heartbeats: Heartbeats | None = None,
    ):
        """`address` is the node's InternalIP; `pod_cidrs` fills spec.podCIDR(s) when a network
        model assigns them at registration. `heartbeats` is the pool's shared timer (None: the
        agent runs its own)."""
        self.cluster = cluster
        self.template = template
        self.index = index
        self.name = template.node_name(index)
        self.identity = node_user(self.name)  # who its kubelet's writes are authorized as
        self.address = address
        self.pod_cidrs = list(pod_cidrs)
        self.uid: str | None = None
        self._nodes = cluster.registry("", "v1", "nodes")
        self._leases = cluster.registry("coordination.k8s.io", "v1", "leases")
        self._own_heartbeats = heartbeats is None
        self._heartbeats = heartbeats if heartbeats is not None else Heartbeats(clock=cluster.clock)
        # a VM keeps its machine id and SMBIOS UUID across reboots; a new boot gets a new boot id
        seed = uuid.uuid5(uuid.NAMESPACE_URL, template.provider_id(index))
        self._machine_id = uuid.uuid5(seed, "machine-id").hex
        self._system_uuid = str(uuid.uuid5(seed, "system-uuid"))
        self._boot_id = str(uuid.uuid4())
        self._reported = 0.0  # when status was last posted
        self._running = False
        self._busy = asyncio.Lock()  # a heartbeat and stop() never interleave
        self._pods: pods.PodWorkers | None = None  # runs the pods bound to this node
        self._kubelet: streams.Kubelet | None = None  # serves its logs, exec, attach, port-forward
        self._poster: asyncio.Task[None] | None = None  # posts status after the pod CIDR changed
        self._repost = False  # another change came while the poster ran

    @property
    def clock(self) -> Clock:
        return self.cluster.clock

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Register (or adopt) the Node, post its status, create the Lease, start heartbeats."""
        if self._own_heartbeats:
            await self._heartbeats.start()
        try:
            node = await self._register()
            node = await self._keep_pool_taints(node)
            self.uid = node["metadata"]["uid"]
            await self._report_status()
            # Spread the pool's 5-minute status reports over the beats of that interval (by
            # index, so a pool created at once does not post every Node in the same round).
            # The first report comes early; after that, every 5 minutes as kubelet.
            self._reported -= STATUS_REPORT_INTERVAL * (self.index % _STATUS_PHASES) / _STATUS_PHASES
            await self._renew_lease(node_exists=True)
        except BaseException:
            if self._own_heartbeats:
                await self._heartbeats.stop()
            raise
        self._running = True
        self._heartbeats.add(self)
        self._pods = await pods.attach(self)
        self._kubelet = self._pods.kubelet(self.name)
        streams.register(self.cluster.id, self.name, self._kubelet)
        # the pod CIDR may have come before the pod workers could tell us: look once ourselves
        self.network_changed()

    async def stop(self, *, delete_node: bool = False) -> None:
        """End the heartbeats; with `delete_node`, the Node and its Lease go too (the VM is gone)."""
        self._running = False
        self._heartbeats.discard(self)
        poster, self._poster = self._poster, None
        if poster is not None:
            await poster  # it finds the agent stopped, or finishes the write it began
        if self._kubelet is not None:
            streams.unregister(self.cluster.id, self.name, self._kubelet)
            self._kubelet = None
        if self._pods is not None:
            await self._pods.detach(self)
            self._pods = None
        async with self._busy:  # let a heartbeat in flight finish, so it cannot recreate the Lease
            if self._own_heartbeats:
                await self._heartbeats.stop()
            if delete_node:
                await delete_if_present(self._nodes, None, self.name)
                await delete_if_present(self._leases, LEASE_NAMESPACE, self.name)

    async def heartbeat(self) -> None:
        """One beat (called by `Heartbeats`): renew the Lease, and post status when it changed
        under us or the report interval has passed."""
        async with self._busy:
            if not self._running:
                return
            await self._renew_lease()
            node = await self._cached_node()
            if node is None:
                return  # deleted under us: kubelet does not register twice, so nothing to post to
            if self.clock.now() - self._reported >= STATUS_REPORT_INTERVAL or self._drifted(node):
                await self._report_status()

    def network_changed(self) -> None:
        """The Node's pod CIDR changed (the pod workers' node informer saw it): post status now
        if Ready should change with it, instead of at the next beat."""
        if not self._running:
            return
        if self._poster is not None:
            self._repost = True
            return
        self._poster = asyncio.create_task(self._post_changed(), name=f"node status {self.name}")

    async def _post_changed(self) -> None:
        try:
            self._repost = True
            while self._repost and self._running:
                self._repost = False
                async with self._busy:
                    if not self._running:
                        return
                    await self._post_if_drifted()
        except Exception:  # the next heartbeat sees the drift and posts
            log.warning("node %s: posting status after a pod CIDR change failed", self.name, exc_info=True)
        finally:
            if self._poster is asyncio.current_task():
                self._poster = None

    async def retemplate(self, template: NodeTemplate) -> None:
        """The pool's labels, taints or annotations changed: update the Node as AKS does for
        `nodeLabels`/`nodeTaints`, keeping what others (users, controllers) put there."""
        old, self.template = self.template, template
        if template.vmss_name != old.vmss_name:
            raise ValueError("a pool's VMSS name never changes")

        def update(node: Obj) -> Obj:
            meta = node["metadata"]
            meta["labels"] = _merge_map(meta.get("labels") or {}, old.node_labels(self.name),
                                        template.node_labels(self.name))
            annotations = _merge_map(meta.get("annotations") or {}, {**_KUBELET_ANNOTATIONS, **old.annotations},
                                     {**_KUBELET_ANNOTATIONS, **template.annotations})
            meta["annotations"] = annotations
            _set_taints(node, merge_taints(_taints(node), old.node_taints(), template.node_taints()))
            return node

        await self._nodes.patch(None, self.name, update)
        if (template.capacity, template.allocatable) != (old.capacity, old.allocatable):
            await self._report_status()

    # -- the Node -------------------------------------------------------------------------

    def _node(self) -> Obj:
        spec: Obj = {"providerID": self.template.provider_id(self.index)}
        if self.template.taints:
            spec["taints"] = self.template.node_taints()
        if self.pod_cidrs:
            spec["podCIDR"], spec["podCIDRs"] = self.pod_cidrs[0], list(self.pod_cidrs)
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": self.template.node_labels(self.name),
                         "annotations": {**_KUBELET_ANNOTATIONS, **_network_annotation(self.template),
                                         **self.template.annotations}},
            "spec": spec,
            "status": self._status(None, spec),
        }

    @_as_kubelet
    async def _register(self) -> Obj:
        try:
            return await self._nodes.create(None, self._node())  # with its taints (--register-with-taints)
        except errors.APIError as err:
            if err.code != 409:
                raise
        return await self._adopt()

    async def _adopt(self) -> Obj:
        """The Node exists (the service restarted, kubelet-style re-registration): make it
        ours again without losing what others added to it."""
        fresh = self._node()

        def update(node: Obj) -> Obj:
            meta = node["metadata"]
            meta["labels"] = {**(meta.get("labels") or {}), **fresh["metadata"]["labels"]}
            meta["annotations"] = {**(meta.get("annotations") or {}), **fresh["metadata"]["annotations"]}
            spec = node.setdefault("spec", {})
            if not spec.get("providerID"):  # immutable once set
                spec["providerID"] = fresh["spec"]["providerID"]
            return node

        node = await self._nodes.patch(None, self.name, update)
        info = (node.get("status") or {}).get("nodeInfo") or {}
        # the same VM, only kubelet restarted: keep its identity
        self._boot_id = info.get("bootID") or self._boot_id
        return node

    async def _keep_pool_taints(self, node: Obj) -> Obj:
        """The pool's taints on an adopted Node (they may have changed while the service was
        down): AKS's to set, as the caller, since a kubelet may not change its own taints."""
        taints = merge_taints(_taints(node), [], self.template.node_taints())
        if taints == _taints(node):
            return node

        def update(current: Obj) -> Obj:
            _set_taints(current, merge_taints(_taints(current), [], self.template.node_taints()))
            return current

        return await self._nodes.patch(None, self.name, update)

    def _status(self, current: Obj | None, spec: Obj | None, annotations: Obj | None = None) -> Obj:
        """The status kubelet would post now for a Node of `spec`, given the stored status
        (transition times and the heartbeat time carry over unless a condition changed)."""
        now = rfc3339(self.clock.now())
        stored = list((current or {}).get("conditions") or [])
        old = {c.get("type"): c for c in stored}
        mine: dict[str, Obj] = {}
        for type_, status, reason, message in _conditions(spec, self.template, annotations):
            prev = old.get(type_)
            same = prev is not None and prev.get("status") == status
            mine[type_] = {"type": type_, "status": status, "lastHeartbeatTime": now,
                           "lastTransitionTime": prev.get("lastTransitionTime", now) if same else now,
                           "reason": reason, "message": message}
        # ours in place, others' (e.g. a problem detector's) kept where they are
        conditions = [mine.pop(c.get("type")) if c.get("type") in mine else c for c in stored]
        conditions += mine.values()
        t = self.template
        info: Obj = {
            "machineID": self._machine_id, "systemUUID": self._system_uuid, "bootID": self._boot_id,
            "kernelVersion": t.kernel_version, "osImage": t.os_image,
            "containerRuntimeVersion": t.container_runtime_version, "kubeletVersion": t.kubelet_version,
            "kubeProxyVersion": t.kube_proxy_version, "operatingSystem": t.operating_system,
            "architecture": t.architecture,
        }
        if t.swap_capacity is not None:
            info["swap"] = {"capacity": t.swap_capacity}
        # `images` stays out while empty: it is omitempty upstream, so an empty list never shows
        return {
            "capacity": dict(t.capacity),
            "allocatable": dict(t.allocatable or t.capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": t.kubelet_port}},
            "nodeInfo": info,
        }

    @_as_kubelet
    async def _report_status(self) -> None:
        def update(node: Obj) -> Obj:
            node["status"] = {**(node.get("status") or {}), **self._status(node.get("status"), node.get("spec"),
                                                                            node["metadata"].get("annotations"))}
            return node

        await self._nodes.patch(None, self.name, update, subresource="status")
        self._reported = self.clock.now()

    async def _cached_node(self) -> Obj | None:
        cache = await self._nodes.cache()
        return cache.objects.get(self._nodes.key(None, self.name))

    async def _post_if_drifted(self) -> None:
        node = await self._cached_node()
        if node is not None and self._drifted(node):
            await self._report_status()

    def _drifted(self, node: Obj) -> bool:
        """Whether the stored conditions differ from what this kubelet would post: someone else
        changed them (a node lifecycle controller setting Ready Unknown, say), or the Node's
        pod CIDR changed whether the network is ready; kubelet posts at once then. Only the
        conditions are checked: nothing else writes the rest, and this runs on every beat of
        every node."""
        conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or ()}
        for type_, status, reason, message in _conditions(node.get("spec"), self.template,
                                                          node["metadata"].get("annotations")):
            c = conditions.get(type_)
            if c is None or c.get("status") != status or c.get("reason") != reason or c.get("message") != message:
                return True
        return False

    # -- the Lease ------------------------------------------------------------------------

    def _lease_fields(self, lease: Obj, *, owned: bool = True) -> Obj:
        meta = lease.setdefault("metadata", {})
        meta.update(name=self.name, namespace=LEASE_NAMESPACE)
        if owned and self.uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]
        spec = lease.setdefault("spec", {})
        spec.update(holderIdentity=self.name, leaseDurationSeconds=LEASE_DURATION,
                    renewTime=micro_time(self.clock.now()))
        return lease

    @_as_kubelet
    async def _renew_lease(self, *, node_exists: bool | None = None) -> None:
        try:
            await self._leases.patch(LEASE_NAMESPACE, self.name, self._lease_fields)
        except errors.APIError as err:
            if err.code != 404:
                raise
            # as kubelet: the new Lease names the Node as owner only if the Node is there,
            # else the garbage collector would delete it again at once
            owned = node_exists if node_exists is not None else await self._cached_node() is not None
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
            await self._leases.create(LEASE_NAMESPACE, self._lease_fields(lease, owned=owned))


class Heartbeats:
    """One task that beats for many agents, each on its own 10 s rhythm.

    Why not one sleeping task per agent: the cost that matters is the Lease write (about
    0.3-0.4 ms of CPU through the registry, the same either way), next to which a task's
    wake-up (~8 us) and memory (~1.4 KB) are small. But a shared timer (a heap of due times)
    is still the cheaper of the two, and it gives one place to bound how many writes run at
    once (`BATCH`, which also lets SQLite's group commit take the beats that fall due together
    as one transaction) and to back off after failures. Agents keep the phase they registered
    with, so beats stay spread over the interval.
    """

    def __init__(self, *, clock: Clock, interval: float = RENEW_INTERVAL):
        self.clock = clock
        self.interval = interval
        self.beats = 0  # heartbeats done, for tests and metrics
        self._due: dict[NodeAgent, float] = {}  # the live entry of each agent
        self._heap: list[tuple[float, int, NodeAgent]] = []  # may hold stale entries
        self._seq = itertools.count()
        self._failures: dict[NodeAgent, int] = {}
        self._added = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def agents(self) -> int:
        return len(self._due)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="node heartbeats")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.cancel(task)

    def add(self, agent: NodeAgent) -> None:
        """Beat for `agent` from one interval from now. Every entry already queued is due no
        later than that, so the sleeping task never needs waking early."""
        self._schedule(agent, self.clock.now() + self.interval)
        self._added.set()

    def discard(self, agent: NodeAgent) -> None:
        self._due.pop(agent, None)
        self._failures.pop(agent, None)

    def _schedule(self, agent: NodeAgent, due: float) -> None:
        self._due[agent] = due
        heapq.heappush(self._heap, (due, next(self._seq), agent))

    def _pop_due(self, now: float) -> list[NodeAgent]:
        due: list[NodeAgent] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, agent = heapq.heappop(self._heap)
            if self._due.get(agent) == when:  # else stopped or rescheduled since
                due.append(agent)
        return due

    async def _run(self) -> None:
        while True:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # drop stale entries before sleeping on them
            if not self._heap:
                self._added.clear()
                await self._added.wait()
                continue
            delay = self._heap[0][0] - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay)
            agents = self._pop_due(self.clock.now())
            for i in range(0, len(agents), BATCH):
                async with asyncio.TaskGroup() as tg:
                    for agent in agents[i:i + BATCH]:
                        tg.create_task(self._beat(agent))

    async def _beat(self, agent: NodeAgent) -> None:
        due = self._due.get(agent)
        if due is None:
            return
        try:
            await agent.heartbeat()
        except asyncio.CancelledError:
            raise
        except Exception:
            n = self._failures[agent] = self._failures.get(agent, 0) + 1
            log.warning("node %s: heartbeat failed (attempt %d)", agent.name, n, exc_info=n == 1)
            if agent in self._due:
                self._schedule(agent, self.clock.now() + min(RETRY_FIRST * 2 ** (n - 1), RETRY_MAX))
            return
        self.beats += 1
        self._failures.pop(agent, None)
        if agent in self._due:
            # keep the agent's phase while on time; after a stall, start a fresh interval
            now = self.clock.now()
            self._schedule(agent, due + self.interval if due + self.interval > now else now + self.interval)


# -- helpers --------------------------------------------------------------------------------


def _conditions(spec: Obj | None, template: NodeTemplate,
                annotations: Obj | None = None) -> tuple[tuple[str, str, str, str], ...]:
    """The (type, status, reason, message) of kubelet's conditions for a Node of `spec`: Ready
    is False while the runtime's network is not (upstream's `ReadyCondition` setter)."""
    error = runtimes.network_error((spec or {}).get("podCIDR"), template.pod_network,
                                   (annotations or {}).get(runtimes.CNI_ANNOTATION))
    if error is None:
        return _CONDITIONS
    return (*_CONDITIONS[:-1], ("Ready", "False", "KubeletNotReady", f"container runtime network not ready: {error}"))


def _network_annotation(template: NodeTemplate) -> dict[str, str]:
    """A Process node says whether its pods get network namespaces (`lks.net.podnet`) or share
    the host's network (no root here), as `kubectl describe node` shows."""
    if template.workload_runtime != pods.PROCESS:
        return {}
    why = netns.unsupported_reason()
    return {POD_NETWORK_ANNOTATION: "namespaces" if why is None else f"host ({why})"}


def merge_taints(current: list[Obj], old: list[Obj], new: list[Obj]) -> list[Obj]:
    """`current` with the pool's taints changed from `old` to `new` (taints are identified by
    key and effect); taints others added (cordon, node lifecycle) stay where they are."""
    ident = lambda t: (t.get("key"), t.get("effect"))  # noqa: E731
    wanted = {ident(t): t for t in new}
    dropped = {ident(t) for t in old} - set(wanted)
    out = []
    for taint in current:
        key = ident(taint)
        if key in dropped:
            continue
        out.append(wanted.pop(key) if key in wanted else taint)
    return out + list(wanted.values())


def _merge_map(current: dict[str, str], old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """`current` with the managed entries changed from `old` to `new`; others' entries stay."""
    out = {k: v for k, v in current.items() if k not in old or k in new}
    out.update(new)
    return out


def _taints(node: Obj) -> list[Obj]:
    return list((node.get("spec") or {}).get("taints") or [])


def _set_taints(node: Obj, taints: list[Obj]) -> None:
    spec = node.setdefault("spec", {})
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)


async def delete_if_present(registry: Any, namespace: str | None, name: str) -> None:
    """Delete an object; one already gone is fine."""
    try:
        await registry.delete(namespace, name, deletion.DeleteOptions())
    except errors.APIError as err:
        if err.code != 404:
            raise
