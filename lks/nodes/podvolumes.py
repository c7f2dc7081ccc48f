"""A pod's volumes as files, for the process runtime (`lks.nodes.process`): kubelet's volume
plugins reduced to what a host process can use. Each volume is a directory
`<pod dir>/volumes/<name>`: `emptyDir` (any `medium`: a plain directory), `configMap`,
`secret`, `downwardAPI` and `projected` (`serviceAccountToken`, `configMap`, `secret`,
`downwardAPI` sources) written once when the pod's first container starts; `hostPath` is the
host's path itself. Other volume types (PVCs, CSI, ...) are not supported: the container stays
in `ContainerCreating` with a `FailedMount` event. `lks.nodes.namespaces` mounts the
directories at the containers' `mountPath`s.

Errors are kubelet's: a missing ConfigMap or Secret that is not `optional` fails the mount
(`MountVolume.SetUp failed for volume "x" : configmap "y" not found`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.nodes.podenv import field_value, resource_value
from lks.nodes.runtime import CreateError

Obj = dict[str, Any]
Token = Callable[[Obj, Obj], Awaitable[str]]  # (pod, serviceAccountToken source) -> token


class _Missing(Exception):
    pass


async def materialize(cluster: Cluster, pod: Obj, root: Path, *, pod_ip: str, host_ip: str,
                      token: Token, allocatable: Obj | None = None) -> dict[str, Path]:
    """Write every volume of `pod` under `root`; the host path of each by volume name."""
    out: dict[str, Path] = {}
    for vol in pod["spec"].get("volumes") or ():
        name = vol.get("name", "")
        path = root / name
        try:
            if "hostPath" in vol:
                out[name] = Path(vol["hostPath"].get("path") or "/")
                continue
            path.mkdir(parents=True, exist_ok=True)
            files = await _files(cluster, pod, vol, pod_ip=pod_ip, host_ip=host_ip, token=token,
                                 allocatable=allocatable or {})
        except _Missing as err:
            raise CreateError("ContainerCreating", f'MountVolume.SetUp failed for volume "{name}" : {err}',
                              event=("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : {err}')) from None
        if files is None:
            raise CreateError("ContainerCreating", f'volume "{name}": its type is not supported by the Process runtime',
                              event=("FailedMount", f'Unable to attach or mount volumes: unmounted volumes=[{name}]: '
                                                    "the Process runtime supports emptyDir, configMap, secret, "
                                                    "downwardAPI, projected and hostPath volumes"))
        for rel, (data, mode) in files.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, mode)
        out[name] = path
    return out


async def _files(cluster: Cluster, pod: Obj, vol: Obj, *, pod_ip: str, host_ip: str, token: Token,
                 allocatable: Obj) -> dict[str, tuple[bytes, int]] | None:
    """The files of one volume (relative path -> content, mode); None: unsupported type."""
    ns = pod["metadata"]["namespace"]
    if "emptyDir" in vol:
        return {}
    if "configMap" in vol:
        src = vol["configMap"]
        return _keyed(await _config_map(cluster, ns, src), src, src.get("defaultMode", 0o644))
    if "secret" in vol:
        src = vol["secret"]
        return _keyed(await _secret(cluster, ns, src.get("secretName", ""), src), src, src.get("defaultMode", 0o644))
    if "downwardAPI" in vol:
        src = vol["downwardAPI"]
        return _downward(pod, src, src.get("defaultMode", 0o644), pod_ip, host_ip, allocatable)
    if "projected" in vol:
        proj = vol["projected"]
        mode = proj.get("defaultMode", 0o644)
        out: dict[str, tuple[bytes, int]] = {}
        for source in proj.get("sources") or ():
            if "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                try:
                    issued = await token(pod, sat)
                except errors.APIError as err:  # kubelet's words for a TokenRequest that failed
                    raise _Missing(f"failed to fetch token: {err.status().get('message')}") from None
                out[sat.get("path", "token")] = (issued.encode(), 0o600 if mode == 0o644 else mode)
            elif "configMap" in source:
                src = source["configMap"]
                out.update(_keyed(await _config_map(cluster, ns, src), src, mode))
            elif "secret" in source:
                src = source["secret"]
                out.update(_keyed(await _secret(cluster, ns, src.get("name", ""), src), src, mode))
            elif "downwardAPI" in source:
                out.update(_downward(pod, source["downwardAPI"], mode, pod_ip, host_ip, allocatable))
        return out
    return None


def _keyed(data: dict[str, bytes] | None, src: Obj, mode: int) -> dict[str, tuple[bytes, int]]:
    if data is None:
        return {}
    items = src.get("items")
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = item.get("key")
        if key not in data:
            if src.get("optional"):
                continue
            raise _Missing(f'configmap references non-existent config key: {key}')
        out[item.get("path") or key] = (data[key], item.get("mode", mode))
    return out


def _downward(pod: Obj, src: Obj, mode: int, pod_ip: str, host_ip: str, allocatable: Obj) -> dict[str, tuple[bytes, int]]:
    out = {}
    for item in src.get("items") or ():
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resource_value(pod, {}, ref, allocatable)
        else:
            continue
        out[item.get("path", "")] = (value.encode(), item.get("mode", mode))
    return out


async def _config_map(cluster: Cluster, ns: str, src: Obj) -> dict[str, bytes] | None:
    name = src.get("name", "")
    try:
        obj = await cluster.registry("", "v1", "configmaps").get(ns, name)
    except errors.APIError as err:
        if err.code != 404:
            raise
        if src.get("optional"):
            return None
        raise _Missing(f'configmap "{name}" not found') from None
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


async def _secret(cluster: Cluster, ns: str, name: str, src: Obj) -> dict[str, bytes] | None:
    try:
        obj = await cluster.registry("", "v1", "secrets").get(ns, name)
    except errors.APIError as err:
        if err.code != 404:
            raise
        if src.get("optional"):
            return None
        raise _Missing(f'secret "{name}" not found') from None
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    return data
