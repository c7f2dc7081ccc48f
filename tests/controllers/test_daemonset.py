"""The DaemonSet controller on the memory store: one pod per eligible node (node selector,
affinity, taints and the automatic daemon tolerations), pods pinned to their node through a
`matchFields` node affinity for the scheduler, following node changes, RollingUpdate with
maxUnavailable or maxSurge, OnDelete, ControllerRevisions and status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.controllers.daemonset import DaemonSetController
from lks.controllers.daemonset_util import target_node
from lks.kube import deletion
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[DaemonSetController]:
    c = DaemonSetController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _node(cluster: Cluster, name: str, labels: dict[str, str] | None = None,
                taints: list[Obj] | None = None) -> Obj:
    body: Obj = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                 "spec": {"taints": taints} if taints else {}}
    return await cluster.registry("", "v1", "nodes").create(None, body)


def _ds(name: str = "agent", **spec: Any) -> Obj:
    template_spec = spec.pop("template_spec", {})
    return {"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "agent", "image": "agent:1"}], **template_spec}},
        **spec}}


async def _create(cluster: Cluster, body: Obj) -> Obj:
    return await cluster.registry("apps", "v1", "daemonsets").create("default", body)


async def _get(cluster: Cluster, name: str = "agent") -> Obj:
    return await cluster.registry("apps", "v1", "daemonsets").get("default", name)


async def _placed(cluster: Cluster) -> dict[str, str]:
    """node -> image of the live pod there."""
    return {target_node(p): p["spec"]["containers"][0]["image"] for p in await w.live_pods(cluster)}


async def _ready_all(cluster: Cluster, controller: DaemonSetController) -> None:
    for pod in await w.live_pods(cluster):
        if (pod.get("status") or {}).get("phase") != "Running":
            await w.run(cluster, pod)
    await w.idle(controller.queue)


async def _patch_node(cluster: Cluster, name: str, fn) -> None:
    def change(current: Obj) -> Obj:
        fn(current)
        return current
    await cluster.registry("", "v1", "nodes").patch(None, name, change)


async def test_one_pod_per_node_with_node_affinity(cluster: Cluster, controller: DaemonSetController) -> None:
    for n in ("n1", "n2", "n3"):
        await _node(cluster, n)
    await _create(cluster, _ds())
    await w.idle(controller.queue)
    pods = await w.pods(cluster)
    assert sorted(target_node(p) for p in pods) == ["n1", "n2", "n3"]
    pod = pods[0]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [target_node(pod)]}]}]
    assert "nodeName" not in pod["spec"]  # the scheduler binds it
    tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerated
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in tolerated
    labels = pod["metadata"]["labels"]
    assert labels["pod-template-generation"] == "1" and labels["controller-revision-hash"]
    assert pod["metadata"]["generateName"] == "agent-"
    status = (await _get(cluster))["status"]
    assert status["desiredNumberScheduled"] == 3 and status["currentNumberScheduled"] == 3
    assert status["numberReady"] == 0 and status["updatedNumberScheduled"] == 3
    assert status["numberUnavailable"] == 3 and status["numberMisscheduled"] == 0
    await _ready_all(cluster, controller)
    status = (await _get(cluster))["status"]
    assert status["numberReady"] == 3 and status["numberAvailable"] == 3 and "numberUnavailable" not in status
    assert status["observedGeneration"] == 1
    revisions = await w.listed(cluster, "apps", "controllerrevisions")
    assert len(revisions) == 1 and revisions[0]["metadata"]["labels"]["controller-revision-hash"] == labels[
        "controller-revision-hash"]
    messages = {e["message"] for e in await w.listed(cluster, "", "events")}
    assert f"Created pod: {pod['metadata']['name']}" in messages


async def test_follows_node_additions_removals_and_labels(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "n1", {"disk": "ssd"})
    await _node(cluster, "n2")
    await _create(cluster, _ds(template_spec={"nodeSelector": {"disk": "ssd"}}))
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"n1"}
    await _node(cluster, "n3", {"disk": "ssd"})
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"n1", "n3"}
    await _patch_node(cluster, "n2", lambda n: n["metadata"]["labels"].update(disk="ssd"))
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"n1", "n2", "n3"}
    await _patch_node(cluster, "n1", lambda n: n["metadata"]["labels"].pop("disk"))
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"n2", "n3"}
    await cluster.registry("", "v1", "nodes").delete(None, "n3", deletion.DeleteOptions())
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"n2"}  # its unbound pod goes with it
    status = (await _get(cluster))["status"]
    assert status["desiredNumberScheduled"] == 1 and status["currentNumberScheduled"] == 1


async def test_taints_and_tolerations(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "plain")
    await _node(cluster, "gpu", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    await _node(cluster, "cordoned", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    await _create(cluster, _ds())
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"plain", "cordoned"}  # daemon pods tolerate cordoning
    # a new NoSchedule taint leaves a running pod alone; a NoExecute one removes it
    await _patch_node(cluster, "plain", lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoSchedule"}]))
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"plain", "cordoned"}
    status = (await _get(cluster))["status"]
    assert status["desiredNumberScheduled"] == 1 and status["numberMisscheduled"] == 1
    await _patch_node(cluster, "plain", lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoExecute"}]))
    await w.idle(controller.queue)
    assert set(await _placed(cluster)) == {"cordoned"}
    # a DaemonSet that tolerates the gpu taint runs there too
    await _create(cluster, _ds("gpu-agent", template_spec={"tolerations": [
        {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}))
    await w.idle(controller.queue)
    gpu = await w.live_pods(cluster, labels="app=gpu-agent")
    assert sorted(target_node(p) for p in gpu) == ["cordoned", "gpu"]


async def test_host_network_tolerates_network_unavailable(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "n1", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])
    await _create(cluster, _ds("proxy", template_spec={"hostNetwork": True}))
    await _create(cluster, _ds("other"))
    await w.idle(controller.queue)
    assert [target_node(p) for p in await w.live_pods(cluster, labels="app=proxy")] == ["n1"]
    assert await w.live_pods(cluster, labels="app=other") == []


async def test_failed_pod_is_replaced(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "n1")
    await _create(cluster, _ds())
    await w.idle(controller.queue)
    pod = (await w.pods(cluster))[0]
    await w.fail(cluster, pod)
    await w.idle(controller.queue)
    pods = await w.live_pods(cluster)
    assert len(pods) == 1 and pods[0]["metadata"]["uid"] != pod["metadata"]["uid"]
    assert "FailedDaemonPod" in {e["reason"] for e in await w.listed(cluster, "", "events")}


def _image(image: str):
    def patch(current: Obj) -> Obj:
        current["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return current
    return patch


async def test_rolling_update_max_unavailable(cluster: Cluster, controller: DaemonSetController) -> None:
    for n in ("n1", "n2", "n3"):
        await _node(cluster, n)
    await _create(cluster, _ds())
    await w.idle(controller.queue)
    await _ready_all(cluster, controller)
    await cluster.registry("apps", "v1", "daemonsets").patch("default", "agent", _image("agent:2"))
    await w.idle(controller.queue)
    images = sorted((await _placed(cluster)).values())
    assert images == ["agent:1", "agent:1", "agent:2"]  # one node at a time
    status = (await _get(cluster))["status"]
    assert status["updatedNumberScheduled"] == 1 and status["observedGeneration"] == 2
    for _ in range(4):
        await _ready_all(cluster, controller)
    assert sorted((await _placed(cluster)).values()) == ["agent:2"] * 3
    labels = {p["metadata"]["labels"]["pod-template-generation"] for p in await w.live_pods(cluster)}
    assert labels == {"2"}
    assert len(await w.listed(cluster, "apps", "controllerrevisions")) == 2


async def test_rolling_update_max_surge(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "n1")
    await _create(cluster, _ds(updateStrategy={"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    await w.idle(controller.queue)
    await _ready_all(cluster, controller)
    old = (await w.live_pods(cluster))[0]
    await cluster.registry("apps", "v1", "daemonsets").patch("default", "agent", _image("agent:2"))
    await w.idle(controller.queue)
    pods = await w.live_pods(cluster)
    assert sorted(p["spec"]["containers"][0]["image"] for p in pods) == ["agent:1", "agent:2"]  # side by side
    new = next(p for p in pods if p["metadata"]["uid"] != old["metadata"]["uid"])
    await w.run(cluster, new)
    await w.idle(controller.queue)
    pods = await w.live_pods(cluster)
    assert [p["metadata"]["uid"] for p in pods] == [new["metadata"]["uid"]]


async def test_on_delete(cluster: Cluster, controller: DaemonSetController) -> None:
    await _node(cluster, "n1")
    await _node(cluster, "n2")
    await _create(cluster, _ds(updateStrategy={"type": "OnDelete"}))
    await w.idle(controller.queue)
    await _ready_all(cluster, controller)
    await cluster.registry("apps", "v1", "daemonsets").patch("default", "agent", _image("agent:2"))
    await _ready_all(cluster, controller)
    assert sorted((await _placed(cluster)).values()) == ["agent:1", "agent:1"]
    pod = next(p for p in await w.live_pods(cluster) if target_node(p) == "n1")
    await cluster.registry("", "v1", "pods").delete("default", pod["metadata"]["name"], deletion.DeleteOptions())
    await _ready_all(cluster, controller)
    assert await _placed(cluster) == {"n1": "agent:2", "n2": "agent:1"}
