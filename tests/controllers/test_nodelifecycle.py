"""The node lifecycle and taint eviction controllers on the memory store with a manual clock:
a node whose Lease stops being renewed goes Unknown after the 40 s grace period, gets the
unreachable taints and its pods are marked not Ready, then evicted as their tolerations run
out; cordoned nodes get the unschedulable taint; a recovered node loses its taints; NoExecute
taints follow the per-zone rate limit and stop when every node is down. Nodes and their
Leases are written by the test, standing in for node agents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import nodelifecycle as nlc
from lks.controllers.nodelifecycle import NodeLifecycleController
from lks.controllers.tainteviction import TaintEvictionController
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.nodes.agent import Heartbeats, NodeAgent, micro_time
from lks.nodes.template import NodeTemplate

Obj = dict[str, Any]
LEASES = ("coordination.k8s.io", "v1", "leases")


@pytest.fixture
async def lifecycle(cluster: Cluster) -> AsyncIterator[NodeLifecycleController]:
    c = NodeLifecycleController(cluster)
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def eviction(cluster: Cluster) -> AsyncIterator[TaintEvictionController]:
    c = TaintEvictionController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _idle(*controllers: Any, rounds: int = 30) -> None:
    quiet = 0
    for _ in range(5000):
        await asyncio.sleep(0)
        quiet = quiet + 1 if all(c.queue.idle() for c in controllers) else 0
        if quiet >= rounds:
            return
    raise AssertionError("queues never went idle")


async def _kubelet(cluster: Cluster, name: str, *, zone: str = "eastus-1", ready: str = "True") -> None:
    """Register a node as its agent would: Ready, with a fresh Lease."""
    now = rfc3339(cluster.clock.now())
    conditions = [{"type": t, "status": "False", "reason": r, "message": "", "lastHeartbeatTime": now,
                   "lastTransitionTime": now}
                  for t, r in (("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"),
                               ("PIDPressure", "KubeletHasSufficientPID"))]
    conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "kubelet is posting ready status",
                       "lastHeartbeatTime": now, "lastTransitionTime": now})
    await cluster.registry("", "v1", "nodes").create(None, {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/region": "eastus",
                                              "topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": f"lks:///{name}"}, "status": {"conditions": conditions}})
    await _renew(cluster, name)


async def _renew(cluster: Cluster, name: str) -> None:
    lease = {"metadata": {"name": name, "namespace": nlc.LEASE_NAMESPACE},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_time(cluster.clock.now())}}
    await cluster.registry(*LEASES).update(nlc.LEASE_NAMESPACE, name, lease)


async def _post_ready(cluster: Cluster, name: str, status: str = "True") -> None:
    """The kubelet is back (or reports trouble): it posts its conditions."""
    now = rfc3339(cluster.clock.now())

    def post(node: Obj) -> Obj:
        for c in node["status"]["conditions"]:
            c.update(status="False" if c["type"] != "Ready" else status, lastHeartbeatTime=now, lastTransitionTime=now,
                     reason="KubeletReady" if c["type"] == "Ready" else "Kubelet", message="")
        return node

    await cluster.registry("", "v1", "nodes").patch(None, name, post, subresource="status")
    await _renew(cluster, name)


async def _node(cluster: Cluster, name: str) -> Obj:
    return await cluster.registry("", "v1", "nodes").get(None, name)


def _conditions(node: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in node["status"]["conditions"]}


def _taints(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


async def _pod(cluster: Cluster, name: str, node: str, *, tolerations: list[Obj] | None = None) -> Obj:
    spec: Obj = {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    pods = cluster.registry("", "v1", "pods")
    pod = await pods.create("default", {"metadata": {"name": name}, "spec": spec})
    now = rfc3339(cluster.clock.now())

    def running(current: Obj) -> Obj:
        current["status"].update(phase="Running", conditions=[
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}])
        return current

    return await pods.patch("default", pod["metadata"]["name"], running, subresource="status")


async def _pod_or_none(cluster: Cluster, name: str) -> Obj | None:
    try:
        return await cluster.registry("", "v1", "pods").get("default", name)
    except errors.APIError as err:
        assert err.code == 404
        return None


async def _events(cluster: Cluster, reason: str) -> list[Obj]:
    cache = await cluster.registry("", "v1", "events").cache()
    return [e for e in cache.objects.values() if e["reason"] == reason]


async def _pass(clock: ManualClock, seconds: float, *controllers: Any, renew: tuple[tuple[Cluster, str], ...] = ()) -> None:
    """Let time pass in 10 s steps (the agents' renewal interval), renewing the named Leases."""
    left = seconds
    while left > 0:
        step = min(10.0, left)
        await clock.advance(step)
        left -= step
        for cluster, name in renew:
            await _renew(cluster, name)
        await _idle(*controllers)


# -- node health -------------------------------------------------------------------------------


async def test_a_quiet_node_goes_unknown_after_the_grace_period(cluster: Cluster, clock: ManualClock,
                                                                lifecycle: NodeLifecycleController) -> None:
    for name in ("n1", "n2", "n3"):
        await _kubelet(cluster, name)
    await _idle(lifecycle)
    alive = tuple((cluster, n) for n in ("n2", "n3"))
    await _pass(clock, 30, lifecycle, renew=alive)
    assert _conditions(await _node(cluster, "n1"))["Ready"]["status"] == "True"  # still within 40 s
    await _pass(clock, 20, lifecycle, renew=alive)

    node = await _node(cluster, "n1")
    ready = _conditions(node)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastTransitionTime"] == rfc3339(clock.now() - 10)  # noticed at the 40 s mark
    for other in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert _conditions(node)[other]["status"] == "Unknown"
    assert _taints(node) == {(nlc.UNREACHABLE, "NoSchedule"), (nlc.UNREACHABLE, "NoExecute")}
    assert all(t["timeAdded"] for t in node["spec"]["taints"])
    for name in ("n2", "n3"):
        healthy = await _node(cluster, name)
        assert _conditions(healthy)["Ready"]["status"] == "True" and not (healthy.get("spec") or {}).get("taints")
    [event] = await _events(cluster, "NodeNotReady")
    assert event["message"] == "Node n1 status is now: NodeNotReady" and event["involvedObject"]["kind"] == "Node"


async def test_pods_on_an_unreachable_node_are_marked_not_ready(cluster: Cluster, clock: ManualClock,
                                                                lifecycle: NodeLifecycleController) -> None:
    for name in ("n1", "n2"):
        await _kubelet(cluster, name)
    await _pod(cluster, "web-1", "n1")
    await _pod(cluster, "web-2", "n2")
    await _idle(lifecycle)
    await _pass(clock, 50, lifecycle, renew=((cluster, "n2"),))

    gone = (await _pod_or_none(cluster, "web-1"))["status"]
    ready = {c["type"]: c for c in gone["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["lastTransitionTime"] == rfc3339(clock.now() - 10)
    assert gone["phase"] == "Running"  # only the kubelet decides phases
    fine = (await _pod_or_none(cluster, "web-2"))["status"]
    assert {c["type"]: c for c in fine["conditions"]}["Ready"]["status"] == "True"
    [event] = [e for e in await _events(cluster, "NodeNotReady") if e["involvedObject"]["kind"] == "Pod"]
    assert (event["type"], event["message"], event["involvedObject"]["name"]) == ("Warning", "Node is not ready", "web-1")


async def test_a_recovered_node_loses_its_taints(cluster: Cluster, clock: ManualClock,
                                                 lifecycle: NodeLifecycleController) -> None:
    for name in ("n1", "n2"):
        await _kubelet(cluster, name)
    await _idle(lifecycle)
    await _pass(clock, 50, lifecycle, renew=((cluster, "n2"),))
    assert _taints(await _node(cluster, "n1")) == {(nlc.UNREACHABLE, "NoSchedule"), (nlc.UNREACHABLE, "NoExecute")}

    await _post_ready(cluster, "n1")
    await _idle(lifecycle)
    node = await _node(cluster, "n1")
    assert _conditions(node)["Ready"]["status"] == "True" and not (node.get("spec") or {}).get("taints")


async def test_a_node_reporting_not_ready_gets_the_not_ready_taints(cluster: Cluster, clock: ManualClock,
                                                                   lifecycle: NodeLifecycleController) -> None:
    for name in ("n1", "n2"):
        await _kubelet(cluster, name)
    await _idle(lifecycle)
    await _post_ready(cluster, "n1", "False")
    await _idle(lifecycle)
    assert _taints(await _node(cluster, "n1")) == {(nlc.NOT_READY, "NoSchedule"), (nlc.NOT_READY, "NoExecute")}

    await _pass(clock, 50, lifecycle, renew=((cluster, "n2"),))  # then it goes quiet: the reason swaps
    assert _taints(await _node(cluster, "n1")) == {(nlc.UNREACHABLE, "NoSchedule"), (nlc.UNREACHABLE, "NoExecute")}


async def test_cordon_and_uncordon(cluster: Cluster, lifecycle: NodeLifecycleController) -> None:
    await _kubelet(cluster, "n1")
    await _idle(lifecycle)
    nodes = cluster.registry("", "v1", "nodes")

    def cordon(on: bool):
        def change(node: Obj) -> Obj:
            node["spec"]["unschedulable"] = on
            return node
        return change

    await nodes.patch(None, "n1", cordon(True))
    await _idle(lifecycle)
    [taint] = (await _node(cluster, "n1"))["spec"]["taints"]
    assert (taint["key"], taint["effect"]) == (nlc.UNSCHEDULABLE, "NoSchedule") and "value" not in taint
    await nodes.patch(None, "n1", cordon(False))
    await _idle(lifecycle)
    assert not ((await _node(cluster, "n1")).get("spec") or {}).get("taints")


async def test_other_taints_are_left_alone(cluster: Cluster, lifecycle: NodeLifecycleController) -> None:
    await _kubelet(cluster, "n1")

    def taint(node: Obj) -> Obj:
        node["spec"]["taints"] = [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}]
        node["spec"]["unschedulable"] = True
        return node

    await cluster.registry("", "v1", "nodes").patch(None, "n1", taint)
    await _idle(lifecycle)
    assert _taints(await _node(cluster, "n1")) == {("CriticalAddonsOnly", "NoSchedule"), (nlc.UNSCHEDULABLE, "NoSchedule")}


async def test_no_execute_taints_are_rate_limited_per_zone(cluster: Cluster, clock: ManualClock,
                                                           lifecycle: NodeLifecycleController) -> None:
    names = [f"n{i}" for i in range(5)]
    for name in names:
        await _kubelet(cluster, name)
    await _idle(lifecycle)
    alive = tuple((cluster, n) for n in names[2:])
    # n0 and n1 go quiet together: 2 of 5 down is still a Normal zone, one taint per 10 s
    await _pass(clock, 40, lifecycle, renew=alive)
    tainted = [n for n in names[:2] if (nlc.UNREACHABLE, "NoExecute") in _taints(await _node(cluster, n))]
    assert len(tainted) == 1
    for n in names[:2]:
        assert (nlc.UNREACHABLE, "NoSchedule") in _taints(await _node(cluster, n))  # not rate limited
    await _pass(clock, 10, lifecycle, renew=alive)
    for n in names[:2]:
        assert (nlc.UNREACHABLE, "NoExecute") in _taints(await _node(cluster, n))


async def test_no_evictions_while_every_node_is_down(cluster: Cluster, clock: ManualClock,
                                                     lifecycle: NodeLifecycleController) -> None:
    for name in ("n1", "n2"):
        await _kubelet(cluster, name)
    await _idle(lifecycle)
    await _pass(clock, 50, lifecycle)
    for name in ("n1", "n2"):
        node = await _node(cluster, name)
        assert _conditions(node)["Ready"]["status"] == "Unknown"
        assert _taints(node) == {(nlc.UNREACHABLE, "NoSchedule")}  # the control plane may be the one cut off

    # one comes back: the zone is only partly down, the other node's pods may go
    await _post_ready(cluster, "n1")
    await _pass(clock, 50, lifecycle, renew=((cluster, "n1"),))
    assert _taints(await _node(cluster, "n2")) == {(nlc.UNREACHABLE, "NoSchedule"), (nlc.UNREACHABLE, "NoExecute")}
    assert not ((await _node(cluster, "n1")).get("spec") or {}).get("taints")


async def test_a_node_that_never_posted_status(cluster: Cluster, clock: ManualClock,
                                               lifecycle: NodeLifecycleController) -> None:
    await _kubelet(cluster, "n1")
    await cluster.registry("", "v1", "nodes").create(None, {"metadata": {"name": "ghost"}})
    await _idle(lifecycle)
    await _pass(clock, 50, lifecycle, renew=((cluster, "n1"),))
    assert "conditions" not in (await _node(cluster, "ghost")).get("status", {})  # 60 s for a new node
    await _pass(clock, 20, lifecycle, renew=((cluster, "n1"),))
    ready = _conditions(await _node(cluster, "ghost"))["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusNeverUpdated", "Kubelet never posted node status.")


def test_zone_states() -> None:
    assert nlc.zone_state(0, 3) == nlc.FULL_DISRUPTION
    assert nlc.zone_state(1, 2) == nlc.NORMAL_ZONE  # two down are never a partial disruption
    assert nlc.zone_state(2, 3) == nlc.PARTIAL_DISRUPTION
    assert nlc.zone_state(10, 3) == nlc.NORMAL_ZONE


# -- taint-based eviction -------------------------------------------------------------------------


async def _taint(cluster: Cluster, node: str, key: str = nlc.UNREACHABLE, effect: str = "NoExecute", *,
                 remove: bool = False) -> None:
    stamp = rfc3339(cluster.clock.now())

    def change(obj: Obj) -> Obj:
        taints = [t for t in obj["spec"].get("taints") or [] if t["key"] != key]
        if not remove:
            taints.append({"key": key, "effect": effect, "timeAdded": stamp})
        obj["spec"]["taints"] = taints
        return obj

    await cluster.registry("", "v1", "nodes").patch(None, node, change)


async def test_pods_without_a_toleration_go_at_once(cluster: Cluster, eviction: TaintEvictionController) -> None:
    await _kubelet(cluster, "n1")
    await _pod(cluster, "web", "n1")
    await _pod(cluster, "tolerant", "n1", tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}])
    await _idle(eviction)
    await _taint(cluster, "n1", "dedicated")
    await _idle(eviction)
    web = await _pod_or_none(cluster, "web")
    assert web is None or "deletionTimestamp" in web["metadata"]
    target = {c["type"]: c for c in web["status"]["conditions"]}["DisruptionTarget"] if web else None
    assert target is None or (target["reason"], target["message"]) == (
        "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "tolerant"))["metadata"]
    [event] = await _events(cluster, "TaintManagerEviction")
    assert event["message"] == "Marking for deletion Pod default/web"


async def test_default_tolerations_hold_pods_for_five_minutes(cluster: Cluster, clock: ManualClock,
                                                              eviction: TaintEvictionController) -> None:
    await _kubelet(cluster, "n1")
    pod = await _pod(cluster, "web", "n1")
    assert {"key": nlc.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300} in \
        pod["spec"]["tolerations"]  # DefaultTolerationSeconds
    await _pod(cluster, "forever", "n1", tolerations=[{"key": nlc.UNREACHABLE, "operator": "Exists"}])
    await _taint(cluster, "n1")
    await _idle(eviction)
    await clock.advance(299)
    await _idle(eviction)
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "web"))["metadata"]
    await clock.advance(1)
    await _idle(eviction)
    web = await _pod_or_none(cluster, "web")
    assert "deletionTimestamp" in web["metadata"]  # graceful: the kubelet finishes it
    assert {c["type"]: c for c in web["status"]["conditions"]}["DisruptionTarget"]["status"] == "True"
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "forever"))["metadata"]


