"""How the HorizontalPodAutoscaler turns a metric's proposal into the replica count it sets
(upstream's normalizeDesiredReplicas and normalizeDesiredReplicasWithBehaviors in
`pkg/controller/podautoscaler/horizontal.go`): stabilization over the recent recommendations,
the scaling policies of `spec.behavior` (Pods / Percent per period, selectPolicy
Max / Min / Disabled) or, without one, the legacy limit (at most double, at least 4), and
min/max replicas, with the AbleToScale and ScalingLimited conditions each step leaves.

`History` is the controller's memory of one HPA (recommendations and scale events, on the
cluster clock); `normalize` reads and updates it. The controller
(`lks.controllers.horizontalpodautoscaler`) decides what to write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Condition = tuple[str, str, str, str]  # (type, status, reason, message)

DOWNSCALE_STABILIZATION = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


@dataclass
class ScaleEvent:
    change: int
    timestamp: float
    outdated: bool = False


@dataclass
class History:
    recommendations: list[list[float]] = field(default_factory=list)  # [replicas, timestamp]
    scale_up: list[ScaleEvent] = field(default_factory=list)
    scale_down: list[ScaleEvent] = field(default_factory=list)

    def record_initial(self, replicas: int, now: float) -> None:
        if not self.recommendations:
            self.recommendations.append([replicas, now])

    def store_scale_event(self, behavior: Obj | None, previous: int, new: int, now: float) -> None:
        """Upstream's storeScaleEvent: remembered only when a behavior will read it."""
        if behavior is None:
            return
        up = new > previous
        rules = behavior.get("scaleUp" if up else "scaleDown") or {}
        events = self.scale_up if up else self.scale_down
        longest = max((p.get("periodSeconds", 0) for p in rules.get("policies") or []), default=0)
        for e in events:
            if e.timestamp < now - longest:
                e.outdated = True
        event = ScaleEvent(abs(new - previous), now)
        for i, e in enumerate(events):
            if e.outdated:
                events[i] = event
                return
        events.append(event)


def _changes_in(period: float, events: list[ScaleEvent], now: float) -> int:
    return sum(e.change for e in events if e.timestamp > now - period)


def _stabilize(history: History, desired: int, now: float) -> int:
    """Upstream's stabilizeRecommendation (no behavior): the highest recommendation of the
    downscale window."""
    best = desired
    old = None
    for i, (replicas, ts) in enumerate(history.recommendations):
        if ts < now - DOWNSCALE_STABILIZATION:
            old = i
        elif replicas > best:
            best = int(replicas)
    if old is not None:
        history.recommendations[old] = [desired, now]
    else:
        history.recommendations.append([desired, now])
    return best


def normalize(history: History, current: int, desired: int, minimum: int, maximum: int, now: float,
              ) -> tuple[int, list[Condition]]:
    """Without a behavior: stabilize, then clamp to [min, min(max, the scale-up limit)]."""
    stabilized = _stabilize(history, desired, now)
    conditions: list[Condition] = []
    if stabilized != desired:
        conditions.append(("AbleToScale", "True", "ScaleDownStabilized",
                           "recent recommendations were higher than current one, applying the highest recent "
                           "recommendation"))
    else:
        conditions.append(("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"))
    limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if maximum > limit:
        top, reason, message = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    else:
        top, reason, message = maximum, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if stabilized < minimum:
        result, reason, message = minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    elif stabilized > top:
        result = top
    else:
        result, reason, message = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
    conditions.append(("ScalingLimited", "False" if result == stabilized else "True", reason, message))
    return result, conditions


def _stabilize_with_behavior(history: History, behavior: Obj, current: int, desired: int, now: float,
                             ) -> tuple[int, str, str]:
    """Upstream's stabilizeRecommendationWithBehaviors: the lowest recommendation of the
    scale-up window and the highest of the scale-down window bound the current count."""
    up_window = (behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds") or 0
    down_window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
    down_window = DOWNSCALE_STABILIZATION if down_window is None else down_window
    up_cutoff, down_cutoff = now - up_window, now - down_window
    up, down = desired, desired
    old = None
    for i, (replicas, ts) in enumerate(history.recommendations):
        if ts > up_cutoff:
            up = min(int(replicas), up)
        if ts > down_cutoff:
            down = max(int(replicas), down)
        if ts < up_cutoff and ts < down_cutoff:
            old = i
    recommendation = min(max(current, up), down)
    if old is not None:
        history.recommendations[old] = [desired, now]
    else:
        history.recommendations.append([desired, now])
    if desired >= current:
        return (recommendation, "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation")
    return (recommendation, "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation")


def _scale_up_limit(history: History, current: int, rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick, result = (min, math.inf) if select == "Min" else (max, -math.inf)
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 0)
        start = current - _changes_in(period, history.scale_up, now) + _changes_in(period, history.scale_down, now)
        if policy.get("type") == "Pods":
            proposed = start + policy.get("value", 0)
        else:  # Percent, rounded up so a small count still grows
            proposed = math.ceil(start * (1 + policy.get("value", 0) / 100))
        result = pick(result, proposed)
    return int(result) if math.isfinite(result) else current


def _scale_down_limit(history: History, current: int, rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick, result = (max, -math.inf) if select == "Min" else (min, math.inf)
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 0)
        start = current - _changes_in(period, history.scale_up, now) + _changes_in(period, history.scale_down, now)
        if policy.get("type") == "Pods":
            proposed = start - policy.get("value", 0)
        else:
            proposed = int(start * (1 - policy.get("value", 0) / 100))
        result = pick(result, proposed)
    return int(result) if math.isfinite(result) else current


def normalize_with_behavior(history: History, behavior: Obj, current: int, desired: int, minimum: int,
                            maximum: int, now: float) -> tuple[int, list[Condition]]:
    """With a behavior: stabilize over its windows, then limit by its policies and min/max."""
    stabilized, reason, message = _stabilize_with_behavior(history, behavior, current, desired, now)
    conditions: list[Condition] = []
    if stabilized != desired:
        conditions.append(("AbleToScale", "True", reason, message))
    else:
        conditions.append(("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"))
    result, reason, message = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
    if stabilized > current:
        limit = max(_scale_up_limit(history, current, behavior.get("scaleUp") or {}, now), current)
        if maximum > limit:
            top, why, text = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
        else:
            top, why, text = maximum, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        if stabilized > top:
            result, reason, message = top, why, text
    elif stabilized < current:
        limit = min(_scale_down_limit(history, current, behavior.get("scaleDown") or {}, now), current)
        if minimum < limit:
            bottom, why, text = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            bottom, why, text = minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        if stabilized < bottom:
            result, reason, message = bottom, why, text
    conditions.append(("ScalingLimited", "False" if result == stabilized else "True", reason, message))
    return result, conditions
