"""Defaults of networking.k8s.io/v1 and discovery.k8s.io/v1 (`pkg/apis/{networking,discovery}/v1/
defaults.go`). Ingress, IPAddress and ServiceCIDR have none: an Ingress path's `pathType` is
required in v1, not defaulted.
"""

from __future__ import annotations

from lks.kube.defaulting._json import Obj, child, children, default, is_zero, struct


def network_policy(obj: Obj) -> None:
    spec = struct(obj, "spec")
    for direction in ("ingress", "egress"):
        for rule in children(spec, direction):
            for port in children(rule, "ports"):
                default(port, "protocol", "TCP")
    # a policy that names no types is at least an ingress policy, and an egress one if it has
    # egress rules
    if is_zero(spec.get("policyTypes")):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def ingress_class(obj: Obj) -> None:
    default(child(child(obj, "spec"), "parameters"), "scope", "Cluster")


def endpoint_slice(obj: Obj) -> None:
    for port in children(obj, "ports"):
        default(port, "name", "")
        default(port, "protocol", "TCP")


DEFAULTERS = {
    ("networking.k8s.io", "v1", "NetworkPolicy"): network_policy,
    ("networking.k8s.io", "v1", "IngressClass"): ingress_class,
    ("discovery.k8s.io", "v1", "EndpointSlice"): endpoint_slice,
}
