"""The simulated kubelet's pods, on a manual clock: the statuses it writes on the way to Running,
completion and exit codes, restarts with back-off, graceful deletion, init containers, pod IPs
from the node's CIDR, and adopting running pods after a restart."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import re

import pytest
from support import pod_or_none

from lks.kube import deletion
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import agent as agents
from lks.nodes import podevents, pods, runtime

CIDR = "10.244.3.0/24"
HOST_IP = "10.224.0.4"


@pytest.fixture
async def node(cluster, template):
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address=HOST_IP, pod_cidrs=[CIDR])
    await a.start()
    yield a
    await a.stop()


@pytest.fixture
def writes(cluster, node, monkeypatch):
    """Every status the pod workers wrote, in order, as (pod name, status)."""
    registry = pods.PodWorkers.shared(cluster)._registry
    written: list[tuple[str, dict]] = []
    patch = registry.patch

    async def counting(namespace, name, fn, *args, **kwargs):
        before = (await registry.get(namespace, name))["metadata"]["resourceVersion"]
        obj = await patch(namespace, name, fn, *args, **kwargs)
        if obj["metadata"]["resourceVersion"] != before:
            written.append((name, copy.deepcopy(obj["status"])))
        return obj

    monkeypatch.setattr(registry, "patch", counting)
    return written


def _pod(name, node, *, annotations=None, restart="Always", **spec):
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"nodeName": node.name, "restartPolicy": restart,
                     "containers": [{"name": "main", "image": "nginx"}], **spec}}


async def _create(cluster, body):
    return await cluster.registry("", "v1", "pods").create("default", body)


async def _until(settle, cluster, name, check):
    async def ok():
        return check(await pod_or_none(cluster, name))

    await settle(ok, tries=2000)


async def _running(settle, cluster, clock, name):
    """Wait for the ContainerCreating status, then let the containers start."""
    await _until(settle, cluster, name, lambda p: "containerStatuses" in p["status"])
    await clock.advance(0.01)
    await _until(settle, cluster, name, lambda p: _phase(p) == "Running")


async def _spin(rounds):
    """Let the loop run a while (to see that something does not happen)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def _phase(pod):
    return pod is not None and pod["status"].get("phase")


def _conditions(status):
    return {c["type"]: c for c in status["conditions"]}


def _state(status, index=0, key="containerStatuses"):
    return status[key][index]["state"]


async def _events(cluster, name):
    listed = await cluster.registry("", "v1", "events").list("default", ListOptions(LabelSelector([]), FieldSelector([])))
    return [(e["reason"], e["message"]) for e in listed["items"] if e["involvedObject"]["name"] == name]


async def test_pod_goes_through_container_creating_to_running(cluster, node, writes, clock, settle):
    await _create(cluster, _pod("web", node))
    await _until(settle, cluster, "web", lambda p: _phase(p) == "Pending" and "containerStatuses" in p["status"])
    creating = (await pod_or_none(cluster, "web"))["status"]
    assert _state(creating) == {"waiting": {"reason": "ContainerCreating"}}
    assert creating["containerStatuses"][0] == {
        "name": "main", "image": "nginx", "imageID": "", "lastState": {}, "ready": False, "restartCount": 0,
        "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert [(c["type"], c["status"], c.get("reason")) for c in creating["conditions"]] == [
        ("PodReadyToStartContainers", "False", None), ("Initialized", "True", None),
        ("Ready", "False", "ContainersNotReady"), ("ContainersReady", "False", "ContainersNotReady"),
        ("PodScheduled", "True", None)]
    assert _conditions(creating)["Ready"]["message"] == "containers with unready status: [main]"
    assert creating["hostIP"] == HOST_IP and creating["hostIPs"] == [{"ip": HOST_IP}]
    assert "podIP" not in creating and creating["startTime"] and creating["qosClass"] == "BestEffort"

    await _running(settle, cluster, clock, "web")
    running = (await pod_or_none(cluster, "web"))["status"]
    assert ipaddress.ip_address(running["podIP"]) in ipaddress.ip_network(CIDR)
    assert running["podIP"] == "10.244.3.2" and running["podIPs"] == [{"ip": "10.244.3.2"}]
    assert all(c["status"] == "True" for c in running["conditions"])
    assert all(c["lastTransitionTime"] and c["observedGeneration"] == 1 for c in running["conditions"])
    c = running["containerStatuses"][0]
    assert c["image"] == "docker.io/library/nginx:latest"
    assert re.fullmatch(r"docker\.io/library/nginx@sha256:[0-9a-f]{64}", c["imageID"])
    assert re.fullmatch(r"containerd://[0-9a-f]{64}", c["containerID"])
    assert c["ready"] is True and c["started"] is True and c["restartCount"] == 0 and c["lastState"] == {}
    assert set(c["state"]) == {"running"} and c["state"]["running"]["startedAt"]
    assert c["user"] == {"linux": {"uid": 0, "gid": 0, "supplementalGroups": [0]}}
    assert [name for name, _ in writes] == ["web", "web"]  # kubelet's two writes, no more

    # nothing changed: syncing again writes nothing
    workers = pods.PodWorkers.shared(cluster)
    await workers.sync(cluster.registry("", "v1", "pods").key("default", "web"))
    assert len(writes) == 2

    async def recorded():  # events are recorded in the background
        return len(await _events(cluster, "web")) == 4

    await settle(recorded, tries=2000)
    assert sorted(await _events(cluster, "web")) == [
        ("Created", "Created container: main"),
        ("Pulled", 'Successfully pulled image "nginx" in 5ms (5ms including waiting). Image size: '
                   f'{runtime.image_size("docker.io/library/nginx:latest")} bytes.'),
        ("Pulling", 'Pulling image "nginx"'), ("Started", "Started container main")]


