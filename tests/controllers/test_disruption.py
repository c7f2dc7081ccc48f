"""PodDisruptionBudget status (the disruption controller) and the eviction subresource that
spends it, on the memory store: minAvailable and maxUnavailable as numbers and percentages
scaled by the pods' controllers, the DisruptionAllowed condition, 429 when a budget would be
broken, disruptedPods, and the pods that may go without using up the budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import disruption
from lks.controllers.disruption import DisruptionController
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.kube.subresources import eviction

Obj = dict[str, Any]
PDBS = ("policy", "v1", "poddisruptionbudgets")


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[DisruptionController]:
    c = DisruptionController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _idle(c: DisruptionController, rounds: int = 30) -> None:
    quiet = 0
    for _ in range(5000):
        await asyncio.sleep(0)
        quiet = quiet + 1 if c.queue.idle() else 0
        if quiet >= rounds:
            return
    raise AssertionError("queue never went idle")


async def _pod(cluster: Cluster, name: str, *, ready: bool = True, labels: Obj | None = None,
               owner: Obj | None = None, phase: str = "Running") -> Obj:
    meta: Obj = {"name": name, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    pods = cluster.registry("", "v1", "pods")
    await pods.create("default", {"metadata": meta, "spec": {
        "nodeName": "n1", "containers": [{"name": "app", "image": "nginx"}]}})
    now = rfc3339(cluster.clock.now())

    def status(current: Obj) -> Obj:
        current["status"].update(phase=phase, conditions=[
            {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None, "lastTransitionTime": now}])
        return current

    return await pods.patch("default", name, status, subresource="status")


async def _budget(cluster: Cluster, name: str = "web", **spec: Any) -> Obj:
    return await cluster.registry(*PDBS).create("default", {
        "metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}})


async def _status(cluster: Cluster, name: str = "web") -> Obj:
    return (await cluster.registry(*PDBS).get("default", name)).get("status") or {}


async def _replicaset(cluster: Cluster, name: str, replicas: int, owner: Obj | None = None) -> Obj:
    meta: Obj = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    rs = await cluster.registry("apps", "v1", "replicasets").create("default", {"metadata": meta, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "other"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}})
    return {**rs, "apiVersion": "apps/v1", "kind": "ReplicaSet"}


async def _evict(cluster: Cluster, name: str, **delete_options: Any) -> tuple[int, Obj]:
    body: Obj = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return await eviction.evict(cluster.registry("", "v1", "pods"), "default", name, "create", body, WriteOptions())


async def _pod_state(cluster: Cluster, name: str) -> str:
    try:
        pod = await cluster.registry("", "v1", "pods").get("default", name)
    except errors.APIError as err:
        assert err.code == 404
        return "gone"
    return "terminating" if "deletionTimestamp" in pod["metadata"] else "there"


# -- status ------------------------------------------------------------------------------------


async def test_min_available_as_a_number(cluster: Cluster, controller: DisruptionController) -> None:
    for i in range(3):
        await _pod(cluster, f"web-{i}")
    await _pod(cluster, "web-3", ready=False)
    await _pod(cluster, "db", labels={"app": "db"})
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    status = await _status(cluster)
    assert {k: status[k] for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed",
                                   "observedGeneration")} == {
        "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 4, "disruptionsAllowed": 1, "observedGeneration": 1}
    [cond] = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")


async def test_the_budget_follows_its_pods(cluster: Cluster, controller: DisruptionController) -> None:
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    status = await _status(cluster)
    assert (status["expectedPods"], status["disruptionsAllowed"]) == (0, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    events = (await cluster.registry("", "v1", "events").cache()).objects.values()
    assert [e["message"] for e in events if e["reason"] == "NoPods"] == ["No matching pods found"]
    for i in range(3):
        await _pod(cluster, f"web-{i}")
    await _idle(controller)
    assert (await _status(cluster))["disruptionsAllowed"] == 1
    await cluster.registry("", "v1", "pods").patch("default", "web-0", _unready, subresource="status")
    await _idle(controller)
    status = await _status(cluster)
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (2, 0)
    assert (status["conditions"][0]["status"], status["conditions"][0]["reason"]) == ("False", "InsufficientPods")


def _unready(pod: Obj) -> Obj:
    for c in pod["status"]["conditions"]:
        c["status"] = "False"
    return pod


async def test_percentages_scale_by_the_controllers_replicas(cluster: Cluster, controller: DisruptionController) -> None:
    deployment = await cluster.registry("apps", "v1", "deployments").create("default", {
        "metadata": {"name": "web"}, "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "other"}},
                                              "template": {"metadata": {"labels": {"app": "other"}},
                                                           "spec": {"containers": [{"name": "a", "image": "x"}]}}}})
    rs = await _replicaset(cluster, "web-abc", 2, owner=deployment)
    for i in range(3):  # one pod still missing: the Deployment wants 4
        await _pod(cluster, f"web-{i}", owner=rs)
    await _budget(cluster, minAvailable="50%")
    await _budget(cluster, "max", maxUnavailable="30%")
    await _idle(controller)
    status = await _status(cluster)
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (4, 2, 1)
    status = await _status(cluster, "max")
    # ceil(30% of 4) = 2 may be unavailable: 2 must stay healthy
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (4, 2, 1)


async def test_a_replicaset_on_its_own_and_unmanaged_pods(cluster: Cluster, controller: DisruptionController) -> None:
    rs = await _replicaset(cluster, "solo", 3)
    await _pod(cluster, "web-0", owner=rs)
    await _pod(cluster, "web-1", owner=rs)
    await _pod(cluster, "stray")
    await _budget(cluster, maxUnavailable=1)
    await _idle(controller)
    status = await _status(cluster)
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"]) == (3, 2, 3)
    events = (await cluster.registry("", "v1", "events").cache()).objects.values()
    [unmanaged] = [e for e in events if e["reason"] == "UnmanagedPods"]
    assert unmanaged["type"] == "Warning" and unmanaged["message"].startswith(
        "Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:map[string]string{app: web,},")


async def test_a_pod_whose_controller_is_gone_fails_safe(cluster: Cluster, controller: DisruptionController) -> None:
    ghost = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "gone", "uid": "0000"}}
    await _pod(cluster, "web-0", owner=ghost)
    await _pod(cluster, "web-1", owner=ghost)
    await _budget(cluster, minAvailable="10%")
    await _idle(controller)
    status = await _status(cluster)
    assert status["disruptionsAllowed"] == 0
    cond = status["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "SyncFailed", 'found no controllers for pod "web-0"')


def test_scaled_values() -> None:
    assert disruption.scaled_value(3, 10) == 3
    assert disruption.scaled_value("25%", 10) == 3  # rounded up
    assert disruption.scaled_value("100%", 7) == 7


# -- eviction ------------------------------------------------------------------------------------


async def test_an_eviction_spends_the_budget_then_is_refused(cluster: Cluster, clock: ManualClock,
                                                             controller: DisruptionController) -> None:
    for i in range(3):
        await _pod(cluster, f"web-{i}")
    await _budget(cluster, minAvailable=2)
    await _idle(controller)

    code, body = await _evict(cluster, "web-0")
    assert (code, body) == (201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    assert await _pod_state(cluster, "web-0") == "terminating"  # graceful, as a delete
    pod = await cluster.registry("", "v1", "pods").get("default", "web-0")
    target = {c["type"]: c for c in pod["status"]["conditions"]}["DisruptionTarget"]
    assert (target["reason"], target["message"]) == ("EvictionByEvictionAPI", "Eviction API: evicting")

    with pytest.raises(errors.APIError) as caught:
        await _evict(cluster, "web-1")
    err = caught.value
    assert (err.code, err.reason, err.message) == (429, "TooManyRequests",
                                                   "Cannot evict pod as it would violate the pod's disruption budget.")
    assert err.details == {"causes": [{"reason": "DisruptionBudget",
                                       "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}
    assert await _pod_state(cluster, "web-1") == "there"
    await _idle(controller)
    status = await _status(cluster)
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (2, 0)


async def test_two_evictions_race_for_the_last_disruption(cluster: Cluster, controller: DisruptionController) -> None:
    for i in range(3):
        await _pod(cluster, f"web-{i}")
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    results = await asyncio.gather(_evict(cluster, "web-0"), _evict(cluster, "web-1"), return_exceptions=True)
    assert sorted(r[0] if isinstance(r, tuple) else r.code for r in results) == [201, 429]
    assert (await _status(cluster))["disruptionsAllowed"] == 0
    assert sorted([await _pod_state(cluster, "web-0"), await _pod_state(cluster, "web-1")]) == ["terminating", "there"]


async def test_disrupted_pods_expire_when_the_deletion_never_comes(cluster: Cluster, clock: ManualClock,
                                                                    controller: DisruptionController) -> None:
    for i in range(3):
        await _pod(cluster, f"web-{i}")
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    code, _ = await _evict(cluster, "web-0", dryRun=["All"])
    assert code == 201 and await _pod_state(cluster, "web-0") == "there"  # a dry run changes nothing
    assert (await _status(cluster))["disruptionsAllowed"] == 1

    # an approved eviction whose deletion never shows (a deletion refused after the decrement)
    pdbs = cluster.registry(*PDBS)
    pdb = await pdbs.get("default", "web")
    pdb["status"]["disruptedPods"] = {"web-2": rfc3339(clock.now())}
    pdb["status"]["disruptionsAllowed"] = 0
    await pdbs.update("default", "web", pdb, subresource="status")
    await _idle(controller)
    status = await _status(cluster)
    assert (status["currentHealthy"], status["disruptionsAllowed"], status["disruptedPods"]) == (
        2, 0, {"web-2": rfc3339(clock.now())})
    await clock.advance(121)
    await _idle(controller)
    status = await _status(cluster)
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (3, 1) and "disruptedPods" not in status


async def test_pods_that_cost_no_budget(cluster: Cluster, controller: DisruptionController) -> None:
    await _pod(cluster, "web-0")
    await _pod(cluster, "web-1")
    await _pod(cluster, "pending", phase="Pending", ready=False)
    await _pod(cluster, "done", phase="Succeeded", ready=False)
    await _pod(cluster, "sick", ready=False)
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    assert (await _status(cluster))["disruptionsAllowed"] == 0
    for name in ("pending", "done", "sick"):  # the budget is met without them
        code, _ = await _evict(cluster, name)
        assert code == 201
    assert await _pod_state(cluster, "done") == "gone"  # finished: no grace period
    with pytest.raises(errors.APIError) as caught:
        await _evict(cluster, "web-0")
    assert caught.value.code == 429


async def test_an_unready_pod_under_a_broken_budget(cluster: Cluster, controller: DisruptionController) -> None:
    await _pod(cluster, "web-0")
    await _pod(cluster, "sick", ready=False)
    await _budget(cluster, minAvailable=2)
    await _idle(controller)
    with pytest.raises(errors.APIError) as caught:  # IfHealthyBudget: the budget is not met
        await _evict(cluster, "sick")
    assert caught.value.code == 429
    await cluster.registry(*PDBS).patch("default", "web", _always_allow)
    await _idle(controller)
    code, _ = await _evict(cluster, "sick")
    assert code == 201


def _always_allow(pdb: Obj) -> Obj:
    pdb["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return pdb


async def test_a_budget_not_yet_processed(cluster: Cluster) -> None:
    await _pod(cluster, "web-0")
    await _budget(cluster, minAvailable=0)  # no controller runs: observedGeneration is behind
    with pytest.raises(errors.APIError) as caught:
        await _evict(cluster, "web-0")
    err = caught.value
    assert err.code == 429 and err.headers == {"Retry-After": "10"}
    assert err.details["causes"][0]["message"] == "The disruption budget web is still being processed by the server."


async def test_no_budget_and_two_budgets(cluster: Cluster, controller: DisruptionController) -> None:
    await _pod(cluster, "lonely", labels={"app": "none"})
    assert (await _evict(cluster, "lonely"))[0] == 201
    await _pod(cluster, "web-0")
    await _budget(cluster, "a", minAvailable=0)
    await _budget(cluster, "b", minAvailable=0)
    await _idle(controller)
    code, body = await _evict(cluster, "web-0")
    assert code == 500 and body["message"] == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")


async def test_eviction_requests_are_checked(cluster: Cluster) -> None:
    await _pod(cluster, "web-0")
    pods = cluster.registry("", "v1", "pods")
    with pytest.raises(errors.APIError) as caught:
        await eviction.evict(pods, "default", "web-0", "create", {"metadata": {"name": "other"}}, WriteOptions())
    assert (caught.value.code, caught.value.message) == (400, "name in URL does not match name in Eviction object")
    with pytest.raises(errors.APIError) as caught:
        await _evict(cluster, "web-0", preconditions={"uid": "not-it"})
    assert caught.value.code == 409
    with pytest.raises(errors.APIError) as caught:
        await _evict(cluster, "missing")
    assert caught.value.code == 404
