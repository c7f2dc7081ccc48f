"""Volume rules of upstream's `ValidateVolumes` (`pkg/apis/core/validation/validation.go`): each
volume has a valid, unique name and exactly one source, checked in upstream's order, and each
source has its required fields. `containers.py` checks the mounts against the result.
"""

from __future__ import annotations

import posixpath
from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.structural import QuantityError, parse_quantity
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import dns_label, get, items

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def _required_fields(*names: str):
    def check(src: dict, path: str) -> list[Cause]:
        return [field.required(f"{path}.{n}") for n in names if not get(src, n)]
    return check


def _key_to_paths(src: dict, path: str) -> list[Cause]:
    causes = _mode(get(src, "defaultMode"), f"{path}.defaultMode")
    for i, kp in enumerate(items(src, "items")):
        p = f"{path}.items[{i}]"
        if not get(kp, "key"):
            causes.append(field.required(f"{p}.key"))
        if not get(kp, "path"):
            causes.append(field.required(f"{p}.path"))
        causes += local_non_reserved_path(get(kp, "path", default=""), f"{p}.path")
        causes += _mode(get(kp, "mode"), f"{p}.mode")
    return causes


def _mode(mode: Any, path: str) -> list[Cause]:
    if isinstance(mode, int) and not 0 <= mode <= 0o777:
        return [field.invalid(path, mode, FILE_MODE_MSG)]
    return []


def no_backsteps(target: str, path: str) -> list[Cause]:
    if ".." in target.replace("\\", "/").split("/"):
        return [field.invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: str) -> list[Cause]:
    causes = [field.invalid(path, target, "must be a relative path")] if posixpath.isabs(target) else []
    return causes + no_backsteps(target, path)


def local_non_reserved_path(target: str, path: str) -> list[Cause]:
    causes = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        causes.append(field.invalid(path, target, "must not start with '..'"))
    return causes


def _host_path(src: dict, path: str) -> list[Cause]:
    if not get(src, "path"):
        return [field.required(f"{path}.path")]
    causes = no_backsteps(src["path"], f"{path}.path")
    kind = get(src, "type")
    types = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
    if kind is not None and kind not in types:
        causes.append(field.not_supported(f"{path}.type", kind, types))
    return causes


def _secret(src: dict, path: str) -> list[Cause]:
    causes = [] if get(src, "secretName") else [field.required(f"{path}.secretName")]
    return causes + _key_to_paths(src, path)


def _config_map(src: dict, path: str) -> list[Cause]:
    causes = [] if get(src, "name") else [field.required(f"{path}.name")]
    return causes + _key_to_paths(src, path)


def _nfs(src: dict, path: str) -> list[Cause]:
    causes = _required_fields("server", "path")(src, path)
    if not posixpath.isabs(get(src, "path", default="")):
        causes.append(field.invalid(f"{path}.path", get(src, "path", default=""), "must be an absolute path"))
    return causes


def _empty_dir(src: dict, path: str) -> list[Cause]:
    limit = get(src, "sizeLimit")
    try:
        negative = limit is not None and parse_quantity(limit).value < 0
    except QuantityError:
        negative = False
    return [field.forbidden(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity")] if negative else []


def _ephemeral(src: dict, path: str) -> list[Cause]:
    return [] if get(src, "volumeClaimTemplate") else [field.required(f"{path}.volumeClaimTemplate")]


def _csi(src: dict, path: str) -> list[Cause]:
    driver = get(src, "driver", default="")
    p = f"{path}.driver"
    causes = [field.required(p)] if not driver else []
    if len(driver) > 63:
        causes.append(Cause(reason="FieldValueTooLong", field=p, message="Too long: may not be more than 63 bytes"))
    return causes + [field.invalid(p, driver, m) for m in validation.dns_subdomain(driver.lower())]


def _projected(src: dict, path: str) -> list[Cause]:
    causes = _mode(get(src, "defaultMode"), f"{path}.defaultMode")
    for i, source in enumerate(items(src, "sources")):
        sp = f"{path}.sources[{i}]"
        kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle",
                             "podCertificate") if isinstance(get(source, k), dict)]
        for kind in ("secret", "configMap"):
            if kind in kinds and not get(source, kind, "name"):
                causes.append(field.required(f"{sp}.{kind}.name"))
        token = get(source, "serviceAccountToken")
        if isinstance(token, dict):
            seconds = get(token, "expirationSeconds", default=3600)
            if seconds < 600:
                causes.append(field.invalid(f"{sp}.serviceAccountToken.expirationSeconds", seconds,
                                      "may not specify a duration less than 10 minutes"))
            if not get(token, "path"):
                causes.append(field.required(f"{path}.path"))
        if len(kinds) > 1:
            causes.append(field.forbidden(sp, "may not specify more than 1 volume type per source"))
    return causes


