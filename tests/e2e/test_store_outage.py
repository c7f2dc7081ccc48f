"""A real `lks up` on a real etcd that stops mid-test, seen through the Python client: a store
that does not answer gives kube-apiserver's 504 Timeout, one that refuses connections its 500
ServerTimeout with Retry-After, and once etcd is back the cluster serves again."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import LKS, free_port, wait_until


class Etcd:
    """One etcd server on fixed ports, so that it can be killed and started again on its data."""

    def __init__(self, data: Path):
        self.data = data
        self.client, self.peer = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client}"

    def start(self) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            pytest.fail("the etcd binary is missing: install etcd-server (make etcd)", pytrace=False)
        c, p = f"http://127.0.0.1:{self.client}", f"http://127.0.0.1:{self.peer}"
        self.proc = subprocess.Popen(
            [binary, "--name=lks-outage", f"--data-dir={self.data}", f"--listen-client-urls={c}",
             f"--advertise-client-urls={c}", f"--listen-peer-urls={p}", f"--initial-advertise-peer-urls={p}",
             f"--initial-cluster=lks-outage={p}", "--log-level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{c}/health", timeout=1) as resp:
                    return b'"true"' in resp.read()
            except OSError:
                return False

        wait_until(healthy, timeout=20, interval=0.05, what="etcd healthy")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Etcd, LKS]]:
    etcd = Etcd(tmp_path_factory.mktemp("etcd") / "data")
    etcd.start()
    server = LKS(tmp_path_factory.mktemp("lks-etcd"), "--store", f"etcd://{etcd.endpoint}/lks?request-timeout=2")
    try:
        server.start()
        yield etcd, server
    finally:
        server.stop()
        etcd.kill()


def _failure(call) -> tuple[ApiException, dict]:
    with pytest.raises(ApiException) as info:
        call()
    return info.value, json.loads(info.value.body)


def test_a_store_outage_answers_as_kube_apiserver(setup):
    etcd, server = setup
    api = server.api_client()
    core = k8s_client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}, "data": {"a": "1"}})

    etcd.proc.send_signal(signal.SIGSTOP)  # etcd stalls: requests wait out the request timeout
    try:
        err, status = _failure(lambda: core.read_namespaced_config_map("before", "default"))
        assert err.status == 504
        assert status["reason"] == "Timeout"
        assert status["message"] == ("Timeout: request did not complete within requested timeout - "
                                     "context deadline exceeded")
        err, status = _failure(lambda: core.create_namespaced_config_map("default", {"metadata": {"name": "x"}}))
        assert (err.status, status["reason"]) == (504, "Timeout")
    finally:
        etcd.proc.send_signal(signal.SIGCONT)

    etcd.kill()  # etcd is gone: connections are refused
    err, status = _failure(lambda: core.read_namespaced_config_map("before", "default"))
    assert err.status == 500
    assert err.headers["Retry-After"] == "2"
    assert status["reason"] == "ServerTimeout"
    assert status["message"] == ("The get operation against configmaps could not be completed at this time, "
                                 "please try again.")
    assert status["details"] == {"name": "get", "kind": "configmaps", "retryAfterSeconds": 2}
    err, status = _failure(lambda: core.list_namespaced_config_map("default"))
    assert (err.status, status["reason"], status["details"]["name"]) == (500, "ServerTimeout", "list")
    err, status = _failure(lambda: core.create_namespaced_config_map("default", {"metadata": {"name": "x"}}))
    assert (err.status, status["reason"], status["details"]["name"]) == (500, "ServerTimeout", "create")

    etcd.start()  # back on the same data: the cluster serves again, nothing lost

    def served() -> dict | None:
        try:
            return core.read_namespaced_config_map("before", "default").data
        except ApiException as exc:
            assert exc.status in (500, 504), exc.body  # still the outage's answers meanwhile
            return None

    assert wait_until(served, timeout=60, what="the cluster serving again") == {"a": "1"}
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    names = {cm.metadata.name for cm in core.list_namespaced_config_map("default").items}
    assert {"before", "after"} <= names
    api.close()
