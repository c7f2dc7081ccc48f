"""The HorizontalPodAutoscaler controller on the memory store, with the manual clock and a fake
metrics provider: scale up on cpu utilization, the 10 % tolerance, the scale-down
stabilization window, behavior policies, min/max limits, the conditions, status and Events
upstream writes, AverageValue and ContainerResource targets, Pods and External metrics without
their metrics APIs, a target at zero, a custom resource scaled through its `scale`, and a
target that is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import horizontalpodautoscaler as hpac
from lks.controllers.crd import CRDController
from lks.controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
from lks.controllers.hpa_metrics import MetricsError, PodMetric
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]
HPAS = ("autoscaling", "v2", "horizontalpodautoscalers")


class FakeMetrics:
    """cpu per pod in millicores; a pod not in `cpu` has no metrics."""

    def __init__(self, clock: ManualClock):
        self.clock = clock
        self.cpu: dict[str, int] = {}

    def pod_metrics(self, namespace: str, pods: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
        found = {p["metadata"]["name"]: PodMetric(self.cpu[p["metadata"]["name"]], self.clock.now(), 15.0)
                 for p in pods if p["metadata"]["name"] in self.cpu}
        if not found:
            raise MetricsError("no metrics returned from resource metrics API")
        return found


@pytest.fixture
def metrics(clock: ManualClock) -> FakeMetrics:
    return FakeMetrics(clock)


@pytest.fixture
async def controller(cluster: Cluster, metrics: FakeMetrics) -> AsyncIterator[HorizontalPodAutoscalerController]:
    c = HorizontalPodAutoscalerController(cluster, metrics=metrics)
    await c.start()
    yield c
    await c.stop()


async def _deployment(cluster: Cluster, replicas: int) -> Obj:
    return await cluster.registry("apps", "v1", "deployments").create("default", {
        "metadata": {"name": "web"}, "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}}})


async def _pods(cluster: Cluster, metrics: FakeMetrics, *cpu: int) -> None:
    """Running, long-ready pods of the Deployment using `cpu` millicores each."""
    reg = cluster.registry("", "v1", "pods")
    long_ago = rfc3339(cluster.clock.now() - 3600)
    for i, used in enumerate(cpu):
        name = f"web-{i}"
        await reg.create("default", {"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
            "nodeName": "n1", "containers": [{"name": "app", "image": "nginx",
                                               "resources": {"requests": {"cpu": "100m"}}}]}})

        def running(current: Obj) -> Obj:
            current["status"].update(phase="Running", startTime=long_ago, conditions=[
                {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": long_ago}])
            return current

        await reg.patch("default", name, running, subresource="status")
        metrics.cpu[name] = used


async def _hpa(cluster: Cluster, *, minimum: int = 1, maximum: int = 10, behavior: Obj | None = None,
               metrics: list[Obj] | None = None) -> Obj:
    spec: Obj = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": minimum, "maxReplicas": maximum,
                 "metrics": metrics or [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return await cluster.registry(*HPAS).create("default", {"metadata": {"name": "web"}, "spec": spec})


async def _tick(clock: ManualClock, c: HorizontalPodAutoscalerController, seconds: float = hpac.SYNC_PERIOD) -> None:
    await w.idle(c.queue)
    await clock.advance(seconds)
    await w.idle(c.queue)


async def _replicas(cluster: Cluster) -> int:
    return (await cluster.registry("apps", "v1", "deployments").get("default", "web"))["spec"]["replicas"]


async def _status(cluster: Cluster) -> Obj:
    return (await cluster.registry(*HPAS).get("default", "web")).get("status") or {}


def _condition(status: Obj, type_: str) -> tuple[str, str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"], c["message"]


async def _events(cluster: Cluster) -> list[tuple[str, str, str]]:
    listed = await w.listed(cluster, "", "events")
    return [(e["type"], e["reason"], e["message"]) for e in listed
            if e["involvedObject"].get("kind") == "HorizontalPodAutoscaler"]


async def test_scales_up_on_cpu_utilization(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                            clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 90, 70)  # 80 % of the requests against a 50 % target
    await _hpa(cluster)
    await w.idle(controller.queue)
    assert "conditions" not in await _status(cluster)  # the first look comes one sync period later, as upstream's
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4  # ceil(2 * 80 / 50)
    status = await _status(cluster)
    assert status["currentReplicas"] == 2 and status["desiredReplicas"] == 4
    assert status["lastScaleTime"] == rfc3339(clock.now())
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 80, "averageValue": "80m"}}}]
    assert _condition(status, "AbleToScale") == (
        "True", "SucceededRescale", "the HPA controller was able to update the target scale to 4")
    assert _condition(status, "ScalingActive") == (
        "True", "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)")
    assert _condition(status, "ScalingLimited") == (
        "False", "DesiredWithinRange", "the desired count is within the acceptable range")
    assert ("Normal", "SuccessfulRescale",
            "New size: 4; reason: cpu resource utilization (percentage of request) above target") in await _events(cluster)


async def test_within_tolerance_nothing_changes(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                                clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 54, 54)  # 54 % against 50 %: a ratio of 1.08
    await _hpa(cluster)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 2
    status = await _status(cluster)
    assert status["desiredReplicas"] == 2 and "lastScaleTime" not in status
    assert _condition(status, "AbleToScale")[1] == "ReadyForNewScale"


async def test_scale_down_waits_for_the_stabilization_window(
        cluster: Cluster, controller: HorizontalPodAutoscalerController, clock: ManualClock,
        metrics: FakeMetrics) -> None:
    await _deployment(cluster, 4)
    await _pods(cluster, metrics, 50, 50, 50, 50)
    await _hpa(cluster)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4
    for name in metrics.cpu:
        metrics.cpu[name] = 10  # 10 %: one pod would do
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4  # the recommendation of 4 from 15 s ago still holds
    assert _condition(await _status(cluster), "AbleToScale")[1:] == (
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation")
    for _ in range(20):  # past 5 minutes of looks
        await _tick(clock, controller)
    assert await _replicas(cluster) == 1
    assert ("Normal", "SuccessfulRescale", "New size: 1; reason: All metrics below target") in await _events(cluster)


async def test_max_replicas_limits(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                   clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 100, 100)  # 200 %: 8 replicas wanted
    await _hpa(cluster, maximum=3)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3
    assert _condition(await _status(cluster), "ScalingLimited") == (
        "True", "TooManyReplicas", "the desired replica count is more than the maximum replica count")


async def test_legacy_scale_up_limit(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                     clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 1)
    await _pods(cluster, metrics, 500)  # 1000 %: 10 wanted, at most max(2 x 1, 4) at once
    await _hpa(cluster, maximum=20)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4
    assert _condition(await _status(cluster), "ScalingLimited") == (
        "True", "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")


async def test_below_min_replicas(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                  clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 1)
    await _pods(cluster, metrics, 10)
    await _hpa(cluster, minimum=3)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3
    assert ("Normal", "SuccessfulRescale",
            "New size: 3; reason: Current number of replicas below Spec.MinReplicas") in await _events(cluster)


async def test_behavior_policies_limit_the_rate(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                                clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 200, 200)  # 400 %: 16 wanted
    behavior = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}}
    await _hpa(cluster, maximum=20, behavior=behavior)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3  # one pod per minute
    assert _condition(await _status(cluster), "ScalingLimited") == (
        "True", "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3  # that minute's pod is spent
    for _ in range(4):
        await _tick(clock, controller)
    assert await _replicas(cluster) == 4
    for name in metrics.cpu:
        metrics.cpu[name] = 1
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4  # scale-down disabled
    assert _condition(await _status(cluster), "ScalingLimited")[1] == "ScaleDownLimit"


async def test_pods_metric_without_a_custom_metrics_api(
        cluster: Cluster, controller: HorizontalPodAutoscalerController, clock: ManualClock,
        metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 50, 50)
    await _hpa(cluster, metrics=[{"type": "Pods", "pods": {
        "metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "10"}}}])
    await _tick(clock, controller)
    assert await _replicas(cluster) == 2
    status = await _status(cluster)
    error = ("unable to get metric requests_per_second: unable to fetch metrics from custom metrics API: "
             "no custom metrics API (custom.metrics.k8s.io) registered")
    assert _condition(status, "ScalingActive") == (
        "False", "FailedGetPodsMetric", f"the HPA was unable to compute the replica count: {error}")
    events = await _events(cluster)
    assert ("Warning", "FailedGetPodsMetric", error) in events
    assert ("Warning", "FailedComputeMetricsReplicas",
            f"invalid metrics (1 invalid out of 1), first error is: failed to get pods metric value: {error}") in events


async def test_missing_metrics(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                               clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 50)
    metrics.cpu.clear()
    await _hpa(cluster)
    await _tick(clock, controller)
    status = await _status(cluster)
    assert _condition(status, "ScalingActive") == (
        "False", "FailedGetResourceMetric",
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for "
        "resource cpu: no metrics returned from resource metrics API")
    assert status["currentReplicas"] == 2


async def test_missing_pod_counts_as_full_on_scale_down(
        cluster: Cluster, controller: HorizontalPodAutoscalerController, clock: ManualClock,
        metrics: FakeMetrics) -> None:
    await _deployment(cluster, 3)
    await _pods(cluster, metrics, 10, 10, 10)
    del metrics.cpu["web-2"]  # at 100 % of its request on a scale-down: (10+10+100)/3 = 40 %
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    await _hpa(cluster, behavior=behavior)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3  # ceil(0.8 * 3) = 3


async def test_target_without_scale(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                    clock: ManualClock) -> None:
    await cluster.registry(*HPAS).create("default", {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}})
    await _tick(clock, controller)
    status = await _status(cluster)
    assert _condition(status, "AbleToScale") == (
        "False", "FailedGetScale",
        'the HPA controller was unable to get the target\'s current scale: deployments.apps "web" not found')
    assert ("Warning", "FailedGetScale", 'deployments.apps "web" not found') in await _events(cluster)


async def test_average_value_target(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                    clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 100, 100)
    await _hpa(cluster, metrics=[{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "AverageValue", "averageValue": "50m"}}}])
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4
    status = await _status(cluster)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "100m"}}}]
    assert ("Normal", "SuccessfulRescale", "New size: 4; reason: cpu resource above target") in await _events(cluster)


async def test_container_resource(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                  clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 100, 100)
    await _hpa(cluster, metrics=[{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 50}}}])
    await _tick(clock, controller)
    assert await _replicas(cluster) == 4
    assert (await _status(cluster))["currentMetrics"] == [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "current": {"averageUtilization": 100, "averageValue": "100m"}}}]
    assert ("Normal", "SuccessfulRescale",
            "New size: 4; reason: cpu container resource utilization (percentage of request) above target",
            ) in await _events(cluster)


async def test_external_metric_without_an_api(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                              clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 50, 50)
    await _hpa(cluster, metrics=[{"type": "External", "external": {
        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
        "target": {"type": "AverageValue", "averageValue": "30"}}}])
    await _tick(clock, controller)
    error = ("unable to get external metric default/queue/&LabelSelector{MatchLabels:map[string]string{q: jobs,},"
             "MatchExpressions:[]LabelSelectorRequirement{},}: unable to fetch metrics from external metrics API: "
             "the server could not find the requested resource (get queue.external.metrics.k8s.io)")
    assert _condition(await _status(cluster), "ScalingActive") == (
        "False", "FailedGetExternalMetric", f"the HPA was unable to compute the replica count: {error}")


async def test_a_target_at_zero_is_not_scaled(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                              clock: ManualClock) -> None:
    await _deployment(cluster, 0)
    await _hpa(cluster)
    await _tick(clock, controller)
    assert await _replicas(cluster) == 0
    assert _condition(await _status(cluster), "ScalingActive") == (
        "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")


WIDGETS = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}, "scale": {
                                      "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                      "labelSelectorPath": ".status.selector"}},
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}


async def test_a_custom_resource_through_its_scale(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                                   clock: ManualClock) -> None:
    crds = CRDController(cluster)
    await crds.start()
    try:
        await cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions").create(None, WIDGETS)
        await w.until(lambda: cluster.catalog.lookup("example.com", "v1", "widgets"))
        widgets = cluster.registry("example.com", "v1", "widgets")
        await widgets.create("default", {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                                         "spec": {"replicas": 1}})
        await cluster.registry(*HPAS).create("default", {"metadata": {"name": "web"}, "spec": {
            "scaleTargetRef": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"},
            "minReplicas": 2, "maxReplicas": 5}})
        await _tick(clock, controller)
        assert (await widgets.get("default", "w"))["spec"]["replicas"] == 2
        assert ("Normal", "SuccessfulRescale",
                "New size: 2; reason: Current number of replicas below Spec.MinReplicas") in await _events(cluster)
    finally:
        await crds.stop()


async def test_an_hpa_of_its_own_tolerance(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                           clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 54, 54)  # a ratio of 1.08: inside 10 %, outside the HPA's 5 %
    await _hpa(cluster, behavior={"scaleUp": {"tolerance": "50m"}})
    await _tick(clock, controller)
    assert await _replicas(cluster) == 3  # ceil(2 * 1.08)


async def test_two_hpas_over_the_same_pods(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                           clock: ManualClock, metrics: FakeMetrics) -> None:
    await _deployment(cluster, 2)
    await _pods(cluster, metrics, 90, 90)
    await _hpa(cluster)
    await cluster.registry(*HPAS).create("default", {"metadata": {"name": "web-2"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}})
    await _tick(clock, controller)
    await _tick(clock, controller)  # each has seen its pods once: now both know of the other
    message = "pods by selector app=web are controlled by multiple HPAs: [default/web default/web-2]"
    assert _condition(await _status(cluster), "ScalingActive") == ("False", "AmbiguousSelector", message)
    assert ("Warning", "AmbiguousSelector", message) in await _events(cluster)


async def test_a_statefulset_through_its_scale(cluster: Cluster, controller: HorizontalPodAutoscalerController,
                                               clock: ManualClock) -> None:
    sets = cluster.registry("apps", "v1", "statefulsets")
    await sets.create("default", {"metadata": {"name": "db"}, "spec": {
        "replicas": 5, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "x"}]}}}})
    await cluster.registry(*HPAS).create("default", {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}, "maxReplicas": 3}})
    await _tick(clock, controller)
    assert (await sets.get("default", "db"))["spec"]["replicas"] == 3
    assert ("Normal", "SuccessfulRescale",
            "New size: 3; reason: Current number of replicas above Spec.MaxReplicas") in await _events(cluster)
