"""A hosted cluster's `/metrics`: its `ClusterStats`, its store's timings, its watch caches'
object counts, its work queues and its scheduler, turned into Prometheus metric families at
scrape time by a prometheus_client `Collector` (nothing is registered between scrapes), in the
text format or OpenMetrics as the client's Accept asks. Names, types, labels and buckets are
upstream's (kube-apiserver, kube-controller-manager's workqueues, kube-scheduler).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from lks.observability import apiserver
from lks.observability import stats as _stats

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

_REQUEST_LABELS = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"]
_PROFILE = "default-scheduler"
_QUEUES = ("active", "backoff", "unschedulable", "gated")


def render(cluster: Cluster, accept: str | None) -> tuple[bytes, str]:
    """The cluster's metrics as the `accept` header asks: (body, content type)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(cluster))
    encode, content_type = exposition.choose_encoder(accept or "")
    return encode(registry), content_type


class ClusterCollector(Collector):
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def collect(self) -> Iterator[Metric]:
        stats = _stats.of(self.cluster)
        yield from _requests(stats)
        yield from _storage(self.cluster)
        yield from _workqueues(stats)
        yield from _scheduler(stats)


def _requests(stats: _stats.ClusterStats) -> Iterator[Metric]:
    total = CounterMetricFamily("apiserver_request_total", "Counter of apiserver requests broken out for each verb, "
                                "dry run value, group, version, resource, scope, component, and HTTP response code.",
                                labels=[*_REQUEST_LABELS, "code"])
    for labels, n in stats.requests.items():
        total.add_metric(list(labels), n)
    yield total
    durations = HistogramMetricFamily(
        "apiserver_request_duration_seconds", "Response latency distribution in seconds for each verb, dry run "
        "value, group, version, resource, subresource, scope and component.", labels=_REQUEST_LABELS)
    for labels, hist in stats.durations.items():
        durations.add_metric(list(labels), hist.cumulative(), hist.sum)
    yield durations
    inflight = GaugeMetricFamily("apiserver_current_inflight_requests", "Maximal number of currently used inflight "
                                 "request limit of this apiserver per request kind in last second.",
                                 labels=["request_kind"])
    for kind, n in zip(apiserver.REQUEST_KINDS, stats.inflight, strict=True):
        inflight.add_metric([kind], n)
    yield inflight


def _storage(cluster: Cluster) -> Iterator[Metric]:
    names = _resource_names(cluster)
    objects = GaugeMetricFamily("apiserver_storage_objects", "Number of stored objects at the time of last check "
                                "split by kind. In case of a fetching error, the value will be -1.",
                                labels=["resource"])
    for prefix, cache in sorted(cluster.feed.caches.items()):
        if cache.ready.is_set():
            objects.add_metric([names.get(prefix, prefix)], len(cache.objects))
    yield objects
    etcd = HistogramMetricFamily("etcd_request_duration_seconds", "Etcd request latency in seconds for each "
                                 "operation and object type.", labels=["operation", "type"])
    for (operation, prefix), hist in sorted(getattr(cluster.store, "timings", {}).items()):
        etcd.add_metric([operation, names.get(prefix, prefix)], hist.cumulative(), hist.sum)
    yield etcd


def _resource_names(cluster: Cluster) -> dict[str, str]:
    """Storage prefix -> upstream's group-resource name (`pods`, `deployments.apps`)."""
    names: dict[str, str] = {}
    for rt in cluster.catalog.all():
        if rt.storage_prefix and rt.gv == rt.storage_gv:
            group = rt.storage_group if rt.storage_group is not None else rt.group
            names.setdefault(rt.storage_prefix, f"{rt.resource}.{group}" if group else rt.resource)
    return names


def _workqueues(stats: _stats.ClusterStats) -> Iterator[Metric]:
    label = ["name"]
    adds = CounterMetricFamily("workqueue_adds_total", "Total number of adds handled by workqueue", labels=label)
    depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=label)
    retries = CounterMetricFamily("workqueue_retries_total", "Total number of retries handled by workqueue",
                                  labels=label)
    queued = HistogramMetricFamily("workqueue_queue_duration_seconds", "How long in seconds an item stays in "
                                   "workqueue before being requested.", labels=label)
    worked = HistogramMetricFamily("workqueue_work_duration_seconds", "How long in seconds processing an item "
                                   "from workqueue takes.", labels=label)
    unfinished = GaugeMetricFamily("workqueue_unfinished_work_seconds", "How many seconds of work has done that is "
                                   "in progress and hasn't been observed by work_duration.", labels=label)
    longest = GaugeMetricFamily("workqueue_longest_running_processor_seconds", "How many seconds has the longest "
                                "running processor for workqueue been running.", labels=label)
    for q in stats.queues:
        name = [q.name]
        adds.add_metric(name, q.adds)
        depth.add_metric(name, q.depth())
        retries.add_metric(name, q.retries)
        queued.add_metric(name, q.queue_duration.cumulative(), q.queue_duration.sum)
        worked.add_metric(name, q.work_duration.cumulative(), q.work_duration.sum)
        total, oldest = q.unfinished_seconds()
        unfinished.add_metric(name, total)
        longest.add_metric(name, oldest)
    yield from (adds, depth, queued, worked, unfinished, longest, retries)


def _scheduler(stats: _stats.ClusterStats) -> Iterator[Metric]:
    scheduler: Any = stats.scheduler
    attempts = CounterMetricFamily("scheduler_schedule_attempts_total", "Number of attempts to schedule pods, by the "
                                   "result. 'unschedulable' means a pod could not be scheduled, while 'error' means "
                                   "an internal scheduler problem.", labels=["result", "profile"])
    durations = HistogramMetricFamily("scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency "
                                      "in seconds (scheduling algorithm + binding)", labels=["result", "profile"])
    pending = GaugeMetricFamily("scheduler_pending_pods", "Number of pending pods, by the queue type. 'active' means "
                                "number of pods in activeQ; 'backoff' means number of pods in backoffQ; "
                                "'unschedulable' means number of pods in unschedulablePods that the scheduler "
                                "attempted to schedule and failed; 'gated' is the number of unschedulable pods "
                                "that the scheduler never attempted to schedule because they are gated.",
                                labels=["queue"])
    if scheduler is not None:
        for result, n in scheduler.attempts.items():
            attempts.add_metric([result, _PROFILE], n)
            hist = scheduler.attempt_durations[result]
            durations.add_metric([result, _PROFILE], hist.cumulative(), hist.sum)
        where: dict[str, int] = dict.fromkeys(_QUEUES, 0)
        for qp in scheduler.queue.pods.values():
            if qp.where in where:
                where[qp.where] += 1
        for queue, n in where.items():
            pending.add_metric([queue], n)
    yield from (attempts, durations, pending)
