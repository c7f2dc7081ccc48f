"""The APIServices kube-apiserver registers for its own group-versions (upstream's autoregister
and CRD registration controllers): one local APIService per built-in group-version, created at
start (`kube-aggregator.kubernetes.io/automanaged: onstart`) with the priorities of upstream's
table, and one per served CRD version, kept in step with the CRDs (`automanaged: "true"`,
group priority 1000, version priority 100). `kubectl get apiservices` lists them as `Local`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
LABEL = "kube-aggregator.kubernetes.io/automanaged"

# upstream's apiVersionPriorities (cmd/kube-apiserver/app/aggregator.go and the generic table):
# (group priority, version priority)
PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15), ("events.k8s.io", "v1beta1"): (17750, 5),
    ("authentication.k8s.io", "v1"): (17700, 15), ("authentication.k8s.io", "v1beta1"): (17700, 9),
    ("authentication.k8s.io", "v1alpha1"): (17700, 1),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15), ("autoscaling", "v2"): (17500, 30),
    ("autoscaling", "v2beta1"): (17500, 9), ("autoscaling", "v2beta2"): (17500, 1),
    ("batch", "v1"): (17400, 15), ("batch", "v1beta1"): (17400, 9),
    ("certificates.k8s.io", "v1"): (17300, 15), ("certificates.k8s.io", "v1beta1"): (17300, 9),
    ("certificates.k8s.io", "v1alpha1"): (17300, 1),
    ("networking.k8s.io", "v1"): (17200, 15), ("networking.k8s.io", "v1beta1"): (17200, 9),
    ("networking.k8s.io", "v1alpha1"): (17200, 1),
    ("policy", "v1"): (17100, 15), ("policy", "v1beta1"): (17100, 9),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15), ("storage.k8s.io", "v1beta1"): (16800, 9),
    ("storage.k8s.io", "v1alpha1"): (16800, 1),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15), ("admissionregistration.k8s.io", "v1beta1"): (16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1"): (16700, 9),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15), ("coordination.k8s.io", "v1beta1"): (16500, 13),
    ("coordination.k8s.io", "v1alpha2"): (16500, 12),
    ("node.k8s.io", "v1"): (16300, 15), ("node.k8s.io", "v1beta1"): (16300, 9), ("node.k8s.io", "v1alpha1"): (16300, 1),
    ("discovery.k8s.io", "v1"): (16200, 15), ("discovery.k8s.io", "v1beta1"): (16200, 12),
    ("resource.k8s.io", "v1"): (16200, 21), ("resource.k8s.io", "v1beta2"): (16200, 15),
    ("resource.k8s.io", "v1beta1"): (16200, 9), ("resource.k8s.io", "v1alpha3"): (16200, 1),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21), ("flowcontrol.apiserver.k8s.io", "v1beta3"): (16100, 18),
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): (16100, 15), ("flowcontrol.apiserver.k8s.io", "v1beta1"): (16100, 12),
    ("internal.apiserver.k8s.io", "v1alpha1"): (16000, 9),
    ("storagemigration.k8s.io", "v1alpha1"): (15800, 9), ("storagemigration.k8s.io", "v1beta1"): (15800, 15),
    ("apiregistration.k8s.io", "v1"): (18000, 15), ("apiregistration.k8s.io", "v1beta1"): (18000, 9),
}
_UNLISTED = (15000, 9)  # a group-version the table does not know (newer than it)


def _apiservice(group: str, version: str, priorities: tuple[int, int], managed: str) -> Obj:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}", "labels": {LABEL: managed}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": priorities[0],
                     "versionPriority": priorities[1]}}


def builtin(cluster: Cluster) -> list[Obj]:
    """The `onstart` APIServices of the cluster's built-in group-versions."""
    out = []
    for group, versions in cluster.base_catalog.groups():
        for version in versions:
            known = PRIORITIES.get((group, version)) or next(
                ((p[0], _UNLISTED[1]) for (g, _), p in PRIORITIES.items() if g == group), _UNLISTED)
            out.append(_apiservice(group, version, known, "onstart"))
    return out


def for_crds(cluster: Cluster) -> dict[str, Obj]:
    """The `"true"` APIServices of the CRDs' served versions, by name."""
    out: dict[str, Obj] = {}
    builtin_groups = {g for g, _ in cluster.base_catalog.groups()}
    for crd in cluster.crds.values():
        spec = crd.get("spec") or {}
        group = spec.get("group") or ""
        if not group or group in builtin_groups:
            continue
        for v in spec.get("versions") or []:
            if v.get("served") and v.get("name"):
                svc = _apiservice(group, v["name"], (1000, 100), "true")
                out[svc["metadata"]["name"]] = svc
    return out
