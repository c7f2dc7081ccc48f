"""Pod garbage collection on the memory store with a manual clock: pods of a deleted node go
after the 40 s quarantine (marked Failed, force-deleted), a node that comes back in time
keeps them, unscheduled terminating pods go at once, terminating pods on an out-of-service
node go, and finished pods beyond the threshold go oldest first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers.podgc import PodGCController
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]


@pytest.fixture
async def podgc(cluster: Cluster) -> AsyncIterator[PodGCController]:
    c = PodGCController(cluster, terminated_threshold=3)
    await c.start()
    yield c
    await c.stop()


async def _idle(c: PodGCController, rounds: int = 30) -> None:
    quiet = 0
    for _ in range(5000):
        await asyncio.sleep(0)
        quiet = quiet + 1 if c.queue.idle() else 0
        if quiet >= rounds:
            return
    raise AssertionError("queue never went idle")


async def _node(cluster: Cluster, name: str, *, ready: str = "True", taints: list[Obj] | None = None) -> None:
    now = rfc3339(cluster.clock.now())
    await cluster.registry("", "v1", "nodes").create(None, {
        "metadata": {"name": name}, "spec": {"taints": taints} if taints else {},
        "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": now,
                                   "lastTransitionTime": now, "reason": "KubeletReady", "message": ""}]}})


async def _pod(cluster: Cluster, name: str, node: str | None = None, *, phase: str = "Running") -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    pods = cluster.registry("", "v1", "pods")
    await pods.create("default", {"metadata": {"name": name}, "spec": spec})

    def status(current: Obj) -> Obj:
        current["status"]["phase"] = phase
        return current

    return await pods.patch("default", name, status, subresource="status")


async def _get(cluster: Cluster, name: str) -> Obj | None:
    try:
        return await cluster.registry("", "v1", "pods").get("default", name)
    except errors.APIError as err:
        assert err.code == 404
        return None


async def test_pods_of_a_deleted_node_go_after_the_quarantine(cluster: Cluster, clock: ManualClock,
                                                               podgc: PodGCController) -> None:
    await _node(cluster, "n1")
    await _node(cluster, "n2")
    await _pod(cluster, "orphan", "n1")
    await _pod(cluster, "kept", "n2")
    await cluster.registry("", "v1", "nodes").delete(None, "n1", deletion.DeleteOptions())
    await _idle(podgc)
    await clock.advance(39)
    await _idle(podgc)
    assert await _get(cluster, "orphan") is not None
    # what a watcher sees last before the pod goes: Failed, with the reason
    cache = await cluster.registry("", "v1", "pods").cache()
    watcher = cache.subscribe(lambda o: o["metadata"]["name"] == "orphan", after=cache.revision, initial=False)
    await clock.advance(1)
    await _idle(podgc)
    assert await _get(cluster, "orphan") is None  # force-deleted: no kubelet to confirm
    assert await _get(cluster, "kept") is not None
    seen = []
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        if item is not None:
            seen.append(item[1].obj)
    cache.unsubscribe(watcher)
    last = seen[-1]["status"]
    assert last["phase"] == "Failed"
    target = {c["type"]: c for c in last["conditions"]}["DisruptionTarget"]
    assert (target["status"], target["reason"], target["message"]) == (
        "True", "DeletionByPodGC", "PodGC: node no longer exists")


async def test_a_node_back_within_the_quarantine_keeps_its_pods(cluster: Cluster, clock: ManualClock,
                                                                podgc: PodGCController) -> None:
    await _node(cluster, "n1")
    await _pod(cluster, "web", "n1")
    await cluster.registry("", "v1", "nodes").delete(None, "n1", deletion.DeleteOptions())
    await _idle(podgc)
    await clock.advance(20)
    await _node(cluster, "n1")  # re-registered
    await clock.advance(30)
    await _idle(podgc)
    assert await _get(cluster, "web") is not None


async def test_a_pod_bound_to_a_node_that_never_existed(cluster: Cluster, clock: ManualClock,
                                                        podgc: PodGCController) -> None:
    await _pod(cluster, "typo", "no-such-node")
    await _idle(podgc)
    await clock.advance(40)
    await _idle(podgc)
    assert await _get(cluster, "typo") is None


async def test_unscheduled_terminating_pods_go(cluster: Cluster, podgc: PodGCController) -> None:
    pods = cluster.registry("", "v1", "pods")
    await pods.create("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
                                  "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
    await pods.delete("default", "held", deletion.DeleteOptions())
    await _idle(podgc)
    held = await _get(cluster, "held")
    # a finalizer still holds it, but it was force-deleted (grace 0) and marked Failed
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0 and held["status"]["phase"] == "Failed"


async def test_terminating_pods_on_an_out_of_service_node_go(cluster: Cluster, podgc: PodGCController) -> None:
    await _node(cluster, "n1", ready="False",
                taints=[{"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}])
    await _node(cluster, "n2", ready="False")
    await _pod(cluster, "stuck", "n1")
    await _pod(cluster, "waiting", "n2")
    pods = cluster.registry("", "v1", "pods")
    for name in ("stuck", "waiting"):
        await pods.delete("default", name, deletion.DeleteOptions())
    await _idle(podgc)
    assert await _get(cluster, "stuck") is None
    assert "deletionTimestamp" in (await _get(cluster, "waiting"))["metadata"]  # its kubelet may still come back


async def test_finished_pods_beyond_the_threshold_go_oldest_first(cluster: Cluster, clock: ManualClock,
                                                                  podgc: PodGCController) -> None:
    await _node(cluster, "n1")
    for i in range(5):
        await _pod(cluster, f"job-{i}", "n1", phase="Succeeded")
        await clock.advance(1)
    await _pod(cluster, "running", "n1")
    await _idle(podgc)
    left = [p["metadata"]["name"] for p in (await cluster.registry("", "v1", "pods").cache()).objects.values()]
    assert sorted(left) == ["job-2", "job-3", "job-4", "running"]