@pytest.mark.parametrize("restart, annotations, phase, code, reason", [
    pytest.param("Never", {}, "Succeeded", 0, "Completed", id="never-completes"),
    pytest.param("OnFailure", {}, "Succeeded", 0, "Completed", id="onfailure-completes"),
    pytest.param("Never", {"lks.dev/simulate-exit-code": "3"}, "Failed", 3, "Error", id="exit-code-fails"),
])
async def test_run_to_completion(cluster, node, clock, settle, restart, annotations, phase, code, reason):
    await _create(cluster, _pod("job", node, restart=restart, annotations=annotations))
    await _running(settle, cluster, clock, "job")
    await clock.advance(0.9)
    await _spin(200)
    assert _phase(await pod_or_none(cluster, "job")) == "Running"  # runs for 1 s by default
    await clock.advance(0.1)
    await _until(settle, cluster, "job", lambda p: _phase(p) == phase)
    status = (await pod_or_none(cluster, "job"))["status"]
    terminated = _state(status)["terminated"]
    assert terminated["exitCode"] == code and terminated["reason"] == reason
    assert terminated["containerID"].startswith("containerd://") and terminated["startedAt"] and terminated["finishedAt"]
    cond = _conditions(status)
    completed = "PodCompleted" if phase == "Succeeded" else "PodFailed"
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", completed)
    assert (cond["ContainersReady"]["status"], cond["ContainersReady"]["reason"]) == ("False", completed)
    assert cond["PodReadyToStartContainers"]["status"] == "False"
    assert status["podIP"] == "10.244.3.2"  # a finished pod keeps showing its IP
    assert status["containerStatuses"][0]["ready"] is False and status["containerStatuses"][0]["started"] is False


