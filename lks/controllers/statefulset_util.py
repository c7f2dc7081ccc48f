"""What a StatefulSet's pods and claims look like, as pure helpers (upstream's
`pkg/controller/statefulset/stateful_set_utils.go`): the ordinal identity of a pod
(`<set>-<ordinal>`, its hostname, the `statefulset.kubernetes.io/pod-name` and
`apps.kubernetes.io/pod-index` labels), its PersistentVolumeClaims from the
`volumeClaimTemplates` (`<claim>-<set>-<ordinal>`), the owner references the claim retention
policy asks for, and the pod predicates the ordered policies wait on.

`lks.controllers.statefulset` decides with these; nothing here writes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from lks.controllers import history
from lks.controllers import replicaset_util as rsutil

Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"  # apps.StatefulSetRevisionLabel: the revision's name
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# -- identity ------------------------------------------------------------------------------

def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("", -1) for a name that is not `<parent>-<ordinal>`."""
    m = _ORDINAL.match(pod["metadata"]["name"])
    if not m:
        return "", -1
    return m.group(1), int(m.group(2))


def ordinal(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def start_ordinal(sts: Obj) -> int:
    return int(((sts["spec"].get("ordinals") or {}).get("start")) or 0)


def in_range(sts: Obj, pod: Obj) -> bool:
    """podInOrdinalRange: the pod's ordinal is one the set's replicas currently span."""
    start = start_ordinal(sts)
    return start <= ordinal(pod) < start + int(sts["spec"].get("replicas", 1))


def pod_name(sts: Obj, ord_: int) -> str:
    return f"{sts['metadata']['name']}-{ord_}"


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ord_ = parent_and_ordinal(pod)
    labels = pod["metadata"].get("labels") or {}
    return (ord_ >= 0 and parent == sts["metadata"]["name"] and pod["metadata"]["name"] == pod_name(sts, ord_)
            and pod["metadata"].get("namespace") == sts["metadata"]["namespace"]
            and labels.get(POD_NAME_LABEL) == pod["metadata"]["name"] and labels.get(POD_INDEX_LABEL) == str(ord_))


def set_identity_labels(pod: Obj) -> None:
    labels = pod["metadata"].setdefault("labels", {})
    labels[POD_NAME_LABEL] = pod["metadata"]["name"]
    labels[POD_INDEX_LABEL] = str(ordinal(pod))


def revision_of(pod: Obj) -> str:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL, "")


def new_pod(sts: Obj, template: Obj, ord_: int, revision: str) -> Obj:
    """newStatefulSetPod from `template` (the current or the update revision's) at `revision`:
    the template's pod, named for its ordinal, with its identity and its claims' volumes."""
    ref = rsutil.new_controller_ref(sts, api_version=API_VERSION, kind=KIND)
    pod = rsutil.pod_from_template(template, sts["metadata"]["name"], ref)
    pod["metadata"]["name"] = pod_name(sts, ord_)
    pod["metadata"]["namespace"] = sts["metadata"]["namespace"]
    set_identity_labels(pod)
    pod["metadata"]["labels"][REVISION_LABEL] = revision
    spec = pod["spec"]
    spec["hostname"] = pod["metadata"]["name"]
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    claims = claims_for(sts, ord_)
    if claims:
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
        spec["volumes"] = [{"name": tmpl, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
                           for tmpl, claim in claims.items()] + volumes
    return pod


def versioned_pod(sts: Obj, current: Obj, update: Obj, ord_: int) -> Obj:
    """newVersionedStatefulSetPod: ordinals below the partition (or, without rollingUpdate,
    below the current replicas) are made at the current revision, the rest at the update."""
    strategy = sts["spec"].get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    start = start_ordinal(sts)
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and (
        (rolling is None and ord_ < start + int((sts.get("status") or {}).get("currentReplicas") or 0))
        or (rolling is not None and ord_ < start + int(rolling.get("partition") or 0))
    ):
        return new_pod(sts, history.template_of(current), ord_, current["metadata"]["name"])
    return new_pod(sts, history.template_of(update), ord_, update["metadata"]["name"])


# -- claims --------------------------------------------------------------------------------------

def claims_for(sts: Obj, ord_: int) -> dict[str, Obj]:
    """getPersistentVolumeClaims: template name -> the claim the pod at `ord_` mounts."""
    out: dict[str, Obj] = {}
    match_labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
    for tmpl in sts["spec"].get("volumeClaimTemplates") or []:
        tmeta = tmpl.get("metadata") or {}
        meta: Obj = {"name": f"{tmeta.get('name')}-{sts['metadata']['name']}-{ord_}",
                     "namespace": sts["metadata"]["namespace"],
                     "labels": {**(tmeta.get("labels") or {}), **match_labels}}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        out[tmeta.get("name")] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                                  "spec": copy.deepcopy(tmpl.get("spec") or {})}
    return out


def storage_matches(sts: Obj, pod: Obj) -> bool:
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for tmpl, claim in claims_for(sts, ordinal(pod)).items():
        vol = volumes.get(tmpl)
        if vol is None or (vol.get("persistentVolumeClaim") or {}).get("claimName") != claim["metadata"]["name"]:
            return False
    return True


def retention(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of the PVC retention policy."""
    policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or "Retain", policy.get("whenScaled") or "Retain"


def claim_owner_refs(claim: Obj, sts: Obj, pod: Obj) -> list[Obj] | None:
    """updateClaimOwnerRefForSetAndPod: the claim's ownerReferences under the retention
    policy (the set owns it when deletion deletes it; a scaled-down pod owns it when scaling
    down deletes it, so the garbage collector removes it with the pod), or None when they
    already are right."""
    refs = list(claim["metadata"].get("ownerReferences") or [])
    set_ref = {"apiVersion": API_VERSION, "kind": KIND, "name": sts["metadata"]["name"], "uid": sts["metadata"]["uid"]}
    pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"].get("uid")}
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_range(sts, pod)
    want_set = when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down)
    want_pod = when_scaled == "Delete" and scaled_down and bool(pod_ref["uid"])
    changed = False
    for want, ref in ((want_set, set_ref), (want_pod, pod_ref)):
        has = any(r.get("uid") == ref["uid"] for r in refs)
        if want and not has:
            refs.append(ref)
            changed = True
        elif not want and has and ref["uid"]:
            refs = [r for r in refs if r.get("uid") != ref["uid"]]
            changed = True
    return refs if changed else None


def has_stale_owner(claim: Obj, pod: Obj) -> bool:
    """hasStaleOwnerRef: the claim belongs to an earlier pod of the same name."""
    uid = pod["metadata"].get("uid")
    return any(r.get("kind") == "Pod" and r.get("name") == pod["metadata"]["name"] and r.get("uid") != uid
               for r in claim["metadata"].get("ownerReferences") or [])


# -- pod predicates ---------------------------------------------------------------------------

def is_created(pod: Obj) -> bool:
    return bool(pod["metadata"].get("uid"))


def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_terminating(pod: Obj) -> bool:
    return "deletionTimestamp" in pod["metadata"]


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and rsutil.is_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int, now: float) -> bool:
    return is_running_and_ready(pod) and rsutil.is_available(rsutil.ready_since(pod), min_ready, now)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1])
        scaled = total * pct / 100
        return int(-(-scaled // 1)) if round_up else int(scaled // 1)
    return int(value)
