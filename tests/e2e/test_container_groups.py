"""Container groups (ACI) end to end: through azure-mgmt-containerinstance's
`ContainerInstanceManagementClient` and the `lks container` CLI against a real `lks up` — a
group running `python3 -m http.server` answers on its IP and port (as root: its own network
namespace, the public address relayed), logs, exec and attach, stop/start/restart, delete
leaving no process, and ACI's refusals of bad input."""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.e2e.conftest import LKS, StaticToken, lks_cli, lks_json, wait_until

GROUP = "aci"
PY = sys.executable
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-aci"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aci(server: LKS) -> ContainerInstanceManagementClient:
    config = json.loads((server.home / "config.json").read_text())
    args = dict(base_url=config["endpoint"], connection_verify=config["ca_file"])
    ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"], **args) \
        .resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    return ContainerInstanceManagementClient(StaticToken(config["token"]), config["subscription_id"], **args)


def _group(command: list[str], *, port: int | None = None, label: str | None = None, policy: str = "Always",
           env: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "properties": {
        "image": "mcr.microsoft.com/azurelinux/base/python:3", "command": command,
        "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}},
        "environmentVariables": env or []}}
    props: dict[str, Any] = {"containers": [container], "osType": "Linux", "restartPolicy": policy, **extra}
    if port is not None:
        container["properties"]["ports"] = [{"port": port, "protocol": "TCP"}]
        props["ipAddress"] = {"type": "Public", "ports": [{"port": port, "protocol": "TCP"}],
                              **({"dnsNameLabel": label} if label else {})}
    return {"location": "westeurope", "properties": props}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pids(server: LKS, marker: str) -> list[int]:
    """Processes of this host whose command line carries `marker`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read() and _alive(int(entry)):
                        out.append(int(entry))
            except OSError:
                continue
    return out


def _get(url: str) -> str:
    """The page, or "" while nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_http_server_group_answers_logs_exec_and_lifecycle(server: LKS, aci: ContainerInstanceManagementClient,
                                                            tmp_path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from aci\n")
    body = _group([PY, "-m", "http.server", "8000", "--directory", str(www)], port=8000, label="lks-web-e2e",
                  env=[{"name": "GREETING", "value": "hi"}, {"name": "TOKEN", "secureValue": "s3cret"}])
    cg = aci.container_groups.begin_create_or_update(GROUP, "web", body).result()
    assert cg.provisioning_state == "Succeeded"
    assert cg.ip_address.type == "Public" and cg.ip_address.fqdn == "lks-web-e2e.westeurope.azurecontainer.io"
    env = {e.name: (e.value, e.secure_value) for e in cg.containers[0].environment_variables}
    assert env == {"GREETING": ("hi", None), "TOKEN": (None, None)}  # a secure value is never echoed
    assert cg.containers[0].resources.requests.cpu == 0.5
    ip = cg.ip_address.ip
    assert wait_until(lambda: "hello from aci" in _get(f"http://{ip}:8000/index.html"), what="the group's HTTP")
    cg = aci.container_groups.get(GROUP, "web")
    assert cg.instance_view.state == "Running"
    view = cg.containers[0].instance_view
    assert view.current_state.state == "Running" and view.restart_count == 0
    assert any(e.name == "Started" for e in view.events)
    billing = aci.container_groups.get(GROUP, "web").additional_properties or {}
    logs = wait_until(lambda: (c := aci.containers.list_logs(GROUP, "web", "main").content) and "GET /index.html" in c
                      and c, what="the access log")
    assert "GET /index.html" in logs
    stamped = aci.containers.list_logs(GROUP, "web", "main", tail=1, timestamps=True).content
    assert stamped.count("\n") == 1 and stamped[:4].isdigit() and "T" in stamped.split(" ")[0]
    del billing

    pids = _pids(server, str(www))
    assert pids
    aci.container_groups.stop(GROUP, "web")
    assert not any(_alive(p) for p in pids)
    assert aci.container_groups.get(GROUP, "web").instance_view.state == "Stopped"
    aci.container_groups.begin_start(GROUP, "web").result()
    assert wait_until(lambda: "hello" in _get(f"http://{ip}:8000/index.html"), what="the group after start")
    before = _pids(server, str(www))
    aci.container_groups.begin_restart(GROUP, "web").result()
    after = _pids(server, str(www))
    assert after and not set(after) & set(before)
    assert wait_until(lambda: "hello" in _get(f"http://{ip}:8000/index.html"), what="the group after restart")

    aci.container_groups.begin_delete(GROUP, "web").result()
    assert _pids(server, str(www)) == []
    with pytest.raises(ResourceNotFoundError):
        aci.container_groups.get(GROUP, "web")