async def test_a_taint_removed_in_time_cancels_the_eviction(cluster: Cluster, clock: ManualClock,
                                                            eviction: TaintEvictionController) -> None:
    await _kubelet(cluster, "n1")
    await _pod(cluster, "web", "n1")
    await _taint(cluster, "n1")
    await _idle(eviction)
    await clock.advance(120)
    await _taint(cluster, "n1", remove=True)
    await _idle(eviction)
    await clock.advance(300)
    await _idle(eviction)
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "web"))["metadata"]
    [event] = await _events(cluster, "TaintManagerEviction")
    assert event["message"] == "Cancelling deletion of Pod default/web"


async def test_the_shortest_toleration_counts_from_when_the_taint_came(cluster: Cluster, clock: ManualClock,
                                                                       eviction: TaintEvictionController) -> None:
    await _kubelet(cluster, "n1")
    await _taint(cluster, "n1")
    await _taint(cluster, "n1", nlc.NOT_READY)
    await clock.advance(30)
    await _pod(cluster, "late", "n1", tolerations=[
        {"key": nlc.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        {"key": nlc.NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20}])
    await _idle(eviction)
    await clock.advance(19)  # the pod came after the taints: its 20 s start with it
    await _idle(eviction)
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "late"))["metadata"]
    await clock.advance(1)
    await _idle(eviction)
    assert "deletionTimestamp" in (await _pod_or_none(cluster, "late"))["metadata"]


