"""Which fields each resource type lets a field selector use, and how to read them.

Every type supports `metadata.name` and `metadata.namespace`; the rest is the per-type list
upstream registers (`pkg/registry/<group>/<type>/strategy.go` `*ToSelectableFields` and the
conversion field-label funcs). Values are read from the object as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_COMMON = ("metadata.name", "metadata.namespace")

# (group, resource) -> extra selectable fields
_EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
    ),
    ("", "events"): (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
        "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
        "reason", "reportingController", "type",
    ),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "secrets"): ("type",),
    ("", "services"): ("spec.clusterIP", "spec.type"),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("", "persistentvolumes"): ("name",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
    ("certificates.k8s.io", "certificatesigningrequests"): ("spec.signerName",),
    ("resource.k8s.io", "resourceslices"): ("spec.nodeName", "spec.driver"),
}


def supported(group: str, resource: str) -> Callable[[str], bool]:
    allowed = set(_COMMON) | set(_EXTRA.get((group, resource), ()))
    return allowed.__contains__


def reader(obj: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A function giving the string value of a selectable field of `obj`."""

    def read(path: str) -> str | None:
        if path == "status.podIPs":  # upstream matches the first pod IP
            ips = (obj.get("status") or {}).get("podIPs") or []
            return ips[0].get("ip", "") if ips else ""
        if path == "source":  # core Event: source.component
            return ((obj.get("source") or {}).get("component")) or ""
        if path == "name":
            path = "metadata.name"
        cur: Any = obj
        for part in path.split("."):
            if not isinstance(cur, Mapping):
                cur = None
                break
            cur = cur.get(part)
        if cur is None:
            # upstream's selectable fields default to the zero value of their type
            return "false" if path in ("spec.unschedulable", "spec.hostNetwork") else "0" if path.endswith(
                ("replicas", "successful")) else ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return read
