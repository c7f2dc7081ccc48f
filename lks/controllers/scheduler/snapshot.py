"""The scheduler's picture of the cluster, kept current from informer events instead of being
rebuilt per pod (upstream's scheduler cache and `NodeInfo`): per node its labels, taints,
allocatable, the sum of its pods' requests, host ports, and its pods; per pod (`PodInfo`) what
the filters and scores need, parsed once per pod version.

A pod the scheduler has chosen a node for is *assumed* onto it at once, so the next pods see
the node's new load while the binding is still being written (`assume`, `forget`, confirmed
when the informer reports the pod bound). Pods in a terminal phase hold no resources and are
dropped, as upstream's pod informer leaves them out. `lks.controllers.scheduler.framework`
reads this; `lks.controllers.scheduler.spread` keeps per-selector pod counts beside it.
"""

from __future__ import annotations

import itertools
from typing import Any

from lks.controllers.scheduler import resources, terms

Obj = dict[str, Any]

_generation = itertools.count(1)


def pod_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


def _ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    """The (hostIP, protocol, hostPort) a pod takes on its node: containers and sidecars."""
    out = []
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in [*(spec.get("containers") or ()), *sidecars]:
        for p in c.get("ports") or ():
            port = p.get("hostPort") or 0
            if port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return tuple(out)


class PodInfo:
    """A pod as the scheduler sees it. What the plugins read is fixed once built (a pod whose
    spec or labels change gets a new PodInfo); only `obj` is refreshed for status-only changes."""

    __slots__ = ("key", "uid", "namespace", "name", "labels", "obj", "spec", "priority", "node",
                 "terminating", "req", "ports", "req_aff", "req_anti", "pref_aff", "pref_anti",
                 "has_affinity", "created", "nominated")

    def __init__(self, obj: Obj, priority: int):
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        self.obj = obj
        self.spec = spec
        self.key = f"{meta.get('namespace')}/{meta['name']}"
        self.uid: str = meta.get("uid", "")
        self.namespace: str = meta.get("namespace") or ""
        self.name: str = meta["name"]
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.priority = priority
        self.node: str = spec.get("nodeName") or ""
        self.terminating = "deletionTimestamp" in meta
        self.created: str = (obj.get("status") or {}).get("startTime") or meta.get("creationTimestamp") or ""
        self.nominated: str = (obj.get("status") or {}).get("nominatedNodeName") or ""
        self.req = resources.pod_requests(spec)
        self.ports = _ports(spec)
        affinity = spec.get("affinity") or {}
        if affinity.get("podAffinity") or affinity.get("podAntiAffinity"):
            self.req_aff, self.req_anti, self.pref_aff, self.pref_anti = terms.affinity_terms(
                spec, self.namespace, self.labels)
        else:
            self.req_aff = self.req_anti = self.pref_aff = self.pref_anti = ()
        self.has_affinity = bool(self.req_aff or self.req_anti or self.pref_aff or self.pref_anti)


class NodeInfo:
    """One node and what is placed on it. `gen` changes whenever anything here does, so
    per-node results can be cached against it."""

    __slots__ = ("name", "obj", "labels", "taints", "hard_taints", "soft_taints", "unschedulable", "alloc",
                 "cpu", "mem", "eph", "scalars", "nz_cpu", "nz_mem", "pods", "ports", "gen",
                 "affinity_pods", "plain", "rshape", "rscore", "free_cpu", "free_mem", "free_eph", "free_pods", "zone",
                 "hostname", "touched")

    def __init__(self, name: str, touched: set[str] | None = None):
        """`touched` collects the names of nodes that changed (`columns` refreshes those rows)."""
        self.name = name
        self.touched = touched
        self.obj: Obj | None = None
        self.labels: dict[str, str] = {}
        self.zone: str | None = None  # the zone and hostname labels, read for every pod by spreading
        self.hostname: str | None = None
        self.taints: list[Obj] = []
        self.hard_taints: list[Obj] = []  # NoSchedule and NoExecute
        self.soft_taints: list[Obj] = []  # PreferNoSchedule
        self.unschedulable = False
        self.alloc = resources.Allocatable(None)
        self.cpu = self.mem = self.eph = self.nz_cpu = self.nz_mem = 0
        self.scalars: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[tuple[str, str, int], int] = {}
        self.affinity_pods = 0  # pods with (anti-)affinity terms: the symmetric scores need them
        self.plain = True  # schedulable and without NoSchedule/NoExecute taints: the fast path
        self.rshape: tuple | None = None  # the resource scores' cache: the last pod shape scored here
        self.rscore = 0
        self.gen = next(_generation)
        self.free_cpu = self.free_mem = self.free_eph = self.free_pods = 0  # allocatable less requests

    def _free(self) -> None:
        alloc = self.alloc
        self.free_cpu = alloc.cpu - self.cpu
        self.free_mem = alloc.mem - self.mem
        self.free_eph = alloc.eph - self.eph
        self.free_pods = alloc.pods - len(self.pods)

    def set_node(self, obj: Obj) -> bool:
        """Take a new version of the Node; whether anything the scheduler reads changed."""
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        labels = meta.get("labels") or {}
        taints = [t for t in spec.get("taints") or () if isinstance(t, dict)]
        alloc = resources.Allocatable(obj.get("status"))
        unschedulable = bool(spec.get("unschedulable"))
        changed = (self.obj is None or labels != self.labels or unschedulable != self.unschedulable
                   or alloc != self.alloc or taints != self.taints)
        self.obj = obj
        if changed:
            self.labels = labels
            self.zone = labels.get(terms.ZONE)
            self.hostname = labels.get(terms.HOSTNAME)
            self.taints = taints
            self.hard_taints = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]
            self.soft_taints = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
            self.unschedulable = unschedulable
            self.alloc = alloc
            self.plain = not unschedulable and not self.hard_taints
            self._free()
            self._bump()
        return changed

    def _bump(self) -> None:
        self.gen = next(_generation)
        self.rshape = None
        if self.touched is not None:
            self.touched.add(self.name)

    def add(self, pod: PodInfo, sign: int = 1) -> None:
        req = pod.req
        self.cpu += sign * req.cpu
        self.mem += sign * req.mem
        self.eph += sign * req.eph
        self.nz_cpu += sign * req.nz_cpu
        self.nz_mem += sign * req.nz_mem
        if req.scalars:
            for k, v in req.scalars.items():
                self.scalars[k] = self.scalars.get(k, 0) + sign * v
        for port in pod.ports:
            n = self.ports.get(port, 0) + sign
            if n:
                self.ports[port] = n
            else:
                self.ports.pop(port, None)
        if pod.has_affinity:
            self.affinity_pods += sign
        if sign > 0:
            self.pods[pod.key] = pod
        else:
            self.pods.pop(pod.key, None)
        self._free()
        self._bump()

    def remove(self, pod: PodInfo) -> None:
        self.add(pod, -1)


