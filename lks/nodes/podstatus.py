"""A pod's status as kubelet writes it, computed from what the runtime reports: phase,
conditions, IPs and container statuses (upstream's `generateAPIPodStatus`, `getPhase`,
`convertToAPIContainerStatuses` and `pkg/kubelet/status/generate.go`), and the merge into the
stored status that keeps what others own (their conditions, `nominatedNodeName`, `qosClass`).

The pod worker (`lks.nodes.pods`) keeps one `Containers` per container of a pod; `generate`
is pure, so a status can be computed and compared without writing when nothing changed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from lks.clock import rfc3339
from lks.nodes.runtime import KILLED, Container, Sandbox

Obj = dict[str, Any]

# the pod conditions kubelet owns, in the order it writes them
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
TERMINAL = ("Succeeded", "Failed")
_UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"


@dataclass(slots=True)
class Containers:
    """Kubelet's bookkeeping of one container of a pod: the runtime's current and previous
    instance, and the restart back-off."""

    current: Container | None = None
    previous: Container | None = None
    restarts: int = 0
    backoff: int = 0  # consecutive failed runs, for the next back-off period
    retry_at: float = 0.0  # no restart before this (CrashLoopBackOff)
    waiting: tuple[str, str] | None = None  # (reason, message) while a restart is held back


@dataclass(slots=True)
class View:
    """Everything `generate` reads besides the pod."""

    now: float
    host_ip: str
    start_time: float
    sandbox: Sandbox | None
    containers: dict[str, Containers]
    terminal: bool = False  # being deleted and every container has stopped
    generation: bool = False  # PodObservedGenerationTracking (1.34+)
    user: bool = False  # containerStatuses[].user (SupplementalGroupsPolicy, 1.33+, containerd 2)


def probe_delays(spec: Obj) -> tuple[float, float]:
    """(started, ready): seconds after a container starts until it counts as started and as
    ready, from its startup and readiness probes' initial delays (probes are not run)."""
    startup = float((spec.get("startupProbe") or {}).get("initialDelaySeconds") or 0)
    ready = float((spec.get("readinessProbe") or {}).get("initialDelaySeconds") or 0)
    return startup, startup + ready


def generate(pod: Obj, view: View) -> Obj:
    """The kubelet-owned part of the status (conditions without transition times)."""
    spec = pod["spec"]
    inits = spec.get("initContainers") or []
    default_reason = "PodInitializing" if inits else "ContainerCreating"
    pod_sc = spec.get("securityContext") or {}
    init_statuses = [_container(c, view, default_reason, pod_sc, init=True) for c in inits]
    statuses = [_container(c, view, default_reason, pod_sc, init=False) for c in spec.get("containers") or []]
    started_any = any(_has_run(view, c["name"]) for c in spec.get("containers") or [])
    phase = _phase(spec, init_statuses, statuses, terminal=view.terminal, initialized=started_any)
    sandbox = view.sandbox
    # a finished pod's sandbox goes with it (kubelet writes that a moment later; we write once)
    conditions = [{"type": "PodReadyToStartContainers",
                   "status": _bool(sandbox is not None and sandbox.ready and phase not in TERMINAL)}]
    conditions.append(_initialized(inits, init_statuses, phase, started_any))
    ready = _containers_ready(inits, init_statuses, spec.get("containers") or [], statuses, phase)
    conditions.append(_ready(ready, spec.get("readinessGates") or [], pod.get("status") or {}))
    conditions.append(ready)
    conditions.append({"type": "PodScheduled", "status": "True"})
    status: Obj = {"phase": phase, "conditions": conditions,
                   "hostIP": view.host_ip, "hostIPs": [{"ip": view.host_ip}]}
    if sandbox is not None and sandbox.ip:
        status["podIP"], status["podIPs"] = sandbox.ip, [{"ip": sandbox.ip}]
    status["startTime"] = _time(view.start_time)
    if inits:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    generation = pod["metadata"].get("generation")
    if view.generation and generation is not None:
        status["observedGeneration"] = generation
        for c in conditions:
            c["observedGeneration"] = generation
    return status


