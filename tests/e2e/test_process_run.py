"""What users write, run on a Process pool end to end: `kubectl run --image=busybox -- sh -c ...`
(args with no command: the image has no ENTRYPOINT, so the args are the command), the programs
of the `python` image, an image program the host lacks, and stdin of an exec sent by the
`kubernetes` Python client as WebSocket text frames (`write_stdin(str)`) under `v5.channel.k8s.io`
and `v4.channel.k8s.io`."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from .conftest import LKS, wait_until, with_process_pool

POOL = "runs"
OVERRIDES = json.dumps({"apiVersion": "v1", "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": POOL}}})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-process-run-home"), POOL)
    yield s
    s.stop()


def _run(server: LKS, name: str, image: str, *argv: str, command: bool = False) -> None:
    server.kubectl("run", name, f"--image={image}", "--restart=Never", f"--overrides={OVERRIDES}",
                   *(["--command"] if command else []), "--", *argv)


def _finished(server: LKS, name: str) -> dict:
    def done() -> dict | None:
        pod = json.loads(server.kubectl("get", "pod", name, "-o", "json").stdout)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None
    return wait_until(done, what=f"pod {name} finished", interval=0.1)


def test_run_busybox_with_args_only(server: LKS):
    _run(server, "x", "busybox", "sh", "-c", "echo hi")
    pod = _finished(server, "x")
    assert "command" not in pod["spec"]["containers"][0]
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert server.kubectl("logs", "x").stdout == "hi\n"


def test_run_python_image(server: LKS):
    _run(server, "py", "python:3.13-slim", "python", "-c", "import os; print('py', os.environ['PYTHON_VERSION'])")
    assert _finished(server, "py")["status"]["phase"] == "Succeeded"
    assert server.kubectl("logs", "py").stdout.startswith("py 3.13.")
    _run(server, "py3", "python", "python3", "-c", "print(6 * 7)", command=True)
    assert _finished(server, "py3")["status"]["phase"] == "Succeeded"
    assert server.kubectl("logs", "py3").stdout == "42\n"


@pytest.mark.skipif(shutil.which("redis-server") is not None, reason="this host has redis-server")
def test_image_program_the_host_lacks(server: LKS):
    server.kubectl("run", "cache", "--image=redis:8", f"--overrides={OVERRIDES}")

    def waiting() -> dict | None:
        pod = json.loads(server.kubectl("get", "pod", "cache", "-o", "json").stdout)
        st = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting") or {}
        return st if st.get("reason") == "CreateContainerError" else None
    st = wait_until(waiting, what="CreateContainerError", interval=0.1)
    assert st["message"] == ("image 'redis:8' runs \"redis-server\", which this host does not have: install "
                             "redis-server on the host to run this image on a Process pool")
    assert "CreateContainerError" in server.kubectl("get", "pod", "cache").stdout


@pytest.mark.parametrize("protocol", [None, "v4.channel.k8s.io"], ids=["v5", "v4"])
def test_python_client_exec_stdin_as_text_frames(server: LKS, protocol: str | None):
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    name = f"stdin-{'v4' if protocol else 'v5'}"
    _run(server, name, "busybox", "sleep", "600", command=True)
    wait_until(lambda: json.loads(server.kubectl("get", "pod", name, "-o", "json").stdout)["status"].get("phase")
               == "Running", what=f"pod {name} running", interval=0.1)
    api = server.api_client()
    if protocol:
        api.set_default_header("sec-websocket-protocol", protocol)
    try:
        resp = stream(k8s.CoreV1Api(api).connect_get_namespaced_pod_exec, name, "default",
                      command=["sh", "-c", "read line; echo got $line"], stdin=True, stdout=True, stderr=True,
                      tty=False, _preload_content=False)
        assert resp.subprotocol == (protocol or "v5.channel.k8s.io")
        resp.write_stdin("hello\n")  # a str: a text frame
        deadline, out = time.monotonic() + 20, ""
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            out += resp.read_stdout(timeout=0) if resp.peek_stdout() else ""
        out += resp.read_stdout(timeout=0) if resp.peek_stdout() else ""
        assert out == "got hello\n"
        assert resp.returncode == 0
        resp.close()
    finally:
        api.close()
    server.kubectl("delete", "pod", name, "--wait=false")
