"""HorizontalPodAutoscaler rules of upstream's `pkg/apis/autoscaling/validation/validation.go`,
for autoscaling/v1 and v2 objects: replica bounds, the scale target, metrics and behavior.
"""

from __future__ import annotations

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import get, items, mapping

METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
_SOURCES = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
            "ContainerResource": "containerResource"}


def _reference(ref: object, path: str) -> list[Cause]:
    """`ValidateCrossVersionObjectReference`."""
    causes: list[Cause] = []
    for key in ("kind", "name"):
        value = get(ref, key, default="")
        if not value:
            causes.append(field.required(f"{path}.{key}"))
        else:
            causes += [field.invalid(f"{path}.{key}", value, m) for m in validation.path_segment(value)]
    return causes


def _metric(spec: dict, path: str) -> list[Cause]:
    kind = spec.get("type") or ""
    causes: list[Cause] = []
    if not kind:
        causes.append(field.required(f"{path}.type", "must specify a metric source type"))
    present = [key for key in _SOURCES.values() if spec.get(key) is not None]
    expected = _SOURCES.get(kind)
    if expected is None:
        causes.append(field.not_supported(f"{path}.type", kind, METRIC_TYPES))
    elif spec.get(expected) is None:
        causes.append(field.required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        causes += [field.forbidden(f"{path}.{key}", "must populate the given metric source only")
                   for key in present if key != expected]
    return causes


def _scaling_rules(rules: object, path: str) -> list[Cause]:
    if not isinstance(rules, dict):
        return []
    causes: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int) and window < 0:
        causes.append(field.invalid(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"))
    if isinstance(window, int) and window > 3600:
        causes.append(field.invalid(f"{path}.stabilizationWindowSeconds", window, "must be less than or equal to 3600"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Disabled", "Max", "Min"):
        causes.append(field.not_supported(f"{path}.selectPolicy", select, ["Disabled", "Max", "Min"]))
    policies = items(rules, "policies")
    if not policies:
        causes.append(field.required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        p = f"{path}.policies[{i}]"
        if get(policy, "type") not in ("Pods", "Percent"):
            causes.append(field.not_supported(f"{p}.type", get(policy, "type", default=""), ["Percent", "Pods"]))
        for key in ("value", "periodSeconds"):
            value = get(policy, key, default=0)
            if value <= 0:
                causes.append(field.invalid(f"{p}.{key}", value, "must be greater than zero"))
        if get(policy, "periodSeconds", default=0) > 1800:
            causes.append(field.invalid(f"{p}.periodSeconds", policy["periodSeconds"], "must be less than or equal to 1800"))
    return causes


def _spec(spec: dict, lowest_min: int) -> list[Cause]:
    """`validateHorizontalPodAutoscalerSpec` (minReplicas defaults to 1)."""
    causes: list[Cause] = []
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
    if isinstance(low, int) and low < lowest_min:
        causes.append(field.invalid("spec.minReplicas", low, f"must be greater than or equal to {lowest_min}"))
    if high < 1:
        causes.append(field.invalid("spec.maxReplicas", high, "must be greater than 0"))
    if isinstance(low, int) and high < low:
        causes.append(field.invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    causes += _reference(mapping(spec, "scaleTargetRef"), "spec.scaleTargetRef")
    for i, metric in enumerate(items(spec, "metrics")):
        causes += _metric(metric if isinstance(metric, dict) else {}, f"spec.metrics[{i}]")
    target = spec.get("targetCPUUtilizationPercentage")  # autoscaling/v1
    if isinstance(target, int) and target < 1:
        causes.append(field.invalid("spec.metrics[0].resource.target.averageUtilization", target,
                                    "must be greater than 0"))
    for direction in ("scaleUp", "scaleDown"):
        causes += _scaling_rules(get(spec, "behavior", direction), f"spec.behavior.{direction}")
    return causes


def validate_hpa(obj: dict) -> list[Cause]:
    return _spec(mapping(obj, "spec"), 1)


def validate_hpa_update(new: dict, old: dict) -> list[Cause]:
    """An HPA that already scales to zero may keep doing so (HPAScaleToZero is off by default)."""
    return _spec(mapping(new, "spec"), 0 if get(old, "spec", "minReplicas") == 0 else 1)
