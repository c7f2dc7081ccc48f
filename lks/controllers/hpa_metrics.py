"""Where the HorizontalPodAutoscaler controller reads metrics (upstream's
`pkg/controller/podautoscaler/metrics`): a small provider interface, so the controller never
goes through HTTP for lks's own metrics and its tests can hand it made-up usage.

`ResourceMetrics` answers resource metrics (cpu, memory) per pod, in milli-units as upstream's
`PodMetricsInfo`: summed over the pod's containers, or one container's for ContainerResource.
`LksResourceMetrics` reads them from `lks.metrics.usage(cluster)` (the metrics-server add-on's
windows). Custom (`custom.metrics.k8s.io`) and external metrics have no API in lks: their
errors are the ones upstream's clients give when none is registered; the controller
(`lks.controllers.horizontalpodautoscaler`) turns them into `ScalingActive=False`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from lks.kube.cluster import Cluster

Obj = dict[str, Any]


class MetricsError(Exception):
    """Metrics could not be read; the message is upstream's."""


@dataclass(frozen=True, slots=True)
class PodMetric:
    value: int  # milli-units: millicores, or bytes x 1000
    timestamp: float  # the end of the sample's window
    window: float  # seconds


class ResourceMetrics(Protocol):
    def pod_metrics(self, namespace: str, pods: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
        """The usage of `resource` of each of `pods` that has metrics (upstream's
        GetResourceMetric over the pods the selector picks); MetricsError when none can be read."""
        ...


NO_CUSTOM_METRICS = "no custom metrics API (custom.metrics.k8s.io) registered"
_NO_RESOURCE_METRICS = ("unable to fetch metrics from resource metrics API: the server could not find the "
                        "requested resource (get pods.metrics.k8s.io)")


def no_external_metric(name: str) -> str:
    """What the external metrics client hears without that API: the GET of the metric is a 404."""
    return f"the server could not find the requested resource (get {name}.external.metrics.k8s.io)"


def go_label_selector(selector: Obj | None) -> str:
    """A `*metav1.LabelSelector` as Go's `%+v` prints it (its generated String())."""
    if not selector:
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((selector.get("matchLabels") or {}).items()))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key')},Operator:{e.get('operator')},"
                    f"Values:[{' '.join(e.get('values') or [])}],}},"
                    for e in selector.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def container_metrics(namespace: str, usage: dict[str, tuple[dict[str, dict[str, int]], float, float]], resource: str,
                      container: str) -> dict[str, PodMetric]:
    """Upstream's REST metrics client on PodMetrics: per pod (containers -> milli-usage,
    timestamp, window), the sum of its containers' usage, or one container's; a pod missing the
    resource in a container is left out, one without the named container is an error."""
    if not usage:
        raise MetricsError("no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for pod, (containers, timestamp, window) in usage.items():
        if container:
            if container not in containers:
                raise MetricsError(f"failed to get container metrics: container {container} not present in "
                                   f"metrics for pod {namespace}/{pod}")
            value: int | None = containers[container].get(resource)
        else:
            values = [c.get(resource) for c in containers.values()]
            value = None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]
        if value is not None:
            out[pod] = PodMetric(value, timestamp, window)
    return out


class LksResourceMetrics:
    """Resource metrics from lks's metrics pipeline (`lks.metrics.usage(cluster)`, the
    metrics-server add-on's windows)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def _usage(self) -> Any:
        # lks.metrics sits above the controllers (it reads the node agents' Process runtime):
        # looked up when asked, so that imports keep pointing down
        try:
            metrics = importlib.import_module("lks.metrics")
        except ImportError:
            raise MetricsError(_NO_RESOURCE_METRICS) from None
        return metrics.usage(self.cluster)

    def pod_metrics(self, namespace: str, pods: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
        source = self._usage()
        usage: dict[str, tuple[dict[str, dict[str, int]], float, float]] = {}
        for pod in pods:
            found = source.pod(namespace, pod["metadata"]["name"])
            if found is not None:  # a PodUsage: cores and bytes, as upstream's MilliValue
                usage[pod["metadata"]["name"]] = (
                    {name: {"cpu": round(c.cpu * 1000), "memory": c.memory * 1000} for name, c in found.containers.items()},
                    found.timestamp, found.window)
        return container_metrics(namespace, usage, resource, container)
