"""Cordon and drain on a manual clock: which pods a drain removes, pods evicted and waited for
before a pool's node goes, a PodDisruptionBudget holding a scale-in up until the drain timeout
(AKS's error, the node made schedulable again), a budget that frees up in time, deletion
ignoring budgets, and pods that do not finish terminating in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lks.clock import go_duration
from lks.controllers.disruption import DisruptionController
from lks.controllers.nodeipam import NodeIPAMController
from lks.kube import errors
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import drain
from lks.nodes.pool import NodePool

Obj = dict[str, Any]
PREFIX = "aks-nodepool1-12345678-vmss"
KEPT, GOING = PREFIX + "000000", PREFIX + "000001"  # a scale-in from 2 to 1 removes the highest index
MINUTE = 60.0
EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))


@pytest.fixture
async def controllers(cluster) -> AsyncIterator[None]:
    """What pods and budgets need besides the node agents: pod CIDRs for the nodes, and budget status."""
    started = [NodeIPAMController(cluster), DisruptionController(cluster)]
    for c in started:
        await c.start()
    yield
    for c in reversed(started):
        await c.stop()


@pytest.fixture
async def pool(cluster, template, controllers) -> AsyncIterator[NodePool]:
    p = NodePool(cluster=cluster, template=template, count=2, drain_timeout=5 * MINUTE)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def background(pool) -> AsyncIterator[Callable[[Awaitable[Any]], asyncio.Task]]:
    """Starts pool operations as tasks; one a failed test left waiting on the clock is
    cancelled before the pool closes (it holds the pool's lock)."""
    tasks: list[asyncio.Task] = []

    def start(op: Awaitable[Any]) -> asyncio.Task:
        tasks.append(asyncio.ensure_future(op))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until(clock, check: Callable[[], Awaitable[Any]], *, step: float = 0.5, limit: float = 600.0) -> Any:
    """Move the clock `step` at a time (letting the loop run) until `check()` holds."""
    moved = 0.0
    while True:
        for _ in range(50):
            result = await check()
            if result:
                return result
            await asyncio.sleep(0)
        if moved >= limit:
            raise AssertionError(f"condition not reached in {limit} s of clock time")
        await clock.advance(step)
        moved += step


async def _finish(clock, task: asyncio.Task, *, step: float = 0.5, limit: float = 900.0) -> Any:
    """Run `task` to its end while the clock moves; its result (or its exception)."""

    async def done() -> bool:
        return task.done()

    await _until(clock, done, step=step, limit=limit)
    return task.result()


async def _get(cluster, resource: tuple[str, str, str], namespace: str | None, name: str) -> Obj | None:
    try:
        return await cluster.registry(*resource).get(namespace, name)
    except errors.APIError as err:
        if err.code == 404:
            return None
        raise


def _ready(pod: Obj | None) -> bool:
    return pod is not None and any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in pod.get("status", {}).get("conditions") or [])


