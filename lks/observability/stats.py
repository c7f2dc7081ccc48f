"""The metric state of one hosted cluster: plain counters and `Histogram`s in dicts, keyed by
label tuples, created on first use. An idle cluster holds one empty `ClusterStats` (issue 20:
hundreds of clusters per process), nothing is registered anywhere, and
`lks.observability.exposition` reads it all at scrape time.

Who fills it: the HTTP layer through `lks.observability.apiserver` (requests, in-flight), the
store wrapper `lks.store.timing` (etcd_request_duration_seconds, kept on the backend itself),
the controllers' `WorkQueue`s and the scheduler (registered here by the controller manager).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from lks.observability.histogram import Histogram

if TYPE_CHECKING:
    from lks.controllers.workqueue import WorkQueue
    from lks.kube.cluster import Cluster


class ClusterStats:
    __slots__ = ("requests", "durations", "inflight", "queues", "scheduler", "__weakref__")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, ...], int] = {}  # (verb, dry_run, group, ..., component, code)
        self.durations: dict[tuple[str, ...], Histogram] = {}  # the same labels but code
        self.inflight = [0, 0]  # readOnly, mutating (long-running requests are not counted, as upstream)
        self.queues: list[WorkQueue[Any]] = []  # the controller manager's work queues
        self.scheduler: Any = None  # lks.controllers.scheduler.Scheduler, once started


_STATS: weakref.WeakKeyDictionary[Cluster, ClusterStats] = weakref.WeakKeyDictionary()


def of(cluster: Cluster) -> ClusterStats:
    """The cluster's stats (made on first use; gone with the cluster)."""
    stats = _STATS.get(cluster)
    if stats is None:
        stats = _STATS[cluster] = ClusterStats()
    return stats


def register_controllers(cluster: Cluster, controllers: list[Any]) -> None:
    """The controller manager's controllers: their work queues, and the scheduler's queue."""
    from lks.controllers.workqueue import WorkQueue

    stats = of(cluster)
    for c in controllers:
        for value in vars(c).values():
            if isinstance(value, WorkQueue) and value not in stats.queues:
                stats.queues.append(value)
        if type(c).__name__ == "Scheduler":
            stats.scheduler = c
