"""What the Job controller knows about Jobs and their pods, as pure helpers (upstream's
`pkg/controller/job`: `utils.go`, `pod_failure_policy.go`, `backoff_utils.go`, parts of
`job_controller.go`): conditions, completion-index intervals such as `0-2,4`, the view one
sync builds (`SyncContext`), which pods count as failed, the pod failure policy matcher, the
deadline and back-off-limit checks, the back-off record that delays replacements after
failures (10 s, doubling, 10 min at most), and the counters of the status.

`lks.controllers.job` decides with these, `lks.controllers.job_indexes` adds what is
particular to Indexed Jobs; nothing here writes.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lks.clock import rfc3339
from lks.controllers import replicaset_util as rsutil

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
BACKOFF_DEFAULT = 10.0  # DefaultJobPodFailureBackOff
BACKOFF_MAX = 600.0  # MaxJobPodFailureBackOff
CONTROLLER_NAME = "kubernetes.io/job-controller"


# -- conditions --------------------------------------------------------------------------------

def condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None


def is_true(job: Obj, type_: str) -> bool:
    cond = condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def is_finished(job: Obj) -> bool:
    """util.IsJobFinished: a Complete or Failed condition that is True."""
    return is_true(job, "Complete") or is_true(job, "Failed")


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    ts = rfc3339(now)
    return {"type": type_, "status": status, "lastProbeTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def ensure_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                     now: float) -> bool:
    """ensureJobConditionStatus: set the condition in place; False when nothing changed (a
    False condition is never added where none was)."""
    for i, cond in enumerate(conditions):
        if cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason", ""), cond.get("message", "")) == (status, reason, message):
                return False
            conditions[i] = new_condition(type_, status, reason, message, now)
            return True
    if status == "False":
        return False
    conditions.append(new_condition(type_, status, reason, message, now))
    return True


# -- completion indexes ------------------------------------------------------------------------

class Indexes:
    """orderedIntervals: a sorted set of completion indexes, spelled `1,3-5,7`."""

    def __init__(self, values: Iterable[int] = ()):
        self.values: list[int] = sorted(set(values))

    @classmethod
    def parse(cls, text: str | None, completions: int) -> Indexes:
        """parseIndexesFromString: indexes at or beyond `completions` are dropped."""
        out: set[int] = set()
        for part in (text or "").split(","):
            if not part:
                continue
            first, _, last = part.partition("-")
            try:
                lo, hi = int(first), int(last or first)
            except ValueError:
                continue
            out.update(range(lo, min(hi, completions - 1) + 1))
        return cls(out)

    def with_indexes(self, more: Iterable[int]) -> Indexes:
        return Indexes([*self.values, *more])

    def has(self, ix: int) -> bool:
        i = bisect.bisect_left(self.values, ix)
        return i < len(self.values) and self.values[i] == ix

    def total(self) -> int:
        return len(self.values)

    def __str__(self) -> str:
        parts: list[str] = []
        start = prev = None
        for v in self.values:
            if prev is not None and v == prev + 1:
                prev = v
                continue
            if start is not None:
                parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = v
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        return ",".join(parts)

@dataclass
class SyncContext:
    """syncJobCtx: what one sync has worked out about its Job (a private copy)."""

    job: Obj
    pods: list[Obj]
    active: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    succeeded: int = 0
    failed: int = 0
    finished: Obj | None = None  # the condition the Job is heading for
    backoff: Backoff = field(default_factory=lambda: Backoff())
    succeeded_indexes: Indexes = field(default_factory=Indexes)
    prev_succeeded_indexes: Indexes = field(default_factory=Indexes)
    failed_indexes: Indexes | None = None
    delayed: dict[int, Obj] = field(default_factory=dict)  # index -> failed pod kept for its count

    @property
    def spec(self) -> Obj:
        return self.job["spec"]

    @property
    def status(self) -> Obj:
        return self.job["status"]

    @property
    def indexed(self) -> bool:
        return self.spec.get("completionMode") == "Indexed"

    @property
    def completions(self) -> int | None:
        return self.spec.get("completions")


# -- pods ----------------------------------------------------------------------------------------

def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ())


def only_replace_failed(job: Obj) -> bool:
    """onlyReplaceFailedPods: podReplacementPolicy Failed (implied by a pod failure policy)."""
    spec = job["spec"]
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """isPodFailed: Failed, or (unless only failed pods are replaced) deleted before it
    succeeded, so that orphaned and evicted pods count too."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return "deletionTimestamp" in pod["metadata"] and phase(pod) != "Succeeded"


def finished_time(pod: Obj, now: float) -> float:
    """getFinishedTime: when the last container terminated (else the deletion, else now)."""
    status = pod.get("status") or {}
    latest = 0.0
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        latest = max(latest, rsutil.parse_time(terminated.get("finishedAt")))
    if latest:
        return latest
    deleted = rsutil.parse_time(pod["metadata"].get("deletionTimestamp"))
    return deleted or now


def restarts(pods: Iterable[Obj]) -> int:
    """The container restarts of running and pending pods (pastBackoffLimitOnFailure)."""
    total = 0
    for pod in pods:
        if phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
                total += int(cs.get("restartCount") or 0)
    return total


