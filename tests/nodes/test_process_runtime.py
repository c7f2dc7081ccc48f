"""The Process runtime: pods of a `workloadRuntime: Process` node run as real processes, on the
test's manual clock for every kubelet timer (back-off, grace periods, probes). Processes take
real time to start and exit, so `_until` polls in real time."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from support import pod_or_none

from lks.kube import deletion
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import agent as agents
from lks.nodes import kubelets, namespaces, pods, process, streams
from lks.nodes.streams import LogOptions, StreamError

CIDR = "10.244.3.0/24"
HOST_IP = "10.224.0.4"
ROOT = namespaces.available()


@pytest.fixture
async def node(cluster, make_template, tmp_path):
    pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
    a = agents.NodeAgent(cluster=cluster, template=make_template(workload_runtime="Process"), index=0,
                         address=HOST_IP, pod_cidrs=[CIDR])
    await a.start()
    yield a
    await a.stop()


@pytest.fixture
def runtime(cluster, node) -> process.ProcessRuntime:
    rt = pods.PodWorkers.shared(cluster).process
    assert rt is not None
    return rt


@pytest.fixture
def kubelet(cluster, node):
    k = streams.lookup(cluster.id, node.name)
    assert isinstance(k, kubelets.ProcessKubelet)
    return k


def _pod(name, node, command, *, restart="Never", **spec):
    return {"metadata": {"name": name},
            "spec": {"nodeName": node.name, "restartPolicy": restart, "terminationGracePeriodSeconds": 30,
                     "containers": [{"name": "main", "image": "busybox", "command": command}], **spec}}


def _sh(script):
    return ["sh", "-c", script]


async def _create(cluster, body, namespace="default"):
    return await cluster.registry("", "v1", namespace and "pods").create(namespace, body)


async def _until(cluster, name, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = await pod_or_none(cluster, name)
        if check(pod):
            return pod
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not reached; pod is {pod and pod.get('status')}")


def _phase(pod):
    return pod is not None and pod["status"].get("phase")


def _status(pod, index=0):
    return pod["status"]["containerStatuses"][index]


async def _logs(kubelet, pod, **opts):
    out = b""
    async for chunk in kubelet.logs(pod, LogOptions(container=opts.pop("container", "main"), **opts)):
        out += chunk
    return out.decode()


async def _logged(kubelet, pod, text, timeout=5.0):
    """Wait until the container has written `text` (so its shell has got that far)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in await _logs(kubelet, pod):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{text!r} not logged: {await _logs(kubelet, pod)!r}")


async def _events(cluster, name):
    listed = await cluster.registry("", "v1", "events").list("default", ListOptions(LabelSelector([]), FieldSelector([])))
    return [(e["reason"], e["message"]) for e in listed["items"] if e["involvedObject"]["name"] == name]


async def _until_event(cluster, name, reason, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for r, m in await _events(cluster, name) if r == reason]
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {reason} event: {await _events(cluster, name)}")


