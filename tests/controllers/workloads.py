"""Helpers for the workload controller tests: stand-ins for the scheduler and the node agent
(a pod's phase and Ready condition set through `pods/status`), and waits on the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lks.clock import rfc3339
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector, parse_labels

Obj = dict[str, Any]


async def listed(cluster: Cluster, group: str, resource: str, namespace: str = "default",
                 labels: str | None = None) -> list[Obj]:
    reg = cluster.registry(group, "v1", resource)
    body = await reg.list(namespace, ListOptions(parse_labels(labels) if labels else LabelSelector([]),
                                                 FieldSelector([])))
    return body["items"]


async def pods(cluster: Cluster, namespace: str = "default", labels: str | None = None) -> list[Obj]:
    return sorted(await listed(cluster, "", "pods", namespace, labels), key=lambda p: p["metadata"]["name"])


async def live_pods(cluster: Cluster, namespace: str = "default", labels: str | None = None) -> list[Obj]:
    return [p for p in await pods(cluster, namespace, labels) if "deletionTimestamp" not in p["metadata"]]


async def set_phase(cluster: Cluster, pod: Obj, phase: str, *, ready: bool | None = None, exit_code: int | None = None,
                    restarts: int = 0) -> Obj:
    """What the kubelet would write: the phase, the Ready condition and container states."""
    reg = cluster.registry("", "v1", "pods")
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    now = rfc3339(cluster.clock.now())
    if ready is None:
        ready = phase == "Running"

    def status(current: Obj) -> Obj:
        st = current.setdefault("status", {})
        st["phase"] = phase
        old = {c["type"]: c for c in st.get("conditions") or []}
        cond_status = "True" if ready else "False"
        prev = old.get("Ready")
        since = prev["lastTransitionTime"] if prev and prev.get("status") == cond_status else now
        old["Ready"] = {"type": "Ready", "status": cond_status, "lastTransitionTime": since}
        st["conditions"] = list(old.values())
        containers = []
        for c in current["spec"].get("containers") or []:
            cs: Obj = {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
                       "restartCount": restarts}
            if exit_code is not None:
                cs["state"] = {"terminated": {"exitCode": exit_code, "finishedAt": now,
                                              "reason": "Completed" if exit_code == 0 else "Error"}}
            elif phase == "Running":
                cs["state"] = {"running": {"startedAt": now}}
            containers.append(cs)
        st["containerStatuses"] = containers
        return current

    return await reg.patch(ns, name, status, subresource="status")


async def run(cluster: Cluster, pod: Obj) -> Obj:
    return await set_phase(cluster, pod, "Running", ready=True)


async def succeed(cluster: Cluster, pod: Obj) -> Obj:
    return await set_phase(cluster, pod, "Succeeded", ready=False, exit_code=0)


async def fail(cluster: Cluster, pod: Obj, exit_code: int = 1) -> Obj:
    return await set_phase(cluster, pod, "Failed", ready=False, exit_code=exit_code)


async def until(check: Callable[[], Any], *, tries: int = 2000) -> Any:
    """Let the loop run until `check()` (sync or async) returns something truthy; returns it."""
    for _ in range(tries):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def idle(*queues: Any, rounds: int = 30) -> None:
    """Let the controllers' queues drain (several quiet loop turns in a row)."""
    quiet = 0
    for _ in range(5000):
        await asyncio.sleep(0)
        if all(q.idle() for q in queues):
            quiet += 1
            if quiet >= rounds:
                return
        else:
            quiet = 0
    raise AssertionError("queues never went idle")
