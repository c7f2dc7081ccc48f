"""A histogram as plain numbers: one count per bucket, a sum and a total, with upstream's bucket
boundaries for the metrics lks exposes. Thousands of these live in one process (one per
cluster, label set and metric), so they hold no locks, no label machinery and nothing else;
`lks.observability.exposition` turns them into Prometheus histograms at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left

# apiserver_request_duration_seconds and etcd_request_duration_seconds (k8s.io/apiserver)
REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
                   10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
# workqueue_queue_duration_seconds, workqueue_work_duration_seconds: ExponentialBuckets(10e-9, 10, 10)
WORKQUEUE_BUCKETS = tuple(1e-8 * 10 ** i for i in range(10))
# scheduler_scheduling_attempt_duration_seconds: ExponentialBuckets(0.001, 2, 15)
SCHEDULING_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))
# lks_arm_operation_duration_seconds: operations take seconds to many minutes
OPERATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # `le`: a value on a bound belongs to it
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus's buckets: (le, observations at or below it), ending with +Inf."""
        out, total = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            out.append((_le(bound), total))
        out.append(("+Inf", self.count))
        return out


def _le(bound: float) -> str:
    return repr(float(f"{bound:.12g}"))  # 1e-08, 0.005, 60.0: as prometheus_client writes floats
