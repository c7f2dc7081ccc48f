"""ResourceQuota and LimitRange on the memory store: the quota controller keeps `status.hard`
and `status.used`, admission refuses what would exceed a quota with upstream's wording and
counts what it admits, deletions give usage back, scopes select pods, and LimitRange
admission fills in default requests and limits and enforces min, max and ratios."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock
from lks.controllers.resourcequota import ResourceQuotaController
from lks.kube import deletion, errors
from lks.kube.admission import resourcequota as quota
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[ResourceQuotaController]:
    c = ResourceQuotaController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _idle(c: ResourceQuotaController, rounds: int = 30) -> None:
    quiet = 0
    for _ in range(5000):
        await asyncio.sleep(0)
        quiet = quiet + 1 if c.queue.idle() else 0
        if quiet >= rounds:
            return
    raise AssertionError("queue never went idle")


async def _quota(cluster: Cluster, c: ResourceQuotaController, hard: Obj, name: str = "q", **spec: Any) -> None:
    await cluster.registry("", "v1", "resourcequotas").create("default", {"metadata": {"name": name},
                                                                          "spec": {"hard": hard, **spec}})
    await _idle(c)


async def _status(cluster: Cluster, name: str = "q") -> Obj:
    return (await cluster.registry("", "v1", "resourcequotas").get("default", name))["status"]


def _pod(name: str, requests: Obj | None = None, limits: Obj | None = None, **spec: Any) -> Obj:
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "nginx", "resources": resources}],
                                                 **spec}}


async def _create(cluster: Cluster, body: Obj, resource: str = "pods") -> Obj:
    return await cluster.registry("", "v1", resource).create("default", body)


async def _refused(cluster: Cluster, body: Obj, resource: str = "pods") -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        await _create(cluster, body, resource)
    assert (caught.value.code, caught.value.reason) == (403, "Forbidden")
    return caught.value


# -- ResourceQuota -----------------------------------------------------------------------------


async def test_the_controller_fills_in_the_status(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _create(cluster, {"metadata": {"name": "cm"}}, "configmaps")
    await _create(cluster, _pod("p1", {"cpu": "250m", "memory": "64Mi"}, {"cpu": "500m", "memory": "128Mi"}))
    await _quota(cluster, controller, {"pods": "10", "requests.cpu": "2000m", "requests.memory": "1Gi",
                                       "limits.cpu": "4", "configmaps": "5", "count/secrets": "3"})
    assert await _status(cluster) == {
        "hard": {"configmaps": "5", "count/secrets": "3", "limits.cpu": "4", "pods": "10", "requests.cpu": "2",
                 "requests.memory": "1Gi"},
        "used": {"configmaps": "1", "count/secrets": "0", "limits.cpu": "500m", "pods": "1", "requests.cpu": "250m",
                 "requests.memory": "64Mi"}}


async def test_exceeding_a_quota_is_refused_with_upstreams_message(cluster: Cluster,
                                                                    controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"pods": "2"})
    await _create(cluster, _pod("p1"))
    await _create(cluster, _pod("p2"))
    assert (await _status(cluster))["used"] == {"pods": "2"}  # counted by admission at once
    err = await _refused(cluster, _pod("p3"))
    assert err.message == 'pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    assert err.details == {"name": "p3", "kind": "pods"}

    await cluster.registry("", "v1", "pods").delete("default", "p1", deletion.DeleteOptions())
    await _idle(controller)
    assert (await _status(cluster))["used"] == {"pods": "1"}  # given back by the controller
    await _create(cluster, _pod("p3"))


async def test_failed_creates_are_given_back(cluster: Cluster, clock: ManualClock,
                                             controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"pods": "2"})
    await _create(cluster, _pod("p1"))
    with pytest.raises(errors.APIError) as caught:
        await _create(cluster, _pod("p1"))
    assert caught.value.code == 409
    assert (await _status(cluster))["used"] == {"pods": "1"}  # an existing name is not charged

    # a charge whose create failed later on (another plugin refused it, say) is recounted
    quotas = cluster.registry("", "v1", "resourcequotas")
    q = await quotas.get("default", "q")
    q["status"]["used"] = {"pods": "2"}
    await quotas.update("default", "q", q, subresource="status")
    await _idle(controller)
    assert (await _status(cluster))["used"] == {"pods": "2"}
    await clock.advance(10)
    await _idle(controller)
    assert (await _status(cluster))["used"] == {"pods": "1"}


async def test_compute_quotas_need_every_container_to_say(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"requests.cpu": "1", "limits.memory": "1Gi"})
    err = await _refused(cluster, _pod("bare"))
    assert err.message == ('pods "bare" is forbidden: failed quota: q: must specify limits.memory for: app; '
                           'requests.cpu for: app')
    await _create(cluster, _pod("ok", {"cpu": "600m"}, {"memory": "512Mi"}))
    err = await _refused(cluster, _pod("big", {"cpu": "500m"}, {"memory": "256Mi"}))
    assert err.message == ('pods "big" is forbidden: exceeded quota: q, requested: requests.cpu=500m, '
                           'used: requests.cpu=600m, limited: requests.cpu=1')


async def test_object_counts_and_services(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"count/configmaps": "1", "services.nodeports": "1", "services.loadbalancers": "0"})
    await _create(cluster, {"metadata": {"name": "one"}}, "configmaps")
    err = await _refused(cluster, {"metadata": {"name": "two"}}, "configmaps")
    assert err.message == ('configmaps "two" is forbidden: exceeded quota: q, requested: count/configmaps=1, '
                           'used: count/configmaps=1, limited: count/configmaps=1')
    svc = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    err = await _refused(cluster, svc, "services")
    assert err.message == ('services "lb" is forbidden: exceeded quota: q, requested: services.loadbalancers=1, '
                           'used: services.loadbalancers=0, limited: services.loadbalancers=0')
    await _create(cluster, {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}, "services")
    assert (await _status(cluster))["used"]["services.nodeports"] == "1"


async def test_a_quota_without_status_is_not_enforced_yet(cluster: Cluster) -> None:
    await cluster.registry("", "v1", "resourcequotas").create("default", {"metadata": {"name": "q"},
                                                                          "spec": {"hard": {"pods": "0"}}})
    await _create(cluster, _pod("p1"))  # no controller has counted yet: upstream lets it through too


async def test_scopes_select_pods(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"pods": "1"}, "best-effort", scopes=["BestEffort"])
    await _quota(cluster, controller, {"pods": "1"}, "high", scopeSelector={"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]})
    await _create(cluster, _pod("free"))
    await _refused(cluster, _pod("free-2"))
    await _create(cluster, _pod("paid", {"cpu": "100m"}))  # not best effort: outside both quotas
    assert (await _status(cluster, "best-effort"))["used"] == {"pods": "1"}
    assert (await _status(cluster, "high"))["used"] == {"pods": "0"}


async def test_dry_runs_are_checked_but_not_counted(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"pods": "1"})
    await cluster.registry("", "v1", "pods").create("default", _pod("p1"), WriteOptions(dry_run=True))
    assert (await _status(cluster))["used"] == {"pods": "0"}


async def test_finished_pods_stop_counting(cluster: Cluster, controller: ResourceQuotaController) -> None:
    await _quota(cluster, controller, {"pods": "1", "count/pods": "5"})
    await _create(cluster, _pod("job"))

    def succeeded(pod: Obj) -> Obj:
        pod["status"]["phase"] = "Succeeded"
        return pod

    await cluster.registry("", "v1", "pods").patch("default", "job", succeeded, subresource="status")
    await _idle(controller)
    assert (await _status(cluster))["used"] == {"count/pods": "1", "pods": "0"}


def test_quantities_add_as_upstream() -> None:
    zero, mem = quota.parse_quantity("0"), quota.parse_quantity("128Mi")
    assert str(quota.add(zero, mem)) == "128Mi"  # a zero takes the other's format
    assert quota.show({"pods": quota.ONE, "cpu": quota.parse_quantity("0.5")}) == "cpu=500m,pods=1"
    assert quota.tracked(["pods", "requests.cpu", "count/deployments.apps", "secrets", "requests.storage",
                          "gold.storageclass.storage.k8s.io/requests.storage", "services.nodeports"]) == {
        ("", "pods"), ("apps", "deployments"), ("", "secrets"), ("", "persistentvolumeclaims"), ("", "services")}


# -- LimitRange ---------------------------------------------------------------------------------


async def _limits(cluster: Cluster, *items: Obj) -> None:
    await cluster.registry("", "v1", "limitranges").create("default", {"metadata": {"name": "limits"},
                                                                       "spec": {"limits": list(items)}})


async def test_defaults_are_filled_in(cluster: Cluster) -> None:
    await _limits(cluster, {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                            "defaultRequest": {"cpu": "100m"}})
    pod = await _create(cluster, _pod("web", limits={"memory": "128Mi"}))
    res = pod["spec"]["containers"][0]["resources"]
    # memory: the pod's own limit, and its request defaulted from it by the API
    assert res == {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app")
    assert pod["status"]["qosClass"] == "Burstable"


async def test_a_default_limit_alone_sets_the_request_too(cluster: Cluster) -> None:
    await _limits(cluster, {"type": "Container", "default": {"memory": "256Mi"}})
    pod = await _create(cluster, _pod("web"))
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"memory": "256Mi"}, "requests": {"memory": "256Mi"}}


async def test_min_max_and_ratio(cluster: Cluster) -> None:
    await _limits(cluster, {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"},
                            "maxLimitRequestRatio": {"cpu": "2"}})
    err = await _refused(cluster, _pod("big", {"cpu": "500m", "memory": "64Mi"}, {"cpu": "2"}))
    assert err.message == ('pods "big" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
                           'cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]')
    err = await _refused(cluster, _pod("small", {"cpu": "500m", "memory": "32Mi"}, {"cpu": "1"}))
    assert err.message == 'pods "small" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi'
    await _create(cluster, _pod("fits", {"cpu": "500m", "memory": "64Mi"}, {"cpu": "1"}))


async def test_pod_totals_and_claims(cluster: Cluster) -> None:
    await _limits(cluster, {"type": "Pod", "max": {"memory": "1Gi"}},
                  {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}})
    two = _pod("two", limits={"memory": "600Mi"})
    two["spec"]["containers"].append({"name": "side", "image": "busybox", "resources": {"limits": {"memory": "600Mi"}}})
    err = await _refused(cluster, two)
    assert err.message == 'pods "two" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi'
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "20Gi"}}}}
    err = await _refused(cluster, claim, "persistentvolumeclaims")
    assert err.message == ('persistentvolumeclaims "data" is forbidden: maximum storage usage per '
                           'PersistentVolumeClaim is 10Gi, but request is 20Gi')