def _gone(pgid):
    """No live process left in the group (zombies count as gone: reaping orphans is init's job)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


async def test_command_runs_and_its_exit_code_is_reported(cluster, node, kubelet):
    await _create(cluster, _pod("job", node, _sh("echo out; echo err >&2; hostname; exit 3")))
    pod = await _until(cluster, "job", lambda p: _phase(p) == "Failed")
    term = _status(pod)["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert _status(pod)["image"] == "docker.io/library/busybox:latest"
    out = await _logs(kubelet, pod)
    assert sorted(out.splitlines())[:2] == ["err", "job" if ROOT else socket.gethostname()]
    assert "out" in out.splitlines()  # (stdout and stderr are separate pipes: their order may vary)
    assert socket.gethostname() != "job"


async def test_success_completes(cluster, node):
    await _create(cluster, _pod("ok", node, ["true"]))
    pod = await _until(cluster, "ok", lambda p: _phase(p) == "Succeeded")
    assert _status(pod)["state"]["terminated"]["reason"] == "Completed"


async def test_no_command_waits_with_create_container_error(cluster, node):
    body = _pod("nocmd", node, None)
    del body["spec"]["containers"][0]["command"]
    body["spec"]["containers"][0]["image"] = "example.com/team/app:1"  # an image lks.nodes.images does not know
    await _create(cluster, body)
    pod = await _until(cluster, "nocmd", lambda p: "waiting" in (_status(p) if p and "containerStatuses" in p[
        "status"] else {}).get("state", {}) and _status(p)["state"]["waiting"]["reason"] != "ContainerCreating")
    waiting = _status(pod)["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerError"
    assert "Process runtime needs a command" in waiting["message"]
    assert _phase(pod) == "Pending"
    failed = await _until_event(cluster, "nocmd", "Failed")
    assert failed[0].startswith("Error: the Process runtime needs a command")


async def test_missing_executable_is_a_start_error(cluster, node):
    await _create(cluster, _pod("nf", node, ["no-such-command-xyz"]))
    pod = await _until(cluster, "nf", lambda p: _phase(p) == "Failed")
    term = _status(pod)["state"]["terminated"]
    assert term["exitCode"] == 128 and term["reason"] == "StartError"
    assert "executable file not found in $PATH" in term["message"]


async def test_environment(cluster, node, kubelet):
    core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
    await core("configmaps").create("default", {"metadata": {"name": "cfg"}, "data": {"COLOR": "blue", "size": "L"}})
    await core("secrets").create("default", {"metadata": {"name": "sec"},
                                             "data": {"pw": base64.b64encode(b"hunter2").decode()}})
    await core("services").create("default", {"metadata": {"name": "my-db"}, "spec": {
        "ports": [{"name": "sql", "port": 5432}]}})
    body = _pod("env", node, _sh("env | sort"), serviceAccountName="default")
    body["metadata"]["labels"] = {"app": "web"}
    c = body["spec"]["containers"][0]
    c["resources"] = {"limits": {"memory": "64Mi", "cpu": "250m"}}
    c["envFrom"] = [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}, {"secretRef": {"name": "nope", "optional": True}}]
    c["env"] = [
        {"name": "PLAIN", "value": "x-$(CM_COLOR)-$$(NOT)"},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "size"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "none", "optional": True}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    await _create(cluster, body)
    pod = await _until(cluster, "env", lambda p: _phase(p) == "Succeeded")
    env = dict(line.split("=", 1) for line in (await _logs(kubelet, pod)).splitlines() if "=" in line)
    assert env["CM_COLOR"] == "blue" and env["CM_size"] == "L"
    assert env["PLAIN"] == "x-blue-$(NOT)"
    assert env["FROM_CM"] == "L" and env["FROM_SECRET"] == "hunter2" and "OPT" not in env
    assert env["POD"] == "env" and env["NS"] == "default" and env["APP"] == "web" and env["NODE"] == node.name
    assert env["IP"] == pod["status"]["podIP"] and env["IP"].startswith("10.244.3.")
    assert env["HOST_IP"] == HOST_IP
    assert env["MEM"] == "64" and env["CPU"] == "1"
    assert env["HOSTNAME"] == "env"
    svc = await core("services").get("default", "my-db")
    ip = svc["spec"]["clusterIP"]
    assert env["MY_DB_SERVICE_HOST"] == ip and env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_SQL"] == "5432" and env["MY_DB_PORT"] == f"tcp://{ip}:5432"
    assert env["MY_DB_PORT_5432_TCP_ADDR"] == ip and env["MY_DB_PORT_5432_TCP_PROTO"] == "tcp"
    runtime = pods.PodWorkers.shared(cluster).process
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == str(runtime.api.port)


async def test_missing_config_map_is_a_config_error(cluster, node):
    body = _pod("cfgerr", node, ["true"])
    body["spec"]["containers"][0]["env"] = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]
    await _create(cluster, body)
    pod = await _until(cluster, "cfgerr", lambda p: (_status(p)["state"].get("waiting") or {}).get("reason")
                       == "CreateContainerConfigError" if p and "containerStatuses" in p["status"] else False)
    assert _status(pod)["state"]["waiting"]["message"] == 'configmap "gone" not found'


@pytest.mark.skipif(not ROOT, reason="mount namespaces need root")
async def test_volumes_are_mounted_without_touching_the_host(cluster, node, kubelet):
    # the projected token is requested for the pod's account (no controller makes it here);
    # it mounts its own token volume, so admission adds none
    await cluster.registry("", "v1", "serviceaccounts").create("default", {"metadata": {"name": "default"},
                                                                          "automountServiceAccountToken": False})
    await cluster.registry("", "v1", "configmaps").create("default", {"metadata": {"name": "conf"},
                                                                      "data": {"app.conf": "a=1"}})
    body = _pod("vols", node, _sh("cat /lks-test/conf/app.conf; echo; cat /lks-test/pod/name; echo; "
                                  "cat /lks-test/shared/msg; ls /var/run/secrets/kubernetes.io/serviceaccount; "
                                  "pwd; touch /lks-test/conf/x 2>/dev/null || echo read-only"))
    body["spec"]["volumes"] = [
        {"name": "conf", "configMap": {"name": "conf"}},
        {"name": "shared", "emptyDir": {}},
        {"name": "pod", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ]
    body["spec"]["initContainers"] = [{"name": "init", "image": "busybox", "command": _sh("echo hi > /work-dir/msg"),
                                       "volumeMounts": [{"name": "shared", "mountPath": "/work-dir"}]}]
    c = body["spec"]["containers"][0]
    c["workingDir"] = "/lks-test/shared"
    c["volumeMounts"] = [{"name": "conf", "mountPath": "/lks-test/conf", "readOnly": True},
                         {"name": "shared", "mountPath": "/lks-test/shared"},
                         {"name": "pod", "mountPath": "/lks-test/pod"},
                         {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    await _create(cluster, body)
    pod = await _until(cluster, "vols", lambda p: _phase(p) in ("Succeeded", "Failed"))
    assert _phase(pod) == "Succeeded", pod["status"]
    out = (await _logs(kubelet, pod)).splitlines()
    assert out == ["a=1", "vols", "hi", "namespace", "token", "/lks-test/shared", "read-only"]
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert not Path("/lks-test").exists() and not Path("/work-dir").exists()
    assert not Path("/var/run/secrets/kubernetes.io").exists() or Path("/var/run/secrets/kubernetes.io").is_dir()


async def test_init_containers_in_order_then_every_container(cluster, node, kubelet):
    body = _pod("multi", node, _sh("cat $D/order; echo main"))
    body["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}}]
    mounts = [{"name": "shared", "mountPath": "/lks-test-multi"}]
    env = [{"name": "D", "value": "/lks-test-multi" if ROOT else "$(LKS_VOLUME_SHARED)"}]
    body["spec"]["initContainers"] = [
        {"name": f"init{i}", "image": "busybox", "command": _sh(f"sleep 0.0{i}; echo init{i} >> ${{D:-$LKS_VOLUME_SHARED}}/order"),
         "volumeMounts": mounts, "env": env} for i in (1, 2)]
    c = body["spec"]["containers"][0]
    c["volumeMounts"], c["env"] = mounts, env
    body["spec"]["containers"].append({"name": "side", "image": "busybox", "command": _sh("echo side"),
                                       "volumeMounts": mounts})
    await _create(cluster, body)
    pod = await _until(cluster, "multi", lambda p: _phase(p) in ("Succeeded", "Failed"))
    assert _phase(pod) == "Succeeded", pod["status"]
    assert await _logs(kubelet, pod) == "init1\ninit2\nmain\n"
    assert await _logs(kubelet, pod, container="side") == "side\n"
    assert [s["state"]["terminated"]["reason"] for s in pod["status"]["initContainerStatuses"]] == ["Completed"] * 2


async def test_restarts_with_crash_loop_back_off(cluster, node, clock, kubelet):
    await _create(cluster, _pod("crash", node, _sh("echo run; exit 2"), restart="Always"))
    pod = await _until(cluster, "crash", lambda p: p["status"].get("containerStatuses")
                       and _status(p)["restartCount"] == 1 and "waiting" in _status(p)["state"])
    st = _status(pod)
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert "back-off 10s restarting failed container=main" in st["state"]["waiting"]["message"]
    assert st["lastState"]["terminated"]["exitCode"] == 2
    assert await _logs(kubelet, pod, previous=True) == "run\n"
    await clock.advance(10)
    pod = await _until(cluster, "crash", lambda p: _status(p)["restartCount"] == 2 and "waiting" in _status(p)["state"])
    assert "back-off 20s" in _status(pod)["state"]["waiting"]["message"]
    exited = clock.now()
    await clock.advance(19)
    await asyncio.sleep(0.2)
    assert _status(await pod_or_none(cluster, "crash"))["restartCount"] == 2
    # the 20 s back-off has passed at 21 s: the restart then comes without more clock time
    # (ticking on while the restart runs would measure the machine's load, not the back-off)
    await clock.advance(2)
    await _until(cluster, "crash", lambda p: _status(p)["restartCount"] == 3)
    assert clock.now() - exited == 21


async def test_graceful_deletion_sigterm(cluster, node, runtime, kubelet):
    script = "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.02; done"
    await _create(cluster, _pod("term", node, _sh(script), restart="Always"))
    pod = await _until(cluster, "term", lambda p: _phase(p) == "Running")
    await _logged(kubelet, pod, "ready")
    inst = runtime.find(pod["metadata"]["uid"]).current("main")
    await cluster.registry("", "v1", "pods").delete("default", "term", deletion.DeleteOptions())
    await _until(cluster, "term", lambda p: p is None)
    assert _gone(inst.pid)
    assert inst.container.exit_code == 0


async def test_grace_period_ends_with_sigkill(cluster, node, runtime, clock, kubelet):
    script = "trap '' TERM; echo ready; sleep 1000 & wait; sleep 1000"
    await _create(cluster, _pod("stubborn", node, _sh(script), restart="Always"))
    pod = await _until(cluster, "stubborn", lambda p: _phase(p) == "Running")
    await _logged(kubelet, pod, "ready")
    inst = runtime.find(pod["metadata"]["uid"]).current("main")
    await cluster.registry("", "v1", "pods").delete("default", "stubborn", deletion.DeleteOptions(grace_period_seconds=5))
    await asyncio.sleep(0.2)
    assert not _gone(inst.pid)
    await clock.advance(5)
    await _until(cluster, "stubborn", lambda p: p is None)
    assert _gone(inst.pid)  # the background sleep too: the whole group went
    assert inst.container.exit_code == 137


async def test_pre_stop_hook_runs_before_sigterm(cluster, node, runtime, tmp_path):
    mark = tmp_path / "prestop"
    body = _pod("hook", node, _sh("while true; do sleep 0.02; done"), restart="Always")
    body["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": _sh(f"echo stopped > {mark}")}}}
    await _create(cluster, body)
    await _until(cluster, "hook", lambda p: _phase(p) == "Running")
    await cluster.registry("", "v1", "pods").delete("default", "hook", deletion.DeleteOptions())
    await _until(cluster, "hook", lambda p: p is None)
    assert mark.read_text() == "stopped\n"


async def _ticking(cluster, clock, name, check, *, step=1.0, timeout=10.0):
    """Advance the clock a step at a time (probes run real commands between) until `check`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = await pod_or_none(cluster, name)
        if check(pod):
            return pod
        await clock.advance(step)
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not reached; pod is {pod and pod.get('status')}")


