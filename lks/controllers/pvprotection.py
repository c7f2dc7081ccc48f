"""The PV protection controller (upstream's `pkg/controller/volume/pvprotection`): a
PersistentVolume being deleted keeps its `kubernetes.io/pv-protection` finalizer (added on
create by `lks.kube.admission.storageprotection`) while its status says `Bound`, and loses it
otherwise, after which the API server removes the volume. A volume that is not being deleted
and lacks the finalizer gets it. `lks.controllers.pvcprotection` does the same for claims.
"""

from __future__ import annotations

from typing import Any

from lks.controllers.controller import Controller
from lks.controllers.pvcprotection import is_deletion_candidate, needs_finalizer, set_finalizer
from lks.kube.admission.storageprotection import PV_FINALIZER
from lks.kube.cluster import Cluster

Obj = dict[str, Any]


class PVProtectionController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="pv-protection")
        self.volumes = cluster.registry("", "v1", "persistentvolumes")
        self.informer = self.watch(self.volumes, self._on_volume)

    def _on_volume(self, kind: str, pv: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED" and (is_deletion_candidate(pv, PV_FINALIZER) or needs_finalizer(pv, PV_FINALIZER)):
            self.queue.add(pv["metadata"]["name"])

    async def sync(self, name: str) -> None:
        pv = self.informer.get(None, name)
        if pv is None:
            return
        if is_deletion_candidate(pv, PV_FINALIZER):
            if (pv.get("status") or {}).get("phase") != "Bound":  # isBeingUsed: the PV controller's word
                await set_finalizer(self.volumes, pv, PV_FINALIZER, present=False)
        elif needs_finalizer(pv, PV_FINALIZER):
            await set_finalizer(self.volumes, pv, PV_FINALIZER, present=True)
