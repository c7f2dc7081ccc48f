"""Indexed Jobs (upstream's `pkg/controller/job/indexed_job_utils.go` and `success_policy.go`):
completion indexes as ordered intervals spelled `0-2,4`, the index each pod carries (the
`batch.kubernetes.io/job-completion-index` annotation and label, `JOB_COMPLETION_INDEX` in its
environment), which indexes succeeded, failed (`backoffLimitPerIndex`) or are still to run, the
per-index failure counts a replacement pod inherits, and the success policy.

`lks.controllers.job` decides with these; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from lks.controllers import job_util as ju
from lks.controllers import podcontrol

Obj = dict[str, Any]

INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # annotation and label
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def completion_index(pod: Obj) -> int:
    """getCompletionIndex: the pod's index annotation, or -1."""
    text = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
    try:
        ix = int(text) if text is not None else -1
    except ValueError:
        return -1
    return ix if ix >= 0 else -1


def valid_index(pod: Obj, completions: int) -> int:
    ix = completion_index(pod)
    return ix if 0 <= ix < completions else -1


def add_index_env(spec: Obj) -> None:
    """addCompletionIndexEnvVariables: JOB_COMPLETION_INDEX from the index annotation."""
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            env = container.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}})


def failure_count(pod: Obj, key: str = FAILURE_COUNT) -> int:
    try:
        return max(int((pod["metadata"].get("annotations") or {}).get(key, 0)), 0)
    except ValueError:
        return 0


def absolute_failures(pod: Obj) -> int:
    return failure_count(pod) + failure_count(pod, IGNORED_FAILURE_COUNT)


def inherit_failure_counts(job: Obj, annotations: Obj, replaced: Obj | None) -> None:
    """addIndexFailureCountAnnotation: the replacement carries its index's failure count."""
    failures = ignored = 0
    if replaced is not None:
        failures, ignored = failure_count(replaced), failure_count(replaced, IGNORED_FAILURE_COUNT)
        if ju.match_pod_failure_policy(job["spec"].get("podFailurePolicy"), replaced)[1]:
            failures += 1
        else:
            ignored += 1
    annotations[FAILURE_COUNT] = str(failures)
    if ignored:
        annotations[IGNORED_FAILURE_COUNT] = str(ignored)


# -- what an Indexed Job's pods say ---------------------------------------------------------------

def calculate(ctx: ju.SyncContext, now: float) -> None:
    """calculateSucceededIndexes / calculateFailedIndexes and what follows from them: the
    counts, the FailedIndexes / MaxFailedIndexesExceeded / SuccessPolicy outcomes, and the
    failed pods kept until their index is retried."""
    completions = ctx.completions or 0
    status, spec = ctx.status, ctx.spec
    ctx.prev_succeeded_indexes = ju.Indexes.parse(status.get("completedIndexes"), completions)
    fresh = [valid_index(p, completions) for p in ctx.pods if ju.phase(p) == "Succeeded" and ju.has_finalizer(p)]
    ctx.succeeded_indexes = ctx.prev_succeeded_indexes.with_indexes(ix for ix in fresh if ix >= 0)
    ctx.succeeded = ctx.succeeded_indexes.total()
    if spec.get("backoffLimitPerIndex") is not None:
        ctx.failed_indexes = ju.Indexes.parse(status.get("failedIndexes"), completions).with_indexes(
            ix for p in ctx.pods if index_failed(ctx.job, p) and (ix := valid_index(p, completions)) >= 0)
        if ctx.finished is None:
            max_failed = spec.get("maxFailedIndexes")
            if max_failed is not None and ctx.failed_indexes.total() > max_failed:
                ctx.finished = ju.new_condition("FailureTarget", "True", "MaxFailedIndexesExceeded",
                                                "Job has exceeded the specified maximal number of failed indexes", now)
            elif ctx.failed_indexes.total() and ctx.failed_indexes.total() + ctx.succeeded_indexes.total() >= completions:
                ctx.finished = ju.new_condition("FailureTarget", "True", "FailedIndexes", "Job has failed indexes", now)
        ctx.delayed = delayed_per_index(ctx, now)
    if ctx.finished is None:
        message = match_success_policy(spec.get("successPolicy"), completions, ctx.succeeded_indexes)
        if message is not None:
            ctx.finished = ju.new_condition("SuccessCriteriaMet", "True", "SuccessPolicy", message, now)


