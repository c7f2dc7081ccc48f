"""The replica calculator of the HorizontalPodAutoscaler (upstream's
`pkg/controller/podautoscaler/replica_calculator.go`): from the pods a target's selector picks
and their metrics, the replica count a resource metric proposes.

Pods are grouped as upstream's groupPods: deleted or failed pods are ignored, pending pods and
(for cpu) pods still starting up or never ready count as unready, pods without metrics as
missing. Within the tolerance (10 %, or the HPA's own per direction) nothing changes; otherwise, when pods are unready or missing,
the ratio is computed again with the missing pods at 100 % of their request (or at the target)
on a scale-down and 0 on a scale-up, the unready ones at 0 on a scale-up, and the change is
kept only if it still goes the same way. The controller
(`lks.controllers.horizontalpodautoscaler`) wraps the errors in upstream's words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lks.controllers.hpa_metrics import MetricsError, PodMetric
from lks.controllers.nodelifecycle_util import parse_time
from lks.controllers.scheduler import resources

Obj = dict[str, Any]

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay


@dataclass(frozen=True, slots=True)
class Tolerances:
    """How far below and above 1 the usage ratio may be before the count changes: the
    controller's 10 %, or an HPA's own `behavior.scaleDown/scaleUp.tolerance`."""

    down: float = TOLERANCE
    up: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        return 1.0 - self.down <= ratio <= 1.0 + self.up


DEFAULT_TOLERANCES = Tolerances()


@dataclass(frozen=True, slots=True)
class Proposal:
    replicas: int
    utilization: int | None  # percent of request (Utilization targets)
    raw: int  # average usage per pod, milli-units
    timestamp: float


def _time(value: Any) -> float | None:
    return parse_time(value) or None


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: float,
               ) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready, missing, ignored) as upstream's groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name, status = pod["metadata"]["name"], pod.get("status") or {}
        if "deletionTimestamp" in pod["metadata"] or status.get("phase") == "Failed":
            ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu" and _unready_cpu(status, metric, now):
            unready.add(name)
            continue
        ready += 1
    return ready, unready, missing, ignored


def _unready_cpu(status: Obj, metric: PodMetric, now: float) -> bool:
    condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    started = _time(status.get("startTime"))
    if condition is None or started is None:
        return True
    transition = _time(condition.get("lastTransitionTime")) or 0.0
    if started + CPU_INITIALIZATION_PERIOD > now:
        # still starting: unready, or no full window of metrics since it turned ready
        return condition.get("status") == "False" or metric.timestamp < transition + metric.window
    # unready and never ready since it started
    return condition.get("status") == "False" and started + INITIAL_READINESS_DELAY > transition


def pod_requests(pods: list[Obj], container: str, resource: str) -> dict[str, int]:
    """Each pod's request of `resource` in milli-units (its containers' and sidecars', or one
    container's); MetricsError for a container without one, as upstream's calculatePodRequests."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricsError(f"missing request for {resource} in container {c.get('name')} of Pod "
                                   f"{pod['metadata']['name']}")
            total += resources.milli(request)
        out[pod["metadata"]["name"]] = total
    return out


def _utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, raw average) as upstream's GetResourceUtilizationRatio."""
    total, requested, entities = 0, 0, 0
    for name, metric in metrics.items():
        if name in requests:
            total += metric.value
            requested += requests[name]
            entities += 1
    if requested == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = int(total * 100 / requested)
    return utilization / target, utilization, total // entities


def resource_replicas(current: int, target: int, resource: str, pods: list[Obj], metrics: dict[str, PodMetric],
                      container: str, now: float, tolerances: Tolerances = DEFAULT_TOLERANCES) -> Proposal:
    """Upstream's GetResourceReplicas: a Utilization target (percent of request)."""
    ready, unready, missing, metrics = _counted(pods, metrics, resource, now)
    requests = pod_requests(pods, container, resource)
    ratio, utilization, raw = _utilization_ratio(metrics, requests, target)
    timestamp = max((m.timestamp for m in metrics.values()), default=now)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tolerances.within(ratio):
            return Proposal(current, utilization, raw, timestamp)
        return Proposal(math.ceil(ratio * ready), utilization, raw, timestamp)
    if missing:
        if ratio < 1.0:  # a scale-down: the missing pods use their whole request (or the target)
            fallback = max(100, target)
            metrics.update({p: PodMetric(requests[p] * fallback // 100, now, 0.0) for p in missing})
        elif ratio > 1.0:  # a scale-up: they use nothing
            metrics.update({p: PodMetric(0, now, 0.0) for p in missing})
    if scale_up_with_unready:
        metrics.update({p: PodMetric(0, now, 0.0) for p in unready})
    new_ratio, _, _ = _utilization_ratio(metrics, requests, target)
    return _rebalanced(current, ratio, new_ratio, len(metrics), Proposal(current, utilization, raw, timestamp),
                       tolerances)


def _counted(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: float,
             ) -> tuple[int, set[str], set[str], dict[str, PodMetric]]:
    """The pods grouped as upstream's groupPods does, and the metrics that count (neither
    ignored nor unready); upstream's errors when there is nothing to count."""
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    counted = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not counted:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    return ready, unready, missing, counted


def _rebalanced(current: int, ratio: float, new_ratio: float, count: int, unchanged: Proposal,
                tolerances: Tolerances) -> Proposal:
    """The proposal once missing and unready pods are counted: none if it turned round."""
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return unchanged
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return unchanged
    return Proposal(replicas, unchanged.utilization, unchanged.raw, unchanged.timestamp)


def raw_replicas(current: int, target: int, resource: str, pods: list[Obj], metrics: dict[str, PodMetric],
                 now: float, tolerances: Tolerances = DEFAULT_TOLERANCES) -> Proposal:
    """Upstream's GetRawResourceReplicas (calcPlainMetricReplicas): an AverageValue target,
    `target` and the usage in milli-units."""
    ready, unready, missing, metrics = _counted(pods, metrics, resource, now)
    usage = sum(m.value for m in metrics.values()) // len(metrics)
    ratio = usage / target
    timestamp = max((m.timestamp for m in metrics.values()), default=now)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tolerances.within(ratio):
            return Proposal(current, None, usage, timestamp)
        return Proposal(math.ceil(ratio * ready), None, usage, timestamp)
    if missing:
        if ratio < 1.0:
            metrics.update({p: PodMetric(target, now, 0.0) for p in missing})
        else:
            metrics.update({p: PodMetric(0, now, 0.0) for p in missing})
    if scale_up_with_unready:
        metrics.update({p: PodMetric(0, now, 0.0) for p in unready})
    new_ratio = (sum(m.value for m in metrics.values()) / len(metrics)) / target
    return _rebalanced(current, ratio, new_ratio, len(metrics), Proposal(current, None, usage, timestamp), tolerances)