def merge(old: Obj, new: Obj, now: float) -> Obj:
    """The stored status `old` with kubelet's `new` part: others' conditions stay (first, as
    kubelet's status manager puts them), transition times carry over while a condition's status
    does not change, a pod IP once reported stays (completed pods keep theirs)."""
    out = {**old, **new}
    if "podIP" not in new and old.get("podIP"):
        out["podIP"], out["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    before = {c.get("type"): c for c in old.get("conditions") or ()}
    stamp = _time(now)
    conditions = [c for c in old.get("conditions") or () if c.get("type") not in KUBELET_CONDITIONS]
    for c in new["conditions"]:
        prev = before.get(c["type"])
        same = prev is not None and prev.get("status") == c["status"]
        # (`lastProbeTime` is null in kubelet's conditions, which the store does not keep)
        conditions.append({**c, "lastTransitionTime": prev.get("lastTransitionTime", stamp) if same and prev else stamp})
    out["conditions"] = conditions
    return out


# -- containers ------------------------------------------------------------------------------


def _has_run(view: View, name: str) -> bool:
    rec = view.containers.get(name)
    return rec is not None and ((rec.current is not None and rec.current.started <= view.now)
                                or rec.previous is not None)


def _container(spec: Obj, view: View, default_reason: str, pod_sc: Obj, *, init: bool) -> Obj:
    now = view.now
    rec = view.containers.get(spec["name"])
    cur = rec.current if rec is not None else None
    out: Obj = {"name": spec["name"], "image": spec.get("image") or "", "imageID": "", "lastState": {},
                "ready": False, "restartCount": rec.restarts if rec is not None else 0, "started": False}
    if rec is not None and rec.previous is not None:
        out["lastState"] = {"terminated": _terminated(rec.previous)}
    if cur is None or now < cur.started:
        if cur is None and rec is not None and rec.waiting is not None and not view.terminal:
            reason, message = rec.waiting  # it could not be created (CreateContainerError ...)
            out["state"] = {"waiting": {"reason": reason, "message": message}}
            return out
        if view.terminal:
            out["state"] = {"terminated": {"exitCode": KILLED, "reason": "ContainerStatusUnknown",
                                           "message": _UNKNOWN_MESSAGE}}
        else:
            out["state"] = {"waiting": {"reason": default_reason}}
        return out
    out["containerID"] = "containerd://" + cur.id
    out["image"], out["imageID"] = cur.image, cur.image_id
    if cur.exited(now):
        terminated = _terminated(cur)
        if rec is not None and rec.waiting is not None and not view.terminal:
            reason, message = rec.waiting
            out["state"] = {"waiting": {"reason": reason, "message": message}}
            out["lastState"] = {"terminated": terminated}
        else:
            out["state"] = {"terminated": terminated}
            # a completed init container counts as ready
            out["ready"] = init and spec.get("restartPolicy") != "Always" and cur.exit_code == 0
    else:
        started_after, ready_after = probe_delays(spec)
        out["state"] = {"running": {"startedAt": _time(cur.started)}}
        started = cur.started_ok if cur.started_ok is not None else now >= cur.started + started_after
        ready = cur.ready if cur.ready is not None else now >= cur.started + ready_after
        out["started"] = started
        out["ready"] = started and ready and not cur.stopping
    _runtime_details(out, spec, view, pod_sc)
    return out


def _terminated(c: Container) -> Obj:
    reason = c.reason or ("Completed" if c.exit_code == 0 else "Error")
    out = {"containerID": "containerd://" + c.id, "exitCode": c.exit_code,
           "finishedAt": _time(c.exits if c.exits is not None else c.started),
           "reason": reason, "startedAt": _time(c.started)}
    if c.message:
        out["message"] = c.message
    return out


def _runtime_details(out: Obj, spec: Obj, view: View, pod_sc: Obj) -> None:
    """What kubelet adds for a container the runtime knows: resources, user, volume mounts."""
    resources = spec.get("resources")
    if resources:
        kept = {k: {r: q for r, q in (resources.get(k) or {}).items() if r in ("cpu", "memory")}
                for k in ("limits", "requests")}
        kept = {k: v for k, v in kept.items() if v}
        if kept:
            out["resources"] = kept
    if view.user:
        out["user"] = {"linux": _user(spec, pod_sc)}
    mounts = spec.get("volumeMounts")
    if mounts:
        out["volumeMounts"] = [
            {"name": m.get("name"), "mountPath": m.get("mountPath"),
             **({"readOnly": True, "recursiveReadOnly": "Disabled"} if m.get("readOnly") else {})}
            for m in mounts]


def _user(spec: Obj, pod_sc: Obj) -> Obj:
    # images run as root unless the pod says otherwise; the pod's groups come on top
    sc = spec.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser", 0))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", 0))
    groups = sorted({gid, *(pod_sc.get("supplementalGroups") or [])})
    return {"gid": gid, "supplementalGroups": groups, "uid": uid}


