"""What the ReplicaSet controller knows about pods and ownership, as pure helpers (upstream's
`pkg/controller/controller_utils.go` and `controller_ref_manager.go`): controller references,
the pod predicates (active, ready, available), the pod a template stamps out, the order in
which surplus pods are deleted, expectations against a stale cache, slow-start batching, and
the claim (adopt / release) of objects by selector.

`lks.controllers.replicaset` drives these from its `sync`; `lks.controllers.deployment` uses
the controller-reference and claim helpers for its ReplicaSets.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lks.kube import errors

Obj = dict[str, Any]

BURST_REPLICAS = 500  # upstream's BurstReplicas: pods created or deleted in one sync at most
SLOW_START_INITIAL_BATCH = 1  # controller.SlowStartInitialBatchSize
EXPECTATIONS_TIMEOUT = 300.0  # controller.ExpectationsTimeout: a lost watch event is forgiven after this
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


# -- controller references ---------------------------------------------------------------

def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with `controller: true`, if any (metav1.GetControllerOf)."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj, *, api_version: str, kind: str) -> Obj:
    """metav1.NewControllerRef: the owner as a dependent's controller, blocking its deletion."""
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


# -- pods ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def parse_time(text: str | None) -> float:
    """An RFC 3339 timestamp as seconds since the epoch (0 for none); many pods share one."""
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def is_active(pod: Obj) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and "deletionTimestamp" not in pod["metadata"]


def is_terminating(pod: Obj) -> bool:
    """controller.FilterTerminatingPods: deleted but not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return "deletionTimestamp" in pod["metadata"] and phase not in ("Succeeded", "Failed")


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> float:
    """When the pod last became Ready (0 when not ready or unknown)."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return 0.0
    return parse_time(cond.get("lastTransitionTime"))


def is_available(ready_at: float, min_ready_seconds: int, now: float) -> bool:
    """podutil.IsPodAvailable for a ready pod that became ready at `ready_at`."""
    if not min_ready_seconds:
        return True
    return bool(ready_at) and ready_at + min_ready_seconds < now


