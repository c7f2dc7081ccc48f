"""Defaults of the core/v1 kinds (`pkg/apis/core/v1/defaults.go` and its generated walk).

Pods and PodSpecs live in `pods`; this module holds the rest, plus the two fields the Service
REST storage fills while allocating (`ipFamilyPolicy`, `ipFamilies`) since every ClusterIP,
NodePort and LoadBalancer Service shows them. The cluster is single-stack IPv4, as AKS's
default networking is.
"""

from __future__ import annotations

import base64

from lks.kube.defaulting import pods
from lks.kube.defaulting._json import Obj, child, children, default, default_zero, is_zero, struct

_METADATA_NAME = "kubernetes.io/metadata.name"
_CLIENT_IP_TIMEOUT = 10800  # v1.DefaultClientIPServiceAffinitySeconds: three hours
_CLUSTER_FAMILY = "IPv4"


def pod_template(obj: Obj) -> None:
    pods.template(struct(obj, "template"))


def replication_controller(obj: Obj) -> None:
    spec = struct(obj, "spec")
    tmpl = child(spec, "template")  # a pointer here, unlike every other workload
    template_labels = child(child(tmpl, "metadata"), "labels")
    if template_labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(template_labels)
        metadata = struct(obj, "metadata")
        if not metadata.get("labels"):
            metadata["labels"] = dict(template_labels)
    default(spec, "replicas", 1)
    pods.template(tmpl)


def service(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default_zero(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)  # upstream clears it for None
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = child(child(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": _CLIENT_IP_TIMEOUT}}
    default_zero(spec, "type", "ClusterIP")
    for port in children(spec, "ports"):
        default_zero(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    kind = spec["type"]
    if kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and spec.get("externalIPs")):
        default_zero(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        default(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        default(spec, "allocateLoadBalancerNodePorts", True)
        for ingress in children(child(child(obj, "status"), "loadBalancer"), "ingress"):
            if not is_zero(ingress.get("ip")):
                default(ingress, "ipMode", "VIP")
    if kind != "ExternalName":
        _ip_families(spec)


def _ip_families(spec: Obj) -> None:
    """What the Service REST storage's `initIPFamilyFields` infers on a single-stack cluster."""
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    # upstream adopts the stored policy on update; a new object gets one of these
    default(spec, "ipFamilyPolicy", "RequireDualStack" if headless_selectorless else "SingleStack")
    families = spec.get("ipFamilies")
    if families is not None and not isinstance(families, list):
        return
    families = list(families or [])
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    for i, ip in enumerate(cluster_ips if isinstance(cluster_ips, list) else []):
        if ip == "None":
            break
        if i >= len(families) and isinstance(ip, str):
            families.append("IPv6" if ":" in ip else "IPv4")
    if not families:
        families = [_CLUSTER_FAMILY]
    # headless selectorless Services may name both families even on a single-stack cluster
    if headless_selectorless and len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


def secret(obj: Obj) -> None:
    default_zero(obj, "type", "Opaque")
    _merge_string_data(obj)


def _merge_string_data(obj: Obj) -> None:
    """`stringData` is write-only: upstream's conversion of a v1 Secret to its internal type
    writes each entry into `data` (over a `data` entry of the same key) and drops the field, so
    validation checks the merged keys and size and no reader ever sees `stringData`."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    merged = dict(data) if isinstance(data, dict) else {}
    for key, value in string_data.items():
        merged[key] = base64.b64encode(("" if value is None else str(value)).encode()).decode()
    obj["data"] = merged


def persistent_volume(obj: Obj) -> None:
    default_zero(struct(obj, "status"), "phase", "Pending")
    spec = struct(obj, "spec")
    default_zero(spec, "persistentVolumeReclaimPolicy", "Retain")
    default(spec, "volumeMode", "Filesystem")
    pods.volume_source(spec)


def persistent_volume_claim(obj: Obj) -> None:
    """Also the shape of a StatefulSet's volumeClaimTemplates, which get the same defaults."""
    default_zero(struct(obj, "status"), "phase", "Pending")
    default(struct(obj, "spec"), "volumeMode", "Filesystem")


def endpoints(obj: Obj) -> None:
    for subset in children(obj, "subsets"):
        for port in children(subset, "ports"):
            default_zero(port, "protocol", "TCP")


def namespace(obj: Obj) -> None:
    metadata = struct(obj, "metadata")
    name = metadata.get("name")
    if isinstance(name, str) and name:
        # unconditional upstream: the label always tells the namespace's real name
        struct(metadata, "labels")[_METADATA_NAME] = name
    default_zero(struct(obj, "status"), "phase", "Active")


def node(obj: Obj) -> None:
    status = child(obj, "status")
    capacity = child(status, "capacity")
    if status is not None and capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = dict(capacity)


def limit_range(obj: Obj) -> None:
    for item in children(child(obj, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        # a missing default limit is the max; a missing default request the limit, else the min
        limit = dict(child(item, "default") or {})
        for name, value in (child(item, "max") or {}).items():
            limit.setdefault(name, value)
        request = dict(child(item, "defaultRequest") or {})
        for source in (limit, child(item, "min") or {}):
            for name, value in source.items():
                request.setdefault(name, value)
        if limit:
            item["default"] = limit
        if request:
            item["defaultRequest"] = request


DEFAULTERS = {
    ("", "v1", "Pod"): pods.pod,
    ("", "v1", "PodTemplate"): pod_template,
    ("", "v1", "ReplicationController"): replication_controller,
    ("", "v1", "Service"): service,
    ("", "v1", "Secret"): secret,
    ("", "v1", "PersistentVolume"): persistent_volume,
    ("", "v1", "PersistentVolumeClaim"): persistent_volume_claim,
    ("", "v1", "Endpoints"): endpoints,
    ("", "v1", "Namespace"): namespace,
    ("", "v1", "Node"): node,
    ("", "v1", "LimitRange"): limit_range,
    # ConfigMap's default (`data: {}`) never shows: Go omits the empty map
}
