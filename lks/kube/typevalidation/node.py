"""RuntimeClass rules of upstream's `pkg/apis/node/validation`: a DNS-1123 label handler that
never changes, pod overhead checked as container limits, and scheduling constraints checked as a
pod's node selector and tolerations (listed once each).
"""

from __future__ import annotations

from typing import Any

from lks.kube.errors import Cause
from lks.kube.typevalidation import field, pod, resources
from lks.kube.typevalidation.common import dns_label, get, immutable, items, labels


def _toleration_value(t: Any) -> field.GoStruct:
    """A core.Toleration as a Duplicate error shows it (the internal struct has no JSON tags)."""
    return field.GoStruct([("Key", get(t, "key", default="")), ("Operator", get(t, "operator", default="")),
                           ("Value", get(t, "value", default="")), ("Effect", get(t, "effect", default="")),
                           ("TolerationSeconds", get(t, "tolerationSeconds"))])


def _tolerations(tols: list, path: str) -> list[Cause]:
    causes = pod.tolerations(tols, path)
    seen: set[tuple] = set()
    for i, t in enumerate(tols):  # the list key: key, operator, value and effect
        key = tuple(get(t, k, default="") for k in ("key", "operator", "value", "effect"))
        if key in seen:
            causes.append(field.duplicate(f"{path}[{i}]", _toleration_value(t)))
        seen.add(key)
    return causes


def validate_runtime_class(obj: dict) -> list[Cause]:
    causes = dns_label(obj.get("handler") or "", "handler")
    overhead = obj.get("overhead")
    if isinstance(overhead, dict):
        causes += resources.requirements({"limits": overhead.get("podFixed") or {}}, "overhead")
    scheduling = obj.get("scheduling")
    if isinstance(scheduling, dict):
        if scheduling.get("nodeSelector") is not None:
            causes += labels(scheduling["nodeSelector"], "scheduling.nodeSelector")
        causes += _tolerations(items(scheduling, "tolerations"), "scheduling.tolerations")
    return causes


def validate_runtime_class_update(new: dict, old: dict) -> list[Cause]:
    """Upstream checks only the metadata and the handler on update, not the new object's rules."""
    return immutable(new.get("handler") or "", old.get("handler") or "", "handler")