class Snapshot:
    """Every node and every pod bound (or assumed) to one."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodInfo] = {}  # key -> the pod, wherever it is placed
        self.assumed: set[str] = set()  # keys placed by us, not yet seen bound by the informer
        self.anti_pods: dict[str, PodInfo] = {}  # pods with required anti-affinity terms
        self.affinity_pods: dict[str, PodInfo] = {}  # pods with any affinity term
        self.priorities: dict[int, int] = {}  # priority -> placed pods with it (preemption's quick no)
        self.soft_tainted: set[str] = set()  # nodes with PreferNoSchedule taints (the taint score)
        self.unlabelled: set[str] = set()  # nodes without a hostname or zone label
        self.touched: set[str] = set()  # nodes changed since `columns` last looked
        self._order: list[NodeInfo] | None = None
        self.listeners: list[Any] = []  # objects with pod_added(pod, node) / pod_removed(pod, node)

    # -- nodes

    def node_list(self) -> list[NodeInfo]:
        """Nodes that exist (a node gone while its pods linger is kept but not listed)."""
        if self._order is None:
            self._order = [n for n in self.nodes.values() if n.obj is not None]
        return self._order

    def set_node(self, obj: Obj) -> bool:
        name = obj["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name, self.touched)
        if info.obj is None:
            self._order = None
        changed = info.set_node(obj)
        if info.soft_taints:
            self.soft_tainted.add(name)
        else:
            self.soft_tainted.discard(name)
        if info.zone is None or info.hostname is None:
            self.unlabelled.add(name)
        else:
            self.unlabelled.discard(name)
        return changed

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        self.soft_tainted.discard(name)
        self.unlabelled.discard(name)
        if info is None:
            return
        if info.pods:
            info.obj = None  # upstream keeps a ghost until its pods are gone
        else:
            del self.nodes[name]
        self._order = None

    # -- pods

    def _place(self, pod: PodInfo, node: str) -> None:
        info = self.nodes.get(node)
        if info is None:
            info = self.nodes[node] = NodeInfo(node, self.touched)  # its pods may arrive before the Node
        info.add(pod)
        self.pods[pod.key] = pod
        self.priorities[pod.priority] = self.priorities.get(pod.priority, 0) + 1
        if pod.req_anti:
            self.anti_pods[pod.key] = pod
        if pod.has_affinity:
            self.affinity_pods[pod.key] = pod
        for listener in self.listeners:
            listener.pod_added(pod, info)

    def _unplace(self, pod: PodInfo) -> None:
        info = self.nodes.get(pod.node)
        self.pods.pop(pod.key, None)
        left = self.priorities[pod.priority] - 1
        if left:
            self.priorities[pod.priority] = left
        else:
            del self.priorities[pod.priority]
        self.anti_pods.pop(pod.key, None)
        self.affinity_pods.pop(pod.key, None)
        if info is None:
            return
        info.remove(pod)
        for listener in self.listeners:
            listener.pod_removed(pod, info)
        if info.obj is None and not info.pods:
            del self.nodes[info.name]

    def set_pod(self, pod: PodInfo) -> None:
        """A bound pod's new version (the informer's view): replaces any assumed placement."""
        old = self.pods.get(pod.key)
        self.assumed.discard(pod.key)
        if old is not None:
            if old is pod:
                return
            self._unplace(old)
        self._place(pod, pod.node)

    def remove_pod(self, key: str) -> PodInfo | None:
        old = self.pods.get(key)
        self.assumed.discard(key)
        if old is not None:
            self._unplace(old)
        return old

    def assume(self, pod: PodInfo, node: str) -> PodInfo:
        """Place `pod` on `node` ahead of the binding; returns the placed PodInfo."""
        placed = PodInfo.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            setattr(placed, slot, getattr(pod, slot))
        placed.node = node
        self.remove_pod(pod.key)
        self._place(placed, node)
        self.assumed.add(pod.key)
        return placed

    def forget(self, key: str, uid: str) -> None:
        """The binding failed: take the assumed pod off its node again."""
        pod = self.pods.get(key)
        if key in self.assumed and pod is not None and pod.uid == uid:
            self.remove_pod(key)

    def any_below(self, priority: int) -> bool:
        """Whether some placed pod has a lower priority (could be preempted for this one)."""
        return any(p < priority for p in self.priorities)

    def confirm(self, key: str) -> None:
        """The informer saw the assumed pod bound where we put it."""
        self.assumed.discard(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed
