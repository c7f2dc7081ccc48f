"""Warnings kube-apiserver sends (as `Warning` headers, kubectl prints them) for accepted objects
that carry a pod template: upstream's `warningsForPodSpecAndMeta` for the cases clients meet,
a negative grace period (valid Go, treated as 1) and node labels deprecated for years.

`warnings` takes a group, kind and decoded object and returns the warning texts; the registry
adds them to the response of a create or update. A Pod's own negative grace period is already
1 by then (`lks.kube.defaulting.pods`), as upstream's conversion makes it, so only templates warn.
"""

from __future__ import annotations

from typing import Any

from lks.kube.typevalidation.common import get, mapping

# nodeapi.GetNodeLabelDeprecatedMessage
_DEPRECATED_NODE_LABELS = {
    "beta.kubernetes.io/arch": 'deprecated since v1.14; use "kubernetes.io/arch" instead',
    "beta.kubernetes.io/os": 'deprecated since v1.14; use "kubernetes.io/os" instead',
    "failure-domain.beta.kubernetes.io/region": 'deprecated since v1.17; use "topology.kubernetes.io/region" instead',
    "failure-domain.beta.kubernetes.io/zone": 'deprecated since v1.17; use "topology.kubernetes.io/zone" instead',
    "beta.kubernetes.io/instance-type": 'deprecated since v1.17; use "node.kubernetes.io/instance-type" instead',
}

# where each kind keeps its pod template (the Pod itself: its metadata and spec at the root)
_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "PodTemplate"): ("template",),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


def _pod_spec(spec: Any, path: str) -> list[str]:
    if not isinstance(spec, dict):
        return []
    out: list[str] = []
    for key in mapping(spec, "nodeSelector"):
        if key in _DEPRECATED_NODE_LABELS:
            out.append(f"{path}.nodeSelector[{key}]: {_DEPRECATED_NODE_LABELS[key]}")
    terms = get(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
    for i, term in enumerate(terms if isinstance(terms, list) else []):
        for j, expr in enumerate(get(term, "matchExpressions") or []):
            key = get(expr, "key")
            if key in _DEPRECATED_NODE_LABELS:
                out.append(f"{path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                           f".nodeSelectorTerms[{i}].matchExpressions[{j}].key: {key} is "
                           f"{_DEPRECATED_NODE_LABELS[key]}")
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool) and grace < 0:
        out.append(f"{path}.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be "
                   "treated as 1")
    return out


def warnings(group: str, kind: str, obj: dict) -> list[str]:
    """The warnings upstream gives for writing `obj`, a `group`/`kind` object."""
    where = _TEMPLATES.get((group, kind))
    if where is None:
        return []
    template = get(obj, *where) if where else obj
    prefix = ".".join(where)
    return _pod_spec(get(template, "spec"), f"{prefix}.spec" if prefix else "spec")
