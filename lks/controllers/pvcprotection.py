"""The PVC protection controller (upstream's `pkg/controller/volume/pvcprotection`): a
PersistentVolumeClaim being deleted keeps its `kubernetes.io/pvc-protection` finalizer
(added on create by `lks.kube.admission.storageprotection`) while a scheduled pod uses it,
and loses it once none does, after which the API server removes the claim. A claim that is
not being deleted and lacks the finalizer (stored before the admission plugin existed) gets
it.

A pod uses a claim when it is bound to a node and names the claim in a volume, or its generic
ephemeral volume's claim (`<pod>-<volume>`, controlled by the pod) until the pod is shut down
(deleted with no grace period left). An index of pods by the claims they name finds the users
without scanning every pod; before releasing a claim a consistent list of the namespace's pods
makes sure no user is missing from the cache, as upstream's live list does.
"""

from __future__ import annotations

from typing import Any

from lks.controllers import podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.kube import errors
from lks.kube.admission.storageprotection import PVC_FINALIZER
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]


def is_deletion_candidate(obj: Obj, finalizer: str) -> bool:
    """protectionutil.IsDeletionCandidate: being deleted and still holding `finalizer`."""
    meta = obj["metadata"]
    return "deletionTimestamp" in meta and finalizer in (meta.get("finalizers") or [])


def needs_finalizer(obj: Obj, finalizer: str) -> bool:
    """protectionutil.NeedToAddFinalizer: not being deleted and without `finalizer`."""
    meta = obj["metadata"]
    return "deletionTimestamp" not in meta and finalizer not in (meta.get("finalizers") or [])


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes name: its own, and its ephemeral volumes' `<pod>-<volume>`."""
    out = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if (claim := (vol.get("persistentVolumeClaim") or {}).get("claimName")):
            out.append(claim)
        elif "ephemeral" in vol:
            out.append(f"{pod['metadata']['name']}-{vol.get('name')}")
    return out


def _shut_down(pod: Obj) -> bool:
    """podIsShutDown: the kubelet is done with it, or it was force-deleted."""
    meta = pod["metadata"]
    return "deletionTimestamp" in meta and meta.get("deletionGracePeriodSeconds") == 0


def uses(pod: Obj, claim: Obj) -> bool:
    """podUsesPVC: only a scheduled pod counts (a kubelet never starts a pod whose claim is
    already being deleted)."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    name = claim["metadata"]["name"]
    for vol in pod["spec"].get("volumes") or []:
        if (vol.get("persistentVolumeClaim") or {}).get("claimName") == name:
            return True
        if "ephemeral" in vol and not _shut_down(pod) and f"{pod['metadata']['name']}-{vol.get('name')}" == name:
            ref = rsutil.controller_of(claim)
            if ref is not None and ref.get("uid") == pod["metadata"].get("uid"):
                return True
    return False


class PVCProtectionController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="pvc-protection")
        self.claims = cluster.registry("", "v1", "persistentvolumeclaims")
        self.pods = cluster.registry("", "v1", "pods")
        self.claim_informer = self.watch(self.claims, self._on_claim)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self._users: dict[str, set[str]] = {}  # "namespace/claim" -> store keys of pods naming it
        self._named: dict[str, list[str]] = {}  # pod store key -> the "namespace/claim"s it names

    def _on_claim(self, kind: str, claim: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED" and (is_deletion_candidate(claim, PVC_FINALIZER) or needs_finalizer(claim, PVC_FINALIZER)):
            self.queue.add(podcontrol.object_key(claim))

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        deleted = kind == "DELETED"
        self._index(pod, deleted=deleted)
        # only a pod that stopped counting can let a claim go
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if deleted or status.get("phase") in ("Succeeded", "Failed") or not spec.get("nodeName") or _shut_down(pod):
            self._enqueue_claims(pod)
        if prev is not None and prev["metadata"].get("uid") != pod["metadata"].get("uid"):
            self._enqueue_claims(prev)  # an update that hides a delete and a re-create

    def _enqueue_claims(self, pod: Obj) -> None:
        for claim in claim_names(pod):
            self.queue.add(f"{pod['metadata']['namespace']}/{claim}")

    def _index(self, pod: Obj, *, deleted: bool) -> None:
        meta = pod["metadata"]
        key = self.pods.key(meta["namespace"], meta["name"])
        named = [] if deleted else [f"{meta['namespace']}/{c}" for c in claim_names(pod)]
        before = self._named.pop(key, [])
        if named == before:
            if named:
                self._named[key] = named
            return
        for claim in before:
            users = self._users.get(claim)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._users[claim]
        for claim in named:
            self._users.setdefault(claim, set()).add(key)
        if named:
            self._named[key] = named

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        claim = self.claim_informer.get(namespace, name)
        if claim is None:
            return
        if is_deletion_candidate(claim, PVC_FINALIZER):
            if not await self._in_use(claim):
                await self._set_finalizer(claim, present=False)
        elif needs_finalizer(claim, PVC_FINALIZER):
            await self._set_finalizer(claim, present=True)

    async def _in_use(self, claim: Obj) -> bool:
        """isBeingUsed: the cache first; a claim the cache finds unused is checked again
        against a consistent list, since a pod created a moment ago may not be cached yet."""
        assert self.pod_informer.cache is not None
        objects = self.pod_informer.cache.objects
        for pod_key in list(self._users.get(podcontrol.object_key(claim), ())):
            pod = objects.get(pod_key)
            if pod is not None and uses(pod, claim):
                return True
        everything = ListOptions(LabelSelector([]), FieldSelector([]))
        listed = await self.pods.list(claim["metadata"]["namespace"], everything)
        return any(uses(pod, claim) for pod in listed["items"])

    async def _set_finalizer(self, claim: Obj, *, present: bool) -> None:
        await set_finalizer(self.claims, claim, PVC_FINALIZER, present=present)


async def set_finalizer(registry: Any, obj: Obj, finalizer: str, *, present: bool) -> None:
    """Add or remove `finalizer` on the stored object `obj` names (the same object: its uid)."""
    meta = obj["metadata"]

    def change(current: Obj) -> Obj:
        cmeta = current["metadata"]
        if cmeta.get("uid") != meta.get("uid"):
            raise errors.conflict(registry.rt.resource, registry.rt.group, cmeta["name"], "the object was replaced")
        finalizers = [f for f in cmeta.get("finalizers") or [] if f != finalizer]
        if present:
            finalizers.append(finalizer)
        if finalizers:
            cmeta["finalizers"] = finalizers
        else:
            cmeta.pop("finalizers", None)
        return current

    try:
        await registry.patch(meta.get("namespace"), meta["name"], change, podcontrol.WRITE)
    except errors.APIError as err:
        if err.code != 404:
            raise