async def test_readiness_and_liveness_probes(cluster, node, runtime, clock, tmp_path):
    ready = tmp_path / "ready"
    body = _pod("probed", node, _sh("while true; do sleep 0.02; done"), restart="Always")
    c = body["spec"]["containers"][0]
    c["readinessProbe"] = {"exec": {"command": ["test", "-f", str(ready)]}, "periodSeconds": 1, "failureThreshold": 1}
    c["livenessProbe"] = {"exec": {"command": ["test", "!", "-f", str(tmp_path / "dead")]}, "periodSeconds": 1,
                          "failureThreshold": 2, "terminationGracePeriodSeconds": 1}
    await _create(cluster, body)
    pod = await _until(cluster, "probed", lambda p: _phase(p) == "Running")
    assert _status(pod)["ready"] is False
    ready.touch()
    pod = await _ticking(cluster, clock, "probed", lambda p: _status(p)["ready"])
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    ready.unlink()
    await _ticking(cluster, clock, "probed", lambda p: not _status(p)["ready"])
    (tmp_path / "dead").touch()
    pod = await _ticking(cluster, clock, "probed", lambda p: _status(p)["restartCount"] == 1)
    assert _status(pod)["lastState"]["terminated"]["exitCode"] == 143  # sh ends on SIGTERM
    unhealthy = await _until_event(cluster, "probed", "Unhealthy")
    assert any(m.startswith("Readiness probe failed") for m in unhealthy)
    assert any(m.startswith("Liveness probe failed") for m in unhealthy)
    killing = await _until_event(cluster, "probed", "Killing")
    assert "Container main failed liveness probe, will be restarted" in killing


