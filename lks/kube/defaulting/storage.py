"""Defaults of storage.k8s.io/v1 (`pkg/apis/storage/v1/defaults.go`). VolumeAttachment's
inline PersistentVolume spec gets the volume-source defaults of a PersistentVolume."""

from __future__ import annotations

from lks.kube.defaulting import pods
from lks.kube.defaulting._json import Obj, child, default, struct


def storage_class(obj: Obj) -> None:
    default(obj, "reclaimPolicy", "Delete")
    default(obj, "volumeBindingMode", "Immediate")


def csi_driver(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default(spec, "attachRequired", True)
    default(spec, "podInfoOnMount", False)
    default(spec, "storageCapacity", False)
    default(spec, "fsGroupPolicy", "ReadWriteOnceWithFSType")
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]
    default(spec, "requiresRepublish", False)
    default(spec, "seLinuxMount", False)  # SELinuxMountReadWriteOncePod: beta, on since 1.28


def volume_attachment(obj: Obj) -> None:
    if (inline := child(child(child(obj, "spec"), "source"), "inlineVolumeSpec")) is not None:
        pods.volume_source(inline)


DEFAULTERS = {
    ("storage.k8s.io", "v1", "StorageClass"): storage_class,
    ("storage.k8s.io", "v1", "CSIDriver"): csi_driver,
    ("storage.k8s.io", "v1", "VolumeAttachment"): volume_attachment,
}
