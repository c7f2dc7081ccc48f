"""The counts a ReplicaSet's status is made of, kept up to date pod event by pod event.

A 10,000-pod set sees tens of thousands of pod updates while it starts (created, bound,
running, ready), and each one wakes the set. Recounting every pod per sync would make a
start-up quadratic, so the ReplicaSet controller (`lks.controllers.replicaset`) keeps one
`Tally` per set: a `PodView` per pod the set controls and running sums over them, which its
pod handler updates in O(1) (O(log n) for ready times) and its `sync` reads in O(1). A tally
is rebuilt from the cache when the set's selector or template labels change, and now and
then in case an informer re-list lost a deletion.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lks.clock import rfc3339
from lks.controllers import replicaset_util as rsutil
from lks.kube import errors, selectors

Obj = dict[str, Any]
REBUILD = 60.0  # seconds of clock after which a tally is recounted from the cache


class PodView:
    """What the status needs of one version of one pod."""

    __slots__ = ("pod", "active", "terminating", "matches", "labeled", "ready", "ready_at")

    def __init__(self, pod: Obj, selector: selectors.LabelSelector, template_labels: dict[str, str]):
        labels = pod["metadata"].get("labels") or {}
        self.pod = pod
        self.active = rsutil.is_active(pod)
        self.terminating = rsutil.is_terminating(pod)
        self.matches = selector.matches(labels)
        self.labeled = all(labels.get(k) == v for k, v in template_labels.items())
        self.ready_at = rsutil.ready_since(pod)
        self.ready = bool(self.ready_at) or rsutil.is_ready(pod)


@dataclass(slots=True)
class Counts:
    replicas: int = 0
    labeled: int = 0
    ready: int = 0
    available: int = 0
    terminating: int = 0


class Tally:
    """One set's pods as views, with sums over the claimed ones (active and selected)."""

    def __init__(self, rs: Obj, selector: selectors.LabelSelector, built: float):
        spec = rs["spec"]
        self.selector_src = copy.deepcopy(spec.get("selector"))
        self.labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        self.selector = selector
        self.built = built
        self.views: dict[str, PodView] = {}
        self.claimed = self.labeled = self.ready = self.terminating = 0
        self.ready_times: list[float] = []  # sorted, of claimed ready pods with a known transition time
        self.unmatched: set[str] = set()  # active pods it controls that its selector no longer matches

    def fits(self, rs: Obj, now: float) -> bool:
        """Whether this tally still counts for `rs` as it now is."""
        spec = rs["spec"]
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        return spec.get("selector") == self.selector_src and labels == self.labels and now - self.built <= REBUILD

    def put(self, key: str, pod: Obj | None) -> None:
        """The pod under `key` is now `pod` (None: gone, or no longer controlled by the set)."""
        old = self.views.pop(key, None)
        if old is not None:
            self._count(key, old, -1)
        if pod is not None:
            view = PodView(pod, self.selector, self.labels)
            self.views[key] = view
            self._count(key, view, 1)

    def _count(self, key: str, v: PodView, sign: int) -> None:
        if not v.active:
            if v.terminating and v.matches:
                self.terminating += sign
            return
        if not v.matches:
            if sign > 0:
                self.unmatched.add(key)
            else:
                self.unmatched.discard(key)
            return
        self.claimed += sign
        self.labeled += sign * v.labeled
        if v.ready:
            self.ready += sign
            if v.ready_at:
                if sign > 0:
                    bisect.insort(self.ready_times, v.ready_at)
                else:
                    i = bisect.bisect_left(self.ready_times, v.ready_at)
                    if i < len(self.ready_times) and self.ready_times[i] == v.ready_at:
                        del self.ready_times[i]

    def claimed_pods(self) -> list[Obj]:
        return [v.pod for v in self.views.values() if v.active and v.matches]

    def counts(self, min_ready_seconds: int, now: float, extra: Sequence[Obj] = ()) -> Counts:
        """The sums, plus the pods in `extra` (just adopted, not yet seen by the handler)."""
        if min_ready_seconds:
            # available: ready for minReadySeconds, i.e. ready since before now - minReadySeconds
            available = bisect.bisect_left(self.ready_times, now - min_ready_seconds)
        else:
            available = self.ready
        c = Counts(self.claimed, self.labeled, self.ready, available, self.terminating)
        for pod in extra:
            v = PodView(pod, self.selector, self.labels)
            c.replicas += 1
            c.labeled += v.labeled
            if v.ready:
                c.ready += 1
                c.available += rsutil.is_available(v.ready_at, min_ready_seconds, now)
        return c


def calculate_status(rs: Obj, counts: Counts, manage_err: Exception | None, *, now: float) -> Obj:
    """calculateStatus: the counts of the claimed active pods, the terminating ones (the
    DeploymentReplicaSetTerminatingReplicas gate, beta and on since 1.35), the ReplicaFailure
    condition while creating or deleting fails, and the generation this status reflects."""
    spec = rs["spec"]
    status = copy.deepcopy(rs.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if manage_err is not None:
        if failure is None:
            diff = counts.replicas - int(spec.get("replicas", 1))
            reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
            message = manage_err.message if isinstance(manage_err, errors.APIError) else str(manage_err)
            failure = {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                       "reason": reason, "message": message}
        conditions.append(failure)
    status["replicas"] = counts.replicas
    status["terminatingReplicas"] = counts.terminating  # a pointer upstream: 0 is written too
    for name, value in (("fullyLabeledReplicas", counts.labeled), ("readyReplicas", counts.ready),
                        ("availableReplicas", counts.available),
                        ("observedGeneration", rs["metadata"].get("generation", 0))):
        if value:  # omitempty, as upstream's JSON
            status[name] = value
        else:
            status.pop(name, None)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status