def removal_key(pod: Obj) -> tuple:
    """controller.ActivePods order, the pod to remove first first: unscheduled, pending,
    not ready, ready the shortest, most restarted, newest."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready = rsutil.is_ready(pod)
    restarts_ = max((int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or ()), default=0)
    return (bool(spec.get("nodeName")), {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0), ready,
            -rsutil.ready_since(pod) if ready else 0.0, -restarts_,
            -rsutil.parse_time(pod["metadata"].get("creationTimestamp")))


# -- policies -------------------------------------------------------------------------------------

def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> tuple[str | None, bool, str | None]:
    """matchPodFailurePolicy: (message failing the Job, whether the failure counts, action)."""
    for i, rule in enumerate((policy or {}).get("rules") or []):
        action = rule.get("action")
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if on_codes is not None:
            matched = _match_exit_codes(pod, on_codes)
            if matched is None:
                continue
            message = (f"Container {matched['name']} for pod {pod['metadata']['namespace']}/{pod['metadata']['name']} "
                       f"failed with exit code {matched['state']['terminated']['exitCode']} matching {action} "
                       f"rule at index {i}")
        elif on_conditions is not None:
            cond = _match_conditions(pod, on_conditions)
            if cond is None:
                continue
            message = (f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has condition "
                       f"{cond['type']} matching {action} rule at index {i}")
        else:
            continue
        if action == "Ignore":
            return None, False, action
        if action == "FailJob":
            return message, True, action
        return None, True, action  # Count, FailIndex
    return None, True, None


def _match_exit_codes(pod: Obj, req: Obj) -> Obj | None:
    status = pod.get("status") or {}
    values, op, name = set(req.get("values") or ()), req.get("operator"), req.get("containerName")
    for statuses in (status.get("containerStatuses") or (), status.get("initContainerStatuses") or ()):
        for cs in statuses:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is None or (name and cs.get("name") != name):
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and ((op == "In" and code in values) or (op == "NotIn" and code not in values)):
                return cs
    return None


def _match_conditions(pod: Obj, patterns: list[Obj]) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                return cond
    return None


# -- back-off ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class Backoff:
    """backoffRecord: failures since the last success and when the last one happened."""

    failures: int = 0
    last_failure: float = 0.0

    def remaining(self, now: float) -> float:
        return remaining_backoff(self.failures, self.last_failure, now)

    def after(self, succeeded: list[float], failed: list[float]) -> Backoff:
        """newBackoffRecord: the record once pods finishing at these times are counted."""
        if not succeeded:
            if not failed:
                return self
            return Backoff(self.failures + len(failed), max(failed))
        last_success = max(succeeded)
        later = sorted(t for t in failed if t > last_success)
        return Backoff(len(later), later[-1] if later else 0.0)


def remaining_backoff(failures: int, last_failure: float, now: float) -> float:
    """getRemainingTimeForFailuresCount: 10 s doubling per failure, 10 min at most, counted
    from the last failure."""
    if failures <= 0:
        return 0.0
    delay = BACKOFF_DEFAULT
    for _ in range(1, failures):
        delay *= 2
        if delay >= BACKOFF_MAX:
            delay = BACKOFF_MAX
            break
    return max(delay - (now - last_failure), 0.0)


# -- decisions ------------------------------------------------------------------------------------

def managed_elsewhere(job: Obj) -> bool:
    """spec.managedBy names another controller: this one leaves the Job alone."""
    managed_by = job["spec"].get("managedBy")
    return bool(managed_by) and managed_by != CONTROLLER_NAME


def fail_job_message(job: Obj, pods: list[Obj]) -> str | None:
    """getFailJobMessage: the message of a pod failure policy FailJob rule a pod matched."""
    policy = job["spec"].get("podFailurePolicy")
    if policy is None:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            message = match_pod_failure_policy(policy, pod)[0]
            if message is not None:
                return message
    return None


def past_backoff_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """pastBackoffLimitOnFailure: with restartPolicy OnFailure, restarts count as failures."""
    if ((job["spec"].get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    total, limit = restarts(pods), int(job["spec"].get("backoffLimit", 6))
    return total > 0 if limit == 0 else total >= limit


def past_deadline(job: Obj, now: float) -> bool:
    """pastActiveDeadline: active (not suspended) for activeDeadlineSeconds."""
    spec, status = job["spec"], job.get("status") or {}
    if spec.get("activeDeadlineSeconds") is None or not status.get("startTime") or spec.get("suspend"):
        return False
    return now - rsutil.parse_time(status["startTime"]) >= int(spec["activeDeadlineSeconds"])


# -- status ---------------------------------------------------------------------------------------

def set_count(status: Obj, field_: str, value: int) -> None:
    """An omitempty counter: absent when zero."""
    if value:
        status[field_] = value
    else:
        status.pop(field_, None)


def count_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: uncounted pods whose finalizer is gone move to
    the counters. Whether anything moved."""
    uncounted = status["uncountedTerminatedPods"]
    changed = False
    for kind in ("succeeded", "failed"):
        uids = uncounted.get(kind) or []
        keep = [u for u in uids if u in with_finalizer]
        if len(keep) != len(uids):
            changed = True
            set_count(status, kind, int(status.get(kind) or 0) + len(uids) - len(keep))
            if keep:
                uncounted[kind] = keep
            else:
                uncounted.pop(kind, None)
    return changed


def drop_finalizer(current: Obj) -> Obj:
    """A patch function removing the tracking finalizer."""
    finalizers = [f for f in current["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
    if finalizers:
        current["metadata"]["finalizers"] = finalizers
    else:
        current["metadata"].pop("finalizers", None)
    return current
