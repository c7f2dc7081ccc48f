"""What a DaemonSet's pods look like and where they belong, as pure helpers (upstream's
`pkg/controller/daemon/util` and the predicates of `daemon_controller.go`): the tolerations
every daemon pod gets, the node affinity that pins a pod to its node for the scheduler, the
node a pod is meant for, whether a node should run the DaemonSet's pod (`Fit`), the template
a pod is made from (with the `controller-revision-hash` and `pod-template-generation`
labels), and which pods are up to date.

`lks.controllers.daemonset` decides with these; nothing here writes.
"""

from __future__ import annotations

import copy
from typing import Any

from lks.controllers import podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers.scheduler import terms
from lks.controllers.statefulset_util import scaled_value
from lks.kube import selectors

Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "DaemonSet"
HASH_LABEL = "controller-revision-hash"  # apps.DefaultDaemonSetUniqueLabelKey: the template's hash
GENERATION_LABEL = "pod-template-generation"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
BACKOFF_INITIAL, BACKOFF_MAX = 1.0, 900.0  # failed daemon pods: delete, then back off per node
BURST = 500  # pods created or deleted per sync at most (BurstReplicas)

_DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
_NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """AddOrUpdateDaemonPodTolerations: the pod spec's tolerations plus the daemon ones."""
    out = list(spec.get("tolerations") or [])
    extra = _DAEMON_TOLERATIONS + ([_NETWORK_UNAVAILABLE] if spec.get("hostNetwork") else [])
    for tol in extra:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"]
                   and (t.get("operator") or "Equal") == "Exists" for t in out):
            out.append(dict(tol))
    return out


def node_affinity_for(affinity: Obj | None, node: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node terms become one term
    pinning `metadata.name`; preferred terms and pod (anti-)affinity stay."""
    out = copy.deepcopy(affinity) if affinity else {}
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return out


def target_node(pod: Obj) -> str:
    """util.GetTargetNodeName: the node the pod is bound to, or the one its affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(field.get("values") or []) == 1:
                return field["values"][0]
    return ""


class Fit:
    """NodeShouldRunDaemonPod for one DaemonSet, its template compiled once per sync."""

    def __init__(self, ds: Obj):
        spec = (ds["spec"].get("template") or {}).get("spec") or {}
        self.node_name = spec.get("nodeName") or ""
        self.affinity = terms.NodeAffinity(spec)
        self.tolerations = daemon_tolerations(spec)

    def __call__(self, node: Obj) -> tuple[bool, bool]:
        """(should run, should continue running)."""
        name = node["metadata"]["name"]
        if self.node_name and self.node_name != name:
            return False, False
        if not self.affinity.matches(node["metadata"].get("labels") or {}, name):
            return False, False
        taints = (node.get("spec") or {}).get("taints") or []
        untolerated = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")
                       and not terms.tolerated(self.tolerations, t)]
        if untolerated:
            return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
        return True, True


def by_creation(pod: Obj) -> tuple:
    """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    return (not (pod.get("spec") or {}).get("nodeName"),
            rsutil.parse_time(pod["metadata"].get("creationTimestamp")), pod["metadata"]["name"])


def pod_template(ds: Obj, hash_: str) -> Obj:
    """util.CreatePodTemplate: the template with the daemon tolerations and the hash and
    template-generation labels."""
    template = copy.deepcopy(ds["spec"].get("template") or {})
    spec = template.setdefault("spec", {})
    spec["tolerations"] = daemon_tolerations(spec)
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        labels[GENERATION_LABEL] = generation
    labels[HASH_LABEL] = hash_
    return template


def allows_surge(ds: Obj) -> bool:
    strategy = ds["spec"].get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return strategy.get("type", "RollingUpdate") == "RollingUpdate" and scaled_value(
        rolling.get("maxSurge", 0), 1, round_up=True) > 0


def template_generation(ds: Obj) -> str | None:
    """The template generation pods are labelled with: the annotation upstream's DaemonSet
    strategy keeps, or (our API server does not set it) the object's generation."""
    annotation = (ds["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION)
    if annotation is not None:
        return annotation
    generation = ds["metadata"].get("generation")
    return str(generation) if generation is not None else None


def is_updated(ds: Obj, pod: Obj, hash_: str) -> bool:
    """util.IsPodUpdated, by the template hash (the generation label is advisory here)."""
    labels = pod["metadata"].get("labels") or {}
    annotation = (ds["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION)
    return labels.get(HASH_LABEL) == hash_ or (annotation is not None and labels.get(GENERATION_LABEL) == annotation)


def new_and_old(ds: Obj, pods: list[Obj], hash_: str) -> tuple[Obj | None, Obj | None] | None:
    """findUpdatedPodsOnNode: the node's updated and old pod; None with more than one of
    either (manage removes the extra first)."""
    new = old = None
    for pod in pods:
        if podcontrol.is_terminating(pod):
            continue
        if is_updated(ds, pod, hash_):
            if new is not None:
                return None
            new = pod
        else:
            if old is not None:
                return None
            old = pod
    return new, old


def selector(ds: Obj) -> selectors.LabelSelector:
    sel = ds["spec"].get("selector")
    if not sel:
        return selectors.LabelSelector([selectors.Requirement("", "exists")])  # nil selects nothing
    return selectors.from_label_selector_object(sel)
