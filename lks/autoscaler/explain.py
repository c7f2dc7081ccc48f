"""The autoscaler explaining itself (beyond AKS, whose autoscaler only logs it): what the last
scan of a cluster concluded, in words a user can act on. Per pending pod the reasons each
autoscaled pool gave for not taking it (the scheduler's own filter wording, as upstream's
`NotTriggerScaleUp` Event has it); per node of an autoscaled pool why it stays, in the words of
upstream's drainability rules and scale-down checks, or how long until it goes.

`lks.autoscaler.autoscaler` keeps the scan's findings (`ClusterState`); `report` reads them;
the management API serves the result as `managedClusters/{name}/autoscalerStatus/default`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.autoscaler import groups, scaledown, scaleup, status

if TYPE_CHECKING:
    from lks.autoscaler.autoscaler import ClusterState

Doc = dict[str, Any]

# Why a node stays, for each reason `scaledown.find_unneeded` gives (upstream's wording, with
# the pod or the figures in place).
_NODE = {
    "ScaleDownDisabledAnnotation": f"the node is marked as no scale down ({scaledown.SCALE_DOWN_DISABLED}=true)",
    "NotSafeToEvictAnnotation": "pod annotated as not safe to evict present: {pod}",
    "NotEnoughPdb": "not enough pod disruption budget to move {pod}",
    "NotReplicated": "{pod} is not replicated",
    "UnmovableKubeSystemPod": "non-daemonset, non-mirrored, non-pdb-assigned kube-system pod present: {pod}",
    "LocalStorageRequested": "pod with local storage present: {pod}",
    "NoPlaceToMovePods": "no place to move {pod}: it fits no other node",
}


def duration(seconds: float) -> str:
    """A duration as the profile spells them (`10m`, `1h`), with its parts when it has several: `9m30s`."""
    whole = max(int(seconds), 0)
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def unscanned(doc: Doc | None) -> Doc:
    """The answer before any scan: the cluster has no running autoscaled pool, is stopped, or
    waits for its first scan."""
    props = (doc or {}).get("properties") or {}
    if (props.get("powerState") or {}).get("code") == "Stopped":
        return {"state": "Stopped", "message": "The cluster is stopped: the cluster autoscaler does not scan it."}
    if doc is not None and not groups.autoscaled(doc):
        return {"state": "NotAutoscaled", "message": "No agent pool of the cluster has the cluster autoscaler "
                "enabled (enableAutoScaling): there is nothing to explain."}
    return {"state": "NotScanned", "message": "The cluster autoscaler has not scanned the cluster yet; it does every "
            "scan-interval of the cluster's autoScalerProfile."}


def report(state: ClusterState, *, now: float) -> Doc:
    """The properties of the cluster's `autoscalerStatus`, from its last scan."""
    up = state.last_scale_up or scaleup.Result()
    healthy = state.cluster.health.status != "Unhealthy"
    if not healthy:
        message = ("The cluster is unhealthy (too many unready nodes: more than ok-total-unready-count and "
                   "max-total-unready-percentage allow): the autoscaler neither grows nor shrinks it.")
    elif up.increases:
        message = "The last scan grew " + ", ".join(f"{name} from {a} to {b}" for name, (a, b)
                                                    in sorted(up.increases.items())) + "."
    else:
        message = f"The last scan found {len(up.remaining)} pending pod(s) no pool can take."
    return {
        "state": "Scanned",
        "message": message,
        "lastScanTime": status.rfc3339(state.cluster.health.probed),
        "health": state.cluster.health.status,
        "scaleUp": [{"nodePool": name, "from": a, "to": b} for name, (a, b) in sorted(up.increases.items())],
        "pendingPods": [_pod(p.key, up) for p in up.remaining],
        "nodes": [_node(v, state, now) for v in state.last_verdicts],
    }


def _pod(key: str, up: scaleup.Result) -> Doc:
    namespace, _, name = key.partition("/")
    reasons = dict(up.rejected.get(key) or {})
    message = ("pod didn't trigger scale-up: " + scaleup.reasons_text(reasons) if reasons else
               "a pool could take it, but this scan grew another for other pods: the next scan looks again")
    return {"namespace": namespace, "name": name, "message": message, "reasons": reasons,
            "nodePools": [{"name": pool, "reasons": why} for pool, why in sorted((up.by_group.get(key) or {}).items())]}


def _node(v: scaledown.Verdict, state: ClusterState, now: float) -> Doc:
    out: Doc = {"name": v.node, "nodePool": v.group.name, "utilization": round(v.utilization, 3),
                "resource": v.resource, "ready": v.ready}
    reason, message = _why(v, state, now)
    out.update(removable=reason == "Unneeded", reason=reason, message=message)
    if v.blocking:
        out["blockingPod"] = v.blocking
    if v.node in state.unneeded:
        out["unneededSince"] = status.rfc3339(state.unneeded[v.node])
    return out


def _why(v: scaledown.Verdict, state: ClusterState, now: float) -> tuple[str, str]:
    """The node's reason code (upstream's UnremovableReason, or Unneeded) and its words."""
    settings = v.settings
    if v.reason == "NotUnderutilized":
        return v.reason, (f"{v.resource} requested ({v.utilization * 100:.3g}% of allocatable) is above the "
                          f"scale-down utilization threshold ({settings.scale_down_utilization_threshold * 100:.3g}%)")
    if v.reason is not None:
        return v.reason, _NODE.get(v.reason, v.reason).format(pod=v.blocking)
    since = state.unneeded.get(v.node)
    wait, key = ((settings.scale_down_unneeded_time, "scale-down-unneeded-time") if v.ready
                 else (settings.scale_down_unready_time, "scale-down-unready-time"))
    if since is None or now - since < wait:
        left = wait - (now - since) if since is not None else wait
        return ("NotUnneededLongEnough" if v.ready else "NotUnreadyLongEnough",
                f"{'unneeded' if v.ready else 'unready'} for less than {duration(wait)} ({key}): it can go in "
                f"{duration(left)}")
    if v.group.target <= v.group.min_size:
        return "NodeGroupMinSizeReached", f"node group min size reached (minCount {v.group.min_size})"
    for last, delay, key in ((state.last_add, settings.scale_down_delay_after_add, "scale-down-delay-after-add"),
                             (state.last_delete, settings.scale_down_delay_after_delete,
                              "scale-down-delay-after-delete"),
                             (state.last_failure, settings.scale_down_delay_after_failure,
                              "scale-down-delay-after-failure")):
        if now - last < delay:
            return "ScaleDownInCooldown", f"scale-down waits {duration(delay)} after the last one ({key})"
    return "Unneeded", "unneeded long enough: the next scan removes it"
