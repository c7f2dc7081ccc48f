"""The ReplicaSet (and ReplicationController) controller on the memory store with a manual
clock; pod readiness is simulated by writing pod status, as a kubelet would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import replicaset_util as rsutil
from lks.controllers.replicaset import REPLICATION_CONTROLLER, ReplicaSetController
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]
NS = "default"


async def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `check()` (sync or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


async def pods(cluster: Cluster, *, live: bool = True) -> list[Obj]:
    body = await cluster.registry("", "v1", "pods").list(NS, ListOptions(LabelSelector([]), FieldSelector([])))
    items = body["items"]
    return [p for p in items if not live or "deletionTimestamp" not in p["metadata"]]


async def events(cluster: Cluster, reason: str) -> list[Obj]:
    body = await cluster.registry("", "v1", "events").list(NS, ListOptions(LabelSelector([]), FieldSelector([])))
    return [e for e in body["items"] if e["reason"] == reason]


async def set_pod_status(cluster: Cluster, pod: Obj, phase: str, *, ready: bool, restarts: int = 0) -> Obj:
    """What a kubelet writes: the phase, the Ready condition (since now) and restart counts."""
    now = rfc3339(cluster.clock.now())

    def put(current: Obj) -> Obj:
        st = current.setdefault("status", {})
        st["phase"] = phase
        st["conditions"] = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]
        st["containerStatuses"] = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                                    "restartCount": restarts} for c in current["spec"]["containers"]]
        return current

    return await cluster.registry("", "v1", "pods").patch(NS, pod["metadata"]["name"], put, subresource="status")


def rs_body(name: str = "web", replicas: int = 3, labels: dict | None = None, **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, **spec,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[ReplicaSetController]:
    ctrl = ReplicaSetController(cluster)
    await ctrl.start()
    yield ctrl
    await ctrl.stop()


async def get_rs(cluster: Cluster, name: str = "web") -> Obj:
    return await cluster.registry("apps", "v1", "replicasets").get(NS, name)


async def test_creates_pods_from_the_template(cluster: Cluster, controller: ReplicaSetController) -> None:
    rs = await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=3))
    got = await wait_for(lambda: _n_pods(cluster, 3))
    for pod in got:
        meta = pod["metadata"]
        assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
        assert meta["generateName"] == "web-"
        assert meta["labels"] == {"app": "web"}
        assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                            "uid": rs["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert pod["spec"]["containers"][0]["image"] == "nginx"
    status = (await wait_for(lambda: _status_with(cluster, replicas=3)))["status"]
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1, "terminatingReplicas": 0}
    created = await wait_for(lambda: _events_n(cluster, "SuccessfulCreate", 3))
    assert {e["message"] for e in created} == {f"Created pod: {p['metadata']['name']}" for p in got}
    assert all(e["source"] == {"component": "replicaset-controller"} for e in created)
    assert created[0]["involvedObject"]["kind"] == "ReplicaSet"


async def test_ready_and_available_with_min_ready_seconds(cluster: Cluster, clock: ManualClock,
                                                          controller: ReplicaSetController) -> None:
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2, minReadySeconds=10))
    for pod in await wait_for(lambda: _n_pods(cluster, 2)):
        await set_pod_status(cluster, pod, "Running", ready=True)
    rs = await wait_for(lambda: _status_with(cluster, readyReplicas=2))
    assert "availableReplicas" not in rs["status"]
    await clock.advance(12)
    rs = await wait_for(lambda: _status_with(cluster, availableReplicas=2))
    assert rs["status"]["readyReplicas"] == 2


async def test_scale_down_deletes_not_ready_and_pending_first(cluster: Cluster, clock: ManualClock,
                                                              controller: ReplicaSetController) -> None:
    rsets = cluster.registry("apps", "v1", "replicasets")
    await rsets.create(NS, rs_body(replicas=4))
    created = sorted(await wait_for(lambda: _n_pods(cluster, 4)), key=lambda p: p["metadata"]["name"])
    running_ready, running_not_ready, pending = created[0], created[1], created[2]
    await set_pod_status(cluster, running_ready, "Running", ready=True)
    await set_pod_status(cluster, created[3], "Running", ready=True)
    await set_pod_status(cluster, running_not_ready, "Running", ready=False)
    await set_pod_status(cluster, pending, "Pending", ready=False)
    await wait_for(lambda: _status_with(cluster, readyReplicas=2))

    await rsets.patch(NS, "web", lambda o: {**o, "spec": {**o["spec"], "replicas": 2}})
    left = await wait_for(lambda: _n_pods(cluster, 2))
    assert {p["metadata"]["name"] for p in left} == {running_ready["metadata"]["name"], created[3]["metadata"]["name"]}
    deleted = await wait_for(lambda: _events_n(cluster, "SuccessfulDelete", 2))
    assert {e["message"] for e in deleted} == {f"Deleted pod: {pending['metadata']['name']}",
                                               f"Deleted pod: {running_not_ready['metadata']['name']}"}
    await rsets.patch(NS, "web", lambda o: {**o, "spec": {**o["spec"], "replicas": 0}})
    await wait_for(lambda: _n_pods(cluster, 0))
    rs = await wait_for(lambda: _status_with(cluster, replicas=0))
    assert rs["status"] == {"replicas": 0, "observedGeneration": 3, "terminatingReplicas": 0}


async def test_replaces_deleted_pods(cluster: Cluster, controller: ReplicaSetController) -> None:
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2))
    first = await wait_for(lambda: _n_pods(cluster, 2))
    victim = first[0]["metadata"]["name"]
    await cluster.registry("", "v1", "pods").delete(NS, victim, deletion.DeleteOptions())
    now = await wait_for(lambda: _n_pods_without(cluster, 2, victim))
    assert victim not in {p["metadata"]["name"] for p in now}


async def test_a_gracefully_deleting_pod_is_replaced_at_once(cluster: Cluster,
                                                             controller: ReplicaSetController) -> None:
    pods_reg = cluster.registry("", "v1", "pods")
    # bound to a node, so DELETE only marks it (the kubelet would finish the deletion)
    await pods_reg.create(NS, {"metadata": {"name": "bound", "labels": {"app": "web"}},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}})
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=1))
    await wait_for(lambda: _status_with(cluster, replicas=1))
    assert [p["metadata"]["name"] for p in await pods(cluster)] == ["bound"]
    await pods_reg.delete(NS, "bound", deletion.DeleteOptions())
    assert "deletionTimestamp" in (await pods_reg.get(NS, "bound"))["metadata"]
    replacement = await wait_for(lambda: _n_pods(cluster, 1))
    assert replacement[0]["metadata"]["name"] != "bound"
    assert len(await pods(cluster, live=False)) == 2
    rs = await wait_for(lambda: _status_with(cluster, replicas=1, terminatingReplicas=1))
    assert rs["status"]["terminatingReplicas"] == 1


async def test_adopts_orphans_and_releases_pods_it_no_longer_selects(cluster: Cluster,
                                                                    controller: ReplicaSetController) -> None:
    pods_reg = cluster.registry("", "v1", "pods")
    orphan = await pods_reg.create(NS, {"metadata": {"name": "orphan", "labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    rs = await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2))
    got = await wait_for(lambda: _n_pods(cluster, 2))
    adopted = next(p for p in got if p["metadata"]["name"] == "orphan")
    assert rsutil.controller_of(adopted)["uid"] == rs["metadata"]["uid"]
    assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]

    # relabelled out of the selector: released, and replaced
    await pods_reg.patch(NS, "orphan", lambda o: {**o, "metadata": {**o["metadata"], "labels": {"app": "other"}}})

    async def released() -> bool:
        pod = await pods_reg.get(NS, "orphan")
        return rsutil.controller_of(pod) is None and len(await pods(cluster)) == 3

    await wait_for(released)


async def test_more_than_a_burst_takes_several_syncs(cluster: Cluster, controller: ReplicaSetController) -> None:
    syncs = 0
    real_sync = controller.sync

    async def counting(key: str) -> None:
        nonlocal syncs
        syncs += 1
        await real_sync(key)

    controller.queue.sync = counting
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=600))
    await wait_for(lambda: _status_with(cluster, replicas=600), timeout=30)
    assert len(await pods(cluster)) == 600
    assert syncs >= 2  # 500 at most per sync
    assert len(await events(cluster, "SuccessfulCreate")) == rsutil.EventBudget.BURST  # the spam filter


async def test_expectations_keep_a_stale_cache_from_creating_twice(cluster: Cluster) -> None:
    ctrl = ReplicaSetController(cluster)
    await ctrl.set_informer.start()
    await ctrl.pod_informer.start()
    try:
        await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=3))
        await wait_for(lambda: ctrl.set_informer.get(NS, "web"))
        await ctrl.sync(f"{NS}/web")
        assert not ctrl.expectations.satisfied(f"{NS}/web") or len(await pods(cluster)) == 3
        await ctrl.sync(f"{NS}/web")  # the creations may not be in the cache yet: nothing more happens
        assert len(await pods(cluster)) == 3
        await wait_for(lambda: ctrl.expectations.satisfied(f"{NS}/web"))
        await ctrl.sync(f"{NS}/web")
        assert len(await pods(cluster)) == 3
    finally:
        await ctrl.pod_informer.stop()
        await ctrl.set_informer.stop()


async def test_failed_creates_set_replica_failure(cluster: Cluster, clock: ManualClock,
                                                  controller: ReplicaSetController,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = controller.pods.create

    async def refuse(*args: Any, **kwargs: Any) -> Obj:
        raise errors.APIError(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota: q')

    monkeypatch.setattr(controller.pods, "create", refuse)
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2))
    rs = await wait_for(lambda: _condition(cluster, "ReplicaFailure"))
    cond = next(c for c in rs["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert cond["reason"] == "FailedCreate" and cond["status"] == "True"
    assert "exceeded quota" in cond["message"]
    failed = await wait_for(lambda: _events_n(cluster, "FailedCreate", 1))
    assert failed[0]["type"] == "Warning"
    assert failed[0]["message"] == 'Error creating: pods "web-" is forbidden: exceeded quota: q'

    monkeypatch.setattr(controller.pods, "create", real_create)
    for _ in range(20):  # the retry waits out its back-off on the clock
        await clock.advance(1)
        if len(await pods(cluster)) == 2:
            break
    await wait_for(lambda: _n_pods(cluster, 2))
    rs = await wait_for(lambda: _status_with(cluster, replicas=2))
    assert "conditions" not in rs["status"]


async def test_replication_controller(cluster: Cluster) -> None:
    ctrl = ReplicaSetController(cluster, REPLICATION_CONTROLLER)
    await ctrl.start()
    try:
        rc = await cluster.registry("", "v1", "replicationcontrollers").create(NS, {
            "metadata": {"name": "old"},
            "spec": {"replicas": 2, "selector": {"app": "old"},
                     "template": {"metadata": {"labels": {"app": "old"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
        got = await wait_for(lambda: _n_pods(cluster, 2))
        assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in got)
        assert all(p["metadata"]["ownerReferences"][0]["uid"] == rc["metadata"]["uid"] for p in got)

        async def rc_status() -> Obj | None:
            obj = await cluster.registry("", "v1", "replicationcontrollers").get(NS, "old")
            return obj if (obj.get("status") or {}).get("replicas") == 2 else None

        await wait_for(rc_status)
        created = await wait_for(lambda: _events_n(cluster, "SuccessfulCreate", 2))
        assert created[0]["source"]["component"] == "replication-controller"
    finally:
        await ctrl.stop()


# -- pure helpers ----------------------------------------------------------------------------------

def _pod(name: str, *, node: str = "", phase: str = "Running", ready: bool = True, since: float = 0.0,
         created: float = 0.0, restarts: int = 0, cost: int | None = None) -> Obj:
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": rfc3339(created)}
    if cost is not None:
        meta["annotations"] = {rsutil.DELETION_COST: str(cost)}
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": rfc3339(since)}],
                       "containerStatuses": [{"restartCount": restarts}]}}


@pytest.mark.parametrize(("pods_", "first"), [
    pytest.param([_pod("sched", node="n1"), _pod("unsched")], "unsched", id="unscheduled-first"),
    pytest.param([_pod("run"), _pod("pend", phase="Pending")], "pend", id="pending-first"),
    pytest.param([_pod("ready"), _pod("notready", ready=False)], "notready", id="not-ready-first"),
    pytest.param([_pod("cheap", cost=-5), _pod("dear", cost=5)], "cheap", id="deletion-cost"),
    pytest.param([_pod("young", since=1_000_000), _pod("old", since=10)], "young", id="recently-ready-first"),
    pytest.param([_pod("stable"), _pod("crashy", restarts=4)], "crashy", id="restarts-first"),
])
def test_pods_to_delete_order(pods_: list[Obj], first: str) -> None:
    now = 2_000_000.0
    assert [p["metadata"]["name"] for p in rsutil.pods_to_delete(pods_, pods_, 1, now)] == [first]


def test_pods_to_delete_prefers_doubled_up_nodes() -> None:
    a1, a2, b1 = _pod("a1", node="a"), _pod("a2", node="a"), _pod("b1", node="b")
    victims = rsutil.pods_to_delete([a1, b1], [a1, a2, b1], 1, 100.0)
    assert victims == [a1]


async def test_slow_start_batches_double_and_stop_at_a_failure() -> None:
    in_flight: list[int] = []
    running = 0

    async def ok() -> None:
        nonlocal running
        running += 1
        in_flight.append(running)
        await asyncio.sleep(0)
        running -= 1

    done, err = await rsutil.slow_start_batch(20, 1, ok)
    assert (done, err) == (20, None)
    assert max(in_flight) == 8  # batches of 1, 2, 4, 8 and the last 5

    calls = 0

    async def fails_third() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ValueError("no")

    done, err = await rsutil.slow_start_batch(20, 1, fails_third)
    assert isinstance(err, ValueError) and calls == 3 and done == 2  # batches 1 and 2; the second failed


def test_expectations_expire(clock: ManualClock) -> None:
    exp = rsutil.Expectations(clock.now)
    exp.expect_creations("k", 2)
    assert not exp.satisfied("k")
    exp.creation_observed("k")
    exp.creation_observed("k")
    assert exp.satisfied("k")
    exp.expect_deletions("k", ["a"])
    assert not exp.satisfied("k")
    clock._now += rsutil.EXPECTATIONS_TIMEOUT + 1
    assert exp.satisfied("k")


def test_event_budget(clock: ManualClock) -> None:
    budget = rsutil.EventBudget(clock.now)
    assert sum(budget.take("u") for _ in range(100)) == 25
    clock._now += 300
    assert budget.take("u") and not budget.take("u")


def test_tally_counts_incrementally() -> None:
    from lks.controllers import replicaset_tally as tally
    from lks.kube import selectors

    rs = {"metadata": {"uid": "rs", "generation": 2},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web", "tier": "x"}}}}}
    t = tally.Tally(rs, selectors.from_label_selector_object(rs["spec"]["selector"]), built=0.0)

    def pod(name: str, *, labels: dict | None = None, ready_at: float | None = None, deleting: bool = False) -> Obj:
        p = _pod(name, ready=ready_at is not None, since=ready_at or 0.0)
        p["metadata"]["labels"] = labels if labels is not None else {"app": "web", "tier": "x"}
        if deleting:
            p["metadata"]["deletionTimestamp"] = rfc3339(0)
        return p

    t.put("a", pod("a"))
    t.put("b", pod("b", ready_at=100.0))
    t.put("c", pod("c", labels={"app": "web"}, ready_at=150.0))
    t.put("d", pod("d", labels={"app": "other"}))
    t.put("e", pod("e", deleting=True))
    c = t.counts(0, 200.0)
    assert (c.replicas, c.labeled, c.ready, c.available, c.terminating) == (3, 2, 2, 2, 1)
    assert t.unmatched == {"d"}
    # minReadySeconds 60 at t=200: b (ready since 100) is available, c (since 150) not yet
    assert t.counts(60, 200.0).available == 1
    assert t.counts(60, 211.0).available == 2
    t.put("b", pod("b"))  # no longer ready
    t.put("c", None)  # gone
    c = t.counts(0, 300.0)
    assert (c.replicas, c.ready, c.available) == (2, 0, 0) and t.ready_times == []
    status = tally.calculate_status(rs, c, None, now=300.0)
    assert status == {"replicas": 2, "terminatingReplicas": 1, "fullyLabeledReplicas": 2, "observedGeneration": 2}


# -- waits ---------------------------------------------------------------------------------------

async def _n_pods(cluster: Cluster, n: int) -> Any:
    """The live pods once there are `n` of them (True for none)."""
    got = await pods(cluster)
    if len(got) != n:
        return None
    return got or True


async def _n_pods_without(cluster: Cluster, n: int, name: str) -> list[Obj] | None:
    got = await pods(cluster)
    return got if len(got) == n and all(p["metadata"]["name"] != name for p in got) else None


async def _status_with(cluster: Cluster, **want: int) -> Obj | None:
    rs = await get_rs(cluster)
    status = rs.get("status") or {}
    return rs if all(status.get(k, 0) == v for k, v in want.items()) else None


async def _condition(cluster: Cluster, type_: str) -> Obj | None:
    rs = await get_rs(cluster)
    return rs if any(c["type"] == type_ for c in (rs.get("status") or {}).get("conditions") or []) else None


async def _events_n(cluster: Cluster, reason: str, n: int) -> list[Obj] | None:
    got = await events(cluster, reason)
    return got if len(got) >= n else None