async def test_crash_loop_back_off(cluster, node, clock, settle):
    notes = {"lks.dev/simulate-exit-code": "1", "lks.dev/simulate-run-seconds": "2"}
    await _create(cluster, _pod("crash", node, annotations=notes))
    await _running(settle, cluster, clock, "crash")
    await clock.advance(2)  # exits, and the first restart is immediate
    await _until(settle, cluster, "crash", lambda p: p["status"]["containerStatuses"][0]["restartCount"] == 1
                 and "running" in _state(p["status"]))
    last = (await pod_or_none(cluster, "crash"))["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 1 and last["reason"] == "Error"
    await clock.advance(2)  # exits again: now it backs off 10 s
    await _until(settle, cluster, "crash", lambda p: "waiting" in _state(p["status"]))
    pod = await pod_or_none(cluster, "crash")
    waiting = _state(pod["status"])["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"] == (f"back-off 10s restarting failed container=main pod=crash_default"
                                  f"({pod['metadata']['uid']})")
    assert pod["status"]["phase"] == "Running" and _conditions(pod["status"])["Ready"]["status"] == "False"
    await clock.advance(9)
    await _spin(200)
    assert (await pod_or_none(cluster, "crash"))["status"]["containerStatuses"][0]["restartCount"] == 1
    await clock.advance(1)
    await _until(settle, cluster, "crash", lambda p: p["status"]["containerStatuses"][0]["restartCount"] == 2)
    await clock.advance(2)
    await _until(settle, cluster, "crash", lambda p: "20s" in _state(p["status"]).get("waiting", {}).get("message", ""))
    assert ("BackOff", f"Back-off restarting failed container main in pod crash_default({pod['metadata']['uid']})") \
        in await _events(cluster, "crash")


@pytest.mark.parametrize("stop, grace, after, code, phase", [
    pytest.param(None, 30, 0, 0, "Succeeded", id="stops-at-once"),
    pytest.param("5", 30, 5, 0, "Succeeded", id="stops-in-time"),
    pytest.param("60", 30, 30, 137, "Failed", id="killed-at-grace"),
])
async def test_graceful_deletion(cluster, node, writes, clock, settle, stop, grace, after, code, phase):
    notes = {"lks.dev/simulate-stop-seconds": stop} if stop else {}
    await _create(cluster, _pod("web", node, annotations=notes, terminationGracePeriodSeconds=grace))
    await _running(settle, cluster, clock, "web")
    await cluster.registry("", "v1", "pods").delete("default", "web", deletion.DeleteOptions())

    async def killing():
        return ("Killing", "Stopping container main") in await _events(cluster, "web")

    await settle(killing, tries=2000)
    if after:
        await clock.advance(after - 0.5)
        await _spin(200)
        assert (await pod_or_none(cluster, "web"))["metadata"]["deletionTimestamp"]
        await clock.advance(0.5)
    await _until(settle, cluster, "web", lambda p: p is None)
    final = writes[-1][1]
    assert final["phase"] == phase
    terminated = _state(final)["terminated"]
    assert terminated["exitCode"] == code and terminated["reason"] == ("Completed" if code == 0 else "Error")


async def test_a_second_delete_shortens_the_grace_period(cluster, node, writes, clock, settle):
    await _create(cluster, _pod("web", node, annotations={"lks.dev/simulate-stop-seconds": "60"}))
    await _running(settle, cluster, clock, "web")
    pods_ = cluster.registry("", "v1", "pods")
    await pods_.delete("default", "web", deletion.DeleteOptions())
    await clock.advance(5)
    await _spin(200)
    await pods_.delete("default", "web", deletion.DeleteOptions(grace_period_seconds=1))
    await _until(settle, cluster, "web", lambda p: p["metadata"]["deletionGracePeriodSeconds"] == 1)
    await _spin(200)
    await clock.advance(1)
    await _until(settle, cluster, "web", lambda p: p is None)
    assert _state(writes[-1][1])["terminated"]["exitCode"] == 137


async def test_a_pod_that_never_started_is_deleted_too(cluster, template, writes, settle):
    bare = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5")  # no pod CIDR
    await bare.start()
    try:
        await _create(cluster, _pod("stuck", bare))
        await _until(settle, cluster, "stuck", lambda p: "containerStatuses" in p["status"])
        await cluster.registry("", "v1", "pods").delete("default", "stuck", deletion.DeleteOptions())
        await _until(settle, cluster, "stuck", lambda p: p is None)
        final = writes[-1][1]
        assert final["phase"] == "Failed"
        assert _state(final)["terminated"] == {
            "exitCode": 137, "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated"}
    finally:
        await bare.stop()


async def test_pods_wait_for_the_node_pod_cidr(cluster, template, clock, settle):
    bare = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5")
    await bare.start()
    try:
        await _create(cluster, _pod("web", bare))
        await clock.advance(1)
        await _until(settle, cluster, "web", lambda p: "containerStatuses" in p["status"])
        assert _phase(await pod_or_none(cluster, "web")) == "Pending"

        def assign(n):
            n["spec"]["podCIDR"], n["spec"]["podCIDRs"] = "10.244.9.0/24", ["10.244.9.0/24"]
            return n

        await cluster.registry("", "v1", "nodes").patch(None, bare.name, assign)
        await _running(settle, cluster, clock, "web")
        assert (await pod_or_none(cluster, "web"))["status"]["podIP"] == "10.244.9.2"
    finally:
        await bare.stop()


async def test_init_containers_run_first(cluster, node, clock, settle):
    body = _pod("init", node, initContainers=[{"name": "setup", "image": "busybox:1.36"}])
    await _create(cluster, body)
    await _until(settle, cluster, "init", lambda p: "initContainerStatuses" in p["status"])
    status = (await pod_or_none(cluster, "init"))["status"]
    assert _state(status, key="initContainerStatuses") == {"waiting": {"reason": "PodInitializing"}}
    assert _state(status) == {"waiting": {"reason": "PodInitializing"}}
    assert _conditions(status)["Initialized"] == {
        **_conditions(status)["Initialized"], "status": "False", "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [setup]"}
    for _ in range(4):
        await clock.advance(0.005)
        await _spin(100)
    await _until(settle, cluster, "init", lambda p: _phase(p) == "Running")
    status = (await pod_or_none(cluster, "init"))["status"]
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed" and init["ready"] is True
    assert init["image"] == "docker.io/library/busybox:1.36"
    assert _conditions(status)["Initialized"]["status"] == "True"


async def test_host_network_pods_use_the_node_ip(cluster, node, clock, settle):
    await _create(cluster, _pod("proxy", node, hostNetwork=True))
    await _running(settle, cluster, clock, "proxy")
    assert (await pod_or_none(cluster, "proxy"))["status"]["podIP"] == HOST_IP


async def test_pod_ips_are_handed_out_in_turn(cluster, node, clock, settle):
    for name in ("a", "b"):
        await _create(cluster, _pod(name, node))
        await _running(settle, cluster, clock, name)
    assert [(await pod_or_none(cluster, n))["status"]["podIP"] for n in ("a", "b")] == ["10.244.3.2", "10.244.3.3"]
    await cluster.registry("", "v1", "pods").delete("default", "a", deletion.DeleteOptions())
    await _until(settle, cluster, "a", lambda p: p is None)
    await _create(cluster, _pod("c", node))
    await _running(settle, cluster, clock, "c")
    assert (await pod_or_none(cluster, "c"))["status"]["podIP"] == "10.244.3.4"  # .2 is not reused at once


async def test_readiness_waits_for_the_probe_delay(cluster, node, clock, settle):
    body = _pod("slow", node)
    body["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}, "initialDelaySeconds": 5}
    await _create(cluster, body)
    await _running(settle, cluster, clock, "slow")
    assert _conditions((await pod_or_none(cluster, "slow"))["status"])["Ready"]["status"] == "False"
    await clock.advance(5)
    await _until(settle, cluster, "slow", lambda p: _conditions(p["status"])["Ready"]["status"] == "True")


async def test_readiness_gates(cluster, node, clock, settle):
    await _create(cluster, _pod("gated", node, readinessGates=[{"conditionType": "example.com/ready"}]))
    await _running(settle, cluster, clock, "gated")
    ready = _conditions((await pod_or_none(cluster, "gated"))["status"])["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ReadinessGatesNotReady")
    assert ready["message"] == 'corresponding condition of pod readiness gate "example.com/ready" does not exist.'


async def test_a_restarted_service_adopts_running_pods(cluster, template, node, clock, settle):
    await _create(cluster, _pod("web", node))
    await _create(cluster, _pod("job", node, restart="Never"))
    await _running(settle, cluster, clock, "job")
    before = await pod_or_none(cluster, "web")
    await node.stop()  # the service goes down; the node keeps running its pods
    assert not pods.PodWorkers._shared.get(cluster)
    again = agents.NodeAgent(cluster=cluster, template=template, index=0, address=HOST_IP)
    await again.start()
    try:
        await clock.advance(0.5)
        await _spin(300)
        after = await pod_or_none(cluster, "web")
        assert after["status"] == before["status"]  # same containers, same IP, nothing written
        await _create(cluster, _pod("new", again))
        await _running(settle, cluster, clock, "new")
        assert (await pod_or_none(cluster, "new"))["status"]["podIP"] == "10.244.3.4"
        await clock.advance(0.5)  # the job still ends 1 s after it started
        await _until(settle, cluster, "job", lambda p: _phase(p) == "Succeeded")
    finally:
        await again.stop()
        await node.start()  # the fixture stops it


@pytest.mark.parametrize("ref, normalized", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("mcr.microsoft.com/oss/kubernetes/coredns:v1.11.3", "mcr.microsoft.com/oss/kubernetes/coredns:v1.11.3"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("nginx@sha256:" + "a" * 64, "docker.io/library/nginx@sha256:" + "a" * 64),
])
def test_image_references_as_containerd_reports_them(ref, normalized):
    assert runtime.normalize_image(ref) == normalized


@pytest.mark.parametrize("seconds, text", [
    (0.005, "5ms"), (1.5, "1.5s"), (10, "10s"), (80, "1m20s"), (300, "5m0s"), (0, "0s"),
])
def test_go_durations(seconds, text):
    assert podevents.go_duration(seconds) == text
