"""Events, as controllers and kubelets record them (client-go's `record.EventRecorder`): a
core/v1 Event about an object, with repeats of the same event folded into one whose `count`
and `lastTimestamp` grow, as the event correlator does.

Every controller and node agent records through one `EventRecorder` per component so
`kubectl describe` and `kubectl get events` read like upstream's.
"""

from __future__ import annotations

import logging
from typing import Any

from lks.clock import rfc3339
from lks.kube import errors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NORMAL = "Normal"
WARNING = "Warning"

_last_ns = 0  # the last event name's time: names stay unique when the clock stands still


def _name(obj_name: str, now: float) -> str:
    """client-go's event name: the object's name and the time in nanoseconds, in hex."""
    global _last_ns
    _last_ns = max(int(now * 1e9), _last_ns + 1)
    return f"{obj_name}.{_last_ns:x}"


def reference(obj: Obj) -> Obj:
    """An ObjectReference to `obj` (the Event's involvedObject)."""
    meta = obj["metadata"]
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "name": meta["name"],
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v is not None}


class EventRecorder:
    def __init__(self, cluster: Cluster, *, component: str, host: str | None = None):
        self.cluster = cluster
        self.source: Obj = {"component": component, **({"host": host} if host else {})}
        self.component = component
        self._events = cluster.registry("", "v1", "events")
        self._recent: dict[tuple, str] = {}  # (object uid, type, reason, message) -> event name

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an event about `obj`; never raises (events are best effort upstream too)."""
        try:
            await self._record(obj, type_, reason, message)
        except errors.APIError as err:
            log.debug("event %s/%s not recorded: %s", reason, obj["metadata"].get("name"), err.message)

    async def _record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = reference(obj)
        namespace = ref.get("namespace") or "default"
        clock_now = self.cluster.clock.now()
        now = rfc3339(clock_now)
        key = (ref.get("uid"), type_, reason, message)
        name = self._recent.get(key)
        if name is not None:
            def bump(current: Obj) -> Obj:
                current["count"] = int(current.get("count") or 1) + 1
                current["lastTimestamp"] = now
                return current

            try:
                await self._events.patch(namespace, name, bump)
                return
            except errors.APIError as err:
                if err.code != 404:
                    raise
        name = _name(ref["name"], clock_now)
        await self._events.create(namespace, {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message, "type": type_,
            "source": self.source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.source.get("host", ""),
        })
        if len(self._recent) > 4096:
            self._recent.clear()
        self._recent[key] = name
