"""The apiextensions controllers: accept a CRD's names and establish it (the `NamesAccepted`
and `Established` conditions), and, when a CRD is deleted, delete all its custom resources
before releasing the `customresourcecleanup` finalizer (upstream's naming, establishing and
finalizer controllers in `apiextensions-apiserver/pkg/controller`).
"""

from __future__ import annotations

from typing import Any

from lks.clock import rfc3339
from lks.controllers.controller import Controller
from lks.kube import crds, deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]
RECHECK = 0.5


def _condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": type_, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}


class CRDController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="crd")
        self.crds = cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        self.informer = self.watch(self.crds, self._on_event)

    def _on_event(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED":
            self.queue.add(obj["metadata"]["name"])

    async def sync(self, name: str) -> None:
        crd = self.informer.get(None, name)
        if crd is None:
            return
        if "deletionTimestamp" in crd["metadata"]:
            await self._finalize(crd)
            return
        status = crd.get("status") or {}
        wanted = crds.initial_status(crd)
        conflict = self._name_conflict(crd)
        if conflict:
            conds = [_condition("NamesAccepted", "False", "NameConflict", conflict, self._now()),
                     _condition("Established", "False", "NotAccepted", "not all names are accepted", self._now())]
        else:
            conds = [_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", self._now()),
                     _condition("Established", "True", "InitialNamesAccepted",
                                "the initial names have been accepted", self._now())]
        new_status = {**status, "conditions": _merge_conditions(status.get("conditions") or [], conds),
                      "acceptedNames": wanted["acceptedNames"] if not conflict else status.get("acceptedNames", {}),
                      "storedVersions": sorted(set(status.get("storedVersions") or []) | set(wanted["storedVersions"]))}
        if new_status != status:
            await self._write_status(crd, new_status)

    async def _write_status(self, crd: Obj, status: Obj) -> None:
        """Write `status`; a CRD gone or changed meanwhile is synced again."""
        try:
            await self.crds.update(None, crd["metadata"]["name"], {**crd, "status": status}, subresource="status")
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise
            self.queue.add(crd["metadata"]["name"])

    def _now(self) -> str:
        return rfc3339(self.cluster.clock.now())

    def _name_conflict(self, crd: Obj) -> str | None:
        spec = crd["spec"]
        for other in self.informer.list():
            if other["metadata"]["name"] == crd["metadata"]["name"] or other["spec"].get("group") != spec.get("group"):
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            if accepted.get("plural") == spec["names"].get("plural"):
                return f'"{spec["names"]["plural"]}" is already in use'
            if accepted.get("kind") == spec["names"].get("kind"):
                return f'"{spec["names"]["kind"]}" is already in use'
        return None

    async def _finalize(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        if crds.CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        status = crd.get("status") or {}
        if not crds.terminating(crd):
            # say so first: discovery then offers only the verbs that finish the cleanup
            cond = _condition("Terminating", "True", "InstanceDeletionInProgress",
                              "CustomResource deletion is in progress", self._now())
            others = [c for c in status.get("conditions") or [] if c.get("type") != "Terminating"]
            await self._write_status(crd, {**status, "conditions": [*others, cond]})
            return  # the update comes back through the informer
        remaining = await self._delete_instances(crd)
        if remaining:
            self.queue.add_after(name, RECHECK)
            return

        def release(current: Obj) -> Obj:
            rest = [f for f in current["metadata"].get("finalizers") or [] if f != crds.CLEANUP_FINALIZER]
            if rest:
                current["metadata"]["finalizers"] = rest
            else:
                current["metadata"].pop("finalizers", None)
            return current

        try:
            await self.crds.patch(None, name, release)
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _delete_instances(self, crd: Obj) -> int:
        spec = crd["spec"]
        storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), None)
        try:
            reg = self.cluster.registry(spec["group"], storage or "", spec["names"]["plural"])
        except errors.APIError:
            return 0  # never established: nothing was served, nothing to delete
        remaining = 0
        listed = await reg.list(None, ListOptions(LabelSelector([]), FieldSelector([])))
        for item in listed["items"]:
            if "deletionTimestamp" in item["metadata"]:
                remaining += 1
                continue
            try:
                _, removed = await reg.delete(item["metadata"].get("namespace"), item["metadata"]["name"],
                                              deletion.DeleteOptions())
            except errors.APIError as err:
                if err.code != 404:
                    raise
                removed = True
            remaining += not removed
        return remaining


def _merge_conditions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """New conditions, keeping a condition's transition time when its status did not change."""
    by_type = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        prev = by_type.pop(cond["type"], None)
        if prev is not None and prev.get("status") == cond["status"] and prev.get("reason") == cond["reason"]:
            out.append(prev)
        else:
            out.append(cond)
    return out + list(by_type.values())
