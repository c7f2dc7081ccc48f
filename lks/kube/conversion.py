"""Conversion between the served versions of a resource that share storage.

Most resources are served in one version, or in versions with the same schema, and convert by
rewriting `apiVersion` ("None" conversion). The few that differ in shape get a converter here,
keyed by (from apiVersion, to apiVersion, kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Converter = Callable[[Obj], Obj]

_CONVERTERS: dict[tuple[str, str, str], Converter] = {}


def converter(src: str, dst: str, kind: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        _CONVERTERS[(src, dst, kind)] = fn
        return fn

    return register


def convert(obj: Obj, api_version: str) -> Obj:
    """`obj` in `api_version` (a new dict; `obj` is not changed)."""
    fn = _CONVERTERS.get((obj.get("apiVersion", ""), api_version, obj.get("kind", "")))
    out = fn(obj) if fn is not None else dict(obj)
    out["apiVersion"] = api_version
    return out


# -- core/v1 Event <-> events.k8s.io/v1 Event (stored as core/v1) -------------------------

_EVENT_RENAMES = (
    ("involvedObject", "regarding"), ("message", "note"), ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"), ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"), ("count", "deprecatedCount"),
)


@converter("v1", "events.k8s.io/v1", "Event")
def _core_to_events(obj: Obj) -> Obj:
    out = dict(obj)
    for core, events in _EVENT_RENAMES:
        if core in out:
            out[events] = out.pop(core)
    return out


@converter("events.k8s.io/v1", "v1", "Event")
def _events_to_core(obj: Obj) -> Obj:
    out = dict(obj)
    for core, events in _EVENT_RENAMES:
        if events in out:
            out[core] = out.pop(events)
    return out


# -- autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscaler (stored as v2) -------------

_CPU_TARGET = "targetCPUUtilizationPercentage"


@converter("autoscaling/v1", "autoscaling/v2", "HorizontalPodAutoscaler")
def _hpa_v1_to_v2(obj: Obj) -> Obj:
    out = dict(obj)
    spec = dict(obj.get("spec") or {})
    cpu = spec.pop(_CPU_TARGET, None)
    if cpu is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    current = status.pop("currentCPUUtilizationPercentage", None)
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    if status:
        out["status"] = status
    return out


@converter("autoscaling/v2", "autoscaling/v1", "HorizontalPodAutoscaler")
def _hpa_v2_to_v1(obj: Obj) -> Obj:
    out = dict(obj)
    spec = dict(obj.get("spec") or {})
    for metric in spec.pop("metrics", None) or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            spec[_CPU_TARGET] = (resource.get("target") or {}).get("averageUtilization")
    spec.pop("behavior", None)
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    for metric in status.pop("currentMetrics", None) or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            status["currentCPUUtilizationPercentage"] = (resource.get("current") or {}).get("averageUtilization")
    status.pop("conditions", None)
    if status or "status" in obj:
        out["status"] = status
    return out
