"""A cluster's resource usage, as metrics-server holds it: per running pod the usage of each
running container over a window, per node the sum of its pods plus what the node itself runs.
Pods of Process pools are measured (`lks.metrics.procfs`, sampled every `RESOLUTION` seconds of
the cluster's clock, and at once when a query finds a container with no complete window yet,
so a new pod shows within a second; windows are real seconds, as the cpu seconds they divide); every other pod follows the usage model
(`lks.metrics.model`). `lks.metrics.api` serves this as `metrics.k8s.io`, and in-process
consumers (the HorizontalPodAutoscaler) read it directly through `lks.metrics.usage`.

A node's usage is what kubelet's summary reports for the node, which counts the system daemons
too (kubelet, containerd, the OS): its pods' sum plus `NODE_CPU` and `NODE_MEMORY`, about what an
idle AKS node shows beyond its add-on pods. Only Ready nodes and their Running pods have
metrics (metrics-server cannot scrape a node that does not answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lks import tasks
from lks.kube.cluster import Cluster
from lks.metrics import model, procfs
from lks.nodes import pods as nodepods

log = logging.getLogger(__name__)

Obj = dict[str, Any]

RESOLUTION = 15.0  # seconds between samples: metrics-server's default --metric-resolution
MIN_WINDOW = 1.0  # seconds: the shortest window a new Process container is measured over
NODE_CPU = 0.05  # cores the node's own daemons use, beyond its pods
NODE_MEMORY = 600 * 2**20  # bytes of working set the node's own daemons use


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    cpu: float  # cores
    memory: int  # bytes


@dataclass(frozen=True, slots=True)
class PodUsage:
    containers: dict[str, ContainerUsage]  # by container name
    timestamp: float  # the end of the window
    window: float  # seconds

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.containers.values())

    @property
    def memory(self) -> int:
        return sum(c.memory for c in self.containers.values())


@dataclass(frozen=True, slots=True)
class NodeUsage:
    cpu: float
    memory: int
    timestamp: float
    window: float


def _started(status: Obj) -> float | None:
    running = (status.get("state") or {}).get("running")
    text = running.get("startedAt") if running else None
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class _Pod:
    """What a pod's usage needs from one version of it (the watch cache replaces the object on
    every change, so the object's identity tells a version): where it runs, and for a
    simulated pod its running containers' start times, its model and, when no curve moves it,
    its usage, made once."""

    __slots__ = ("constant", "models", "node", "pod", "running", "started", "uid")

    def __init__(self, pod: Obj):
        self.pod = pod
        self.uid = pod["metadata"].get("uid", "")
        self.node = pod["spec"].get("nodeName")
        self.running = (pod.get("status") or {}).get("phase") == "Running"
        self.models: dict[str, model.ContainerModel] | None = None  # on first use: Process pods need none
        self.started: dict[str, float] = {}
        self.constant: dict[str, ContainerUsage] | None = None

    def simulate(self) -> None:
        pod = self.pod
        self.started = {s.get("name", ""): t for s in (pod.get("status") or {}).get("containerStatuses") or []
                        if (t := _started(s)) is not None}
        self.models = model.pod_model(pod)
        if all(m.cpu.curve is None and m.memory.curve is None for m in self.models.values()):
            self.constant = {name: ContainerUsage(*model.usage(self.models[name], 0.0))
                             for name in self.started if name in self.models}


class Usage:
    """One cluster's usage; `start` before use (it lists pods and nodes from the watch cache)."""

    def __init__(self, cluster: Cluster, *, resolution: float = RESOLUTION):
        self.cluster = cluster
        self.clock = cluster.clock
        self.resolution = resolution
        self.pods = cluster.registry("", "v1", "pods")
        self.nodes = cluster.registry("", "v1", "nodes")
        self.sampler = procfs.Sampler()
        self._pod_cache: Any = None
        self._node_cache: Any = None
        self._models: dict[str, _Pod] = {}  # by pod key
        self._order: list[str] = []  # see `_sorted_keys`
        self._last_scan = float("-inf")
        self._ready: tuple[int, set[str]] = (-1, set())  # the Ready nodes, at a node cache revision
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        self._pod_cache = await self.pods.cache()
        self._node_cache = await self.nodes.cache()
        self._task = asyncio.create_task(self._run(), name=f"metrics {self.cluster.id}")

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.cancel(self._task)
            self._task = None
        self._pod_cache = self._node_cache = None

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.resolution)
            try:
                self.sample()
            except Exception:  # a bad /proc read must not end the sampling
                log.exception("sampling Process containers of cluster %s", self.cluster.id)
            self._forget_deleted()

    def _forget_deleted(self) -> None:
        """Drop the models of pods that are gone (or changed since) once they pile up."""
        objects = self.pods_cached()
        if len(self._models) > 2 * len(objects) + 1024:
            self._models = {key: m for key, m in self._models.items() if objects.get(key) is m.pod}

    # -- Process pods ------------------------------------------------------------------------

    def _running(self) -> dict[str, dict[str, tuple[str, int]]]:
        runtime = nodepods.PodWorkers.process_of(self.cluster)
        return runtime.running_containers() if runtime is not None else {}

    def sample(self, running: dict[str, dict[str, tuple[str, int]]] | None = None) -> None:
        """Sample every running Process container now."""
        running = self._running() if running is None else running
        containers = {cid: pid for found in running.values() for cid, pid in found.values()}
        self._last_scan = time.monotonic()
        if containers or len(self.sampler):
            self.sampler.record(containers, procfs.scan() if containers else {}, self.clock.now(), self._last_scan)

    def _measured(self) -> dict[str, dict[str, tuple[str, int]]]:
        """The running Process containers, sampled first if one has no complete window yet."""
        running = self._running()
        if not running:
            return running
        now = time.monotonic()
        due = now - self._last_scan >= self.resolution / self.clock.scale
        for found in running.values():
            for cid, pid in found.values():
                last = self.sampler.last(cid)
                if last is None or last.pid != pid or (not self.sampler.complete(cid) and now - last.real >= MIN_WINDOW):
                    due = True
        if due:
            self.sample(running)
        return running

    def _process_usage(self, found: dict[str, tuple[str, int]]) -> PodUsage | None:
        containers: dict[str, ContainerUsage] = {}
        timestamp = window = 0.0
        for name, (cid, _pid) in found.items():
            rate = self.sampler.rate(cid)
            if rate is None:  # as metrics-server: no pod until each container has a window
                return None
            containers[name] = ContainerUsage(rate.cpu, rate.memory)
            timestamp, window = max(timestamp, rate.timestamp), max(window, rate.window)
        return PodUsage(containers, timestamp, window) if containers else None

    # -- simulated pods -----------------------------------------------------------------------

    def _simulated_usage(self, entry: _Pod, now: float) -> PodUsage | None:
        if entry.models is None:
            entry.simulate()
        if entry.constant is not None:  # the same figures every time: made once per pod version
            return PodUsage(entry.constant, now, self.resolution) if entry.constant else None
        containers: dict[str, ContainerUsage] = {}
        for name, at in entry.started.items():
            m = entry.models.get(name)  # type: ignore[union-attr]
            if m is not None:
                cpu, memory = model.usage(m, now - at)
                containers[name] = ContainerUsage(cpu, memory)
        return PodUsage(containers, now, self.resolution) if containers else None

    # -- reading -----------------------------------------------------------------------------

    def _ready_nodes(self) -> set[str]:
        if self._ready[0] == self._node_cache.revision:
            return self._ready[1]
        ready = set()
        for node in self._node_cache.objects.values():
            for cond in (node.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    ready.add(node["metadata"]["name"])
        self._ready = (self._node_cache.revision, ready)
        return ready

    def _entry(self, key: str, pod: Obj) -> _Pod:
        entry = self._models.get(key)
        if entry is None or entry.pod is not pod:
            entry = self._models[key] = _Pod(pod)
        return entry

    def _usage_of(self, entry: _Pod, running: dict[str, dict[str, tuple[str, int]]], ready: set[str],
                  now: float) -> PodUsage | None:
        if not entry.running or entry.node not in ready:
            return None
        found = running.get(entry.uid) if running else None
        if found is not None:
            return self._process_usage(found)
        return self._simulated_usage(entry, now)

    def pod(self, namespace: str, name: str) -> PodUsage | None:
        """The usage of one pod, None while it has no metrics (not running, not measured yet,
        or the metrics API is not started)."""
        found = self.lookup_pod(namespace, name)
        return found[1] if found is not None else None

    def lookup_pod(self, namespace: str, name: str) -> tuple[Obj, PodUsage] | None:
        key = self.pods.key(namespace, name)
        pod = self._pod_cache.objects.get(key) if self._pod_cache is not None else None
        if pod is None:
            return None
        entry = self._entry(key, pod)
        ready = self._ready_nodes() if entry.node else set()
        usage = self._usage_of(entry, self._measured(), ready, self.clock.now())
        return (pod, usage) if usage is not None else None

    def pods_cached(self) -> dict[str, Obj]:
        return self._pod_cache.objects if self._pod_cache is not None else {}

    def all_pods(self, namespace: str | None = None) -> Iterator[tuple[Obj, PodUsage]]:
        """Every pod with metrics (in `namespace`, or all), with its usage."""
        for _key, pod, usage in self.pod_items(namespace):
            yield pod, usage

    def pod_items(self, namespace: str | None = None, *, ordered: bool = False) -> Iterator[tuple[str, Obj, PodUsage]]:
        """`all_pods` with each pod's key in the watch cache; `ordered`: by namespace and name."""
        if self._pod_cache is None:
            return
        running, ready, now = self._measured(), self._ready_nodes(), self.clock.now()
        prefix = self.pods.key(namespace, "") if namespace else None
        objects, memo, resolution = self._pod_cache.objects, self._models, self.resolution
        for key in self._sorted_keys() if ordered else list(objects):
            if prefix is not None and not key.startswith(prefix):
                continue
            pod = objects.get(key)
            if pod is None:  # deleted while a consumer paused between pods
                continue
            entry = memo.get(key)
            if entry is None or entry.pod is not pod:
                entry = memo[key] = _Pod(pod)
            if entry.constant and (not running or entry.uid not in running):  # the common case, inline
                if entry.running and entry.node in ready:
                    yield key, pod, PodUsage(entry.constant, now, resolution)
                continue
            usage = self._usage_of(entry, running, ready, now)
            if usage is not None:
                yield key, pod, usage
        self._forget_deleted()

    def _sorted_keys(self) -> list[str]:
        """The pods' keys by namespace and name (metrics-server's list order), sorted again
        only when pods come or go."""
        objects, order = self._pod_cache.objects, self._order
        if len(order) != len(objects) or not all(map(objects.__contains__, order)):
            meta = {key: pod["metadata"] for key, pod in objects.items()}
            order = self._order = sorted(objects, key=lambda k: (meta[k]["namespace"], meta[k]["name"]))
        return order

    def all_nodes(self) -> Iterator[tuple[Obj, NodeUsage]]:
        """Every Ready node with its usage: its pods' sum plus the node's own."""
        if self._node_cache is None:
            return
        sums: dict[str, list[float]] = {}
        timestamp, window = self.clock.now(), self.resolution
        for pod, usage in self.all_pods():
            acc = sums.setdefault(pod["spec"]["nodeName"], [0.0, 0])
            acc[0] += usage.cpu
            acc[1] += usage.memory
        ready = self._ready_nodes()
        for node in list(self._node_cache.objects.values()):
            name = node["metadata"]["name"]
            if name in ready:
                cpu, memory = sums.get(name, (0.0, 0))
                yield node, NodeUsage(cpu + NODE_CPU, int(memory) + NODE_MEMORY, timestamp, window)

    def node(self, name: str) -> NodeUsage | None:
        found = self.lookup_node(name)
        return found[1] if found is not None else None

    def lookup_node(self, name: str) -> tuple[Obj, NodeUsage] | None:
        node = self._node_cache.objects.get(self.nodes.key(None, name)) if self._node_cache is not None else None
        if node is None or name not in self._ready_nodes():
            return None
        cpu, memory = NODE_CPU, NODE_MEMORY
        for pod, usage in self.all_pods():
            if pod["spec"]["nodeName"] == name:
                cpu, memory = cpu + usage.cpu, memory + usage.memory
        return node, NodeUsage(cpu, memory, self.clock.now(), self.resolution)
