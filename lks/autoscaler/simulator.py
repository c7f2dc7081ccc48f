"""The cluster as the autoscaler simulates it: the scheduler's own picture (`Snapshot`) and
filters (`Framework.check`, the plugins of `lks.controllers.scheduler`), built once per scan
from the informer caches, plus template nodes of a pool (what its next node would look like,
with the DaemonSet pods that would land on it), as upstream's cluster-autoscaler builds
NodeInfos from node group templates.

`lks.autoscaler.scaleup` binpacks pending pods onto template nodes; `lks.autoscaler.scaledown`
moves pods of a candidate node onto the others. A pod's `PodInfo` is parsed once per
resourceVersion and kept across scans (`PodCache`), since most pods do not change between two.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lks.controllers.scheduler import framework, status
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from lks.nodes import NodeTemplate

Obj = dict[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def priority(pod: Obj) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def owner_kind(pod: Obj) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("kind") or "")
    return None


def is_daemon(pod: Obj) -> bool:
    return owner_kind(pod) == "DaemonSet" or MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {})


def unschedulable(pod: Obj) -> bool:
    """`PodScheduled=False` with reason `Unschedulable`: the scheduler found no node."""
    if (pod.get("spec") or {}).get("nodeName") or "deletionTimestamp" in pod["metadata"]:
        return False
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "PodScheduled":
            return cond.get("status") == "False" and cond.get("reason") == "Unschedulable"
    return False


def equivalence(pod: PodInfo) -> tuple | None:
    """Pods of one controller asking the same, whose fit can only shrink as pods are placed
    (no required pod affinity, no hard spreading): once one of them fits no node, neither
    does the next (upstream's pod equivalence groups). None: the pod is judged on its own."""
    if pod.req_aff or pod.spec.get("topologySpreadConstraints"):
        return None
    for ref in pod.obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid"), pod.req.shape(), pod.ports
    return None


class PodCache:
    """PodInfo per pod uid, rebuilt only when the pod's resourceVersion changes."""

    def __init__(self) -> None:
        self._infos: dict[str, tuple[str, PodInfo]] = {}

    def info(self, pod: Obj) -> PodInfo:
        meta = pod["metadata"]
        uid, rv = meta.get("uid", ""), meta.get("resourceVersion", "")
        got = self._infos.get(uid)
        if got is not None and got[0] == rv:
            got[1].obj = pod
            return got[1]
        info = PodInfo(pod, priority(pod))
        self._infos[uid] = (rv, info)
        return info

    def keep(self, uids: set[str]) -> None:
        """Forget pods that are gone."""
        if len(self._infos) > len(uids):
            self._infos = {u: v for u, v in self._infos.items() if u in uids}


def template_node(template: NodeTemplate, name: str) -> Obj:
    """The Node a new instance of the pool would register as (what the scheduler reads)."""
    return {"metadata": {"name": name, "labels": template.node_labels(name)},
            "spec": {"taints": template.node_taints()} if template.taints else {},
            "status": {"allocatable": dict(template.allocatable or template.capacity),
                       "capacity": dict(template.capacity)}}


def _no_labels(_namespace: str) -> dict[str, str]:
    return {}


def new_framework(snapshot: Snapshot, ns_labels: Any = None) -> framework.Framework:
    # no default topology spreading: upstream's autoscaler ignores soft constraints
    return framework.Framework(snapshot, ns_labels=ns_labels or _no_labels, default_selector=lambda _pod: None,
                               rng=random.Random(0))


@dataclass
class Picture:
    """One scan's view: every Node and bound pod in the scheduler's snapshot, the pending pods."""

    snapshot: Snapshot
    fw: framework.Framework
    nodes: dict[str, Obj]
    pending: list[PodInfo]
    daemonsets: list[Obj] = field(default_factory=list)
    ns_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, *, nodes: Iterable[Obj], pods: Iterable[Obj], cache: PodCache, daemonsets: Iterable[Obj] = (),
              namespaces: Iterable[Obj] = ()) -> Picture:
        snapshot = Snapshot()
        node_objs = {}
        for node in nodes:
            node_objs[node["metadata"]["name"]] = node
            snapshot.set_node(node)
        pending = []
        uids = set()
        for pod in pods:
            uids.add(pod["metadata"].get("uid", ""))
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                continue
            info = cache.info(pod)
            if info.node:
                snapshot.set_pod(info)
            elif unschedulable(pod):
                pending.append(info)
        cache.keep(uids)
        labels = {ns["metadata"]["name"]: ns["metadata"].get("labels") or {} for ns in namespaces}
        fw = new_framework(snapshot, lambda name: labels.get(name, {}))
        return cls(snapshot, fw, node_objs, pending, list(daemonsets), labels)

    def fits(self, pod: PodInfo, node: NodeInfo, fw: framework.Framework | None = None) -> status.Status | None:
        """The scheduler's filters for `pod` on `node` (None: it fits)."""
        fw = fw or self.fw
        return fw.check(fw.prepare(pod, {}), node)

    def place_anywhere(self, pod: PodInfo, exclude: set[str]) -> str | None:
        """A node (other than `exclude`) the filters accept `pod` on; the pod is assumed there."""
        cycle = self.fw.prepare(pod, {})
        nodes = self.snapshot.node_list()
        if exclude:
            nodes = [n for n in nodes if n.name not in exclude]
        # the scheduler's own walk (its fast path for pods that ask only for resources)
        feasible, _statuses = self.fw.find_feasible(cycle, nodes, 1)
        if not feasible:
            return None
        self.snapshot.assume(pod, feasible[0].name)
        return feasible[0].name

    def daemon_pods(self, node_name: str, template_fw: framework.Framework, node: NodeInfo) -> list[PodInfo]:
        """The pods the DaemonSets would run on a template node (those whose pod template passes
        the node's filters), as upstream's template NodeInfo carries them."""
        out = []
        for ds in self.daemonsets:
            meta = ds["metadata"]
            tmpl = (ds.get("spec") or {}).get("template") or {}
            obj = {"metadata": {"name": f"{meta['name']}-{node_name}", "namespace": meta.get("namespace"),
                                "uid": f"template-{meta.get('uid', '')}-{node_name}",
                                "labels": (tmpl.get("metadata") or {}).get("labels") or {},
                                "ownerReferences": [{"kind": "DaemonSet", "name": meta["name"], "controller": True}]},
                   "spec": {**(tmpl.get("spec") or {}), "nodeName": node_name}}
            info = PodInfo(obj, priority(obj))
            cycle = template_fw.prepare(info, {})
            if template_fw.check(cycle, node) is None:
                out.append(info)
        return out


