"""A Process node pool end to end: `lks aks nodepool add --workload-runtime Process` on the demo
cluster, pods whose shell commands run as real processes, their exit codes, restarts and
CrashLoopBackOff through kubectl, the in-cluster API from inside a pod, and no process left
behind after a pod is deleted or the service stops (and restarted containers after it starts)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import LKS, RUN, with_process_pool

POOL = "procs"
SELECTOR = {"kubernetes.azure.com/agentpool": POOL}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-process-home"), POOL)
    yield s
    s.stop()


def _kubectl(server: LKS, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return server.kubectl(*args, check=check, input=input)


def _apply_pod(server: LKS, name: str, command: list[str], *, restart: str = "Never", **spec: object) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeSelector": SELECTOR, "restartPolicy": restart, "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "main", "image": "busybox", "command": command}], **spec}}
    _kubectl(server, "apply", "-f", "-", input=json.dumps(pod))


def _pod(server: LKS, name: str) -> dict:
    return json.loads(_kubectl(server, "get", "pod", name, "-o", "json").stdout)


def _wait(server: LKS, name: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    pod: dict = {}
    while time.monotonic() < deadline:
        pod = _pod(server, name)
        if check(pod):
            return pod
        time.sleep(0.1)
    raise AssertionError(f"pod {name} did not get there: {json.dumps(pod.get('status'), indent=1)}")


def _status(pod: dict) -> dict:
    return (pod["status"].get("containerStatuses") or [{}])[0]


def _running_marker(marker: str) -> list[str]:
    res = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return res.stdout.split()


def test_pool_nodes_run_processes(server: LKS):
    nodes = json.loads(_kubectl(server, "get", "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}",
                                "-o", "json").stdout)["items"]
    assert len(nodes) == 1


def test_exit_codes(server: LKS):
    _apply_pod(server, "hello", ["sh", "-c", "echo hello from $HOSTNAME"])
    _apply_pod(server, "fails", ["sh", "-c", "echo failing >&2; exit 7"])
    pod = _wait(server, "hello", lambda p: p["status"].get("phase") == "Succeeded")
    assert _status(pod)["state"]["terminated"]["exitCode"] == 0
    assert _status(pod)["state"]["terminated"]["reason"] == "Completed"
    pod = _wait(server, "fails", lambda p: p["status"].get("phase") == "Failed")
    assert _status(pod)["state"]["terminated"]["exitCode"] == 7
    assert _status(pod)["state"]["terminated"]["reason"] == "Error"
    logs = _kubectl(server, "logs", "hello", check=False)
    if logs.returncode == 0:  # once the API server serves pods/log
        assert logs.stdout == "hello from hello\n"


def test_crash_loop_back_off(server: LKS):
    _apply_pod(server, "crash", ["sh", "-c", "exit 3"], restart="Always")
    pod = _wait(server, "crash", lambda p: _status(p).get("restartCount", 0) >= 1
                and "waiting" in _status(p).get("state", {}))
    st = _status(pod)
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert st["lastState"]["terminated"]["exitCode"] == 3
    table = _kubectl(server, "get", "pod", "crash").stdout
    assert "CrashLoopBackOff" in table


def test_no_command_is_a_create_container_error(server: LKS):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nocmd"},
           "spec": {"nodeSelector": SELECTOR, "containers": [{"name": "main", "image": "example.com/team/app:1"}]}}
    _kubectl(server, "apply", "-f", "-", input=json.dumps(pod))
    pod = _wait(server, "nocmd", lambda p: (_status(p).get("state", {}).get("waiting") or {}).get("reason")
                == "CreateContainerError")
    assert "needs a command" in _status(pod)["state"]["waiting"]["message"]
    _kubectl(server, "delete", "pod", "nocmd", "--wait=true", "--timeout=20s")


def test_process_reaches_the_cluster_api(server: LKS):
    script = ("import json, os, ssl, urllib.request\n"
              "d = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
              "token = open(d + '/token').read()\n"
              "ns = open(d + '/namespace').read()\n"
              "ctx = ssl.create_default_context(cafile=d + '/ca.crt')\n"
              "url = 'https://%s:%s/api/v1/namespaces/%s/pods' % (os.environ['KUBERNETES_SERVICE_HOST'], "
              "os.environ['KUBERNETES_SERVICE_PORT'], ns)\n"
              "req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + token})\n"
              "pods = json.load(urllib.request.urlopen(req, context=ctx))\n"
              "names = [p['metadata']['name'] for p in pods['items']]\n"
              "assert 'api' in names, names\n")
    volume = {"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api"},
           "spec": {"nodeSelector": SELECTOR, "restartPolicy": "Never", "volumes": [volume],
                    "containers": [{"name": "main", "image": "python", "command": ["python3", "-c", script],
                                    "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                                      "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}]}}
    # listing pods needs a grant, as on any RBAC cluster
    _kubectl(server, "create", "rolebinding", "api-view", "--clusterrole=view", "--serviceaccount=default:default")
    _kubectl(server, "apply", "-f", "-", input=json.dumps(pod))
    pod = _wait(server, "api", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded", _kubectl(server, "logs", "api", check=False).stdout


def test_probes_flip_readiness_and_restart_on_liveness_failure(server: LKS, tmp_path: Path):
    ready, alive = tmp_path / "ready", tmp_path / "alive"
    alive.touch()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
           "spec": {"nodeSelector": SELECTOR, "terminationGracePeriodSeconds": 2, "containers": [{
               "name": "main", "image": "busybox", "command": ["sh", "-c", "while true; do sleep 0.1; done"],
               "readinessProbe": {"exec": {"command": ["test", "-f", str(ready)]}, "periodSeconds": 1,
                                  "failureThreshold": 1},
               "livenessProbe": {"exec": {"command": ["test", "-f", str(alive)]}, "periodSeconds": 1,
                                 "failureThreshold": 1}}]}}
    _kubectl(server, "apply", "-f", "-", input=json.dumps(pod))
    pod = _wait(server, "probed", lambda p: p["status"].get("phase") == "Running")
    assert _status(pod)["ready"] is False
    ready.touch()
    _wait(server, "probed", lambda p: _status(p).get("ready") is True)
    alive.unlink()
    pod = _wait(server, "probed", lambda p: _status(p).get("restartCount", 0) >= 1)
    events = _kubectl(server, "get", "events", "--field-selector", "involvedObject.name=probed",
                      "-o", "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}").stdout
    assert "Killing: Container main failed liveness probe, will be restarted" in events
    assert "Unhealthy: Liveness probe failed" in events
    _kubectl(server, "delete", "pod", "probed", "--wait=false")


def test_pre_stop_hook_and_sigterm(server: LKS, tmp_path: Path):
    mark = tmp_path / "stopped"
    script = f"trap 'echo term >> {mark}; exit 0' TERM; while true; do sleep 0.1; done"
    _apply_pod(server, "hooked", ["sh", "-c", script], restart="Always",
               **{"containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                  "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop > {mark}"]}}}}]})
    _wait(server, "hooked", lambda p: p["status"].get("phase") == "Running")
    time.sleep(0.3)  # the shell has set its trap
    _kubectl(server, "delete", "pod", "hooked", "--wait=true")
    assert mark.read_text() == "prestop\nterm\n"


def test_deleting_a_pod_ends_its_processes(server: LKS):
    marker = f"sleep 7771.{RUN}"
    _apply_pod(server, "sleeper", ["sh", "-c", f"{marker} & {marker}; wait"], restart="Always")
    _wait(server, "sleeper", lambda p: p["status"].get("phase") == "Running")
    assert len(_running_marker(marker)) == 3  # sh and its two sleeps
    _kubectl(server, "delete", "pod", "sleeper", "--wait=true")
    assert _running_marker(marker) == []


def test_service_stop_ends_processes_and_restart_restarts_them(server: LKS):
    marker = f"sleep 7772.{RUN}"
    _apply_pod(server, "survivor", ["sh", "-c", marker], restart="Always")
    pod = _wait(server, "survivor", lambda p: p["status"].get("phase") == "Running")
    assert _status(pod)["restartCount"] == 0
    assert _running_marker(marker)
    server.stop()
    assert _running_marker(marker) == []
    server.start()
    pod = _wait(server, "survivor", lambda p: _status(p).get("restartCount") == 1
                and "running" in _status(p).get("state", {}))
    assert _status(pod)["lastState"]["terminated"]["reason"] == "Unknown"
    assert _running_marker(marker)
    _kubectl(server, "delete", "pod", "survivor", "--wait=true")
    assert _running_marker(marker) == []


def test_processes_left_by_a_killed_service_are_swept(server: LKS):
    marker = f"sleep 7773.{RUN}"
    _apply_pod(server, "orphans", ["sh", "-c", f"{marker} & {marker}; wait"], restart="Always")
    _wait(server, "orphans", lambda p: p["status"].get("phase") == "Running")
    assert len(_running_marker(marker)) == 3
    assert server.proc is not None
    server.proc.kill()  # no shutdown: the container's shell dies with the service, its children do not
    server.proc.wait()
    server.log.close()
    deadline = time.monotonic() + 5
    while len(_running_marker(marker)) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.start()
    pod = _wait(server, "orphans", lambda p: _status(p).get("restartCount") == 1
                and "running" in _status(p).get("state", {}))
    assert _status(pod)["lastState"]["terminated"]["exitCode"] == 255
    assert len(_running_marker(marker)) == 3  # the new instance's, none of the old ones
    _kubectl(server, "delete", "pod", "orphans", "--wait=true")
    assert _running_marker(marker) == []
