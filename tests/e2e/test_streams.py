"""Pod streams end to end with kubectl 1.37 against `lks up`: `kubectl logs` (tail, follow, errors),
`kubectl exec` over WebSocket v5 (stdin, exit codes), `kubectl attach`, and `kubectl port-forward`
(SPDY tunneled in a WebSocket) to a `python3 -m http.server` pod. The pods run on a Process node
pool (`lks aks nodepool add --workload-runtime Process`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import LKS, free_port, with_process_pool

POOL = "streams"
SELECTOR = {"kubernetes.azure.com/agentpool": POOL}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-streams-home"), POOL)
    yield s
    s.stop()


def _pod(server: LKS, name: str, command: list[str], *, restart: str = "Never",
         containers: list[dict] | None = None) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeSelector": SELECTOR, "restartPolicy": restart, "terminationGracePeriodSeconds": 2,
                    "containers": containers or [{"name": "main", "image": "busybox", "command": command}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))


def _wait(server: LKS, name: str, phases: tuple[str, ...], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    pod: dict = {}
    while time.monotonic() < deadline:
        pod = json.loads(server.kubectl("get", "pod", name, "-o", "json").stdout)
        if pod["status"].get("phase") in phases:
            return pod
        time.sleep(0.1)
    raise AssertionError(f"pod {name} is not {phases}: {json.dumps(pod.get('status'), indent=1)}")


def _get_when_up(url: str, timeout: float = 20.0) -> bytes:
    """The body at `url` once something answers there (a forwarded server may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _interrupt(proc: subprocess.Popen) -> None:
    """Stop a kubectl as Ctrl-C does, killing it if it does not end."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _lines(proc: subprocess.Popen, count: int, timeout: float = 20.0) -> list[str]:
    """`count` lines of a running kubectl's stdout, or fail after `timeout`."""
    out: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        while len(out) < count and (line := proc.stdout.readline()):
            out.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    assert len(out) >= count, f"got only {out!r}"
    return out


def test_logs(server: LKS):
    _pod(server, "hello", ["sh", "-c", "for i in 1 2 3 4; do echo line $i; done"])
    _wait(server, "hello", ("Succeeded",))
    assert server.kubectl("logs", "hello").stdout == "line 1\nline 2\nline 3\nline 4\n"
    assert server.kubectl("logs", "hello", "--tail=2").stdout == "line 3\nline 4\n"
    assert server.kubectl("logs", "pod/hello", "-c", "main", "--limit-bytes=6").stdout == "line 1"
    stamped = server.kubectl("logs", "hello", "--timestamps").stdout.splitlines()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z line 1$", stamped[0])


def test_logs_errors(server: LKS):
    two = [{"name": n, "image": "busybox", "command": ["sh", "-c", "sleep 300"]} for n in ("a", "b")]
    _pod(server, "two", [], containers=two)
    _wait(server, "two", ("Running",))
    res = server.kubectl("logs", "two", "-c", "c", check=False)
    assert res.returncode == 1
    assert "container c is not valid for pod two" in res.stderr
    res = server.kubectl("logs", "two", "--since=1h", "--since-time=2026-01-01T00:00:00Z", check=False)
    assert res.returncode != 0
    res = server.kubectl("logs", "two", "-c", "a", "--previous", check=False)
    assert 'previous terminated container "a" in pod "two" not found' in res.stderr
    server.kubectl("delete", "pod", "two", "--wait=false")


def test_logs_follow(server: LKS):
    _pod(server, "ticker", ["sh", "-c", "echo start; sleep 1; echo middle; sleep 1; echo end"])
    _wait(server, "ticker", ("Running", "Succeeded"))
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kube_home)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kubectl"), "logs", "-f", "ticker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _lines(proc, 3) == ["start\n", "middle\n", "end\n"]
        assert proc.wait(20) == 0  # the stream ends with the container
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_exec_stdin_and_exit_codes(server: LKS):
    _pod(server, "shell", ["sh", "-c", "sleep 300"])
    _wait(server, "shell", ("Running",))
    assert server.kubectl("exec", "shell", "--", "echo", "hi").stdout == "hi\n"
    res = server.kubectl("exec", "-i", "shell", "--", "cat", input="through stdin\n")
    assert res.stdout == "through stdin\n"
    res = server.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert res.returncode == 3
    assert res.stdout == "out\n"
    assert "err\n" in res.stderr
    assert "command terminated with exit code 3" in res.stderr
    res = server.kubectl("exec", "shell", "--", "/no/such/binary", check=False)
    assert res.returncode != 0
    server.kubectl("delete", "pod", "shell", "--wait=false")


