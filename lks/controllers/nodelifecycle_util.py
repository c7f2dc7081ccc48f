"""What the node lifecycle family of controllers share (`nodelifecycle`, `tainteviction`,
`podgc`, `disruption`, `resourcequota`): an index of pods by node, pod and node conditions
as upstream's helpers set them, timestamps, and two ways to retry after losing a write race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lks.clock import rfc3339
from lks.kube import errors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
PodKey = tuple[str, str]  # (namespace, name)


class PodsByNode:
    """Which pods are bound to which node, fed by a pod informer's events (client-go's
    indexer by `spec.nodeName`)."""

    def __init__(self) -> None:
        self._pods: dict[str, set[PodKey]] = {}
        self._node_of: dict[PodKey, str] = {}

    def update(self, kind: str, pod: Obj) -> tuple[PodKey, str | None]:
        """Note an informer event; returns the pod's key and node (None: unbound or gone)."""
        meta = pod["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        node = (pod.get("spec") or {}).get("nodeName") if kind != "DELETED" else None
        old = self._node_of.get(key)
        if old != node:
            if old is not None:
                self._pods.get(old, set()).discard(key)
            if node:
                self._pods.setdefault(node, set()).add(key)
                self._node_of[key] = node
            else:
                self._node_of.pop(key, None)
        return key, node or None

    def on(self, node: str) -> list[PodKey]:
        return sorted(self._pods.get(node, ()))

    def __contains__(self, node: str) -> bool:
        return bool(self._pods.get(node))


async def catch_up(cluster: Cluster, timeout: float = 5.0) -> None:
    """Wait until the informer caches show the store's latest write. A sync that lost a write
    race calls this before trying again: retrying on the stale cache at once would lose again
    (and, on an in-process store that never yields, spin)."""
    await cluster.feed.wait_for(await cluster.store.current_revision(), timeout)


async def patch(cluster: Cluster, reg: Any, namespace: str | None, name: str, fn: Any, *,
                subresource: str | None = None, attempts: int = 8) -> Obj:
    """`reg.patch`, applied again when another writer got in between our read and our write:
    the registry answers that race with 409 (the patched object carries the resourceVersion it
    was read at) where upstream re-applies a patch that names none."""
    for attempt in range(attempts):
        try:
            return await reg.patch(namespace, name, fn, subresource=subresource)
        except errors.APIError as err:
            if err.code != 409 or attempt == attempts - 1:
                raise
            await catch_up(cluster)
    raise AssertionError("unreachable")


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def set_pod_condition(status: Obj, cond: Obj, now: float) -> bool:
    """Set a pod condition as upstream's UpdatePodCondition: the transition time moves only when
    the status changes. Returns whether anything changed."""
    conditions = status.setdefault("conditions", [])
    new = {"lastProbeTime": None, **cond, "lastTransitionTime": rfc3339(now)}
    for i, old in enumerate(conditions):
        if old.get("type") == cond["type"]:
            if old.get("status") == new["status"]:
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            conditions[i] = new
            return any(old.get(k) != new.get(k) for k in ("status", "reason", "message", "lastTransitionTime"))
    conditions.append(new)
    return True


def parse_time(text: str | None) -> float:
    """A Kubernetes timestamp (Time or MicroTime) as seconds since the epoch; 0 when unset."""
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
