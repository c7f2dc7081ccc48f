"""What the scheduler reads besides nodes and pods (upstream's listers): namespace labels (for
affinity terms' namespace selectors), PriorityClasses (a pod's priority when admission did not
set `spec.priority`), PodDisruptionBudgets (preemption spares protected pods), and Services,
ReplicaSets, StatefulSets and ReplicationControllers, whose selectors make upstream's default
topology spreading (`helper.DefaultSelector`).

Each is an informer whose handler only updates a dictionary; `lks.controllers.scheduler.scheduler`
owns a `Listers` and passes its methods to the framework and preemption.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lks.controllers.informer import Informer
from lks.controllers.scheduler.preemption import Budget
from lks.controllers.scheduler.snapshot import PodInfo
from lks.kube import selectors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
SYSTEM_PRIORITIES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
_CONTROLLERS = {("ReplicationController", ""): "replicationcontrollers", ("ReplicaSet", "apps"): "replicasets",
                ("StatefulSet", "apps"): "statefulsets"}


class Listers:
    def __init__(self, cluster: Cluster, *, namespace_labels_changed: Callable[[], None]):
        """`namespace_labels_changed` runs when a namespace's labels change (affinity may help)."""
        self.namespaces: dict[str, dict[str, str]] = {}
        self.classes: dict[str, Obj] = {}
        self.pdbs: dict[str, Budget] = {}
        self._selectors: dict[tuple, selectors.LabelSelector | None] = {}
        self._namespace_labels_changed = namespace_labels_changed
        self.informers = {
            "namespaces": Informer(cluster.registry("", "v1", "namespaces"), self._on_namespace),
            "priorityclasses": Informer(cluster.registry("scheduling.k8s.io", "v1", "priorityclasses"),
                                        self._on_class),
            "services": Informer(cluster.registry("", "v1", "services"), self._on_workload),
            "replicasets": Informer(cluster.registry("apps", "v1", "replicasets"), self._on_workload),
            "statefulsets": Informer(cluster.registry("apps", "v1", "statefulsets"), self._on_workload),
            "replicationcontrollers": Informer(cluster.registry("", "v1", "replicationcontrollers"),
                                               self._on_workload),
            "pdbs": Informer(cluster.registry("policy", "v1", "poddisruptionbudgets"), self._on_pdb),
        }

    # -- handlers

    def _on_namespace(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        labels = obj["metadata"].get("labels") or {}
        if kind == "DELETED":
            self.namespaces.pop(name, None)
        elif self.namespaces.get(name) != labels:
            known = name in self.namespaces
            self.namespaces[name] = labels
            if known:
                self._namespace_labels_changed()

    def _on_class(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind == "DELETED":
            self.classes.pop(obj["metadata"]["name"], None)
        else:
            self.classes[obj["metadata"]["name"]] = obj

    def _on_workload(self, _kind: str, _obj: Obj, _prev: Obj | None) -> None:
        if self._selectors:
            self._selectors.clear()  # services and controllers decide the default spreading

    def _on_pdb(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        if kind == "DELETED":
            self.pdbs.pop(key, None)
        else:
            self.pdbs[key] = Budget(obj)

    # -- reads

    def priority(self, obj: Obj) -> int:
        """`spec.priority` as the Priority admission plugin sets it; else the class's value,
        or the global default class's."""
        spec = obj.get("spec") or {}
        if isinstance(spec.get("priority"), int):
            return spec["priority"]
        name = spec.get("priorityClassName")
        if name:
            pc = self.classes.get(name)
            if pc is not None:
                return int(pc.get("value") or 0)
            return SYSTEM_PRIORITIES.get(name, 0)
        for pc in self.classes.values():
            if pc.get("globalDefault"):
                return int(pc.get("value") or 0)
        return 0

    def preemption_policy(self, pod: PodInfo) -> str:
        """`spec.preemptionPolicy` as admission sets it from the class; else the class's."""
        spec = pod.spec
        if spec.get("preemptionPolicy"):
            return spec["preemptionPolicy"]
        pc = self.classes.get(spec.get("priorityClassName") or "")
        return (pc or {}).get("preemptionPolicy") or "PreemptLowerPriority"

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespaces.get(namespace, {})

    def budgets(self) -> list[Budget]:
        return list(self.pdbs.values())

    def default_selector(self, pod: PodInfo) -> selectors.LabelSelector | None:
        """`helper.DefaultSelector`: the selectors of the Services that select the pod, and of
        its controller; None when there are none (no default spreading then). Cached per
        label set and controller until one of them changes."""
        owner = next((o for o in pod.obj["metadata"].get("ownerReferences") or () if o.get("controller")), None)
        key = (pod.namespace, owner.get("uid") if owner else None, frozenset(pod.labels.items()))
        if key in self._selectors:
            return self._selectors[key]
        merged: dict[str, str] = {}
        for svc in self.informers["services"].list():
            sel = (svc.get("spec") or {}).get("selector")
            if svc["metadata"].get("namespace") == pod.namespace and sel and \
                    all(pod.labels.get(k) == v for k, v in sel.items()):
                merged.update(sel)
        reqs = [selectors.Requirement(k, "=", frozenset([v])) for k, v in merged.items()]
        if owner is not None:
            kind, group = owner.get("kind"), (owner.get("apiVersion") or "").rpartition("/")[0]
            source = _CONTROLLERS.get((kind, group))
            controller = self.informers[source].get(pod.namespace, owner.get("name", "")) if source else None
            sel = (controller.get("spec") or {}).get("selector") if controller else None
            if kind == "ReplicationController" and isinstance(sel, dict):
                merged.update(sel)
                reqs = [selectors.Requirement(k, "=", frozenset([v])) for k, v in merged.items()]
            elif isinstance(sel, dict):
                reqs += selectors.from_label_selector_object(sel).requirements
        result = selectors.LabelSelector(reqs) if reqs else None
        if len(self._selectors) > 4096:
            self._selectors.clear()
        self._selectors[key] = result
        return result
