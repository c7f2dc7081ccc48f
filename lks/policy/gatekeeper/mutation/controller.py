"""The mutator controller (Gatekeeper's `pkg/controller/mutators`): it watches Assign,
AssignMetadata, ModifySet and AssignImage, keeps `system.System` in line with them and writes
each mutator's `status.byPod` as Gatekeeper's webhook pods report it: `enforced: true`, or
`enforced: false` with the error that kept it out (an invalid mutator, `ErrConflictingSchema`),
each pod's entry also kept as its MutatorPodStatus in gatekeeper-system (what `byPod` gathers).
A change can end or start another mutator's conflict, so those are looked at again too.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from lks.controllers.controller import Controller
from lks.controllers.informer import Informer
from lks.kube import deletion, errors
from lks.kube.registry import WriteOptions
from lks.policy.gatekeeper import crds, manifests, templates
from lks.policy.gatekeeper.mutation import mutators, schema, system

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.policy.gatekeeper.state import State

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MANAGER = "gatekeeper"


class MutatorController(Controller[tuple[str, str]]):
    """Keys are (kind, name)."""

    def __init__(self, cluster: Cluster, state: State, mutation: system.System):
        super().__init__(cluster, name="gatekeeper-mutators", workers=1)
        self.state = state
        self.system = mutation
        self.informers: dict[str, Informer] = {}
        self.pod_statuses = cluster.registry(crds.STATUS_GROUP, "v1beta1", "mutatorpodstatuses")
        for kind, plural in mutators.KINDS.items():
            reg = cluster.registry(mutators.GROUP, mutators.STORED[kind], plural)
            self.informers[kind] = self.watch(reg, self._handler(kind))

    def _handler(self, kind: str):
        def on_event(event: str, obj: Obj, prev: Obj | None) -> None:
            if event == "MODIFIED" and prev is not None and obj.get("spec") == prev.get("spec") \
                    and obj["metadata"].get("deletionTimestamp") == prev["metadata"].get("deletionTimestamp"):
                return  # our own status write
            self.queue.add((kind, obj["metadata"]["name"]))
        return on_event

    def prime(self) -> None:
        for kind, informer in self.informers.items():
            for obj in informer.list():
                self.queue.add((kind, obj["metadata"]["name"]))

    async def sync(self, key: tuple[str, str]) -> None:
        kind, name = key
        id_ = (mutators.GROUP, kind, "", name)
        before = dict(self.system.conflicts)
        obj = self.informers[kind].get(None, name)
        error: Obj | None = None
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.system.remove(id_)
        else:
            try:
                self.system.upsert(mutators.build(obj))
            except mutators.InvalidMutator as err:
                self.system.remove(id_)
                error = {"message": str(err)}
        after = self.system.conflicts
        for other in set(before) ^ set(after) | {i for i in set(before) & set(after) if before[i] != after[i]}:
            if other != id_:
                self.queue.add((other[1], other[3]))
        if obj is None:
            await self._delete_pod_statuses(kind, name)
            return
        if error is None and id_ in after:
            error = {"type": schema.CONFLICT_TYPE, "message": schema.describe(after[id_])}
        await self._status(kind, obj, error)

    async def _status(self, kind: str, obj: Obj, error: Obj | None) -> None:
        meta = obj["metadata"]
        by_pod = []
        for pod, operations in templates.pod_ids(await self.state.pods()):
            if "mutation-webhook" not in operations:
                continue
            entry: Obj = {"enforced": error is None, "id": pod, "mutatorUID": meta.get("uid"),
                          "observedGeneration": meta.get("generation") or 1, "operations": operations}
            if error is not None:
                entry["errors"] = [error]
            by_pod.append(entry)
        if (obj.get("status") or {}).get("byPod") == by_pod:
            return
        await self._pod_statuses(kind, meta["name"], by_pod)

        def patch(current: Obj) -> Obj:
            current = copy.deepcopy(current)
            current["status"] = {**(current.get("status") or {}), "byPod": by_pod}
            return current

        try:
            await self.informers[kind].registry.patch(
                None, meta["name"], patch, WriteOptions(field_manager=MANAGER, field_validation="Ignore",
                                                        trusted=True), subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _pod_statuses(self, kind: str, name: str, by_pod: list[Obj]) -> None:
        opts = WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore")
        for entry in by_pod:
            key = templates.pack(entry["id"], kind.lower(), name)
            obj = {"apiVersion": f"{crds.STATUS_GROUP}/v1beta1", "kind": "MutatorPodStatus",
                   "metadata": {"name": key, "namespace": manifests.NAMESPACE, "labels": {
                       "internal.gatekeeper.sh/mutator-name": name, "internal.gatekeeper.sh/mutator-kind": kind,
                       "internal.gatekeeper.sh/pod": entry["id"]}},
                   "status": entry}
            try:
                await self.pod_statuses.apply(manifests.NAMESPACE, key, obj, opts)
            except errors.APIError as err:  # the namespace is going (the add-on turned off)
                log.debug("gatekeeper: mutator pod status %s not written: %s", key, err.message)

    async def _delete_pod_statuses(self, kind: str, name: str) -> None:
        for obj in list((await self.pod_statuses.cache()).objects.values()):
            meta = obj["metadata"]
            labels = meta.get("labels") or {}
            if labels.get("internal.gatekeeper.sh/mutator-name") != name or \
                    labels.get("internal.gatekeeper.sh/mutator-kind") != kind:
                continue
            try:
                await self.pod_statuses.delete(meta.get("namespace"), meta["name"], deletion.DeleteOptions())
            except errors.APIError as err:
                if err.code != 404:
                    raise
