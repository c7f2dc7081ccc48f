"""Pod garbage collection (upstream's `pkg/controller/podgc`): force-deletes the pods no
kubelet will ever finish.

- Orphans: pods bound to a node that no longer exists, once it has been gone for a short
  quarantine (40 s, so a node being re-registered keeps its pods). They are marked Failed
  with a DisruptionTarget condition first, so their controllers see why, then deleted with a
  zero grace period (there is no kubelet to confirm a graceful one).
- Unscheduled terminating pods: deleted pods that never reached a node.
- Terminating pods on a node marked `node.kubernetes.io/out-of-service` that is not Ready.
- Finished pods beyond `terminated-pod-gc-threshold` (12500), oldest first.

Nodes usually vanish because `lks.nodes` deleted a VM's Node (scale-in, pool deletion); the
pods' controllers then create replacements elsewhere.
"""

from __future__ import annotations

from typing import Any

from lks.controllers import nodelifecycle_util as util
from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
Key = tuple[str, str]
Item = tuple[str, str, str]  # ("orphans", node, "") | ("pod", namespace, name) | ("terminated", "", "")

QUARANTINE = 40.0  # seconds a node must stay gone before its pods are deleted
TERMINATED_THRESHOLD = 12500  # terminated-pod-gc-threshold
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
_TERMINAL = ("Succeeded", "Failed")


class PodGCController(Controller[Item]):
    def __init__(self, cluster: Cluster, *, terminated_threshold: int = TERMINATED_THRESHOLD):
        super().__init__(cluster, name="podgc")
        self.threshold = terminated_threshold
        self.pods = cluster.registry("", "v1", "pods")
        self.nodes = cluster.registry("", "v1", "nodes")
        self.node_informer = self.watch(self.nodes, self._on_node)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self._pods = util.PodsByNode()
        self._terminated: set[Key] = set()
        self._quarantined: set[str] = set()  # nodes whose pods are due a look after the quarantine

    def _on_node(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            if name in self._pods:
                self._quarantine(name)
        elif _out_of_service(obj):
            for ns, pod in self._pods.on(name):
                self.queue.add(("pod", ns, pod))

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta, status = obj["metadata"], obj.get("status") or {}
        key, node = self._pods.update(kind, obj)
        if kind != "DELETED" and status.get("phase") in _TERMINAL:
            self._terminated.add(key)
            if len(self._terminated) > self.threshold:
                self.queue.add(("terminated", "", ""))
        else:
            self._terminated.discard(key)
        if kind == "DELETED":
            return
        if node and self.node_informer.get(None, node) is None:
            self._quarantine(node)
        if "deletionTimestamp" in meta and (not node or _out_of_service(self.node_informer.get(None, node))):
            self.queue.add(("pod", *key))

    def _quarantine(self, node: str) -> None:
        if node not in self._quarantined:
            self._quarantined.add(node)
            self.queue.add_after(("orphans", node, ""), QUARANTINE)

    async def sync(self, item: Item) -> None:
        kind, a, b = item
        if kind == "orphans":
            await self._collect_orphans(a)
        elif kind == "pod":
            await self._collect_terminating(a, b)
        else:
            await self._collect_terminated()

    async def _collect_orphans(self, node: str) -> None:
        self._quarantined.discard(node)
        if self.node_informer.get(None, node) is not None:
            return
        try:
            await self.nodes.get(None, node)  # the cache may lag the store: ask the store
            return
        except errors.APIError as err:
            if err.code != 404:
                raise
        for ns, name in self._pods.on(node):
            pod = self.pod_informer.get(ns, name)
            if pod is None or (pod.get("spec") or {}).get("nodeName") != node:
                continue
            await self._fail_and_delete(pod, {"type": "DisruptionTarget", "status": "True",
                                              "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists"})

    async def _collect_terminating(self, ns: str, name: str) -> None:
        pod = self.pod_informer.get(ns, name)
        if pod is None or "deletionTimestamp" not in pod["metadata"]:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or _out_of_service(self.node_informer.get(None, node)):
            await self._fail_and_delete(pod, None)

    async def _collect_terminated(self) -> None:
        pods = [p for p in (self.pod_informer.get(*k) for k in self._terminated) if p is not None]
        excess = len(pods) - self.threshold
        if excess <= 0:
            return
        # evicted pods go first, then the oldest (upstream's byEvictionAndCreationTimestamp)
        pods.sort(key=lambda p: (not _evicted(p), util.parse_time(p["metadata"].get("creationTimestamp")), p["metadata"]["name"]))
        for pod in pods[:excess]:
            await self._fail_and_delete(pod, None)

    async def _fail_and_delete(self, pod: Obj, cond: Obj | None) -> None:
        """Mark the pod Failed (nothing else will, with no kubelet), then force-delete it."""
        meta = pod["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        now = self.clock.now()
        try:
            if (pod.get("status") or {}).get("phase") not in _TERMINAL:
                def failed(current: Obj) -> Obj:
                    status = current.setdefault("status", {})
                    status["phase"] = "Failed"
                    if cond is not None:
                        util.set_pod_condition(status, cond, now)
                    return current

                await util.patch(self.cluster, self.pods, ns, name, failed, subresource="status")
            await self.pods.delete(ns, name, deletion.DeleteOptions(grace_period_seconds=0,
                                                                    preconditions={"uid": meta["uid"]}))
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise


def _out_of_service(node: Obj | None) -> bool:
    """A node an operator declared shut down: tainted out-of-service and not Ready."""
    if node is None:
        return False
    if not any(t.get("key") == OUT_OF_SERVICE and t.get("effect") == "NoExecute"
               for t in (node.get("spec") or {}).get("taints") or []):
        return False
    ready = util.condition(node, "Ready")
    return ready is None or ready.get("status") != "True"


def _evicted(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"

