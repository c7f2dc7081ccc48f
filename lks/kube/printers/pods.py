"""The pod printer: READY, STATUS, RESTARTS and the wide columns of `kubectl get pods`.

STATUS is the column users watch most, and upstream derives it from many places: the phase or
status reason, a scheduling gate, the first unfinished init container (`Init:0/2`,
`Init:CrashLoopBackOff`, `Init:ExitCode:1`), the first app container with a waiting or
terminated reason (`CrashLoopBackOff`, `Completed`, `Error`), whether any container still runs,
and deletion (`Terminating`, or `Unknown` for a pod on a lost node). `_PodSummary` follows
kube-apiserver's `printPod` step by step, including sidecars (restartable init containers) that
count towards READY and RESTARTS. Succeeded and failed pods carry a `Completed` row condition.
"""

from __future__ import annotations

from collections.abc import Mapping

from lks.kube.printers import formats as f
from lks.kube.printers.base import AGE, NAME, Cells, Column, Doc, Printer

_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _restartable(container: Mapping | None) -> bool:
    """A sidecar: an init container with `restartPolicy: Always`."""
    return container is not None and container.get("restartPolicy") == "Always"


def _later(current: float | None, candidate: float | None) -> float | None:
    return candidate if candidate is not None and (current is None or current < candidate) else current


def _last_finished(status: Mapping) -> float | None:
    terminated = f.field(status, "lastState", "terminated")
    return f.parse_time(terminated.get("finishedAt")) if isinstance(terminated, Mapping) else None


def _terminated_reason(terminated: Mapping, prefix: str = "") -> str:
    if reason := f.text(terminated, "reason"):
        return prefix + reason
    if signal := f.number(terminated, "signal"):
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{f.number(terminated, 'exitCode')}"


class _PodSummary:
    """READY, STATUS and RESTARTS of a pod: upstream `printPod`'s bookkeeping, step by step."""

    def __init__(self, pod: Mapping):
        self.spec, self.status = f.mapping(pod, "spec"), f.mapping(pod, "status")
        self.conditions = f.items(self.status, "conditions")
        self.ready = 0
        self.restarts = 0
        self.last_restart: float | None = None
        phase = f.text(self.status, "phase")
        self.reason = f.text(self.status, "reason") or phase
        if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
               for c in self.conditions if isinstance(c, Mapping)):
            self.reason = "SchedulingGated"
        init_specs = f.items(self.spec, "initContainers")
        self.total = len(f.items(self.spec, "containers")) + sum(1 for c in init_specs if _restartable(c))
        initializing, sidecar_restarts, sidecar_last = self._init_containers(init_specs)
        if not initializing or f.condition_true(self.conditions, "Initialized"):
            # once initialized, only sidecars' restarts count alongside the app containers'
            self.restarts, self.last_restart = sidecar_restarts, sidecar_last
            self._containers()
        if f.deleting(pod) and f.text(self.status, "reason") == "NodeLost":
            self.reason = "Unknown"
        elif f.deleting(pod) and phase not in ("Failed", "Succeeded"):
            self.reason = "Terminating"

    def _init_containers(self, init_specs: list) -> tuple[bool, int, float | None]:
        by_name = {f.text(c, "name"): c for c in init_specs if isinstance(c, Mapping)}
        sidecar_restarts, sidecar_last = 0, None
        for i, cs in enumerate(f.items(self.status, "initContainerStatuses")):
            self.restarts += f.number(cs, "restartCount")
            finished = _last_finished(cs)
            self.last_restart = _later(self.last_restart, finished)
            sidecar = _restartable(by_name.get(f.text(cs, "name")))
            if sidecar:
                sidecar_restarts += f.number(cs, "restartCount")
                sidecar_last = _later(sidecar_last, finished)
            terminated, waiting = f.field(cs, "state", "terminated"), f.field(cs, "state", "waiting")
            if isinstance(terminated, Mapping) and f.number(terminated, "exitCode") == 0:
                continue
            if sidecar and cs.get("started") is True:
                self.ready += cs.get("ready") is True
                continue
            # the first init container that has not finished decides the status
            if isinstance(terminated, Mapping):
                self.reason = _terminated_reason(terminated, "Init:")
            elif isinstance(waiting, Mapping) and f.text(waiting, "reason") not in ("", "PodInitializing"):
                self.reason = "Init:" + f.text(waiting, "reason")
            else:
                self.reason = f"Init:{i}/{len(init_specs)}"
            return True, sidecar_restarts, sidecar_last
        return False, sidecar_restarts, sidecar_last

    def _containers(self) -> None:
        has_running, error_reason = False, ""
        # backwards, so the first container with a waiting/terminated reason wins
        for cs in reversed(f.items(self.status, "containerStatuses")):
            self.restarts += f.number(cs, "restartCount")
            self.last_restart = _later(self.last_restart, _last_finished(cs))
            state = f.mapping(cs, "state")
            terminated = state.get("terminated")
            if isinstance(state.get("waiting"), Mapping) and f.text(state, "waiting", "reason"):
                self.reason = f.text(state, "waiting", "reason")
            elif isinstance(terminated, Mapping):
                self.reason = _terminated_reason(terminated)
                if f.number(terminated, "exitCode") != 0:
                    error_reason = self.reason
            elif cs.get("ready") is True and isinstance(state.get("running"), Mapping):
                has_running = True
                self.ready += 1
        # one container completing does not make a pod with others still running "Completed"
        if self.reason == "Completed":
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in self.conditions if isinstance(c, Mapping))
            if has_running and pod_ready:
                self.reason = "Running"
            elif error_reason:
                self.reason = error_reason
            elif has_running:
                self.reason = "NotReady"

    def restarts_cell(self, now: float) -> str:
        if self.restarts and self.last_restart is not None:
            return f"{self.restarts} ({f.since(self.last_restart, now)} ago)"
        return str(self.restarts)


def _pod_ip(status: Mapping) -> str:
    # v1 -> internal conversion: podIP is authoritative, podIPs fill in when it is empty
    ips = f.items(status, "podIPs")
    return f.text(status, "podIP") or (f.text(ips[0], "ip") if ips else "")


def _readiness_gates(spec: Mapping, conditions: list) -> str:
    gates = f.items(spec, "readinessGates")
    if not gates:
        return "<none>"
    true = sum(1 for g in gates if f.condition_true(conditions, f.text(g, "conditionType")))
    return f"{true}/{len(gates)}"


def _pod_cells(pod: Mapping, now: float) -> Cells:
    s = _PodSummary(pod)
    return [f.name(pod), f"{s.ready}/{s.total}", s.reason, s.restarts_cell(now), f.age(pod, now),
            f.or_placeholder(_pod_ip(s.status)), f.or_placeholder(f.text(s.spec, "nodeName")),
            f.or_placeholder(f.text(s.status, "nominatedNodeName")), _readiness_gates(s.spec, s.conditions)]


def _pod_conditions(pod: Mapping) -> list[dict] | None:
    phase = f.text(pod, "status", "phase")
    return _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else None


POD = Printer((
    NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                   "and when the last container in this pod has restarted."),
    AGE,
    Column("IP", description=Doc("core.PodStatus", "podIP"), priority=1),
    Column("Node", description=Doc("core.PodSpec", "nodeName"), priority=1),
    Column("Nominated Node", description=Doc("core.PodStatus", "nominatedNodeName"), priority=1),
    Column("Readiness Gates", description=Doc("core.PodSpec", "readinessGates"), priority=1),
), _pod_cells, _pod_conditions)