async def test_lifecycle_and_eviction_together(cluster: Cluster, clock: ManualClock,
                                               lifecycle: NodeLifecycleController,
                                               eviction: TaintEvictionController) -> None:
    for name in ("n1", "n2", "n3"):
        await _kubelet(cluster, name)
    await _pod(cluster, "web", "n1")
    await _idle(lifecycle, eviction)
    alive = tuple((cluster, n) for n in ("n2", "n3"))
    await _pass(clock, 40, lifecycle, eviction, renew=alive)  # Unknown and tainted at 40 s
    await _pass(clock, 290, lifecycle, eviction, renew=alive)
    assert "deletionTimestamp" not in (await _pod_or_none(cluster, "web"))["metadata"]
    await _pass(clock, 10, lifecycle, eviction, renew=alive)
    assert "deletionTimestamp" in (await _pod_or_none(cluster, "web"))["metadata"]


async def test_with_real_node_agents(cluster: Cluster, clock: ManualClock, lifecycle: NodeLifecycleController) -> None:
    """The agents of `lks.nodes` keep their nodes healthy; one stopped goes Unknown, and when
    it starts again (kubelet restarted) it posts Ready at once and its taints go."""
    template = NodeTemplate(pool="np1", name_digits="12345678", subscription_id="sub", node_resource_group="mc_rg",
                            labels={"topology.kubernetes.io/region": "eastus", "topology.kubernetes.io/zone": "0"})
    heartbeats = Heartbeats(clock=clock)
    await heartbeats.start()
    agents = [NodeAgent(cluster=cluster, template=template, index=i, address=f"10.224.0.{4 + i}", heartbeats=heartbeats,
                        pod_cidrs=[f"10.244.{i}.0/24"]) for i in range(3)]
    try:
        for agent in agents:
            await agent.start()
        await _idle(lifecycle)
        await _pass(clock, 120, lifecycle)
        for agent in agents:
            node = await _node(cluster, agent.name)
            assert _conditions(node)["Ready"]["status"] == "True" and not _taints(node)

        await agents[0].stop()
        await _pass(clock, 50, lifecycle)
        node = await _node(cluster, agents[0].name)
        assert _conditions(node)["Ready"]["reason"] == "NodeStatusUnknown"
        assert _taints(node) == {(nlc.UNREACHABLE, "NoSchedule"), (nlc.UNREACHABLE, "NoExecute")}

        agents[0] = NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", heartbeats=heartbeats)
        await agents[0].start()
        await _pass(clock, 10, lifecycle)
        node = await _node(cluster, agents[0].name)
        assert _conditions(node)["Ready"]["status"] == "True" and not _taints(node)
    finally:
        for agent in agents:
            await agent.stop()
        await heartbeats.stop()
