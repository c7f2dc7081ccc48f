"""How a Deployment moves pods between its ReplicaSets (upstream's `sync.go`, `rolling.go`,
`recreate.go` and `progress.go`), as functions of the `DeploymentController` whose reads and
writes they use.

A scaling event (or any change while paused) resizes the active sets in proportion to the
size each was last sized for, so a scale neither hastens nor slows a rollout; the paused
and resumed Progressing conditions keep paused time from counting against the deadline.

RollingUpdate grows the new ReplicaSet while the total stays within `replicas + maxSurge`
and shrinks the old ones while the available pods stay above `replicas - maxUnavailable`,
unhealthy old pods first. Recreate scales every old set to zero, waits until their pods are
gone, then scales the new set up. Both end by writing the status with the Progressing
condition: NewReplicaSetAvailable once complete, ReplicaSetUpdated on every sign of
progress, ProgressDeadlineExceeded when none came within `progressDeadlineSeconds` (the
Deployment is looked at again when that deadline passes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.controllers import deployment_util as du
from lks.controllers.replicaset_util import parse_time
from lks.kube import deletion, errors

if TYPE_CHECKING:
    from lks.controllers.deployment import DeploymentController

Obj = dict[str, Any]


# -- scaling, pausing, history (sync.go) ---------------------------------------------------------


async def scale(dc: DeploymentController, d: Obj, new_rs: Obj | None, olds: list[Obj], rss: list[Obj]) -> None:
    """scale: bring the sets to the Deployment's size, proportionally across the active
    sets during a rollout, so a scale neither hastens nor slows the rollout."""
    latest = du.find_active_or_latest(new_rs, olds)
    if latest is not None:
        if du.replicas(latest) != du.replicas(d):
            await dc.scale_replica_set(latest, du.replicas(d), d, rss)
        return
    if du.is_saturated(d, new_rs):
        for old in du.filter_active(olds):
            await dc.scale_replica_set(old, 0, d, rss)
        return
    if not du.is_rolling_update(d):
        return
    active = du.filter_active([*olds, new_rs])
    allowed = du.replicas(d) + du.max_surge(d) if du.replicas(d) > 0 else 0
    to_add = allowed - du.sum_spec(active)
    operation = ""
    if to_add > 0:
        active, operation = du.by_size_newer(active), "up"
    elif to_add < 0:
        active, operation = du.by_size_older(active), "down"
    added = 0
    sizes: dict[str, int] = {}
    for rs in active:
        if to_add:
            proportion = du.get_proportion(rs, d, to_add, added)
            sizes[rs["metadata"]["uid"]] = du.replicas(rs) + proportion
            added += proportion
        else:
            sizes[rs["metadata"]["uid"]] = du.replicas(rs)
    for i, rs in enumerate(active):
        uid = rs["metadata"]["uid"]
        if i == 0 and to_add:
            # leftovers go to the largest set
            sizes[uid] = max(sizes[uid] + to_add - added, 0)
        await dc.scale_replica_set(rs, sizes[uid], d, rss, operation)


async def sync_scale(dc: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    """sync: a paused Deployment or a scaling event only scales (and a paused one cleans up)."""
    new_rs, olds = await dc.get_all_replica_sets(d, rss, create=False)
    await scale(dc, d, new_rs, olds, rss)
    new_rs, olds = current(new_rs, olds, rss)
    if d["spec"].get("paused"):
        await cleanup(dc, d, olds)
    await dc.sync_status(d, [*olds, new_rs], new_rs)


async def is_scaling_event(dc: DeploymentController, d: Obj, rss: list[Obj]) -> bool:
    """Whether an active set was sized for another `spec.replicas` (its desired-replicas)."""
    new_rs, olds = await dc.get_all_replica_sets(d, rss, create=False)
    for rs in du.filter_active([*olds, new_rs]):
        desired = du.desired_replicas_annotation(rs)
        if desired is not None and desired != du.replicas(d):
            return True
    return False


async def check_paused_conditions(dc: DeploymentController, d: Obj) -> None:
    """A paused (or resumed) Deployment gets an Unknown Progressing condition, so the time
    spent paused never counts against its progress deadline."""
    if not du.has_progress_deadline(d):
        return
    cond = du.get_condition(d.get("status"), "Progressing")
    if cond is not None and cond.get("reason") == du.TIMED_OUT:
        return
    paused_cond = cond is not None and cond.get("reason") == du.PAUSED
    now = dc.cluster.clock.now()
    status = du.clone(d.get("status") or {})
    if d["spec"].get("paused") and not paused_cond:
        du.set_condition(status, du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused", now))
    elif not d["spec"].get("paused") and paused_cond:
        du.set_condition(status, du.new_condition("Progressing", "Unknown", du.RESUMED, "Deployment is resumed", now))
    else:
        return
    await dc.write_status(d, status)


async def cleanup(dc: DeploymentController, d: Obj, olds: list[Obj]) -> None:
    """cleanupDeployment: delete the oldest empty sets beyond revisionHistoryLimit."""
    if not du.has_revision_history_limit(d):
        return
    alive = [rs for rs in olds if "deletionTimestamp" not in rs["metadata"]]
    diff = len(alive) - int(d["spec"]["revisionHistoryLimit"])
    if diff <= 0:
        return
    for rs in du.by_revision(alive)[:diff]:
        status = rs.get("status") or {}
        if (int(status.get("replicas") or 0) != 0 or du.replicas(rs) != 0
                or rs["metadata"].get("generation", 0) > int(status.get("observedGeneration") or 0)):
            continue
        try:
            await dc.sets.delete(rs["metadata"].get("namespace"), rs["metadata"]["name"],
                                   deletion.DeleteOptions(preconditions={"uid": rs["metadata"]["uid"]}))
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise


# -- RollingUpdate ----------------------------------------------------------------------------


async def rollout_rolling(dc: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    """rolloutRolling: scale up if we can, else scale down if we can, then report."""
    new_rs, olds = await dc.get_all_replica_sets(d, rss, create=True)
    assert new_rs is not None
    if await _reconcile_new(dc, d, new_rs, olds, rss):
        await sync_rollout_status(dc, d, rss, new_rs)
        return
    new_rs, olds = current(new_rs, olds, rss)
    if await _reconcile_old(dc, d, new_rs, olds, rss):
        await sync_rollout_status(dc, d, rss, new_rs)
        return
    new_rs, olds = current(new_rs, olds, rss)
    if du.deployment_complete(d, d.get("status") or {}):
        await cleanup(dc, d, olds)
    await sync_rollout_status(dc, d, rss, new_rs)


async def _reconcile_new(dc: DeploymentController, d: Obj, new_rs: Obj, olds: list[Obj], rss: list[Obj]) -> bool:
    """reconcileNewReplicaSet: grow the new set within maxSurge (or trim it to size)."""
    want = du.replicas(d)
    if du.replicas(new_rs) == want:
        return False
    if du.replicas(new_rs) > want:
        scaled, _ = await dc.scale_replica_set(new_rs, want, d, rss)
        return scaled
    count = du.new_rs_new_replicas(d, [*olds, new_rs], new_rs)
    scaled, _ = await dc.scale_replica_set(new_rs, count, d, rss)
    return scaled


async def _reconcile_old(dc: DeploymentController, d: Obj, new_rs: Obj, olds: list[Obj], rss: list[Obj]) -> bool:
    """reconcileOldReplicaSets: shrink the old sets as far as availability allows.

    maxScaledDown = allPods - minAvailable - unavailable pods of the new set: the new set's
    unavailable pods must not let us remove available old ones (a crash-looping new template
    would otherwise take the old pods down with it)."""
    old_active = du.filter_active(olds)
    if du.sum_spec(old_active) == 0:
        return False
    all_pods = du.sum_spec([*old_active, new_rs])
    min_available = du.replicas(d) - du.max_unavailable(d)
    new_unavailable = du.replicas(new_rs) - int((new_rs.get("status") or {}).get("availableReplicas") or 0)
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    cleaned, old_active = await _cleanup_unhealthy(dc, d, old_active, max_scaled_down, rss)
    scaled = await _scale_down_old(dc, d, new_rs, old_active, rss)
    return cleaned + scaled > 0


async def _cleanup_unhealthy(dc: DeploymentController, d: Obj, olds: list[Obj], max_cleanup: int,
                             rss: list[Obj]) -> tuple[int, list[Obj]]:
    """cleanupUnhealthyReplicas: remove old pods that are not available first; they cost no
    availability (the ReplicaSet deletes not-ready pods before ready ones)."""
    total = 0
    out = []
    for rs in du.by_creation(olds):
        if total >= max_cleanup or du.replicas(rs) == 0:
            out.append(rs)
            continue
        available = int((rs.get("status") or {}).get("availableReplicas") or 0)
        if du.replicas(rs) == available:
            out.append(rs)
            continue
        count = min(max_cleanup - total, du.replicas(rs) - available)
        _, rs = await dc.scale_replica_set(rs, du.replicas(rs) - count, d, rss)
        total += count
        out.append(rs)
    return total, out


async def _scale_down_old(dc: DeploymentController, d: Obj, new_rs: Obj, olds: list[Obj], rss: list[Obj]) -> int:
    """scaleDownOldReplicaSetsForRollingUpdate: remove available old pods beyond minAvailable,
    oldest sets first."""
    min_available = du.replicas(d) - du.max_unavailable(d)
    available = du.sum_status([*olds, new_rs], "availableReplicas")
    if available <= min_available:
        return 0
    budget = available - min_available
    total = 0
    for rs in du.by_creation(olds):
        if total >= budget:
            break
        if du.replicas(rs) == 0:
            continue
        count = min(du.replicas(rs), budget - total)
        await dc.scale_replica_set(rs, du.replicas(rs) - count, d, rss)
        total += count
    return total


# -- Recreate ---------------------------------------------------------------------------------


async def rollout_recreate(dc: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    """rolloutRecreate: old sets to zero, wait for their pods to be gone, then the new set."""
    new_rs, olds = await dc.get_all_replica_sets(d, rss, create=False)
    scaled = False
    for rs in du.filter_active(olds):
        did, _ = await dc.scale_replica_set(rs, 0, d, rss)
        scaled = scaled or did
    new_rs, olds = current(new_rs, olds, rss)
    if scaled or _old_pods_running(dc, new_rs, olds):
        await sync_rollout_status(dc, d, rss, new_rs)
        return
    if new_rs is None:
        new_rs, olds = await dc.get_all_replica_sets(d, rss, create=True)
        assert new_rs is not None
    await dc.scale_replica_set(new_rs, du.replicas(d), d, rss)
    new_rs, olds = current(new_rs, olds, rss)
    if du.deployment_complete(d, d.get("status") or {}):
        await cleanup(dc, d, olds)
    await sync_rollout_status(dc, d, rss, new_rs)


def _old_pods_running(dc: DeploymentController, new_rs: Obj | None, olds: list[Obj]) -> bool:
    """oldPodsRunning: any old set still counts pods, or any pod of an old set is not finished
    (terminating pods included: Recreate means no overlap)."""
    if du.sum_status(olds, "replicas") > 0:
        return True
    for pods in dc.pod_map(olds).values():
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


# -- progress ---------------------------------------------------------------------------------


async def sync_rollout_status(dc: DeploymentController, d: Obj, rss: list[Obj], new_rs: Obj | None) -> None:
    """syncRolloutStatus: the status with the Progressing and ReplicaFailure conditions."""
    new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
    new_rs, olds = current(new_rs, [r for r in rss if r["metadata"]["uid"] != new_uid], rss)
    all_rss: list[Obj | None] = [*olds, new_rs]
    now = dc.cluster.clock.now()
    status = du.calculate_status(all_rss, new_rs, d, now)
    if not du.has_progress_deadline(d):
        du.remove_condition(status, "Progressing")
    progressing = du.get_condition(d.get("status"), "Progressing")
    complete_before = (_int(status, "replicas") == _int(status, "updatedReplicas") and progressing is not None
                       and progressing.get("reason") == du.NEW_RS_AVAILABLE)
    if du.has_progress_deadline(d) and not complete_before:
        name = d["metadata"]["name"]
        if du.deployment_complete(d, status):
            msg = (f'ReplicaSet "{new_rs["metadata"]["name"]}" has successfully progressed.' if new_rs is not None
                   else f'Deployment "{name}" has successfully progressed.')
            du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, msg, now))
        elif du.deployment_progressing(d, status):
            msg = (f'ReplicaSet "{new_rs["metadata"]["name"]}" is progressing.' if new_rs is not None
                   else f'Deployment "{name}" is progressing.')
            cond = du.new_condition("Progressing", "True", du.RS_UPDATED, msg, now)
            # progress refreshes lastUpdateTime even with the same reason; the transition time
            # stays while the condition stays True
            if progressing is not None:
                if progressing.get("status") == "True":
                    cond["lastTransitionTime"] = progressing.get("lastTransitionTime")
                du.remove_condition(status, "Progressing")
            du.set_condition(status, cond)
        elif du.deployment_timed_out(d, status, now):
            msg = (f'ReplicaSet "{new_rs["metadata"]["name"]}" has timed out progressing.' if new_rs is not None
                   else f'Deployment "{name}" has timed out progressing.')
            du.set_condition(status, du.new_condition("Progressing", "False", du.TIMED_OUT, msg, now))
    failure = _replica_failure(all_rss, new_rs)
    if failure is not None:
        du.set_condition(status, failure)
    else:
        du.remove_condition(status, "ReplicaFailure")
    if du.omit_empty(status) == (d.get("status") or {}):
        _requeue_stuck(dc, d, status, now)
        return
    await dc.write_status(d, status)


def _int(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def _replica_failure(all_rss: list[Obj | None], new_rs: Obj | None) -> Obj | None:
    """getReplicaFailures: the new set's ReplicaFailure condition, else an old set's."""
    for rs in [new_rs, *all_rss]:
        for c in ((rs or {}).get("status") or {}).get("conditions") or ():
            if c.get("type") == "ReplicaFailure":
                return {"type": "ReplicaFailure", "status": c.get("status"),
                        "lastUpdateTime": c.get("lastTransitionTime"), "lastTransitionTime": c.get("lastTransitionTime"),
                        "reason": c.get("reason"), "message": c.get("message")}
    return None


def _requeue_stuck(dc: DeploymentController, d: Obj, status: Obj, now: float) -> None:
    """requeueStuckDeployment: with no progress to report, look again when the deadline passes."""
    current = du.get_condition(d.get("status"), "Progressing")
    if not du.has_progress_deadline(d) or current is None:
        return
    if du.deployment_complete(d, status) or current.get("reason") == du.TIMED_OUT:
        return
    after = parse_time(current.get("lastUpdateTime")) + int(d["spec"]["progressDeadlineSeconds"]) - now
    # a second of slack against clock skew, as upstream
    dc.wakeups.schedule(dc.key_of(d), max(after, 0.0) + 1.0)


def current(new_rs: Obj | None, olds: list[Obj], rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The same sets, as `rss` now holds them (scale writes replaced some)."""
    by_uid = {rs["metadata"]["uid"]: rs for rs in rss}
    fresh_new = by_uid.get(new_rs["metadata"]["uid"], new_rs) if new_rs is not None else None
    return fresh_new, [by_uid.get(rs["metadata"]["uid"], rs) for rs in olds]
