"""Lease rules of upstream's `pkg/apis/coordination/validation/validation.go`."""

from __future__ import annotations

from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import is_qualified_name, mapping

STRATEGIES = ["OldestEmulationVersion"]


def validate_lease(obj: dict) -> list[Cause]:
    """`ValidateLeaseSpec`."""
    spec = mapping(obj, "spec")
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(field.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(field.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None:
        if "/" not in strategy and strategy not in STRATEGIES:
            causes.append(field.not_supported("spec.strategy.strategy", strategy, STRATEGIES))  # sic: upstream path
        elif "/" in strategy:
            causes += [field.invalid("spec.strategy.strategy", strategy, m) for m in is_qualified_name(strategy)]
    if spec.get("preferredHolder") and not strategy:
        causes.append(field.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return causes
