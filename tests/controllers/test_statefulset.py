"""The StatefulSet controller on the memory store: ordinal pods created in order and removed in
reverse, Parallel, claims from volumeClaimTemplates and their retention policy, rolling updates
(partition, OnDelete), ControllerRevisions and status. Pod phases are set by the test, standing
in for the scheduler and the node agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.controllers.statefulset import StatefulSetController
from lks.kube import deletion
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[StatefulSetController]:
    c = StatefulSetController(cluster)
    await c.start()
    yield c
    await c.stop()


def _sts(name: str = "web", replicas: int = 3, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
        **spec}}


async def _create(cluster: Cluster, body: Obj) -> Obj:
    return await cluster.registry("apps", "v1", "statefulsets").create("default", body)


async def _get(cluster: Cluster, name: str = "web") -> Obj:
    return await cluster.registry("apps", "v1", "statefulsets").get("default", name)


async def _names(cluster: Cluster) -> list[str]:
    return [p["metadata"]["name"] for p in await w.live_pods(cluster)]


async def _run_all(cluster: Cluster, controller: StatefulSetController) -> None:
    for pod in await w.live_pods(cluster):
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []):
            await w.run(cluster, pod)
    await w.idle(controller.queue)


async def test_ordered_ready_creates_in_order_with_identity(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts())
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0"]  # web-1 waits for web-0 to be Running and Ready
    pod = (await w.pods(cluster))[0]
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["controller-revision-hash"].startswith("web-")
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "StatefulSet" and ref["controller"] is True

    await w.set_phase(cluster, pod, "Running", ready=False)
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0"]  # running but not ready: still waiting
    await _run_all(cluster, controller)
    assert await _names(cluster) == ["web-0", "web-1"]
    await _run_all(cluster, controller)
    await _run_all(cluster, controller)
    assert await _names(cluster) == ["web-0", "web-1", "web-2"]

    status = (await _get(cluster))["status"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 3 and status["availableReplicas"] == 3
    assert status["currentReplicas"] == 3 and status["updatedReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"] == labels["controller-revision-hash"]
    assert status["observedGeneration"] == 1 and status["collisionCount"] == 0
    revisions = await w.listed(cluster, "apps", "controllerrevisions")
    assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]
    assert revisions[0]["revision"] == 1
    assert revisions[0]["data"]["spec"]["template"]["$patch"] == "replace"
    events = await w.listed(cluster, "", "events")
    assert "create Pod web-0 in StatefulSet web successful" in {e["message"] for e in events}


async def test_scale_down_in_reverse_one_at_a_time(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=3))
    for _ in range(3):
        await w.idle(controller.queue)
        await _run_all(cluster, controller)
    reg = cluster.registry("apps", "v1", "statefulsets")
    pod_reg = cluster.registry("", "v1", "pods")

    def scale(current: Obj) -> Obj:
        current["spec"]["replicas"] = 1
        return current

    def hold(current: Obj) -> Obj:
        current["metadata"]["finalizers"] = ["test.lks.io/hold"]
        return current

    def release(current: Obj) -> Obj:
        current["metadata"].pop("finalizers", None)
        return current

    # two unhealthy condemned pods: OrderedReady waits (only the first unhealthy may go)
    pods = {p["metadata"]["name"]: p for p in await w.pods(cluster)}
    await w.set_phase(cluster, pods["web-1"], "Running", ready=False)
    await w.set_phase(cluster, pods["web-2"], "Running", ready=False)
    await pod_reg.patch("default", "web-2", hold)
    await reg.patch("default", "web", scale)
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0", "web-1", "web-2"]
    await w.run(cluster, (await w.pods(cluster))[2])
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0", "web-1"]  # the highest ordinal goes first ...
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0", "web-1"]  # ... and web-1 waits while it terminates
    await pod_reg.patch("default", "web-2", release)
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0"]
    status = (await _get(cluster))["status"]
    assert status["replicas"] == 1 and status["readyReplicas"] == 1


async def test_parallel_creates_all_at_once(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=4, podManagementPolicy="Parallel"))
    await w.idle(controller.queue)
    assert await _names(cluster) == ["web-0", "web-1", "web-2", "web-3"]


async def test_failed_pod_is_recreated(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=1))
    await w.idle(controller.queue)
    pod = (await w.pods(cluster))[0]
    await w.fail(cluster, pod)
    await w.idle(controller.queue)
    again = (await w.pods(cluster))[0]
    assert again["metadata"]["name"] == "web-0" and again["metadata"]["uid"] != pod["metadata"]["uid"]
    reasons = {e["reason"] for e in await w.listed(cluster, "", "events")}
    assert "RecreatingFailedPod" in reasons


async def test_volume_claim_templates_and_retention(cluster: Cluster, controller: StatefulSetController) -> None:
    claim = {"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}
    await _create(cluster, _sts(replicas=2, podManagementPolicy="Parallel", volumeClaimTemplates=[claim],
                                persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"}))
    await w.idle(controller.queue)
    claims = {c["metadata"]["name"]: c for c in await w.listed(cluster, "", "persistentvolumeclaims")}
    assert set(claims) == {"www-web-0", "www-web-1"}
    assert claims["www-web-0"]["metadata"]["labels"] == {"app": "web"}
    assert "ownerReferences" not in claims["www-web-0"]["metadata"]  # in range: nobody owns it
    pod = (await w.pods(cluster))[0]
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "www")
    assert vol["persistentVolumeClaim"]["claimName"] == "www-web-0"

    def scale(current: Obj) -> Obj:
        current["spec"]["replicas"] = 1
        return current

    condemned = (await w.pods(cluster))[1]
    await cluster.registry("apps", "v1", "statefulsets").patch("default", "web", scale)
    await w.idle(controller.queue)
    claim1 = await cluster.registry("", "v1", "persistentvolumeclaims").get("default", "www-web-1")
    refs = claim1["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"]) for r in refs] == [("Pod", "web-1", condemned["metadata"]["uid"])]
    assert await _names(cluster) == ["web-0"]


async def test_retention_when_deleted_delete_owns_claims_by_set(cluster: Cluster, controller: StatefulSetController) -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}
    sts = await _create(cluster, _sts(replicas=1, volumeClaimTemplates=[claim],
                                      persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"}))
    await w.idle(controller.queue)
    pvc = await cluster.registry("", "v1", "persistentvolumeclaims").get("default", "data-web-0")
    assert [(r["kind"], r["uid"]) for r in pvc["metadata"]["ownerReferences"]] == [("StatefulSet", sts["metadata"]["uid"])]


async def _roll_out(cluster: Cluster, controller: StatefulSetController, rounds: int = 12) -> None:
    for _ in range(rounds):
        await _run_all(cluster, controller)


def _set_image(image: str):
    def patch(current: Obj) -> Obj:
        current["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return current
    return patch


async def test_rolling_update_reverse_ordinal(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=3))
    await _roll_out(cluster, controller)
    first = (await _get(cluster))["status"]["currentRevision"]
    await cluster.registry("apps", "v1", "statefulsets").patch("default", "web", _set_image("nginx:1.26"))
    await w.idle(controller.queue)
    pods = await w.pods(cluster)
    assert [p["metadata"]["name"] for p in pods] == ["web-0", "web-1", "web-2"]
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods}
    assert images == {"web-0": "nginx:1.25", "web-1": "nginx:1.25", "web-2": "nginx:1.26"}  # highest first
    status = (await _get(cluster))["status"]
    assert status["currentRevision"] == first and status["updateRevision"] != first
    assert status["updatedReplicas"] == 1
    await _roll_out(cluster, controller)
    pods = await w.pods(cluster)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    status = (await _get(cluster))["status"]
    assert status["currentRevision"] == status["updateRevision"] and status["currentReplicas"] == 3
    # a rollback reuses the first revision, renumbered
    await cluster.registry("apps", "v1", "statefulsets").patch("default", "web", _set_image("nginx:1.25"))
    await _roll_out(cluster, controller)
    revisions = {r["metadata"]["name"]: r["revision"] for r in await w.listed(cluster, "apps", "controllerrevisions")}
    assert revisions[first] == 3 and len(revisions) == 2
    assert (await _get(cluster))["status"]["updateRevision"] == first


async def test_partition_keeps_lower_ordinals(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
    await _roll_out(cluster, controller)
    await cluster.registry("apps", "v1", "statefulsets").patch("default", "web", _set_image("nginx:1.26"))
    await _roll_out(cluster, controller)
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in await w.pods(cluster)}
    assert images == {"web-0": "nginx:1.25", "web-1": "nginx:1.25", "web-2": "nginx:1.26"}
    status = (await _get(cluster))["status"]
    assert status["updatedReplicas"] == 1 and status["currentReplicas"] == 2
    # a pod below the partition that is deleted comes back at the current revision
    web0 = (await w.pods(cluster))[0]
    await cluster.registry("", "v1", "pods").delete("default", "web-0", deletion.DeleteOptions())
    await w.idle(controller.queue)
    again = (await w.pods(cluster))[0]
    assert again["metadata"]["uid"] != web0["metadata"]["uid"]
    assert again["spec"]["containers"][0]["image"] == "nginx:1.25"


async def test_on_delete_waits_for_the_user(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=2, updateStrategy={"type": "OnDelete"}))
    await _roll_out(cluster, controller)
    await cluster.registry("apps", "v1", "statefulsets").patch("default", "web", _set_image("nginx:1.26"))
    await _roll_out(cluster, controller)
    assert {p["spec"]["containers"][0]["image"] for p in await w.pods(cluster)} == {"nginx:1.25"}
    await cluster.registry("", "v1", "pods").delete("default", "web-1", deletion.DeleteOptions())
    await _roll_out(cluster, controller)
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in await w.pods(cluster)}
    assert images == {"web-0": "nginx:1.25", "web-1": "nginx:1.26"}


async def test_orphans_are_adopted(cluster: Cluster, controller: StatefulSetController) -> None:
    await _create(cluster, _sts(replicas=1))
    await w.idle(controller.queue)
    sts_reg = cluster.registry("apps", "v1", "statefulsets")
    await sts_reg.delete("default", "web", deletion.DeleteOptions())  # no collector runs here
    await w.until(lambda: controller.set_informer.get("default", "web") is None)
    await w.until(lambda: w.pods(cluster))
    # as the collector does with --cascade=orphan
    pod = (await w.pods(cluster))[0]

    def orphan(current: Obj) -> Obj:
        current["metadata"].pop("ownerReferences", None)
        return current

    await cluster.registry("", "v1", "pods").patch("default", pod["metadata"]["name"], orphan)
    sts = await _create(cluster, _sts(replicas=1))
    await w.idle(controller.queue)
    pods = await w.pods(cluster)
    assert len(pods) == 1 and pods[0]["metadata"]["uid"] == pod["metadata"]["uid"]
    assert pods[0]["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