class TemplateNodes:
    """New nodes of one pool, for binpacking: each a template node with its DaemonSet pods."""

    def __init__(self, picture: Picture, template: NodeTemplate):
        self.picture = picture
        self.template = template
        self.snapshot = Snapshot()
        self.fw = new_framework(self.snapshot, lambda name: picture.ns_labels.get(name, {}))
        self.names: list[str] = []
        self._ds: list[PodInfo] | None = None

    def add(self) -> NodeInfo:
        name = f"template-node-for-{self.template.vmss_name}-{len(self.names)}"
        self.snapshot.set_node(template_node(self.template, name))
        node = self.snapshot.nodes[name]
        if self._ds is None:
            self._ds = self.picture.daemon_pods("template", self.fw, node)
        for ds in self._ds:
            self._place_daemon(ds, name)
        self.names.append(name)
        return node

    def _place_daemon(self, ds: PodInfo, name: str) -> None:
        placed = PodInfo.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            setattr(placed, slot, getattr(ds, slot))
        placed.key = f"{ds.key}@{name}"
        placed.node = name
        self.snapshot.set_pod(placed)

    def check(self, pod: PodInfo, node: NodeInfo) -> status.Status | None:
        return self.fw.check(self.fw.prepare(pod, {}), node)

    def prepare(self, pod: PodInfo) -> framework.Cycle:
        return self.fw.prepare(pod, {})

    def check_prepared(self, cycle: framework.Cycle, node: NodeInfo) -> status.Status | None:
        return self.fw.check(cycle, node)

    def place(self, pod: PodInfo, node: NodeInfo) -> None:
        self.snapshot.assume(pod, node.name)
