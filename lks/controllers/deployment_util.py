"""Pure helpers of the Deployment controller (upstream's `pkg/controller/deployment/util`):
the pod-template hash that names a Deployment's ReplicaSets, the revision and replica
annotations `kubectl rollout history|undo` read, maxSurge/maxUnavailable arithmetic, the
proportions of a scale during a rollout, conditions, and the Deployment's status.

Nothing here reads the API or the clock: callers pass `now`. `lks.controllers.deployment`
and `lks.controllers.deployment_rollout` make the decisions with them.
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Iterable
from typing import Any

import orjson

from lks.clock import rfc3339
from lks.controllers.replicaset_util import parse_time
from lks.kube import semantic

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"  # apps.DefaultDeploymentUniqueLabelKey
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# annotations a Deployment does not hand down to its ReplicaSets
ANNOTATIONS_TO_SKIP = frozenset((LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO))
MAX_REV_HISTORY_CHARS = 2000

# condition reasons (deploymentutil)
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
RS_UPDATED = "ReplicaSetUpdated"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums
_MAX_INT32 = 2**31 - 1


def clone(obj: Any) -> Any:
    """A deep copy of a JSON value (several times faster than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(obj))


# -- the template hash -------------------------------------------------------------------

def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """controller.ComputeHash: fnv32a of the template (here: its canonical JSON, where upstream
    hashes the Go struct's printout, so that `resources: {}` and no `resources` hash alike),
    then the collision count as 8 little-endian bytes, the decimal digits written in the safe
    alphabet, so `web-7d4b9c5f8d` style names result."""
    data = orjson.dumps(semantic.canonical_template(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(_fnv32a(data)))


def _without_hash(template: Obj) -> Obj:
    meta = template.get("metadata") or {}
    labels = meta.get("labels")
    if not labels or HASH_LABEL not in labels:
        return template
    labels = {k: v for k, v in labels.items() if k != HASH_LABEL}
    new_meta = {**meta, "labels": labels} if labels else {k: v for k, v in meta.items() if k != "labels"}
    return {**template, "metadata": new_meta}


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are the same Go value but for the pod-template-hash label
    (EqualIgnoreHash's Semantic.DeepEqual: a client's round trip may add `resources: {}`)."""
    a, b = _without_hash(a), _without_hash(b)
    return a == b or semantic.canonical_template(a) == semantic.canonical_template(b)


def template_with_hash(template: Obj, hash_: str) -> Obj:
    tmpl = copy.deepcopy(template)
    meta = tmpl.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), HASH_LABEL: hash_}
    return tmpl


def selector_with_hash(selector: Obj | None, hash_: str) -> Obj:
    sel = copy.deepcopy(selector or {})
    sel["matchLabels"] = {**(sel.get("matchLabels") or {}), HASH_LABEL: hash_}
    return sel


# -- replica sets ----------------------------------------------------------------------------

def replicas(obj: Obj | None) -> int:
    """`spec.replicas` (defaulted to 1 by the API server)."""
    if obj is None:
        return 0
    return int(obj["spec"].get("replicas", 1))


def _created(obj: Obj) -> tuple[float, str]:
    return parse_time(obj["metadata"].get("creationTimestamp")), obj["metadata"]["name"]


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """ReplicaSetsByCreationTimestamp: oldest first, names break ties."""
    return sorted(rss, key=_created)


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """ReplicaSetsBySizeOlder: largest first, older first among equals."""
    return sorted(by_creation(rss), key=lambda r: -replicas(r))


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """ReplicaSetsBySizeNewer: largest first, newer first among equals."""
    return sorted(list(reversed(by_creation(rss))), key=lambda r: -replicas(r))


def revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """ReplicaSetsByRevision: lowest revision first, older first among equals."""
    return sorted(by_creation(rss), key=revision)


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(r) for r in rss), default=0)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    """FilterActiveReplicaSets: the sets that want pods."""
    return [r for r in rss if r is not None and replicas(r) > 0]


def find_new_replica_set(d: Obj, rss: list[Obj]) -> Obj | None:
    """The set whose template is the Deployment's (the oldest, should there be several)."""
    template = d["spec"].get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash(rs["spec"].get("template") or {}, template):
            return rs
    return None


def find_old_replica_sets(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(the old sets with replicas, every old set)."""
    new = find_new_replica_set(d, rss)
    old = [r for r in rss if new is None or r["metadata"]["uid"] != new["metadata"]["uid"]]
    return [r for r in old if replicas(r) != 0], old


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active set, or the newest when none is active; None while several are."""
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    active = filter_active([*olds, new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    return active[0] if len(active) == 1 else None


def sum_spec(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(r) for r in rss if r is not None)


def sum_status(rss: Iterable[Obj | None], field: str) -> int:
    return sum(int((r.get("status") or {}).get(field) or 0) for r in rss if r is not None)


# -- annotations -------------------------------------------------------------------------------

def _annotations(obj: Obj) -> dict[str, str]:
    meta = obj["metadata"]
    if meta.get("annotations") is None:
        meta["annotations"] = {}
    return meta["annotations"]


def copy_annotations(d: Obj, rs: Obj) -> bool:
    """copyDeploymentAnnotationsToReplicaSet (change-cause and friends); whether any changed."""
    changed = False
    rs_ann = _annotations(rs)
    for k, v in (d["metadata"].get("annotations") or {}).items():
        if k in ANNOTATIONS_TO_SKIP or rs_ann.get(k) == v:
            continue
        rs_ann[k] = v
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_: int) -> bool:
    ann = _annotations(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_: int) -> bool:
    ann = rs["metadata"].get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_)


def desired_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int((rs["metadata"].get("annotations") or {})[DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return None


def max_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def set_new_replica_set_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations on `rs` (a copy): the Deployment's annotations, the revision
    (never lowered; a rollback to this set moves its old revision into revision-history), and
    on a set about to be created its desired/max replicas. Returns whether anything changed."""
    changed = copy_annotations(d, rs)
    ann = _annotations(rs)
    old_text = ann.get(REVISION)
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = ann.get(REVISION_HISTORY, "")
            revs = history.split(",") if history else []
            total = len(history) + len(old_text) + 1
            start = 0
            while total > MAX_REV_HISTORY_CHARS and start < len(revs):
                total -= len(revs[start]) + 1
                start += 1
            if total <= MAX_REV_HISTORY_CHARS:
                ann[REVISION_HISTORY] = ",".join([*revs[start:], old_text])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# -- rolling update arithmetic -------------------------------------------------------------------

def is_rolling_update(d: Obj) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or a percent of `total` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%"):
        return int(text)
    scaled = int(text[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(surge: int | str | None, unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for `desired` replicas: surge rounds up, unavailability
    down, and when both come to zero one pod may be unavailable (surge might hit a quota)."""
    s = scaled_value(surge, desired, True)
    u = scaled_value(unavailable, desired, False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def _rolling(d: Obj) -> Obj:
    return (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Obj) -> int:
    if not is_rolling_update(d):
        return 0
    return resolve_fenceposts(_rolling(d).get("maxSurge"), _rolling(d).get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    u = resolve_fenceposts(_rolling(d).get("maxSurge"), _rolling(d).get("maxUnavailable"), replicas(d))[1]
    return min(u, replicas(d))


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    """NewRSNewReplicas: how far the new set may grow now."""
    if not is_rolling_update(d):
        return replicas(d)
    surge = scaled_value(_rolling(d).get("maxSurge"), replicas(d), True)
    current = sum_spec(all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, replicas(d) - replicas(new_rs))


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """Whether the set runs the Deployment's full size, all of it available."""
    if rs is None:
        return False
    want = replicas(d)
    return (replicas(rs) == want and desired_replicas_annotation(rs) == want
            and int((rs.get("status") or {}).get("availableReplicas") or 0) == want)


def _round(x: float) -> int:
    """Go's math.Round: halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def get_proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """GetProportion: this set's share of a scale by `to_add` replicas, `added` handed out so far."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = max_replicas_annotation(rs)
    if annotated is None:
        # no record of the size it was sized for: assume the current one (the min/max in
        # get_proportion keeps the total within bounds)
        annotated = int((d.get("status") or {}).get("replicas") or 0)
    if annotated == 0:
        return 0
    return _round(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


# -- conditions and status --------------------------------------------------------------------

def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    ts = rfc3339(now)
    return {"type": type_, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: no-op when status and reason are unchanged; the transition time
    stays while the status does."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [*(c for c in status.get("conditions") or [] if c.get("type") != cond["type"]), cond]


def remove_condition(status: Obj, type_: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    pds = d["spec"].get("progressDeadlineSeconds")
    return pds is not None and pds != _MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    limit = d["spec"].get("revisionHistoryLimit")
    return limit is not None and limit != _MAX_INT32


def _int(status: Obj | None, field: str) -> int:
    return int((status or {}).get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (_int(status, "updatedReplicas") == want and _int(status, "replicas") == want
            and _int(status, "availableReplicas") == want
            and _int(status, "observedGeneration") >= d["metadata"].get("generation", 0))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    old = d.get("status") or {}
    old_olds = _int(old, "replicas") - _int(old, "updatedReplicas")
    new_olds = _int(status, "replicas") - _int(status, "updatedReplicas")
    return (_int(status, "updatedReplicas") > _int(old, "updatedReplicas") or new_olds < old_olds
            or _int(status, "readyReplicas") > _int(old, "readyReplicas")
            or _int(status, "availableReplicas") > _int(old, "availableReplicas"))


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    return parse_time(cond.get("lastUpdateTime")) + int(d["spec"]["progressDeadlineSeconds"]) < now


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """calculateStatus: the counts summed over the sets, the Available condition, and the
    other conditions as they were."""
    available = sum_status(all_rss, "availableReplicas")
    total = sum_spec(all_rss)
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation", 0),
        "replicas": sum_status(all_rss, "replicas"),
        "updatedReplicas": sum_status([new_rs], "replicas"),
        "readyReplicas": sum_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    # DeploymentReplicaSetTerminatingReplicas (beta, on since 1.35): known once every set reports it
    if all(r is None or "terminatingReplicas" in (r.get("status") or {}) for r in all_rss):
        status["terminatingReplicas"] = sum_status(all_rss, "terminatingReplicas")
    old = d.get("status") or {}
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def omit_empty(status: Obj) -> Obj:
    """The status as upstream serializes it: the counts are omitempty (collisionCount and
    terminatingReplicas, pointers, are kept at 0)."""
    return {k: v for k, v in status.items() if v not in (0, None, []) or (k in _POINTERS and v == 0)}


_POINTERS = frozenset(("collisionCount", "terminatingReplicas"))
