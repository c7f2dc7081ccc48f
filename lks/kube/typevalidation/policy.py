"""PodDisruptionBudget rules of upstream's `pkg/apis/policy/validation/validation.go` (policy/v1).
PDBs are mutable since 1.15, so updates are checked like creates.
"""

from __future__ import annotations

from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import (
    label_selector,
    label_selector_value,
    mapping,
    not_more_than_100_percent,
    positive_int_or_percent,
)

EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]


def validate_pdb(obj: dict) -> list[Cause]:
    """`ValidatePodDisruptionBudgetSpec`."""
    spec = mapping(obj, "spec")
    causes: list[Cause] = []
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    if low is not None and high is not None:
        # the bad value is the internal spec struct, rendered by Go's JSON without tags
        shown = field.GoStruct(MinAvailable=low, Selector=label_selector_value(spec.get("selector")),
                               MaxUnavailable=high,
                               UnhealthyPodEvictionPolicy=spec.get("unhealthyPodEvictionPolicy"))
        causes.append(field.invalid("spec", shown, "minAvailable and maxUnavailable cannot be both set"))
    for key, value in (("minAvailable", low), ("maxUnavailable", high)):
        if value is not None:
            causes += positive_int_or_percent(value, f"spec.{key}")
            causes += not_more_than_100_percent(value, f"spec.{key}")
    causes += label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in EVICTION_POLICIES:
        causes.append(field.not_supported("spec.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES))
    return causes
