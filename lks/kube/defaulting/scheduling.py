"""Defaults of scheduling.k8s.io/v1 and of dynamic resource allocation (resource.k8s.io/v1):
a PriorityClass preempts by default, and a device request asks for exactly one device."""

from __future__ import annotations

from lks.kube.defaulting._json import Obj, child, children, default, default_zero, struct


def priority_class(obj: Obj) -> None:
    default(obj, "preemptionPolicy", "PreemptLowerPriority")


def resource_claim(obj: Obj) -> None:
    _claim_spec(child(obj, "spec"))


def resource_claim_template(obj: Obj) -> None:
    _claim_spec(child(struct(obj, "spec"), "spec"))


def _claim_spec(spec: Obj | None) -> None:
    for request in children(child(spec, "devices"), "requests"):
        if (exactly := child(request, "exactly")) is not None:
            _device_request(exactly)
        for sub in children(request, "firstAvailable"):
            _device_request(sub)


def _device_request(request: Obj) -> None:
    default_zero(request, "allocationMode", "ExactCount")
    if request["allocationMode"] == "ExactCount":
        default_zero(request, "count", 1)
    for toleration in children(request, "tolerations"):
        default_zero(toleration, "operator", "Equal")


DEFAULTERS = {
    ("scheduling.k8s.io", "v1", "PriorityClass"): priority_class,
    ("resource.k8s.io", "v1", "ResourceClaim"): resource_claim,
    ("resource.k8s.io", "v1", "ResourceClaimTemplate"): resource_claim_template,
}