def pod_from_template(template: Obj, owner_name: str, controller_ref: Obj) -> Obj:
    """controller.GetPodFromTemplate: the template's labels, annotations, finalizers and spec,
    named `<owner>-<random>` and controlled by the owner."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{owner_name}-", "ownerReferences": [dict(controller_ref)]}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = copy.copy(tmeta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _log_rank(t: float, now: float) -> int:
    """The logarithmic bucket of an age (upstream's logarithmicRankDiff, in nanoseconds)."""
    age = (now - t) * 1e9
    return int(math.log2(age)) if age > 0 else -1


def deletion_key(pod: Obj, rank: int, now: float) -> tuple:
    """Sort key putting the pod to delete first, following upstream's ActivePodsWithRanks with
    LogarithmicScaleDown (GA): unscheduled < scheduled; Pending < Unknown < Running; not ready <
    ready; lower pod-deletion-cost first; more pods of the same owner on its node first;
    recently ready < ready longer (by power-of-two age buckets); more restarts first; newer <
    older (by buckets); uid last. A key rather than upstream's pairwise comparison, so within one
    age bucket the later criteria decide before the uid does."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ready = is_ready(pod)
    try:
        cost = int((meta.get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        cost = 0
    ready_at = ready_since(pod) if ready else 0.0
    created = parse_time(meta.get("creationTimestamp"))
    return (
        bool(spec.get("nodeName")),
        _PHASE_ORDER.get(status.get("phase") or "", 0),
        ready,
        cost,
        -rank,
        _log_rank(ready_at, now) if ready_at else -2,
        -_restarts(pod),
        _log_rank(created, now) if created else -2,
        meta.get("uid", ""),
    )


def pods_to_delete(pods: list[Obj], related: Iterable[Obj], diff: int, now: float) -> list[Obj]:
    """getPodsToDelete: the `diff` pods to remove first, ranked against the pods of the owner's
    siblings (`related`, e.g. every ReplicaSet of one Deployment) on the same nodes."""
    if diff >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for pod in related:
        if is_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = sorted(pods, key=lambda p: deletion_key(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0), now))
    return ranked[:diff]


# -- expectations ------------------------------------------------------------------------------

@dataclass(slots=True)
class _Expected:
    adds: int
    dels: set[str]
    since: float


@dataclass
class Expectations:
    """UIDTrackingControllerExpectations: the creations and deletions a controller has made and
    not yet seen in its cache. While some are outstanding the controller does not act on its
    (stale) view, so it never creates or deletes twice; a lost event is forgiven after
    `EXPECTATIONS_TIMEOUT`."""

    now: Callable[[], float]
    _by_key: dict[str, _Expected] = field(default_factory=dict)

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        return (exp.adds <= 0 and not exp.dels) or self.now() - exp.since > EXPECTATIONS_TIMEOUT

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = _Expected(n, set(), self.now())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._by_key[key] = _Expected(0, set(pod_keys), self.now())

    def creation_observed(self, key: str, n: int = 1) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds -= n

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.dels.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """slowStartBatch: call `fn` `count` times in concurrent batches of 1, 2, 4, ...; a batch
    with a failure ends the run (a quota or a bad template fails every call alike). Returns
    the number of successful calls and the first error."""
    done = 0
    batch = min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in failures:
            if isinstance(r, asyncio.CancelledError):
                raise r
        done += batch - len(failures)
        if failures:
            first = failures[0]
            if not isinstance(first, Exception):
                raise first
            return done, first
        count -= batch
        batch = min(2 * batch, count)
    return done, None


# -- reading our own writes --------------------------------------------------------------------------

async def catch_up(feed: Any, revision: int, timeout: float = 1.0) -> bool:
    """Wait until the cluster's feed (and so every informer cache) has reached `revision`, by
    polling: the in-process store's watch delivers within a few loop turns. (The feed's own
    `wait_for` rests on an asyncio.Condition, whose waiters can hang when cancelled on 3.11.)"""
    if feed.revision >= revision:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while feed.revision < revision:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


# -- delayed requeues ----------------------------------------------------------------------------

class Wakeups:
    """Delayed requeues (for minReadySeconds, progress deadlines) at most one per key and whole
    second of the clock: a thousand pods turning ready together ask for one timer, not a
    thousand. `schedule(key, delay)` wakes the key at the next whole second after the delay."""

    def __init__(self, queue: Any, now: Callable[[], float]):
        self.queue = queue
        self.now = now
        self._pending: set[tuple[Any, int]] = set()

    def schedule(self, key: Any, delay: float) -> None:
        now = self.now()
        when = math.ceil(now + delay)
        if (key, when) in self._pending:
            return
        if len(self._pending) > 1024:
            self._pending = {p for p in self._pending if p[1] >= now}
        self._pending.add((key, when))
        self.queue.add_after(key, when - now)


# -- event spam filter -------------------------------------------------------------------------

class EventBudget:
    """client-go's EventSourceObjectSpamFilter: per involved object a bucket of 25 events,
    refilled one every 5 minutes, so a 10,000-pod scale-up records 25 SuccessfulCreate events,
    not 10,000."""

    BURST = 25
    REFILL = 300.0

    def __init__(self, now: Callable[[], float]):
        self.now = now
        self._buckets: dict[str, tuple[float, float]] = {}  # uid -> (tokens, at)

    def take(self, uid: str) -> bool:
        now = self.now()
        tokens, at = self._buckets.get(uid, (float(self.BURST), now))
        tokens = min(float(self.BURST), tokens + (now - at) / self.REFILL)
        if tokens < 1:
            self._buckets[uid] = (tokens, now)
            return False
        if len(self._buckets) > 8192:
            self._buckets.clear()
        self._buckets[uid] = (tokens - 1, now)
        return True


# -- claiming ------------------------------------------------------------------------------------

async def claim(
    objs: Iterable[Obj], *, owner: Obj, matches: Callable[[Obj], bool],
    can_adopt: Callable[[], Awaitable[bool]],
    adopt: Callable[[Obj], Awaitable[None]], release: Callable[[Obj], Awaitable[None]],
) -> list[Obj]:
    """BaseControllerRefManager.ClaimObject over `objs`: keep what the owner controls and its
    selector matches, release what it controls and no longer matches, adopt matching orphans
    (after `can_adopt` confirmed once that the owner is not being deleted). Returns the claimed
    objects; a 404 on adopt or release just drops the object, other errors propagate."""
    owner_meta = owner["metadata"]
    owner_uid, owner_deleting = owner_meta["uid"], "deletionTimestamp" in owner_meta
    claimed: list[Obj] = []
    adoption_checked: bool | None = None
    for obj in objs:
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches(obj):
                claimed.append(obj)
            elif not owner_deleting:
                await _ignore_not_found(release(obj))
            continue
        if owner_deleting or not matches(obj) or "deletionTimestamp" in obj["metadata"]:
            continue
        if obj["metadata"].get("namespace") != owner_meta.get("namespace"):
            continue
        if adoption_checked is None:
            adoption_checked = await can_adopt()
        if not adoption_checked:
            continue
        if await _ignore_not_found(adopt(obj)):
            claimed.append(obj)
    return claimed


async def _ignore_not_found(op: Awaitable[None]) -> bool:
    try:
        await op
    except errors.APIError as err:
        if err.code == 404:
            return False
        raise
    return True


def adopt_patch(ref: Obj, uid: str, resource: str, group: str) -> Callable[[Obj], Obj]:
    """A patch function adding controller reference `ref` to the object with uid `uid`, refused
    with a conflict if the object was replaced or got another controller meanwhile."""
    def add(current: Obj) -> Obj:
        meta = current["metadata"]
        if meta.get("uid") != uid or controller_of(current) is not None or "deletionTimestamp" in meta:
            raise errors.conflict(resource, group, meta.get("name", ""), "the object is no longer an orphan")
        meta["ownerReferences"] = [*(meta.get("ownerReferences") or []), dict(ref)]
        return current

    return add


def release_patch(owner_uid: str, uid: str) -> Callable[[Obj], Obj]:
    """A patch function dropping the owner's reference from the object with uid `uid`."""
    def drop(current: Obj) -> Obj:
        meta = current["metadata"]
        if meta.get("uid") != uid:
            return current
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
        if refs:
            meta["ownerReferences"] = refs
        else:
            meta.pop("ownerReferences", None)
        return current

    return drop
