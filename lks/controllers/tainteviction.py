"""The taint eviction controller (upstream's `pkg/controller/tainteviction`, once the node
lifecycle controller's NoExecuteTaintManager): deletes the pods that may no longer run on
their node because of its NoExecute taints.

A pod that does not tolerate every NoExecute taint of its node is deleted at once; one that
tolerates them all for a while (`tolerationSeconds`; admission gives every pod 300 s for
`not-ready` and `unreachable`) is deleted when the shortest of those tolerations runs out,
counted from when the taint appeared; one that tolerates them forever stays. The taints come
from `lks.controllers.nodelifecycle` or from users; the deleted pods' controllers make
replacements, which the scheduler places elsewhere.
"""

from __future__ import annotations

from typing import Any

from lks.controllers import nodelifecycle_util as util
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, EventRecorder
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, pod name)


class TaintEvictionController(Controller[Key]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="tainteviction")
        self.pods = cluster.registry("", "v1", "pods")
        self.node_informer = self.watch(cluster.registry("", "v1", "nodes"), self._on_node)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.recorder = EventRecorder(cluster, component="taint-eviction-controller")
        self._pods = util.PodsByNode()
        self._due: dict[Key, float] = {}  # pods with an eviction scheduled, and when
        self._since: dict[Key, float] = {}  # when each such pod's countdown started

    def _on_node(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        if kind == "DELETED":
            return  # its pods are the pod garbage collector's
        if prev is not None and no_execute_taints(obj) == no_execute_taints(prev):
            return
        for key in self._pods.on(obj["metadata"]["name"]):
            self.queue.add(key)

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        key, node = self._pods.update(kind, obj)
        if key in self._due or (node and no_execute_taints(self.node_informer.get(None, node))):
            self.queue.add(key)

    async def sync(self, key: Key) -> None:
        pod = self.pod_informer.get(*key)
        if pod is None or "deletionTimestamp" in pod["metadata"]:
            self._forget(key)
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        taints = no_execute_taints(self.node_informer.get(None, node_name)) if node_name else []
        if not taints:
            await self._cancel(key, pod)
            return
        tolerated, used = matching_tolerations(taints, (pod.get("spec") or {}).get("tolerations") or [])
        now = self.clock.now()
        if not tolerated:
            await self._evict(key, pod)
            return
        seconds = min_toleration_seconds(used)
        if seconds < 0:  # tolerated forever
            await self._cancel(key, pod)
            return
        start = self._since.setdefault(key, _countdown_start(pod, taints, now))
        due = start + seconds
        if now >= due:
            await self._evict(key, pod)
        elif self._due.get(key) != due:
            self._due[key] = due
            self.queue.add_after(key, due - now)

    def _forget(self, key: Key) -> None:
        self._due.pop(key, None)
        self._since.pop(key, None)

    async def _cancel(self, key: Key, pod: Obj) -> None:
        scheduled = key in self._due
        self._forget(key)
        if scheduled:
            await self.recorder.record(pod, NORMAL, "TaintManagerEviction", f"Cancelling deletion of Pod {key[0]}/{key[1]}")

    async def _evict(self, key: Key, pod: Obj) -> None:
        self._forget(key)
        await self.recorder.record(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {key[0]}/{key[1]}")
        now = self.clock.now()

        def disruption_target(current: Obj) -> Obj:
            util.set_pod_condition(current.setdefault("status", {}), {
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint"}, now)
            return current

        try:
            await util.patch(self.cluster, self.pods, key[0], key[1], disruption_target, subresource="status")
            await self.pods.delete(key[0], key[1], deletion.DeleteOptions(preconditions={"uid": pod["metadata"]["uid"]}))
        except errors.APIError as err:
            if err.code not in (404, 409):  # gone, or another pod by that name now
                raise
        await util.catch_up(self.cluster)  # the next look at this pod sees it going, not evicts it twice


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's Toleration.ToleratesTaint: an empty effect or key is a wildcard."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def matching_tolerations(taints: list[Obj], tolerations: list[Obj]) -> tuple[bool, list[Obj]]:
    """Whether every taint is tolerated, and the first toleration of each (upstream's
    GetMatchingTolerations)."""
    used = []
    for taint in taints:
        found = next((t for t in tolerations if tolerates(t, taint)), None)
        if found is None:
            return False, []
        used.append(found)
    return True, used


def min_toleration_seconds(tolerations: list[Obj]) -> float:
    """The shortest `tolerationSeconds` of `tolerations`; -1 when none sets one (forever)."""
    seconds = [t["tolerationSeconds"] for t in tolerations if t.get("tolerationSeconds") is not None]
    if not tolerations:
        return 0
    if not seconds:
        return -1
    return max(min(seconds), 0)


def _countdown_start(pod: Obj, taints: list[Obj], now: float) -> float:
    """When the pod's tolerations started running out: when the newest NoExecute taint was
    added (or now, for a taint without `timeAdded`), but not before the pod existed."""
    added = [util.parse_time(t.get("timeAdded")) for t in taints]
    start = now if not added or 0.0 in added else max(added)
    return min(max(start, util.parse_time(pod["metadata"].get("creationTimestamp"))), now)