def test_exec_into_a_finished_pod(server: LKS):
    _pod(server, "done", ["true"])
    _wait(server, "done", ("Succeeded",))
    res = server.kubectl("exec", "done", "--", "ls", check=False)
    assert res.returncode == 1
    assert "cannot exec into a container in a completed pod" in res.stderr


def test_attach(server: LKS):
    _pod(server, "talker", ["sh", "-c", "sleep 1; echo attached-output; sleep 1"])
    _wait(server, "talker", ("Running",))
    res = server.kubectl("attach", "talker", check=False)
    assert "attached-output" in res.stdout, res.stderr


def test_port_forward(server: LKS):
    port = free_port()
    _pod(server, "web", ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"])
    _wait(server, "web", ("Running",))
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kube_home)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kubectl"), "port-forward", "pod/web", f":{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _lines(proc, 1)[0]
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", first)
        assert m and int(m.group(2)) == port, first
        local = int(m.group(1))
        assert b"Directory listing" in _get_when_up(f"http://127.0.0.1:{local}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as r:  # a second connection
            assert r.status == 200
    finally:
        _interrupt(proc)
    server.kubectl("delete", "pod", "web", "--wait=false")


@pytest.mark.parametrize("websockets", ["true", "false"], ids=["websocket", "spdy"])
def test_exec_and_port_forward_over_each_protocol(server: LKS, websockets: str):
    name = f"proto-{websockets}"
    port = free_port()
    _pod(server, name, ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"])
    _wait(server, name, ("Running",))
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kube_home),
           "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": websockets, "KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets}
    kubectl = str(Path(sys.executable).parent / "kubectl")
    res = subprocess.run([kubectl, "exec", "-i", name, "--", "sh", "-c", "cat; exit 5"], env=env, input="via stdin",
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout) == (5, "via stdin"), res.stderr
    proc = subprocess.Popen([kubectl, "port-forward", f"pod/{name}", f":{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+)", _lines(proc, 1)[0])
        assert m
        assert b"Directory listing" in _get_when_up(f"http://127.0.0.1:{m.group(1)}/")
    finally:
        _interrupt(proc)
    server.kubectl("delete", "pod", name, "--wait=false")


def test_crash_looping_container_exec_and_previous_logs(server: LKS):
    _pod(server, "crashy", ["sh", "-c", "echo crashed; exit 1"], restart="Always")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pod = json.loads(server.kubectl("get", "pod", "crashy", "-o", "json").stdout)
        statuses = pod["status"].get("containerStatuses") or [{}]
        if "waiting" in statuses[0].get("state", {}) and statuses[0].get("restartCount", 0) >= 1:
            break
        time.sleep(0.1)
    res = server.kubectl("exec", "crashy", "--", "ls", check=False)
    assert res.returncode == 1
    assert 'unable to upgrade connection: container not found ("main")' in res.stderr
    assert server.kubectl("logs", "crashy", "--previous").stdout == "crashed\n"
    server.kubectl("delete", "pod", "crashy", "--wait=false")


def test_exec_with_a_tty(server: LKS):
    _pod(server, "term", ["sh", "-c", "sleep 300"])
    _wait(server, "term", ("Running",))
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.kube_home)}
    kubectl = Path(sys.executable).parent / "kubectl"
    inner = f"stty cols 91 rows 33; {kubectl} exec -it term -- sh -c 'tty >/dev/null && echo is-a-tty; stty size'"
    res = subprocess.run(["script", "-qec", inner, "/dev/null"], env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    if "Internal error occurred: SubprocessError" in res.stdout:  # the node failed to start the exec on a pty
        pytest.skip("the Process runtime cannot start an exec on a TTY yet (lks/nodes/kubelets.py)")
    assert "is-a-tty" in res.stdout, res.stdout + res.stderr
    assert "33 91" in res.stdout  # kubectl sent the terminal's size on the resize channel
    server.kubectl("delete", "pod", "term", "--wait=false")


def test_python_client_exec_and_port_forward(server: LKS):
    from kubernetes import client as k8s
    from kubernetes.stream import portforward, stream

    port = free_port()
    _pod(server, "pyclient", ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"])
    _wait(server, "pyclient", ("Running",))
    api = server.api_client()
    try:
        core = k8s.CoreV1Api(api)
        out = stream(core.connect_get_namespaced_pod_exec, "pyclient", "default",
                     command=["sh", "-c", "echo from-python"], stderr=True, stdin=False, stdout=True, tty=False)
        assert out == "from-python\n"
        resp = stream(core.connect_get_namespaced_pod_exec, "pyclient", "default", command=["sh", "-c", "exit 4"],
                      stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        resp.run_forever(timeout=20)
        assert resp.returncode == 4
        deadline, reply = time.monotonic() + 20, b""
        while time.monotonic() < deadline and b"200 OK" not in reply:
            pf = portforward(core.connect_get_namespaced_pod_portforward, "pyclient", "default", ports=str(port))
            sock = pf.socket(port)
            sock.settimeout(10)
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            sock.close()
            if b"200 OK" not in reply:
                time.sleep(0.2)
        assert b"HTTP/1.0 200 OK" in reply
        assert b"Directory listing" in reply
    finally:
        api.close()
    server.kubectl("delete", "pod", "pyclient", "--wait=false")


def test_run_interactive_attaches_stdin(server: LKS):
    overrides = json.dumps({"apiVersion": "v1", "spec": {"nodeSelector": SELECTOR}})
    res = server.kubectl("run", "runner", "-i", "--rm", "--restart=Never", "--image=busybox",
                         f"--overrides={overrides}", "--command", "--", "sh", "-c", "read line; echo got $line",
                         input="hello\n", check=False)
    assert "got hello" in res.stdout, res.stdout + res.stderr


def test_simulated_nodes_refuse_streams(server: LKS):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "simulated"},
           "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": "nodepool1"},
                    "containers": [{"name": "main", "image": "nginx"}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))
    _wait(server, "simulated", ("Running",))
    assert server.kubectl("logs", "simulated").stdout == ""
    res = server.kubectl("exec", "simulated", "--", "ls", check=False)
    assert res.returncode == 1
    assert "unable to upgrade connection: cannot exec in container 'main'" in res.stderr
    server.kubectl("delete", "pod", "simulated", "--wait=false")


def test_cp_out_of_a_pod(server: LKS, tmp_path: Path):
    """`kubectl cp` is `tar` through exec: binary stdout over the channel protocol."""
    where = f"/tmp/lks-cp-{os.urandom(4).hex()}"
    write = f"import os; os.makedirs('{where}'); open('{where}/payload.bin', 'wb').write(bytes(range(256)) * 300)"
    _pod(server, "files", ["sh", "-c", f'trap "rm -rf {where}; exit 0" TERM; python3 -c "{write}"; sleep 300 & wait'])
    _wait(server, "files", ("Running",))
    target = tmp_path / "copied.bin"
    deadline = time.monotonic() + 10
    while True:  # the pod may not have written the file yet
        res = server.kubectl("cp", f"files:{where}/payload.bin", str(target), check=False)
        if res.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert target.read_bytes() == bytes(range(256)) * 300, res.stderr
    server.kubectl("delete", "pod", "files", "--wait=true")
