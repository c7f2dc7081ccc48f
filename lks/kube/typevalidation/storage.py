"""Storage rules: PersistentVolume (`pkg/apis/core/validation` `ValidatePersistentVolumeSpec`)
and StorageClass (`pkg/apis/storage/validation`). PersistentVolumeClaims are in `core.py`.

A PersistentVolume needs an access mode, a `storage` capacity above zero and exactly one volume
source; a StorageClass a qualified provisioner name, and neither its provisioner, parameters,
reclaim policy nor binding mode change afterwards.
"""

from __future__ import annotations

import posixpath

from lks.kube.errors import Cause
from lks.kube.typevalidation import field, resources
from lks.kube.typevalidation.common import IMMUTABLE, dns_subdomain, get, is_qualified_name, items, mapping

_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]  # sets.List: sorted
_PV_RECLAIM = ["Delete", "Recycle", "Retain"]
_SC_RECLAIM = ["Delete", "Retain"]
_BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
_VOLUME_MODES = ["Block", "Filesystem"]
# PersistentVolumeSource's members, in the order upstream counts them
_PV_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd",
               "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume",
               "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi")
_MAX_PARAMETERS = 512
_MAX_PARAMETER_BYTES = 256 * 1024


def _access_modes(spec: dict, path: str) -> list[Cause]:
    modes = items(spec, "accessModes")
    causes = [] if modes else [field.required(f"{path}.accessModes")]
    causes += [field.not_supported(f"{path}.accessModes", m, _ACCESS_MODES) for m in modes if m not in _ACCESS_MODES]
    if "ReadWriteOncePod" in modes and any(m in _ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        causes.append(field.forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes"))
    return causes


def _capacity(spec: dict, path: str) -> list[Cause]:
    capacity = mapping(spec, "capacity")
    causes = [] if capacity else [field.required(f"{path}.capacity")]
    if "storage" not in capacity or len(capacity) > 1:
        causes.append(field.not_supported(f"{path}.capacity", capacity, ["storage"]))
    for name, value in capacity.items():
        causes += resources.positive(value, f"{path}.capacity[{name}]")
    return causes


def _sources(spec: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for source in _PV_SOURCES:
        if not isinstance(spec.get(source), dict):
            continue
        if count and source != "flexVolume":  # upstream counts flexVolume without this check
            causes.append(field.forbidden(f"{path}.{source}", "may not specify more than 1 volume type"))
        else:
            count += 1
    return causes if count else [field.required(path, "must specify a volume type")]


def validate_persistent_volume(obj: dict) -> list[Cause]:
    spec, path = mapping(obj, "spec"), "spec"
    causes = _access_modes(spec, path) + _capacity(spec, path)
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in _PV_RECLAIM:
        causes.append(field.not_supported(f"{path}.persistentVolumeReclaimPolicy", policy, _PV_RECLAIM))
    causes += _sources(spec, path)
    host_path = get(spec, "hostPath", "path")
    if isinstance(host_path, str) and posixpath.normpath(host_path or ".") == "/" and policy == "Recycle":
        causes.append(field.forbidden(f"{path}.persistentVolumeReclaimPolicy",
                                      "may not be 'recycle' for a hostPath mount of '/'"))
    if spec.get("storageClassName"):
        causes += dns_subdomain(spec["storageClassName"], f"{path}.storageClassName")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in _VOLUME_MODES:
        causes.append(field.not_supported(f"{path}.volumeMode", mode, _VOLUME_MODES))
    return causes


def validate_persistent_volume_update(new: dict, old: dict) -> list[Cause]:
    causes = validate_persistent_volume(new)
    new_mode, old_mode = get(new, "spec", "volumeMode"), get(old, "spec", "volumeMode")
    if new_mode != old_mode:
        causes.append(field.invalid("volumeMode", new_mode, IMMUTABLE))  # sic: upstream's path has no spec
    return causes


# --- StorageClass ------------------------------------------------------------------------------

def validate_storage_class(obj: dict) -> list[Cause]:
    provisioner = obj.get("provisioner") or ""
    causes: list[Cause] = []
    if not provisioner:
        causes.append(field.required("provisioner"))
    else:
        causes += [field.invalid("provisioner", provisioner, m) for m in is_qualified_name(provisioner.lower())]
    params = mapping(obj, "parameters")
    if len(params) > _MAX_PARAMETERS:
        causes.append(field.too_long("parameters", _MAX_PARAMETERS))
    else:
        causes += [field.invalid("parameters", k, "field can not be empty.") for k in params if not k]
        if sum(len(k.encode()) + len(str(v).encode()) for k, v in params.items()) > _MAX_PARAMETER_BYTES:
            causes.append(field.too_long("parameters", _MAX_PARAMETER_BYTES))
    policy = obj.get("reclaimPolicy")
    if policy and policy not in _SC_RECLAIM:
        causes.append(field.not_supported("reclaimPolicy", policy, _SC_RECLAIM))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        causes.append(field.required("volumeBindingMode"))
    elif mode not in _BINDING_MODES:
        causes.append(field.not_supported("volumeBindingMode", mode, _BINDING_MODES))
    return causes


def validate_storage_class_update(new: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    if mapping(new, "parameters") != mapping(old, "parameters"):
        causes.append(field.forbidden("parameters", "updates to parameters are forbidden."))
    if (new.get("provisioner") or "") != (old.get("provisioner") or ""):
        causes.append(field.forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        causes.append(field.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        causes.append(field.invalid("volumeBindingMode", new.get("volumeBindingMode"), IMMUTABLE))
    return causes + validate_storage_class(new)
