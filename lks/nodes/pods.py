"""The pod side of the node agents (kubelet's pod workers and status manager): pods bound to a
node are taken through Pending → ContainerCreating → Running (or to Succeeded/Failed), restarted
per `restartPolicy` with CrashLoopBackOff, and stopped and removed when they are deleted.

One `PodWorkers` serves every agent of a cluster: one pod informer dispatching by
`spec.nodeName`, one node informer (pods wait for their node's `spec.podCIDR`, which
`lks.controllers.nodeipam` gives; the node's agent hears when it comes and posts Ready), one
`WorkQueue`, one `lks.nodes.wakeups.Wakeups` timer heap, one status manager and one event
sink, so a node costs a dict entry and a pod a small record, and thousands of nodes are cheap.
Agents `attach` when they start and `detach` when they stop; the first attach starts it all.
When the control plane restarts (an upgrade replaces the `Cluster`), `hand_over` keeps the
Process nodes' containers running: the leaving pod workers park their process runtime instead
of stopping it, and the next pod workers of that cluster id take it over (`configure(process=)`)
and adopt the running processes, as kubelet's containers outlive an AKS control-plane upgrade.
Shared as they are, every write is one node's: a pod's status, its Events and its final delete
act as the kubelet of the node it is bound to (`NodeAgent.identity`).

`sync(key)` is level-triggered, in kubelet's order: the status is generated from what the
runtime (`lks.nodes.runtime`) reports now (`lks.nodes.podstatus`) and handed to the status
manager (`lks.nodes.statusmanager`) when it differs, then the actions that change it (sandbox,
init containers in turn, containers, restarts, stops) are taken, and the pod is woken again
when the runtime's state will next change. A pod so gets kubelet's writes: ContainerCreating,
then Running (one write when the status manager is behind); a deleted pod gets its final
status and is then deleted with grace period 0. Events go to `lks.nodes.podevents`; the actions
are in `lks.nodes.podactions`, the records of nodes and pods in `lks.nodes.podrecords`.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lks.controllers.events import EventRecorder
from lks.controllers.informer import Informer
from lks.controllers.workqueue import WorkQueue
from lks.kube.cluster import Cluster
from lks.nodes import kubelets, podactions, podevents, podrecords, podstatus, statusmanager, streams, wakeups
from lks.nodes import process as process_runtime
from lks.nodes import runtime as runtimes

if TYPE_CHECKING:
    from lks.nodes.agent import NodeAgent

Obj = dict[str, Any]

WORKERS = 64  # pods synced at once: enough concurrent writes to fill a store's group commit
DONE_KEPT = 65536  # finished pods remembered, so that a stale cache never starts one again
PROCESS = "Process"  # the `workloadRuntime` whose nodes run containers as host processes


class PodWorkers(podactions.PodActions):
    _shared: weakref.WeakKeyDictionary[Cluster, PodWorkers] = weakref.WeakKeyDictionary()
    _options: weakref.WeakKeyDictionary[Cluster, dict[str, Any]] = weakref.WeakKeyDictionary()

    def __init__(self, cluster: Cluster, *, runtime: runtimes.Runtime | None = None,
                 timings: runtimes.Timings | None = None, events: bool = True, workers: int = WORKERS,
                 data_dir: Path | None = None, tls: ssl.SSLContext | None = None,
                 process: process_runtime.ProcessRuntime | None = None):
        """`runtime` defaults to a `SimulatedRuntime` with `timings`; `events` records kubelet's
        Pulling/Pulled/Created/Started/Killing/BackOff Events (4 writes per pod started).
        Nodes of `Process` pools share one `lks.nodes.process.ProcessRuntime` (`process`, else
        made on first use), which keeps its pods' files under `data_dir` (a temporary
        directory if None) and serves the in-cluster API endpoint with `tls`."""
        self.cluster = cluster
        self.clock = cluster.clock
        if runtime is None:
            runtime = runtimes.SimulatedRuntime(clock=cluster.clock, timings=timings)
        self.runtime: runtimes.Runtime = runtime
        self.process: process_runtime.ProcessRuntime | None = process
        self._data_dir, self._tls = data_dir, tls
        self.events = events
        self._registry = cluster.registry("", "v1", "pods")
        self._queue: WorkQueue[str] = WorkQueue(self.sync, name="kubelet pods", workers=workers, clock=cluster.clock)
        self._statuses = statusmanager.StatusManager(self._registry, clock=cluster.clock, workers=workers)
        self._wakeups = wakeups.Wakeups(clock=cluster.clock, fire=self._queue.add)
        self._events = podevents.EventSink()
        self._pod_informer = Informer(self._registry, self._on_pod)
        self._node_informer = Informer(cluster.registry("", "v1", "nodes"), self._on_node)
        self._nodes: dict[str, podrecords.NodeRecord] = {}  # attached agents' nodes
        self._done: dict[str, None] = {}  # uids of pods that finished here, oldest first
        self._pods: dict[str, podrecords.PodRecord] = {}  # by registry key
        self._by_node: dict[str, set[str]] = {}  # node name -> keys of the pods bound to it
        self._no_network: dict[str, set[str]] = {}  # node name -> pods waiting for its pod CIDR
        self._lock = asyncio.Lock()
        self._running = False
        self._retired = False
        self._keep = False  # `hand_over`: the process runtime outlives these pod workers
        minor = int(cluster.kubernetes_version.split(".")[1])
        self._generation = minor >= 34  # PodObservedGenerationTracking, beta in 1.34
        self._user = minor >= 33  # SupplementalGroupsPolicy, beta in 1.33

    # -- sharing ---------------------------------------------------------------------------

    @classmethod
    def shared(cls, cluster: Cluster) -> PodWorkers:
        workers = cls._shared.get(cluster)
        if workers is None:
            options = cls._options.get(cluster, {})
            # a handed-over process runtime is taken once; later pod workers make their own
            workers = cls._shared[cluster] = cls(cluster, **{**options, "process": options.pop("process", None)})
        return workers

    @classmethod
    def process_of(cls, cluster: Cluster) -> process_runtime.ProcessRuntime | None:
        """Read-only, for the metrics API (`lks.metrics`): the process runtime of `cluster`'s
        pod workers, if any of its nodes run Process pods."""
        workers = cls._shared.get(cluster)
        return workers.process if workers is not None else None

    @classmethod
    def hand_over(cls, cluster: Cluster) -> process_runtime.ProcessRuntime | None:
        """`cluster`'s control plane restarts while its nodes run on: the process runtime of
        its pod workers (if any) keeps its containers running when the agents detach, parked
        until `configure(process=)` gives it to the pod workers of the next `Cluster` of that
        id, who adopt them. The caller owns it until then (`close` it if nobody takes it)."""
        workers = cls._shared.get(cluster)
        if workers is None or workers.process is None or workers._retired:
            return None
        workers._keep = True
        return workers.process

    @classmethod
    def unclaimed(cls, cluster: Cluster) -> process_runtime.ProcessRuntime | None:
        """The process runtime `configure(process=)` gave `cluster` if no pod workers took it."""
        return cls._options.get(cluster, {}).pop("process", None)

    @classmethod
    def configure(cls, cluster: Cluster, *, timings: runtimes.Timings | None = None,
                  events: bool | None = None, data_dir: Path | None = None,
                  tls: ssl.SSLContext | None = None, process: process_runtime.ProcessRuntime | None = None) -> None:
        """Options for `cluster`'s pod workers, now and after restarts (benchmarks, tests).
        `data_dir` and `tls` are for the process runtime and apply to pod workers made after;
        `process` is a runtime `hand_over` parked, for the next pod workers to take over."""
        options = cls._options.setdefault(cluster, {})
        if process is not None:
            options["process"] = process
        if timings is not None:
            options["timings"] = timings
        if events is not None:
            options["events"] = events
        if data_dir is not None:
            options["data_dir"] = data_dir
        if tls is not None:
            options["tls"] = tls
        workers = cls._shared.get(cluster)
        if workers is not None:
            if timings is not None and isinstance(workers.runtime, runtimes.SimulatedRuntime):
                workers.runtime.timings = timings
            if events is not None:
                workers.events = events

    # -- agents ----------------------------------------------------------------------------

    async def attach(self, agent: NodeAgent) -> bool:
        """Run the pods bound to `agent`'s node; the ones it already runs by their stored
        status are adopted as they are (the service restarted, the node did not). False if this
        instance has retired (the caller asks `shared` again)."""
        async with self._lock:
            if self._retired:
                return False
            if not self._running:
                await self._start()
            runtime = self.runtime
            if agent.template.workload_runtime == PROCESS:
                runtime = await self._process_runtime()
            recorder = EventRecorder(self.cluster, component="kubelet", host=agent.name)
            node = podrecords.NodeRecord(agent.name, agent.address, recorder, runtime, agent)
            keys = list(self._by_node.get(node.name, ()))
            cidr = self._pod_cidr(node.name, node)
            for key in keys:
                pod = self._cached(key)
                if pod is not None and key not in self._pods and not podrecords.finished(pod):
                    self._pods[key] = podrecords.rebuild(pod, key, node, cidr, now=self.clock.now())
            self._nodes[node.name] = node
            for key in keys:
                self._queue.add(key)
            return True

    async def detach(self, agent: NodeAgent) -> None:
        """Stop running `agent`'s pods (they stay in the API, as when a kubelet stops)."""
        async with self._lock:
            node = self._nodes.pop(agent.name, None)
            if node is None:
                return
            for key in self._by_node.get(agent.name, ()):
                if self._pods.pop(key, None) is not None:
                    self._wakeups.cancel(key)
                    self._statuses.drop(key)  # a stopped kubelet writes nothing more
            self._no_network.pop(agent.name, None)
            if not isinstance(node.runtime, process_runtime.ProcessRuntime):
                node.runtime.forget_node(agent.name)
            elif not self._keep:  # else the control plane restarts: the node's containers run on
                await node.runtime.stop_node(agent.name)  # no process outlives its kubelet here
                node.runtime.forget_node(agent.name)
            if not self._nodes:
                await self._stop()

    async def _start(self) -> None:
        await self._node_informer.start()
        await self._pod_informer.start()
        for key, pod in self._pod_informer.cache.objects.items():  # type: ignore[union-attr]
            node = pod["spec"].get("nodeName")
            if node:
                self._by_node.setdefault(node, set()).add(key)
        self._queue.start()
        self._statuses.start()
        self._events.start()
        await self._wakeups.start()
        self._running = True

    async def _stop(self) -> None:
        self._running, self._retired = False, True
        if PodWorkers._shared.get(self.cluster) is self:
            del PodWorkers._shared[self.cluster]
        await self._wakeups.stop()
        await self._queue.stop()
        await self._statuses.stop()
        await self._events.stop()
        await self._pod_informer.stop()
        await self._node_informer.stop()
        self._pods.clear()
        self._by_node.clear()
        process, self.process = self.process, None
        if process is not None:
            if self._keep:
                process.park()
            else:
                await process.close()

    async def _process_runtime(self) -> process_runtime.ProcessRuntime:
        if self.process is None:
            self.process = process_runtime.ProcessRuntime(
                cluster=self.cluster, data_dir=self._data_dir, tls=self._tls, notify=self._on_runtime)
        else:
            self.process.notify = self._on_runtime
        cache = self._pod_informer.cache
        known = {p["metadata"]["uid"] for p in cache.objects.values()} if cache is not None else None
        if not self.process.started:
            await self.process.start()
            if known is not None:  # what was deleted while the service was down goes
                self.process.sweep(known)
        elif self.process.cluster is not self.cluster:  # handed over: its containers are adopted
            self.process.take_over(self.cluster, known=known)
            await self.process.cluster_dns()  # its DNS and Service VIPs in the pod network follow
        return self.process

    def _on_runtime(self, namespace: str, name: str, events: list[podevents.Event]) -> None:
        """The process runtime saw a change (an exit, a probe result): sync the pod again."""
        key = self._registry.key(namespace, name)
        if events and self.events:
            pod = self._cached(key)
            node = self._nodes.get((pod or {}).get("spec", {}).get("nodeName") or "")
            if pod is not None and node is not None:
                self._events.add(node.events, pod, events, user=node.agent.identity)
        if key in self._pods:
            self._queue.add(key)

    def kubelet(self, node: str) -> streams.Kubelet:
        """The streaming side (logs, exec, attach, port-forward) of an attached node."""
        rec = self._nodes.get(node)
        if rec is not None and isinstance(rec.runtime, process_runtime.ProcessRuntime):
            return kubelets.ProcessKubelet(rec.runtime, node)
        return kubelets.SimulatedKubelet()

    # -- events ----------------------------------------------------------------------------

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        node = obj["spec"].get("nodeName")
        if not node:
            return
        meta = obj["metadata"]
        key = self._registry.key(meta["namespace"], meta["name"])
        if kind == "DELETED":
            keys = self._by_node.get(node)
            if keys is not None:
                keys.discard(key)
            self._done.pop(meta["uid"], None)
            if self.process is not None:
                self.process.purge(meta["uid"])  # its logs and volumes go with the pod
            if key in self._pods:
                self._queue.add(key)
            return
        self._by_node.setdefault(node, set()).add(key)
        if node not in self._nodes:
            return
        rec = self._pods.get(key)
        if rec is None:
            if not podrecords.finished(obj):
                self._queue.add(key)
        elif rec.rv != int(meta["resourceVersion"]):  # else our own status write coming back
            self._queue.add(key)

    def _on_node(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            return
        cidr = (obj.get("spec") or {}).get("podCIDR")
        if name in self._no_network and cidr:
            for key in self._no_network.pop(name):
                self._queue.add(key)
        node = self._nodes.get(name)
        if node is not None and (cidr, _cni(obj)) != (((prev or {}).get("spec") or {}).get("podCIDR"), _cni(prev)):
            node.agent.network_changed()  # its Ready condition follows the network's readiness

    # -- sync ------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        pod = self._cached(key)
        node = self._nodes.get(pod["spec"].get("nodeName") or "") if pod is not None else None
        rec = self._pods.get(key)
        if rec is not None and (pod is None or node is None or rec.uid != pod["metadata"]["uid"]):
            await self._forget(rec)
            rec = None
        if pod is None or node is None:
            return
        if rec is None:
            if podrecords.finished(pod) or pod["metadata"]["uid"] in self._done:
                return  # done before we saw it (or the cache has not seen our last status yet): nothing runs
            started = podrecords.parse_time((pod.get("status") or {}).get("startTime"))
            rec = self._pods[key] = podrecords.PodRecord(key, pod["metadata"]["uid"], node.name,
                                                         started or self.clock.now(), node.runtime)
        events: list[podevents.Event] = []
        await self._sync(pod, rec, node, events)
        if events and self.events:
            self._events.add(node.events, pod, events, user=node.agent.identity)

    async def _sync(self, pod: Obj, rec: podrecords.PodRecord, node: podrecords.NodeRecord,
                    events: list[podevents.Event]) -> None:
        now = self.clock.now()
        meta = pod["metadata"]
        deleting = "deletionTimestamp" in meta
        live = [c.current for c in rec.containers.values() if c.current is not None and not c.current.exited(now)]
        view = podstatus.View(now, node.host_ip, rec.start_time, rec.sandbox, rec.containers,
                              terminal=deleting and not live, generation=self._generation, user=self._user)
        status = podstatus.generate(pod, view)
        if status["phase"] in podstatus.TERMINAL and live:
            # the regular containers are done for good: sidecars stop before the pod ends
            await self._stop_containers(pod, rec, live, float(pod["spec"].get("terminationGracePeriodSeconds") or 0), events)
            self._schedule(pod, rec, now)
            return
        finished = status["phase"] in podstatus.TERMINAL
        self._report(pod, rec, node, status, now, delete=finished and deleting)
        if finished:
            self._done[rec.uid] = None  # until the cache shows it finished, it must not start again
            if len(self._done) > DONE_KEPT:
                del self._done[next(iter(self._done))]
            await self._forget(rec)  # the status manager still writes the last status (and deletes)
            return
        if deleting:
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            if rec.grace is None or grace < rec.grace:  # a second DELETE may shorten the grace period
                rec.grace = grace
                await self._stop_containers(pod, rec, live, grace, events)
        else:
            await self._advance(pod, rec, node, now, events)
        self._schedule(pod, rec, now)

    def _report(self, pod: Obj, rec: podrecords.PodRecord, node: podrecords.NodeRecord, status: Obj, now: float, *,
                delete: bool) -> None:
        """Hand kubelet's part of the status to the status manager if it changes what is stored
        (or what we reported last, when the cache has not seen that yet), to write as the node."""
        base = pod.get("status") or {}
        if rec.reported is not None and (self._statuses.pending(rec.key)
                                         or int(pod["metadata"]["resourceVersion"]) < rec.rv):
            base = rec.reported
        merged = podstatus.merge(base, status, now)
        if merged == base and not delete:
            return
        rec.reported = merged
        self._statuses.report(rec.key, pod, status, now, delete=delete, rec=rec, user=node.agent.identity)

    async def _forget(self, rec: podrecords.PodRecord) -> None:
        if self._pods.get(rec.key) is rec:
            del self._pods[rec.key]
        self._wakeups.cancel(rec.key)
        waiting = self._no_network.get(rec.node)
        if waiting is not None:
            waiting.discard(rec.key)
        if rec.sandbox is not None and rec.sandbox.ready:
            await rec.runtime.remove_sandbox(rec.sandbox)

    # -- helpers ---------------------------------------------------------------------------

    def _cached(self, key: str) -> Obj | None:
        cache = self._pod_informer.cache
        return cache.objects.get(key) if cache is not None else None

    def _pod_cidr(self, node: str, record: podrecords.NodeRecord | None = None) -> str | None:
        """Where the node's pods get their IPs (`lks.nodes.runtime.pod_range`)."""
        obj = self._node_informer.get(None, node) if self._node_informer.cache is not None else None
        rec = record or self._nodes.get(node)
        if rec is None:
            return ((obj or {}).get("spec") or {}).get("podCIDR")
        t = rec.agent.template
        return runtimes.pod_range((obj or {}).get("spec"), pod_network=t.pod_network, address=rec.host_ip,
                                  subnet=t.subnet, max_pods=t.max_pods, cni=_cni(obj))


async def attach(agent: NodeAgent) -> PodWorkers:
    """The cluster's pod workers, now also running `agent`'s pods."""
    while True:
        workers = PodWorkers.shared(agent.cluster)
        if await workers.attach(agent):
            return workers


def _cni(node: Obj | None) -> str | None:
    """The CNI installed on the node (`lks.nodes.runtime.CNI_ANNOTATION`), in a cluster without one of AKS's."""
    return (((node or {}).get("metadata") or {}).get("annotations") or {}).get(runtimes.CNI_ANNOTATION)
