"""The resource metrics pipeline (metrics-server's part of it): what pods and nodes use, for
`kubectl top`, the HorizontalPodAutoscaler and the cluster autoscaler. `source` holds a
cluster's usage (Process pods measured from /proc by `procfs`, simulated pods following the
annotation-steered `model`), `api` serves it as `metrics.k8s.io/v1beta1` through the aggregation
layer (`lks.kube.aggregator`; `podlist` assembles list bodies in JSON or protobuf from bytes kept
per pod), registered by `serve` for each cluster that runs the
metrics-server add-on (the addon manager, `lks.controllers.addons`, calls it).

In-process consumers read `usage(cluster)` directly instead of going through HTTP:
`usage(cluster).pod(namespace, name)` is a `PodUsage` (per container cpu in cores and memory in
bytes, the window and its timestamp) or None while the pod has no metrics.
"""

from __future__ import annotations

import weakref

from lks.kube.cluster import Cluster
from lks.metrics.api import GROUP, VERSION, MetricsAPI
from lks.metrics.source import RESOLUTION, ContainerUsage, NodeUsage, PodUsage, Usage

__all__ = ["RESOLUTION", "ContainerUsage", "NodeUsage", "PodUsage", "Usage", "serve", "stop", "usage"]

_usages: weakref.WeakKeyDictionary[Cluster, Usage] = weakref.WeakKeyDictionary()


def usage(cluster: Cluster) -> Usage:
    """`cluster`'s usage; it answers None for everything until `serve` has started it."""
    found = _usages.get(cluster)
    if found is None:
        found = _usages[cluster] = Usage(cluster)
    return found


async def serve(cluster: Cluster) -> None:
    """Start measuring `cluster` and serve its `metrics.k8s.io/v1beta1`."""
    found = usage(cluster)
    if found.started:
        return
    await found.start()
    cluster.aggregator.register_local(GROUP, VERSION, MetricsAPI(found))


async def stop(cluster: Cluster) -> None:
    found = _usages.get(cluster)
    cluster.aggregator.unregister_local(GROUP, VERSION)
    if found is not None:
        await found.stop()