# (JSON field, name in the "more than 1 volume type" error, rules); upstream's order
_VOLUME_SOURCES = [
    ("emptyDir", "emptyDir", _empty_dir),
    ("hostPath", "hostPath", _host_path),
    ("gitRepo", "gitRepo", _required_fields("repository")),
    ("gcePersistentDisk", "gcePersistentDisk",
     lambda s, p: _required_fields("pdName")(s, p.rsplit(".", 1)[0] + ".persistentDisk")),
    ("awsElasticBlockStore", "awsElasticBlockStore", _required_fields("volumeID")),
    ("secret", "secret", _secret),
    ("nfs", "nfs", _nfs),
    ("iscsi", "iscsi", _required_fields("targetPortal", "iqn")),
    ("glusterfs", "glusterfs", _required_fields("endpoints", "path")),
    ("flocker", "flocker", lambda s, p: [] if get(s, "datasetName") or get(s, "datasetUUID")
     else [field.required(p, "one of datasetName and datasetUUID is required")]),
    ("persistentVolumeClaim", "persistentVolumeClaim", _required_fields("claimName")),
    ("rbd", "rbd", _required_fields("monitors", "image")),
    ("cinder", "cinder", _required_fields("volumeID")),
    ("cephfs", "cephFS", _required_fields("monitors")),
    ("quobyte", "quobyte", _required_fields("registry", "volume")),
    ("downwardAPI", "downwarAPI", lambda s, p: _mode(get(s, "defaultMode"), f"{p}.defaultMode")),  # sic
    ("fc", "fc", lambda s, p: [] if items(s, "targetWWNs") or items(s, "wwids") else
     [field.required(f"{p}.targetWWNs", "must specify either targetWWNs or wwids, but not both")]),
    ("flexVolume", "flexVolume", _required_fields("driver")),
    ("configMap", "configMap", _config_map),
    ("azureFile", "azureFile", _required_fields("secretName", "shareName")),
    ("vsphereVolume", "vsphereVolume", _required_fields("volumePath")),
    ("photonPersistentDisk", "photonPersistentDisk", _required_fields("pdID")),
    ("portworxVolume", "portworxVolume", _required_fields("volumeID")),
    ("azureDisk", "azureDisk", _required_fields("diskName", "diskURI")),
    ("storageos", "storageos", _required_fields("volumeName")),
    ("projected", "projected", _projected),
    ("scaleIO", "scaleIO", _required_fields("gateway", "system", "volumeName")),
    ("csi", "csi", _csi),
    ("ephemeral", "ephemeral", _ephemeral),
    ("image", "image", lambda s, p: []),
]


def volumes(vols: list, path: str) -> tuple[dict[str, dict], list[Cause]]:
    """`ValidateVolumes`: the volumes mounts may refer to (only the valid ones, as upstream) and
    the errors."""
    by_name: dict[str, dict] = {}
    causes: list[Cause] = []
    for i, vol in enumerate(vols):
        p = f"{path}[{i}]"
        errs: list[Cause] = []
        count = 0
        for key, label, rule in _VOLUME_SOURCES:
            src = get(vol, key)
            if not isinstance(src, dict):
                continue
            if count:
                errs.append(field.forbidden(f"{p}.{label}", "may not specify more than 1 volume type"))
                continue
            count += 1
            errs += rule(src, f"{p}.{key}")
        if not count:
            errs.append(field.required(p, "must specify a volume type"))
        name = get(vol, "name", default="")
        if not name:
            errs.append(field.required(f"{p}.name"))
        else:
            errs += dns_label(name, f"{p}.name")
        if name in by_name:
            errs.append(field.duplicate(f"{p}.name", name))
        if errs:
            causes += errs
        else:
            by_name[name] = vol
    return by_name, causes
