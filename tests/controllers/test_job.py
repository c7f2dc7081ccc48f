"""The Job controller and the TTL-after-finished controller on the memory store with a manual
clock: completions and parallelism, Indexed Jobs, finalizer-based tracking, back-off, pod
failure and success policies, deadlines, suspension and TTL deletion. Pod phases are set by
the test, standing in for the scheduler and the node agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers.job import JobController
from lks.controllers.ttlafterfinished import TTLAfterFinishedController
from lks.kube import deletion
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]
FINALIZER = "batch.kubernetes.io/job-tracking"


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[JobController]:
    c = JobController(cluster)
    await c.start()
    yield c
    await c.stop()


def _job(name: str = "pi", **spec: Any) -> Obj:
    restart = spec.pop("restartPolicy", "Never")
    return {"metadata": {"name": name}, "spec": {
        "template": {"spec": {"restartPolicy": restart,
                              "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "1"]}]}},
        **spec}}


async def _create(cluster: Cluster, body: Obj) -> Obj:
    return await cluster.registry("batch", "v1", "jobs").create("default", body)


async def _get(cluster: Cluster, name: str = "pi") -> Obj:
    return await cluster.registry("batch", "v1", "jobs").get("default", name)


def _conditions(job: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}


async def _active(cluster: Cluster) -> list[Obj]:
    return [p for p in await w.live_pods(cluster)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


async def test_completions_with_parallelism(cluster: Cluster, controller: JobController) -> None:
    job = await _create(cluster, _job(completions=3, parallelism=2))
    await w.idle(controller.queue)
    pods = await _active(cluster)
    assert len(pods) == 2
    pod = pods[0]
    assert pod["metadata"]["finalizers"] == [FINALIZER]
    assert pod["metadata"]["generateName"] == "pi-"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("Job", job["metadata"]["uid"], True)
    status = (await _get(cluster))["status"]
    assert status["active"] == 2 and status["ready"] == 0 and status["terminating"] == 0
    assert status["uncountedTerminatedPods"] == {} and "startTime" in status

    await w.run(cluster, pods[0])
    await w.idle(controller.queue)
    assert (await _get(cluster))["status"]["ready"] == 1
    for _ in range(3):
        pods = await _active(cluster)
        await w.succeed(cluster, pods[0])
        await w.idle(controller.queue)
    assert await _active(cluster) == []
    job = await _get(cluster)
    status = job["status"]
    assert status["succeeded"] == 3 and "active" not in status and status["uncountedTerminatedPods"] == {}
    conds = _conditions(job)
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["status"] == "True"
    assert conds["Complete"]["message"] == "Reached expected number of succeeded pods"
    assert status["completionTime"] == conds["Complete"]["lastTransitionTime"]
    assert all("finalizers" not in p["metadata"] for p in await w.pods(cluster))
    assert len(await w.pods(cluster)) == 3
    events = {(e["reason"], e["message"]) for e in await w.listed(cluster, "", "events")}
    assert ("Completed", "Job completed") in events
    assert ("SuccessfulCreate", f"Created pod: {pod['metadata']['name']}") in events


async def test_indexed_job(cluster: Cluster, controller: JobController) -> None:
    await _create(cluster, _job(completions=3, parallelism=3, completionMode="Indexed"))
    await w.idle(controller.queue)
    pods = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in await _active(cluster)}
    assert set(pods) == {"0", "1", "2"}
    pod = pods["1"]
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
    assert pod["spec"]["hostname"] == "pi-1" and pod["metadata"]["generateName"] == "pi-1-"
    env = pod["spec"]["containers"][0]["env"]
    assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    await w.succeed(cluster, pods["1"])
    await w.idle(controller.queue)
    status = (await _get(cluster))["status"]
    assert status["completedIndexes"] == "1" and status["succeeded"] == 1
    # a failed index is retried under the same index
    await w.fail(cluster, pods["0"])
    await w.idle(controller.queue)
    await controller.clock.advance(10)
    await w.idle(controller.queue)
    again = [p for p in await _active(cluster) if p["metadata"]["annotations"][
        "batch.kubernetes.io/job-completion-index"] == "0"]
    assert len(again) == 1
    await w.succeed(cluster, again[0])
    await w.succeed(cluster, pods["2"])
    await w.idle(controller.queue)
    job = await _get(cluster)
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["failed"] == 1
    assert _conditions(job)["Complete"]["status"] == "True"


async def test_backoff_limit_with_exponential_backoff(cluster: Cluster, controller: JobController,
                                                      clock: ManualClock) -> None:
    await _create(cluster, _job(backoffLimit=2))
    await w.idle(controller.queue)
    await w.fail(cluster, (await _active(cluster))[0])
    await w.idle(controller.queue)
    assert (await _get(cluster))["status"]["failed"] == 1
    assert await _active(cluster) == []  # back-off: 10 s before the replacement
    await clock.advance(9)
    await w.idle(controller.queue)
    assert await _active(cluster) == []
    await clock.advance(1)
    await w.idle(controller.queue)
    assert len(await _active(cluster)) == 1
    await w.fail(cluster, (await _active(cluster))[0])
    await w.idle(controller.queue)
    await clock.advance(10)
    await w.idle(controller.queue)
    assert await _active(cluster) == []  # the second failure doubles it: 20 s
    await clock.advance(10)
    await w.idle(controller.queue)
    assert len(await _active(cluster)) == 1
    await w.fail(cluster, (await _active(cluster))[0])
    await w.idle(controller.queue)
    job = await _get(cluster)
    conds = _conditions(job)
    assert job["status"]["failed"] == 3
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in job["status"]
    events = {(e["type"], e["reason"]) for e in await w.listed(cluster, "", "events")}
    assert ("Warning", "BackoffLimitExceeded") in events


async def test_active_deadline(cluster: Cluster, controller: JobController, clock: ManualClock) -> None:
    await _create(cluster, _job(parallelism=2, completions=4, activeDeadlineSeconds=30))
    await w.idle(controller.queue)
    await w.run(cluster, (await _active(cluster))[0])
    await w.idle(controller.queue)
    await clock.advance(29)
    await w.idle(controller.queue)
    assert len(await _active(cluster)) == 2
    await clock.advance(1)
    await w.idle(controller.queue)
    assert await w.pods(cluster) == []  # deleted, counted, finalizers gone
    job = await _get(cluster)
    conds = _conditions(job)
    assert conds["Failed"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["message"] == "Job was active longer than specified deadline"
    assert job["status"]["failed"] == 2 and "active" not in job["status"]


async def test_suspend_and_resume(cluster: Cluster, controller: JobController, clock: ManualClock) -> None:
    await _create(cluster, _job(parallelism=2, completions=2, suspend=True))
    await w.idle(controller.queue)
    job = await _get(cluster)
    assert await w.pods(cluster) == [] and "startTime" not in job["status"]
    assert _conditions(job)["Suspended"]["reason"] == "JobSuspended"
    await clock.advance(60)

    def resume(current: Obj) -> Obj:
        current["spec"]["suspend"] = False
        return current

    reg = cluster.registry("batch", "v1", "jobs")
    await reg.patch("default", "pi", resume)
    await w.idle(controller.queue)
    job = await _get(cluster)
    assert len(await _active(cluster)) == 2
    suspended = _conditions(job)["Suspended"]
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert job["status"]["startTime"] == rfc3339(clock.now())  # the deadline clock starts on resuming

    def suspend(current: Obj) -> Obj:
        current["spec"]["suspend"] = True
        return current

    await reg.patch("default", "pi", suspend)
    await w.idle(controller.queue)
    assert await w.pods(cluster) == []  # deleted without counting as failures
    job = await _get(cluster)
    assert "failed" not in job["status"]
    reasons = [e["reason"] for e in await w.listed(cluster, "", "events")]
    assert "Suspended" in reasons and "Resumed" in reasons


async def test_pod_failure_policy(cluster: Cluster, controller: JobController, clock: ManualClock) -> None:
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
                        {"action": "FailJob", "onExitCodes": {"containerName": "pi", "operator": "In", "values": [42]}}]}
    await _create(cluster, _job(podFailurePolicy=policy, backoffLimit=0))
    await w.idle(controller.queue)
    await w.fail(cluster, (await _active(cluster))[0], exit_code=3)
    await w.idle(controller.queue)
    job = await _get(cluster)
    assert "failed" not in job["status"] and "Failed" not in _conditions(job)  # ignored ...
    await clock.advance(10)  # ... though the replacement backs off like after any failure, as upstream
    await w.idle(controller.queue)
    pods = await _active(cluster)
    assert len(pods) == 1
    await w.fail(cluster, pods[0], exit_code=42)
    await w.idle(controller.queue)
    job = await _get(cluster)
    failed = _conditions(job)["Failed"]
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (f"Container pi for pod default/{pods[0]['metadata']['name']} failed with exit code 42 "
                                 "matching FailJob rule at index 1")


async def test_deleted_pod_counts_as_failed_and_is_replaced(cluster: Cluster, controller: JobController,
                                                            clock: ManualClock) -> None:
    await _create(cluster, _job())
    await w.idle(controller.queue)
    pod = (await _active(cluster))[0]
    await cluster.registry("", "v1", "pods").delete("default", pod["metadata"]["name"], deletion.DeleteOptions())
    await w.idle(controller.queue)
    assert (await _get(cluster))["status"]["failed"] == 1
    assert [p["metadata"]["name"] for p in await w.pods(cluster)] == []  # the finalizer went: the pod is gone
    await clock.advance(10)
    await w.idle(controller.queue)
    assert len(await _active(cluster)) == 1


async def test_success_policy(cluster: Cluster, controller: JobController) -> None:
    await _create(cluster, _job(completions=3, parallelism=3, completionMode="Indexed",
                                successPolicy={"rules": [{"succeededIndexes": "0"}]}))
    await w.idle(controller.queue)
    pods = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in await _active(cluster)}
    await w.succeed(cluster, pods["0"])
    await w.idle(controller.queue)
    job = await _get(cluster)
    conds = _conditions(job)
    assert (conds["SuccessCriteriaMet"]["reason"], conds["SuccessCriteriaMet"]["message"]) == (
        "SuccessPolicy", "Matched rules at index 0")
    assert conds["Complete"]["reason"] == "SuccessPolicy"
    assert await _active(cluster) == []


async def test_backoff_limit_per_index(cluster: Cluster, controller: JobController, clock: ManualClock) -> None:
    await _create(cluster, _job(completions=2, parallelism=2, completionMode="Indexed", backoffLimitPerIndex=1))
    await w.idle(controller.queue)

    def by_index(pods: list[Obj]) -> dict[str, Obj]:
        return {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}

    pods = by_index(await _active(cluster))
    assert pods["0"]["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "0"
    await w.fail(cluster, pods["0"])
    await w.idle(controller.queue)
    await clock.advance(10)
    await w.idle(controller.queue)
    again = by_index(await _active(cluster))["0"]
    assert again["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
    await w.fail(cluster, again)
    await w.succeed(cluster, pods["1"])
    await w.idle(controller.queue)
    job = await _get(cluster)
    assert job["status"]["failedIndexes"] == "0" and job["status"]["completedIndexes"] == "1"
    assert _conditions(job)["Failed"]["reason"] == "FailedIndexes"


async def test_orphaned_pods_lose_the_finalizer(cluster: Cluster, controller: JobController) -> None:
    await _create(cluster, _job(parallelism=2, completions=2))
    await w.idle(controller.queue)
    assert len(await w.pods(cluster)) == 2
    await cluster.registry("batch", "v1", "jobs").delete("default", "pi", deletion.DeleteOptions())
    await w.idle(controller.queue, controller.orphans)
    assert all(FINALIZER not in (p["metadata"].get("finalizers") or []) for p in await w.pods(cluster))


async def test_ttl_after_finished(cluster: Cluster, controller: JobController, clock: ManualClock) -> None:
    ttl = TTLAfterFinishedController(cluster)
    await ttl.start()
    try:
        await _create(cluster, _job(ttlSecondsAfterFinished=60))
        await w.idle(controller.queue)
        await w.succeed(cluster, (await _active(cluster))[0])
        await w.idle(controller.queue, ttl.queue)
        assert _conditions(await _get(cluster))["Complete"]["status"] == "True"
        await clock.advance(59)
        await w.idle(controller.queue, ttl.queue)
        assert "deletionTimestamp" not in (await _get(cluster))["metadata"]
        await clock.advance(1)
        await w.idle(controller.queue, ttl.queue)
        job = await _get(cluster)  # Foreground: the collector removes it once its pods are gone
        assert "deletionTimestamp" in job["metadata"] and "foregroundDeletion" in job["metadata"]["finalizers"]
    finally:
        await ttl.stop()


async def test_a_restarted_controller_does_not_create_pods_twice(cluster: Cluster, controller: JobController) -> None:
    await _create(cluster, _job(parallelism=2, completions=4))
    await w.idle(controller.queue)
    await controller.stop()
    again = JobController(cluster)
    await again.start()
    try:
        await w.idle(again.queue)
        assert len(await _active(cluster)) == 2
        assert (await _get(cluster))["status"]["active"] == 2
    finally:
        await again.stop()
        await controller.start()  # the fixture stops it