async def test_http_and_tcp_probes(cluster, node, clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # probes go to the pod's IP (kubelet's), so the server listens on every address of the pod
    body = _pod("web", node, ["python3", "-m", "http.server", str(port)], restart="Always")
    c = body["spec"]["containers"][0]
    c["ports"] = [{"name": "http", "containerPort": port}]
    c["readinessProbe"] = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    c["startupProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 100}
    await _create(cluster, body)
    await _until(cluster, "web", lambda p: _phase(p) == "Running")
    pod = await _ticking(cluster, clock, "web", lambda p: _status(p)["ready"])
    assert _status(pod)["ready"] and _status(pod)["started"]


async def test_logs_options(cluster, node, kubelet, clock):
    await _create(cluster, _pod("lines", node, _sh("for i in 1 2 3 4 5; do echo line$i; done")))
    pod = await _until(cluster, "lines", lambda p: _phase(p) == "Succeeded")
    assert await _logs(kubelet, pod, tail_lines=2) == "line4\nline5\n"
    assert await _logs(kubelet, pod, limit_bytes=8) == "line1\nli"
    stamped = (await _logs(kubelet, pod, timestamps=True)).splitlines()
    assert stamped[0].endswith("Z line1") and stamped[0][:4] == "2023"
    assert await _logs(kubelet, pod, since_seconds=10) != ""
    assert await _logs(kubelet, pod, since_time=clock.now() + 1) == ""
    with pytest.raises(StreamError) as err:
        await _logs(kubelet, pod, previous=True)
    assert err.value.message == 'previous terminated container "main" in pod "lines" not found'


async def test_follow_exec_attach_and_port_forward(cluster, node, kubelet):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    body = _pod("live", node, _sh(f"echo start; exec python3 -u -m http.server {port} --bind 127.0.0.1"),
                restart="Always")
    body["spec"]["containers"][0]["stdin"] = True
    await _create(cluster, body)
    pod = await _until(cluster, "live", lambda p: _phase(p) == "Running")

    session = await kubelet.exec(pod, "main", _sh("echo $HOSTNAME; cat; echo err >&2; exit 4"), stdin=True, tty=False)
    await session.write_stdin(b"from stdin\n")
    await session.close_stdin()
    assert await session.wait() == 4
    assert await session.stdout.read() == b"live\nfrom stdin\n"
    assert await session.stderr.read() == b"err\n"

    tty = await kubelet.exec(pod, "main", _sh("stty size; tty >/dev/null && echo tty"), stdin=True, tty=True)
    tty.resize(100, 40)
    assert tty.stderr is None
    out = b""
    while b"tty" not in out:
        chunk = await asyncio.wait_for(tty.stdout.read(1024), 5)
        if not chunk:
            break
        out += chunk
    assert await tty.wait() == 0
    assert b"40 100" in out and b"tty" in out  # it started with the size the client sent

    for _ in range(200):
        try:
            reader, writer = await kubelet.port_forward(pod, port)
            break
        except StreamError:
            await asyncio.sleep(0.02)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.0 200")
    writer.close()

    follow = kubelet.logs(pod, LogOptions(container="main", follow=True))
    assert (await asyncio.wait_for(follow.__anext__(), 5)).startswith(b"start\n")
    reader, writer = await kubelet.port_forward(pod, port)
    writer.write(b"GET /x HTTP/1.0\r\n\r\n")
    await reader.read()
    writer.close()
    seen = b""
    while b"GET /x" not in seen:
        seen += await asyncio.wait_for(follow.__anext__(), 5)
    await follow.aclose()


async def test_agent_stop_ends_every_process(cluster, node, runtime):
    await _create(cluster, _pod("a", node, _sh("sleep 1000 & sleep 1000"), restart="Always"))
    pod = await _until(cluster, "a", lambda p: _phase(p) == "Running")
    inst = runtime.find(pod["metadata"]["uid"]).current("main")
    await node.stop()
    assert _gone(inst.pid) and not inst.running
    assert streams.lookup(cluster.id, node.name) is None


async def test_service_restart_restarts_containers(cluster, make_template, node, kubelet):
    await _create(cluster, _pod("survivor", node, _sh("echo hi; sleep 1000"), restart="Always"))
    pod = await _until(cluster, "survivor", lambda p: _phase(p) == "Running")
    await _logged(kubelet, pod, "hi")
    await node.stop()
    again = agents.NodeAgent(cluster=cluster, template=make_template(workload_runtime="Process"), index=0,
                             address=HOST_IP, pod_cidrs=[CIDR])
    await again.start()
    try:
        pod = await _until(cluster, "survivor", lambda p: _status(p)["restartCount"] == 1
                           and "running" in _status(p)["state"])
        last = _status(pod)["lastState"]["terminated"]
        assert last["exitCode"] == 255 and last["reason"] == "Unknown"
        k = streams.lookup(cluster.id, again.name)
        assert await _logs(k, pod, previous=True) == "hi\n"
    finally:
        await again.stop()


async def test_simulated_nodes_refuse_streams(cluster, template):
    a = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5", pod_cidrs=["10.244.4.0/24"])
    await a.start()
    try:
        k = streams.lookup(cluster.id, a.name)
        assert isinstance(k, kubelets.SimulatedKubelet)
        pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}}
        assert [c async for c in k.logs(pod, LogOptions(container="main"))] == []
        for call in (k.exec(pod, "main", ["ls"], stdin=False, tty=False), k.attach(pod, "main", stdin=False, tty=False),
                     k.port_forward(pod, 80)):
            with pytest.raises(StreamError) as err:
                await call
            assert err.value.code == 400 and "simulated runtime" in err.value.message
    finally:
        await a.stop()


async def test_attach_reads_output_and_writes_stdin(cluster, node, kubelet):
    body = _pod("cat", node, ["cat"], restart="Never")
    body["spec"]["containers"][0]["stdin"] = True
    body["spec"]["containers"][0]["stdinOnce"] = True
    await _create(cluster, body)
    pod = await _until(cluster, "cat", lambda p: _phase(p) == "Running")
    session = await kubelet.attach(pod, "main", stdin=True, tty=False)
    await session.write_stdin(b"echo me\n")
    assert await asyncio.wait_for(session.stdout.readline(), 5) == b"echo me\n"
    await session.close_stdin()
    assert await asyncio.wait_for(session.wait(), 5) == 0
    await _until(cluster, "cat", lambda p: _phase(p) == "Succeeded")
    assert signal.SIGTERM  # (imported for the process tests above)
