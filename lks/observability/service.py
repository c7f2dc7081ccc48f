"""The management endpoint's own metrics (`GET /metrics` beside the ARM routes): requests by
method, code and resource type, long-running operations' durations by kind, action and outcome,
and the clusters and nodes this process hosts. One `ServiceStats` per process, plain numbers
like the clusters' (`lks.observability.stats`), exposed through a Collector at scrape time.
`lks.arm.app` counts requests, `lks.arm.operations` operations; `lks.arm.plane` says how to
count clusters and nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from lks.observability.histogram import OPERATION_BUCKETS, Histogram


class ServiceStats(Collector):
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (method, code, resource_type)
        self.operations: dict[tuple[str, str, str], Histogram] = {}  # (kind, action, status)
        self.clusters: Callable[[], int] | None = None
        self.nodes: Callable[[], int] | None = None

    def request(self, method: str, code: int, resource_type: str) -> None:
        key = (method, str(code), resource_type)
        self.requests[key] = self.requests.get(key, 0) + 1

    def operation(self, kind: str, action: str, status: str, seconds: float) -> None:
        key = (kind, action, status)
        hist = self.operations.get(key)
        if hist is None:
            hist = self.operations[key] = Histogram(OPERATION_BUCKETS)
        hist.observe(seconds)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        encode, content_type = exposition.choose_encoder(accept or "")
        return encode(registry), content_type

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("lks_arm_requests_total", "Management API requests by HTTP method, response "
                                       "code and resource type.", labels=["method", "code", "resource_type"])
        for labels, n in sorted(self.requests.items()):
            requests.add_metric(list(labels), n)
        yield requests
        ops = HistogramMetricFamily("lks_arm_operation_duration_seconds", "Duration of the management API's "
                                    "long-running operations by type, action and final status.",
                                    labels=["type", "action", "status"])
        for labels, hist in sorted(self.operations.items()):
            ops.add_metric(list(labels), hist.cumulative(), hist.sum)
        yield ops
        for name, text, count in (("lks_clusters", "Hosted control planes running in this process.", self.clusters),
                                  ("lks_nodes", "Nodes of the hosted clusters' agent pools.", self.nodes)):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], count() if count is not None else 0)
            yield gauge


SERVICE = ServiceStats()  # the process's one management endpoint
