"""PriorityClass rules of upstream's `pkg/apis/scheduling/validation`: user classes stay at or
below 1,000,000,000, the `system-` prefix belongs to the two built-in classes, and neither the
value nor the preemption policy changes afterwards.
"""

from __future__ import annotations

from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import IMMUTABLE, get

HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
# scheduling.SystemPriorityClasses: name -> value (neither is the global default)
SYSTEM_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
_PREEMPTION = ["PreemptLowerPriority", "Never"]


def _known_system_class(name: str, value: object, global_default: bool) -> str | None:
    """IsKnownSystemPriorityClass's error, or None."""
    if name not in SYSTEM_CLASSES:
        return f"{name} is not a known system priority class"
    if value != SYSTEM_CLASSES[name]:
        return f"value of {name} PriorityClass must be {SYSTEM_CLASSES[name]}"
    if global_default:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


def validate_priority_class(obj: dict) -> list[Cause]:
    name, value = get(obj, "metadata", "name", default=""), obj.get("value", 0)
    causes: list[Cause] = []
    if name.startswith(SYSTEM_PREFIX):
        err = _known_system_class(name, value, obj.get("globalDefault") is True)
        if err:
            causes.append(field.forbidden("metadata.name", f"priority class names with '{SYSTEM_PREFIX}' prefix are "
                                                           f"reserved for system use only. error: {err}"))
    elif isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
        causes.append(field.forbidden("value", f"maximum allowed value of a user defined priority is "
                                               f"{HIGHEST_USER_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in _PREEMPTION:
        causes.append(field.not_supported("preemptionPolicy", policy, _PREEMPTION))
    return causes


def validate_priority_class_update(new: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    if new.get("value", 0) != old.get("value", 0):
        causes.append(field.forbidden("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        causes.append(field.invalid("preemptionPolicy", new.get("preemptionPolicy"), IMMUTABLE))
    return causes