# -- phase and conditions --------------------------------------------------------------------


def _phase(spec: Obj, inits: list[Obj], statuses: list[Obj], *, terminal: bool, initialized: bool) -> str:
    """Upstream's `getPhase`, over the API container statuses just generated."""
    pending_init = pending_sidecar = failed_init = 0
    for c, st in zip(spec.get("initContainers") or [], inits, strict=True):
        state = st["state"]
        if c.get("restartPolicy") == "Always":
            pending_sidecar += "running" not in state
        elif "running" in state:
            pending_init += 1
        elif "terminated" in state:
            failed_init += state["terminated"]["exitCode"] != 0
        elif (st["lastState"].get("terminated") or {}).get("exitCode"):
            failed_init += 1
        elif "terminated" not in st["lastState"]:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for st in statuses:
        state = st["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "terminated" in st["lastState"]:
            stopped += 1
        else:
            waiting += 1
    policy = spec.get("restartPolicy") or "Always"
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or (pending_sidecar and not initialized) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"  # restarting
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _initialized(inits: list[Obj], statuses: list[Obj], phase: str, started_any: bool) -> Obj:
    incomplete = []
    for c, st in zip(inits, statuses, strict=True):
        state = st["state"]
        if c.get("restartPolicy") == "Always":
            if not st["started"]:
                incomplete.append(c["name"])
        elif (state.get("terminated") or {}).get("exitCode", 1) != 0:
            incomplete.append(c["name"])
    if phase == "Succeeded":
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if started_any or not incomplete:
        return {"type": "Initialized", "status": "True"}
    return {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
            "message": f"containers with incomplete status: {_go_list(incomplete)}"}


def _containers_ready(inits: list[Obj], init_statuses: list[Obj], containers: list[Obj],
                      statuses: list[Obj], phase: str) -> Obj:
    if phase in TERMINAL:
        return {"type": "ContainersReady", "status": "False",
                "reason": "PodCompleted" if phase == "Succeeded" else "PodFailed"}
    unready = [c["name"] for c, st in zip(inits, init_statuses, strict=True)
               if c.get("restartPolicy") == "Always" and not st["ready"]]
    unready += [st["name"] for st in statuses if not st["ready"]]
    if unready:
        return {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                "message": f"containers with unready status: {_go_list(unready)}"}
    return {"type": "ContainersReady", "status": "True"}


def _ready(containers_ready: Obj, gates: list[Obj], current: Obj) -> Obj:
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    have = {c.get("type"): c.get("status") for c in current.get("conditions") or ()}
    missing = []
    for gate in gates:
        kind = gate.get("conditionType")
        if kind not in have:
            missing.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif have[kind] != "True":
            missing.append(f'the status of pod readiness gate "{kind}" is not "True", but {have[kind]}')
    if missing:
        return {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady", "message": ", ".join(missing)}
    return {"type": "Ready", "status": "True"}


@functools.lru_cache(maxsize=1024)
def _second(second: int) -> str:
    return rfc3339(second)


def _time(ts: float) -> str:
    """`rfc3339`, memoized: the statuses of a busy node share their few distinct seconds."""
    return _second(int(ts))


def _bool(value: bool) -> str:
    return "True" if value else "False"


def _go_list(names: list[str]) -> str:
    """A string slice as Go's %s prints it: [a b]."""
    return "[" + " ".join(names) + "]"
