"""The `scale` subresource: an `autoscaling/v1 Scale` view of an object's replica count, so
that `kubectl scale` and autoscalers work on Deployments, ReplicaSets, StatefulSets,
ReplicationControllers and custom resources that declare it.

A `ScalePaths` says where the replicas and selector live (fixed for built-ins, from the CRD's
`subresources.scale` for custom resources); `to_scale` builds the view and `apply_scale`
writes a changed `spec.replicas` back into the object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lks.kube import errors

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScalePaths:
    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = ".spec.selector"
    selector_is_map: bool = False  # ReplicationController: spec.selector is a plain map


BUILTIN: dict[tuple[str, str], ScalePaths] = {
    ("apps", "deployments"): ScalePaths(),
    ("apps", "replicasets"): ScalePaths(),
    ("apps", "statefulsets"): ScalePaths(),
    ("", "replicationcontrollers"): ScalePaths(selector_is_map=True),
}


def _parts(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _get(obj: Obj, path: str | None) -> Any:
    cur: Any = obj
    for part in _parts(path or ""):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur if path else None


def _set(obj: Obj, path: str, value: Any) -> None:
    parts = _parts(path)
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def selector_string(selector: Any, *, is_map: bool = False) -> str:
    """A label selector in upstream's string form (`app=web,tier in (a,b)`)."""
    if not selector:
        return ""
    if isinstance(selector, str):
        return selector  # a CRD's labelSelectorPath may point at a string already
    if is_map:
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin"}
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key"), expr.get("operator")
        if op in ops:
            parts.append(f"{key} {ops[op]} ({','.join(sorted(expr.get('values') or []))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts))


def to_scale(obj: Obj, paths: ScalePaths) -> Obj:
    meta = obj["metadata"]
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                  if k in meta}
    status: Obj = {"replicas": _get(obj, paths.status_replicas) or 0}
    selector = selector_string(_get(obj, paths.label_selector), is_map=paths.selector_is_map)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
        "spec": {"replicas": _get(obj, paths.spec_replicas) or 0}, "status": status,
    }


def apply_scale(obj: Obj, scale: Any, paths: ScalePaths, kind_name: tuple[str, str, str]) -> Obj:
    """`obj` with the replicas of `scale`; 400/422 for a malformed Scale, like upstream."""
    kind, group, name = kind_name
    if not isinstance(scale, dict):
        raise errors.bad_request("the object provided is not a Scale")
    if scale.get("kind") not in (None, "Scale") or scale.get("apiVersion") not in (None, "autoscaling/v1"):
        raise errors.bad_request(
            f"the API version in the data ({scale.get('apiVersion')}) does not match the expected API version "
            "(autoscaling/v1)")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.bad_request(f"Scale.spec.replicas must be an integer, not {replicas!r}")
    if replicas < 0:
        raise errors.invalid("Scale", "autoscaling", name, [errors.Cause.invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")])
    wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if wanted_rv and wanted_rv != obj["metadata"].get("resourceVersion"):
        raise errors.conflict(kind, group, name, errors.MODIFIED)
    _set(obj, paths.spec_replicas, replicas)
    return obj
