"""StorageObjectInUseProtection admission (upstream's
`plugin/pkg/admission/storage/storageobjectinuseprotection`): every new PersistentVolumeClaim
gets the `kubernetes.io/pvc-protection` finalizer and every new PersistentVolume
`kubernetes.io/pv-protection`, so that deleting one in use only marks it Terminating.
`lks.controllers.pvcprotection` and `.pvprotection` remove the finalizers once the claim has no
scheduled pod and the volume is no longer bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import admission

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"
_FINALIZERS = {"persistentvolumeclaims": PVC_FINALIZER, "persistentvolumes": PV_FINALIZER}


@admission.plugin
class StorageObjectInUseProtection:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        finalizer = _FINALIZERS.get(reg.rt.resource) if not reg.rt.group else None
        if operation != "CREATE" or finalizer is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if finalizer not in finalizers:
            meta["finalizers"] = [*finalizers, finalizer]

    async def released(self, reg: Registry, obj: Obj) -> None:
        """Nothing is held."""