async def _pod(cluster, clock, name: str, node: str, *, labels: Obj | None = None,
               owner: Obj | None = None, annotations: Obj | None = None, grace: int | None = None) -> Obj:
    """A pod bound to `node`, run by its agent until Ready."""
    meta: Obj = {"name": name, "labels": labels or {"app": "web"}, "annotations": annotations or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"controller": True, **owner}]
    spec: Obj = {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    await cluster.registry("", "v1", "pods").create("default", {"metadata": meta, "spec": spec})

    async def ready() -> Obj | None:
        pod = await _get(cluster, ("", "v1", "pods"), "default", name)
        return pod if _ready(pod) else None

    return await _until(clock, ready, step=0.01)


async def _budget(cluster, clock, *, min_available: int, name: str = "web") -> Obj:
    pdbs = cluster.registry("policy", "v1", "poddisruptionbudgets")
    await pdbs.create("default", {"metadata": {"name": name}, "spec": {
        "minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}}})

    async def observed() -> Obj | None:
        pdb = await pdbs.get("default", name)
        status = pdb.get("status") or {}
        return pdb if status.get("observedGeneration") == pdb["metadata"]["generation"] else None

    return await _until(clock, observed, step=0.01)


async def _node_names(cluster) -> list[str]:
    return sorted(n["metadata"]["name"] for n in (await cluster.registry("", "v1", "nodes").list(None, EVERYTHING))["items"])


@pytest.fixture
def evictions(monkeypatch) -> list[str]:
    """The pods a drain evicted through the eviction subresource, in order."""
    seen: list[str] = []
    evict = drain.eviction.evict

    async def spy(reg, namespace, name, verb, body, opts):
        seen.append(name)
        return await evict(reg, namespace, name, verb, body, opts)

    monkeypatch.setattr(drain.eviction, "evict", spy)
    return seen


# -- pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pod", "goes"), [
    pytest.param({"metadata": {"name": "a"}}, True, id="unmanaged"),
    pytest.param({"metadata": {"name": "a", "ownerReferences": [
        {"kind": "ReplicaSet", "name": "rs", "controller": True}]}}, True, id="replicaset"),
    pytest.param({"metadata": {"name": "a"}, "spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}, True,
                 id="emptydir-data"),
    pytest.param({"metadata": {"name": "a", "ownerReferences": [
        {"kind": "DaemonSet", "name": "ds", "controller": True}]}}, False, id="daemonset"),
    pytest.param({"metadata": {"name": "a", "annotations": {"kubernetes.io/config.mirror": "x"}}}, False,
                 id="mirror"),
])
def test_which_pods_a_drain_removes(pod, goes):
    assert drain.must_go(pod) is goes


@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(1800, "30m0s", id="default"),
    pytest.param(3600, "1h0m0s", id="hour"),
    pytest.param(90, "1m30s", id="minute-and-a-half"),
    pytest.param(3, "3s", id="seconds"),
    pytest.param(0.5, "500ms", id="sub-second"),
])
def test_timeouts_read_as_go_durations(seconds, text):
    assert go_duration(round(seconds * 1e9)) == text


# -- cordon -----------------------------------------------------------------------------------------


async def test_cordon_says_whether_it_cordoned(cluster, pool):
    nodes = cluster.registry("", "v1", "nodes")
    assert await drain.cordon(cluster, GOING) is True
    assert (await nodes.get(None, GOING))["spec"]["unschedulable"] is True
    assert await drain.cordon(cluster, GOING) is False  # already: a failed drain must not uncordon it
    await drain.uncordon(cluster, GOING)
    assert "unschedulable" not in (await nodes.get(None, GOING))["spec"]
    assert await drain.cordon(cluster, "no-such-node") is False


# -- scale-in and deletion ------------------------------------------------------------------------


async def test_scale_in_evicts_the_pods_and_waits_for_them_before_deleting_the_node(cluster, clock, pool, evictions,
                                                                                     background):
    await _pod(cluster, clock, "web-1", GOING, grace=30, annotations={"lks.dev/simulate-stop-seconds": "2"})
    await _pod(cluster, clock, "web-2", KEPT)
    await _pod(cluster, clock, "agent-1", GOING, owner={"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                         "name": "agent", "uid": "d5"})
    task = background(pool.scale(1))

    async def terminating() -> bool:
        pod = await _get(cluster, ("", "v1", "pods"), "default", "web-1")
        return pod is not None and "deletionTimestamp" in pod["metadata"]

    await _until(clock, terminating, step=0.01)
    node = await _get(cluster, ("", "v1", "nodes"), None, GOING)
    assert node is not None and node["spec"]["unschedulable"] is True  # cordoned, and still there
    assert not task.done()
    await _finish(clock, task)
    assert evictions == ["web-1"]  # the DaemonSet's pod stays for the node's deletion
    assert await _get(cluster, ("", "v1", "pods"), "default", "web-1") is None
    assert await _node_names(cluster) == [KEPT]
    assert _ready(await _get(cluster, ("", "v1", "pods"), "default", "web-2"))
    events = (await cluster.registry("", "v1", "events").list("default", EVERYTHING))["items"]
    assert ("Drain", f"Draining node: {GOING}", "upgrader") in {
        (e["reason"], e["message"], e["source"]["component"]) for e in events}


async def test_a_budget_holds_the_scale_in_up_until_the_drain_timeout(cluster, clock, pool, background):
    await _pod(cluster, clock, "web-1", GOING)
    await _budget(cluster, clock, min_available=1)
    started = clock.now()
    task = background(pool.scale(1))
    with pytest.raises(drain.DrainError) as caught:
        await _finish(clock, task)
    assert clock.now() - started == pytest.approx(5 * MINUTE, abs=1)
    assert caught.value.node == GOING
    assert caught.value.message == (
        f"Drain node {GOING} failed when evicting pod web-1 failed with Too Many Requests error. This is often "
        "caused by a restrictive Pod Disruption Budget (PDB) policy. See http://aka.ms/aks/debugdrainfailures. "
        "Original error: Cannot evict pod as it would violate the pod's disruption budget.. PDB debug info: "
        "default/web-1 blocked by pdb web (MinAvailable: 1) (CurrentHealthy: 1) (DesiredHealthy: 1) "
        "(ExpectedPods: 1) with 0 unready pods.")
    node = await _get(cluster, ("", "v1", "nodes"), None, GOING)
    assert node is not None and "unschedulable" not in node["spec"]  # left as AKS leaves it: schedulable
    assert _ready(await _get(cluster, ("", "v1", "pods"), "default", "web-1"))
    assert pool.node_names() == [KEPT, GOING] and pool.count == 1
    events = (await cluster.registry("", "v1", "events").list("default", EVERYTHING))["items"]
    blocked = [e for e in events if e["type"] == "Warning" and e["reason"] == "Drain"]
    assert blocked and blocked[0]["message"] == "Eviction blocked by Too many Requests (usually a pdb): web-1"
    assert blocked[0]["count"] > 1  # retried every 5 s

    # the next change of the pool tries again; with room in the budget the node goes
    pdbs = cluster.registry("policy", "v1", "poddisruptionbudgets")
    await pdbs.patch("default", "web", lambda b: {**b, "spec": {**b["spec"], "minAvailable": 0}})
    await _finish(clock, background(pool.scale(1)))
    assert await _node_names(cluster) == [KEPT]


async def test_a_budget_that_frees_up_in_time_lets_the_drain_finish(cluster, clock, pool, evictions, background):
    await _pod(cluster, clock, "web-1", GOING)
    await _budget(cluster, clock, min_available=1)
    task = background(pool.scale(1))

    async def refused(times: int) -> bool:
        return len(evictions) >= times

    await _until(clock, lambda: refused(3), step=1)  # refused, and tried again every 5 s
    assert evictions == ["web-1"] * 3 and not task.done()
    await _pod(cluster, clock, "web-2", KEPT)  # another healthy pod: the budget allows one disruption
    await _finish(clock, task)
    assert len(evictions) >= 4
    assert await _node_names(cluster) == [KEPT]
    assert await _get(cluster, ("", "v1", "pods"), "default", "web-1") is None


async def test_pool_deletion_honours_budgets_unless_told_to_ignore_them(cluster, clock, pool, evictions, background):
    await _pod(cluster, clock, "web-1", GOING)
    await _budget(cluster, clock, min_available=1)
    with pytest.raises(drain.DrainError):
        await _finish(clock, background(pool.delete()))
    assert await _node_names(cluster) == [GOING]  # the other node had nothing a budget holds
    evicted = len(evictions)

    await _finish(clock, background(pool.delete(ignore_pdb=True)))
    assert await _node_names(cluster) == []
    assert len(evictions) == evicted  # deleted, not evicted
    assert await _get(cluster, ("", "v1", "pods"), "default", "web-1") is None


async def test_pods_that_do_not_terminate_in_time_fail_the_drain(cluster, clock, pool, background):
    await _pod(cluster, clock, "slow", GOING, grace=3600, annotations={"lks.dev/simulate-stop-seconds": "900"})
    with pytest.raises(drain.DrainError) as caught:
        await _finish(clock, background(pool.scale(1)), step=5)
    assert caught.value.message == (
        f"Node '{GOING}' failed to be drained with error: 'Drain did not complete pods [default/slow] within 5m0s'")
    assert GOING in await _node_names(cluster)
