"""Compute resource rules (`pkg/apis/core/validation` and `pkg/apis/core/helper`): resource names,
quantity values, and requests against limits of a container's `resources`.
"""

from __future__ import annotations

import math
from typing import Any

from lks.kube.errors import Cause
from lks.kube.structural import Quantity, QuantityError, parse_quantity
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import is_qualified_name, mapping

_STANDARD = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims", "storage", "requests.storage",
    "services.nodeports", "services.loadbalancers",
}
_STANDARD_CONTAINER = {"cpu", "memory", "ephemeral-storage"}
_INTEGER = {"pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
            "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}


def quantity(value: Any) -> Quantity | None:
    """A quantity field's value; None when it does not parse (decoding reports that)."""
    try:
        return parse_quantity(value) if isinstance(value, (str, int, float)) else None
    except QuantityError:
        return None


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def container_resource_name(name: str, path: str) -> list[Cause]:
    """`validateContainerResourceName`."""
    causes = [field.invalid(path, name, m) for m in is_qualified_name(name)]
    if not causes and "/" not in name and name not in _STANDARD and not is_hugepages(name) \
            and not name.startswith("requests.hugepages-"):
        causes.append(field.invalid(path, name, "must be a standard resource type or fully qualified"))
    if "/" not in name:
        if name not in _STANDARD_CONTAINER and not is_hugepages(name):
            causes.append(field.invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        causes.append(field.invalid(path, name, "doesn't follow extended resource name standard"))
    return causes


def quantity_value(name: str, q: Quantity, path: str) -> list[Cause]:
    """`ValidateResourceQuantityValue`: not negative, whole for integer resources."""
    causes = [field.invalid(path, str(q), "must be greater than or equal to 0")] if q.value < 0 else []
    if (name in _INTEGER or is_extended(name)) and math.ceil(q.value * 1000) % 1000:  # MilliValue rounds up
        causes.append(field.invalid(path, str(q), "must be an integer"))
    return causes


def _hugepages_value(name: str, q: Quantity, path: str) -> list[Cause]:
    size = quantity(name[len("hugepages-"):])
    if size is None or size.value <= 0 or q.value % size.value:
        return [field.invalid(path, str(q), f"{q} is not positive integer multiple of {name}")]
    return []


def requirements(res: dict, path: str) -> list[Cause]:
    """`ValidateContainerResourceRequirements`."""
    causes: list[Cause] = []
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    limits = {k: quantity(v) for k, v in mapping(res, "limits").items()}
    has_compute = has_hugepages = False
    for name, q in limits.items():
        p = f"{lim_path}[{name}]"
        causes += container_resource_name(name, p)
        if q is None:
            continue
        causes += quantity_value(name, q, p)
        if is_hugepages(name):
            has_hugepages = True
            causes += _hugepages_value(name, q, p)
        has_compute = has_compute or name in ("cpu", "memory")
    for name, value in mapping(res, "requests").items():
        p = f"{req_path}[{name}]"
        causes += container_resource_name(name, p)
        q = quantity(value)
        if q is None:
            continue
        causes += quantity_value(name, q, p)
        limit = limits.get(name)
        if name in limits:
            if limit is None:
                pass
            elif q.value != limit.value and not overcommit_allowed(name):
                causes.append(field.invalid(req_path, str(q), f"must be equal to {name} limit of {limit}"))
            elif q.value > limit.value:
                causes.append(field.invalid(req_path, str(q), f"must be less than or equal to {name} limit of {limit}"))
        elif not overcommit_allowed(name):
            causes.append(field.required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepages(name):
            has_hugepages = True
            causes += _hugepages_value(name, q, p)
        has_compute = has_compute or name in ("cpu", "memory")
    if has_hugepages and not has_compute:
        causes.append(field.forbidden(path, "HugePages require cpu or memory"))
    return causes


def positive(value: Any, path: str) -> list[Cause]:
    """`ValidatePositiveQuantityValue`."""
    q = quantity(value)
    if q is not None and q.value <= 0:
        return [field.invalid(path, str(q), "must be greater than zero")]
    return []
