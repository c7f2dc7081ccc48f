"""Run command (`az aks command invoke`) end to end: through the Azure SDK (`begin_run_command`,
`get_command_result`), the `lks` CLI and raw HTTP for what a client should never send. One
cluster has a Process pool (the command runs in AKS's `command-<id>` pod of `aks-command` there),
one has none (it runs as a process of the service)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterAPIServerAccessProfile,
    RunCommandRequest,
)

from .conftest import LKS, LKS_BIN, RUN, StaticToken, wait_until

TIMEOUT = 8  # seconds a command may run in this module's service
START_TIMEOUT = 3  # seconds its pod may take to start
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the audience az asks the cluster token for
API = "2026-06-01"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-run-command-home"), env={
        "LKS_RUN_COMMAND_TIMEOUT": str(TIMEOUT), "LKS_RUN_COMMAND_START_TIMEOUT": str(START_TIMEOUT)})
    s.start()
    res = cli(s, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", "runs",
              "--workload-runtime", "Process", "--node-count", "1", "-o", "none")
    assert res.returncode == 0, res.stderr
    yield s
    s.stop()


def cli(server: LKS, *args: str, cwd: Path | None = None):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
    env.update(LKS_HOME=str(server.home), HOME=str(server.home / "cli-home"))
    return subprocess.run([str(LKS_BIN), *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def _config(server: LKS) -> dict:
    return json.loads((server.home / "config.json").read_text())


@pytest.fixture(scope="module")
def aks(server: LKS) -> ContainerServiceClient:
    c = _config(server)
    return ContainerServiceClient(StaticToken(c["token"]), c["subscription_id"], base_url=c["endpoint"],
                                  connection_verify=c["ca_file"], polling_interval=1)


@pytest.fixture(scope="module")
def plain(aks: ContainerServiceClient, server: LKS) -> str:
    """A cluster of the `demo` group without a Process pool."""
    aks.managed_clusters.begin_create_or_update("demo", "plain", ManagedCluster(
        location="westeurope", dns_prefix="plain", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
            name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
    return "plain"


def _zip(files: dict[str, str]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return base64.b64encode(buf.getvalue()).decode()


def _unreadable_zip() -> str:
    """A zip whose entry claims compression method 99 (AES, which Python cannot read)."""
    data = bytearray(base64.b64decode(_zip({"a.txt": "x"})))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local header, central directory
        at = data.index(signature) + offset
        data[at:at + 2] = (99).to_bytes(2, "little")
    return base64.b64encode(bytes(data)).decode()


def _raw(server: LKS, method: str, path: str, body: object = None) -> tuple[int, dict, object]:
    c = _config(server)
    url = f"{c['endpoint']}/subscriptions/{c['subscription_id']}/resourceGroups/demo/providers/" \
          f"Microsoft.ContainerService/managedClusters/{path}{'&' if '?' in path else '?'}api-version={API}"
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {c['token']}", "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=c["ca_file"])
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else None


NAMESPACE_YAML = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-attached-file\n"


def test_sdk_runs_a_command_as_a_process_of_the_service(aks, plain):
    poller = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command="kubectl get namespace default -o name; echo to-stderr >&2; pwd; exit 3", context=""))
    first = poller.polling_method()._initial_response.http_response  # noqa: SLF001 - AKS's first answer
    assert first.status_code == 202 and not first.text()
    assert re.search(r"/managedClusters/plain/commandResults/[0-9a-f]{32}\?api-version=", first.headers["Location"])
    result = poller.result()
    props = result.properties
    assert props.provisioning_state == "Succeeded" and props.exit_code == 3
    assert props.logs.startswith("namespace/default\nto-stderr\n")
    assert "/runcommand/" in props.logs and props.reason is None
    assert props.started_at <= props.finished_at
    again = aks.managed_clusters.get_command_result("demo", plain, result.id)
    assert again.id == result.id and again.properties.logs == props.logs and again.properties.exit_code == 3


def test_sdk_runs_a_command_in_a_pod_of_the_process_pool_with_an_attached_file(aks, server):
    result = aks.managed_clusters.begin_run_command("demo", "demo", RunCommandRequest(
        command="kubectl apply -f ns.yaml && kubectl get pods -n aks-command -o name && ls",
        context=_zip({"ns.yaml": NAMESPACE_YAML}))).result()
    props = result.properties
    assert props.provisioning_state == "Succeeded" and props.exit_code == 0, props
    assert props.logs == f"namespace/from-attached-file created\npod/command-{result.id}\nns.yaml\n"
    server.kubectl("get", "namespace", "from-attached-file")
    # the pod ran on the Process pool's node and is gone; the namespace stays, as on AKS
    wait_until(lambda: server.kubectl("get", "pods", "-n", "aks-command", "-o", "name").stdout == "",
               what="command pod deleted")
    server.kubectl("get", "namespace", "aks-command")


def test_a_pod_that_cannot_start_fails_with_aks_reason(aks, server):
    node = server.kubectl("get", "nodes", "-l", "kubernetes.azure.com/agentpool=runs", "-o", "name").stdout.strip()
    server.kubectl("cordon", node)
    try:
        result = aks.managed_clusters.begin_run_command("demo", "demo", RunCommandRequest(command="ls")).result()
    finally:
        server.kubectl("uncordon", node)
    assert result.properties.provisioning_state == "Failed"
    assert result.properties.reason == (
        f"Failed to run command due to cluster perf issue, container command-{result.id} in aks-command namespace "
        f"did not start within {START_TIMEOUT}s on your cluster, retry may helps. If issue persist, you may need to "
        "tune your cluster with better performance (larger node/paid tier).")
    wait_until(lambda: server.kubectl("get", "pods", "-n", "aks-command", "-o", "name").stdout == "",
               what="command pod deleted")


def test_cluster_token_is_the_callers_credential(aks, plain):
    result = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command="kubectl get pods", cluster_token="not-a-token-of-this-cluster")).result()
    assert result.properties.exit_code == 1
    assert "error: You must be logged in to the server" in result.properties.logs


def test_the_cluster_token_of_an_entra_cluster_runs_the_command_as_the_caller(aks, server):
    """As az sends it: a token of the tenant's issuer for AKS's server app, for the caller."""
    res = cli(server, "aks", "create", "-g", "demo", "-n", "entra", "--node-count", "1", "--enable-aad",
              "--disable-local-accounts", "-o", "none")
    assert res.returncode == 0, res.stderr
    sp = json.loads(cli(server, "ad", "sp", "create-for-rbac", "--name", "run-command-caller", "-o", "json").stdout)
    object_id = json.loads(cli(server, "ad", "sp", "show", "--id", sp["appId"], "-o", "json").stdout)["id"]
    c = _config(server)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": sp["appId"],
                                   "client_secret": sp["password"], "scope": f"{AKS_SERVER_APP}/.default"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{c['endpoint']}/{c['tenant_id']}/oauth2/v2.0/token",
                                                       data=form),
                                context=ssl.create_default_context(cafile=c["ca_file"])) as r:
        token = json.load(r)["access_token"]
    whoami = "kubectl auth whoami -o jsonpath='{.status.userInfo.username}'"
    result = aks.managed_clusters.begin_run_command("demo", "entra", RunCommandRequest(
        command=whoami, cluster_token=token)).result()
    assert (result.properties.exit_code, result.properties.logs) == (0, object_id)


def test_output_is_cut_at_512_kib(aks, plain):
    result = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command="head -c 600000 /dev/zero | tr '\\0' a; echo; echo done")).result()
    assert result.properties.exit_code == 0 and result.properties.logs == "a" * 512 * 1024


def _processes(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_command_that_outlives_the_timeout_fails_and_is_killed(aks, plain):
    result = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command=f"echo started; sleep 61.{RUN}")).result()
    props = result.properties
    assert props.provisioning_state == "Failed" and props.exit_code is None
    assert props.reason == f"Failed to run command: it did not finish within {TIMEOUT} seconds and was stopped."
    assert props.logs == "started\n"
    assert _processes(f"sleep 61.{RUN}") == []


def test_what_a_command_leaves_running_ends_with_it(aks, plain):
    result = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command=f"sleep 40.{RUN} & echo left-behind")).result()
    assert (result.properties.provisioning_state, result.properties.exit_code) == ("Succeeded", 0)
    assert result.properties.logs == "left-behind\n"
    assert _processes(f"sleep 40.{RUN}") == []


def test_a_command_too_long_for_the_shell_fails_with_the_reason(aks, plain):
    result = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(
        command="echo " + "x" * 200_000)).result()
    assert result.properties.provisioning_state == "Failed"
    assert result.properties.reason.startswith("Failed to run command: [Errno 7] Argument list too long")


def test_cli_invoke_with_the_current_folder_and_result(server, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("A\n")
    (tmp_path / "sub" / "b.txt").write_text("B\n")
    res = cli(server, "aks", "command", "invoke", "-g", "demo", "-n", "demo", "-c", "cat a.txt sub/b.txt", "-f", ".",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    first, rest = res.stdout.split("\n", 1)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00"
    assert re.fullmatch(f"command started at {stamp}, finished at {stamp} with exitcode=0", first), first
    assert rest == "A\nB\n\n"  # the logs, then print's newline

    res = cli(server, "aks", "command", "invoke", "-g", "demo", "-n", "demo", "-c", "cat a.txt; exit 4",
              "--file", str(tmp_path / "a.txt"), "--no-wait")
    assert res.returncode == 0, res.stderr
    m = re.match(r"command id: ([0-9a-f]{32}), started at: \S+, status: \w+\n"
                 r'Please use command "az aks command result -g demo -n demo -i \1" to get the future execution '
                 r"result\n$", res.stdout)
    assert m, res.stdout
    command_id = m.group(1)

    def finished() -> dict | None:
        shown = json.loads(cli(server, "aks", "command", "result", "-g", "demo", "-n", "demo", "-i", command_id,
                               "-o", "json").stdout or "null")
        return shown if shown and shown.get("provisioningState") == "Succeeded" else None
    shown = wait_until(finished, what="command result")
    assert shown == {"id": command_id, "provisioningState": "Succeeded", "exitCode": 4, "logs": "A\n", "reason": None,
                     "startedAt": shown["startedAt"], "finishedAt": shown["finishedAt"]}  # as az prints it
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", shown["startedAt"])
    res = cli(server, "aks", "command", "result", "-g", "demo", "-n", "demo", "-i", command_id)
    assert res.stdout.endswith("with exitcode=4\nA\n\n"), res.stdout

    res = cli(server, "aks", "command", "invoke", "-g", "demo", "-n", "demo", "-c", "")
    assert res.returncode != 0 and "Command cannot be empty." in res.stderr
    res = cli(server, "aks", "command", "invoke", "-g", "demo", "-n", "demo", "-c", "ls", "-f", "nope.txt")
    assert res.returncode != 0 and "nope.txt is not valid file, or not accessable." in res.stderr


@pytest.mark.parametrize(("body", "status", "code", "target"), [
    pytest.param({}, 400, "InvalidParameter", "command", id="no-command"),
    pytest.param({"command": "   "}, 400, "InvalidParameter", "command", id="blank-command"),
    pytest.param({"command": 42}, 400, "InvalidParameter", "command", id="command-not-a-string"),
    pytest.param({"command": "ls", "context": "%%%not base64"}, 400, "InvalidParameter", "context", id="bad-base64"),
    pytest.param({"command": "ls", "context": base64.b64encode(b"plain text").decode()}, 400, "InvalidParameter",
                 "context", id="not-a-zip"),
    pytest.param({"command": "ls", "context": _zip({"../escape.txt": "x"})}, 400, "InvalidParameter", "context",
                 id="zip-slip"),
    pytest.param({"command": "ls", "context": _unreadable_zip()}, 400, "InvalidParameter", "context",
                 id="unknown-compression"),
    pytest.param(["command", "ls"], 400, "InvalidRequestContent", None, id="not-an-object"),
])
def test_bad_requests_get_arm_errors(server, plain, body, status, code, target):
    got, _headers, answer = _raw(server, "POST", f"{plain}/runCommand", body)
    assert (got, answer["error"]["code"], answer["error"].get("target")) == (status, code, target), answer


def test_unknown_results_and_clusters_are_404(aks, server, plain):
    with pytest.raises(ResourceNotFoundError) as err:
        aks.managed_clusters.get_command_result("demo", plain, "0" * 32)
    assert err.value.error.code == "NotFound"
    status, _h, answer = _raw(server, "GET", "nosuch/commandResults/" + "0" * 32)
    assert status == 404 and answer["error"]["code"] == "ResourceNotFound"
    status, _h, answer = _raw(server, "POST", "nosuch/runCommand", {"command": "ls"})
    assert status == 404 and answer["error"]["code"] == "ResourceNotFound"


def test_results_survive_a_restart_and_an_interrupted_command_fails(aks, server, plain):
    done = aks.managed_clusters.begin_run_command("demo", plain, RunCommandRequest(command="echo kept")).result()
    status, headers, body = _raw(server, "POST", f"{plain}/runCommand", {"command": f"sleep 7.{RUN}"})
    assert status == 202 and body is None
    interrupted = re.search(r"commandResults/(\w+)\?", headers["Location"]).group(1)
    status, _h, body = _raw(server, "GET", f"{plain}/commandResults/{interrupted}")
    assert status == 202 and body == {"id": interrupted, "properties": {"provisioningState": "Running"}}
    server.restart()
    assert _processes(f"sleep 7.{RUN}") == []
    kept = aks.managed_clusters.get_command_result("demo", plain, done.id)
    assert kept.properties.logs == "kept\n" and kept.properties.exit_code == 0
    # a client polls while it is 202: the service may still be resuming its operations
    status, _h, body = wait_until(lambda: (r := _raw(server, "GET", f"{plain}/commandResults/{interrupted}"))[0] != 202
                                  and r, what="the interrupted command's result")
    assert status == 200 and body["properties"]["provisioningState"] == "Failed", body
    assert body["properties"]["reason"] == "Failed to run command: the service restarted while the command was " \
                                           "running."


def test_what_a_killed_service_left_running_is_killed_after_the_restart(server, plain):
    status, headers, _body = _raw(server, "POST", f"{plain}/runCommand", {"command": f"sleep 30.{RUN}; echo never"})
    assert status == 202
    command_id = re.search(r"commandResults/(\w+)\?", headers["Location"]).group(1)
    wait_until(lambda: _processes(f"sleep 30.{RUN}"), what="the command running")
    server.proc.kill()
    server.proc.wait()
    assert _processes(f"sleep 30.{RUN}")  # its shell died with the service; what the shell started did not
    server.restart()
    status, _h, body = wait_until(lambda: (r := _raw(server, "GET", f"{plain}/commandResults/{command_id}"))[0] != 202
                                  and r, what="the interrupted command's result")
    assert body["properties"]["provisioningState"] == "Failed"
    assert _processes(f"sleep 30.{RUN}") == []


def test_a_cluster_with_run_command_disabled_refuses_commands(aks, server):
    mc = aks.managed_clusters.begin_create_or_update("demo", "norun", ManagedCluster(
        location="westeurope", dns_prefix="norun", api_server_access_profile=ManagedClusterAPIServerAccessProfile(
            disable_run_command=True), agent_pool_profiles=[ManagedClusterAgentPoolProfile(
                name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
    assert mc.api_server_access_profile.disable_run_command is True
    status, _h, answer = _raw(server, "POST", "norun/runCommand", {"command": "kubectl get pods"})
    assert status == 409 and answer["error"]["code"] == "OperationNotAllowed", answer


def test_a_stopped_cluster_stops_its_command_and_refuses_new_ones(aks, server, plain):
    status, headers, _body = _raw(server, "POST", f"{plain}/runCommand", {"command": f"echo begun; sleep 60.{RUN}"})
    command_id = re.search(r"commandResults/(\w+)\?", headers["Location"]).group(1)
    wait_until(lambda: _processes(f"sleep 60.{RUN}"), what="the command running")
    aks.managed_clusters.begin_stop("demo", plain).result()
    result = wait_until(lambda: (r := aks.managed_clusters.get_command_result("demo", plain, command_id)) and r,
                        what="the stopped command's result")
    assert result.properties.provisioning_state == "Failed"
    assert result.properties.reason == "Failed to run command: the managed cluster was stopped while the command " \
                                       "was running."
    assert _processes(f"sleep 60.{RUN}") == []
    status, _h, answer = _raw(server, "POST", f"{plain}/runCommand", {"command": "kubectl get pods"})
    assert status == 409 and answer["error"] == {
        "code": "OperationNotAllowed", "message": "managed cluster is in Provisioning State(Succeeded) and Power "
        "State(Stopped), run command cannot be performed"}