def index_failed(job: Obj, pod: Obj) -> bool:
    """isIndexFailed: the index has used up its backoffLimitPerIndex (or hit FailIndex)."""
    if not ju.is_pod_failed(pod, job):
        return False
    _, counts, action = ju.match_pod_failure_policy(job["spec"].get("podFailurePolicy"), pod)
    if action == "FailIndex":
        return True
    return counts and failure_count(pod) >= int(job["spec"]["backoffLimitPerIndex"])


def delayed_per_index(ctx: ju.SyncContext, now: float) -> dict[int, Obj]:
    """getPodsWithDelayedDeletionPerIndex: per pending index, its latest failed pod, whose
    finalizer stays until the replacement has inherited its failure count."""
    completions = ctx.completions or 0
    active = {valid_index(p, completions) for p in ctx.active}
    out: dict[int, Obj] = {}
    for pod in ctx.pods:
        if not ju.has_finalizer(pod) or not ju.is_pod_failed(pod, ctx.job):
            continue
        ix = valid_index(pod, completions)
        if ix < 0 or ctx.succeeded_indexes.has(ix) or ix in active or (
                ctx.failed_indexes is not None and ctx.failed_indexes.has(ix)):
            continue
        prev = out.get(ix)
        if prev is None or (absolute_failures(prev) <= absolute_failures(pod)
                            and ju.finished_time(pod, now) >= ju.finished_time(prev, now)):
            out[ix] = pod
    return out


def pending(ctx: ju.SyncContext, count: int) -> list[int]:
    """firstPendingIndexes: the lowest indexes neither succeeded, failed nor running."""
    completions = ctx.completions or 0
    taken = set(ctx.succeeded_indexes.values) | {valid_index(p, completions) for p in ctx.active}
    if ctx.failed_indexes is not None:
        taken |= set(ctx.failed_indexes.values)
    if ju.only_replace_failed(ctx.job):
        taken |= {valid_index(p, completions) for p in ctx.pods
                  if podcontrol.is_terminating(p) and not podcontrol.is_finished(p)}
    out: list[int] = []
    ix = 0
    while ix < completions and len(out) < count:
        if ix not in taken:
            out.append(ix)
        ix += 1
    return out


def ready_to_retry(ctx: ju.SyncContext, indexes: list[int], now: float) -> tuple[list[int], float]:
    """getPodCreationInfoForIndependentIndexes: the indexes whose own back-off is over, or
    else the shortest wait."""
    ready, waits = [], []
    for ix in indexes:
        last = ctx.delayed.get(ix)
        wait = 0.0 if last is None else ju.remaining_backoff(absolute_failures(last) + 1, ju.finished_time(last, now), now)
        if wait <= 0:
            ready.append(ix)
        else:
            waits.append(wait)
    return (ready, 0.0) if ready else ([], min(waits, default=0.0))


def duplicates(ctx: ju.SyncContext) -> tuple[list[Obj], list[Obj]]:
    """appendDuplicatedIndexPodsForRemoval: (active pods to remove because their index is out
    of range or run twice, the rest)."""
    remove: list[Obj] = []
    keep: list[Obj] = []
    by_index: dict[int, list[Obj]] = {}
    for pod in ctx.active:
        ix = valid_index(pod, ctx.completions or 0)
        if ix < 0:
            remove.append(pod)
        else:
            by_index.setdefault(ix, []).append(pod)
    for group in by_index.values():
        group.sort(key=ju.removal_key)
        remove.extend(group[:-1])
        keep.append(group[-1])
    return remove, keep


def match_success_policy(policy: Obj | None, completions: int, succeeded: ju.Indexes) -> str | None:
    """matchSuccessPolicy: the SuccessCriteriaMet message when a rule is met."""
    if not policy or not succeeded.total():
        return None
    done = set(succeeded.values)
    for i, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = ju.Indexes.parse(rule["succeededIndexes"], completions)
            if not required.total():
                continue
            hits = sum(1 for ix in required.values if ix in done)
            if hits == required.total() or (count is not None and hits >= count):
                return f"Matched rules at index {i}"
        elif count is not None and succeeded.total() >= count:
            return f"Matched rules at index {i}"
    return None
