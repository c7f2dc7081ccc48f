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
import urllib.error
import urllib.request
from typing import Any

import aiohttp
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
    logs = wait_until(lambda: (c := aci.containers.list_logs(GROUP, "web", "main").content) and "GET /index.html" in c
                      and c, what="the access log")
    assert "GET /index.html" in logs
    stamped = aci.containers.list_logs(GROUP, "web", "main", tail=1, timestamps=True).content
    assert stamped.count("\n") == 1 and stamped[:4].isdigit() and "T" in stamped.split(" ")[0]

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


def _socket(server: LKS, sock: Any, *, send: bytes = b"", into: list[str] | None = None) -> str:
    """ACI's WebSocket protocol, as az speaks it: the password, then read until the server closes."""
    import asyncio

    config = json.loads((server.home / "config.json").read_text())

    async def talk() -> str:
        ctx = ssl.create_default_context(cafile=config["ca_file"])
        out = into if into is not None else []
        async with aiohttp.ClientSession() as http, http.ws_connect(sock.web_socket_uri, ssl=ctx) as ws:
            await ws.send_str(sock.password)
            if send:
                await ws.send_bytes(send)
            async for msg in ws:
                out.append(msg.data if isinstance(msg.data, str) else msg.data.decode())
        return "".join(out)

    return asyncio.run(asyncio.wait_for(talk(), 30))


def test_exec_and_attach_over_acis_websocket(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    body = _group(["sh", "-c", "echo started; while sleep 0.2; do echo tick; done"],
                  env=[{"name": "GREETING", "value": "hello-env"}])
    aci.container_groups.begin_create_or_update(GROUP, "shell", body).result()
    sock = aci.containers.execute_command(GROUP, "shell", "main", {
        "command": "sh -c 'echo $GREETING from $(hostname)'", "terminalSize": {"rows": 24, "cols": 80}})
    assert sock.web_socket_uri.startswith("wss://") and sock.password
    assert "hello-env from shell" in _socket(server, sock)
    with pytest.raises(aiohttp.WSServerHandshakeError):  # a socket serves one connection
        _socket(server, sock)
    attached = aci.containers.attach(GROUP, "shell", "main")
    import threading

    seen: list[str] = []
    t = threading.Thread(target=lambda: _socket(server, attached, into=seen), daemon=True)
    t.start()
    wait_until(lambda: "tick" in "".join(seen), what="ticks through attach")
    aci.container_groups.stop(GROUP, "shell")  # the stream ends with the container
    t.join(10)
    assert not t.is_alive()
    with pytest.raises(HttpResponseError) as err:
        aci.containers.execute_command(GROUP, "shell", "main", {"command": "/bin/sh"})
    assert err.value.error.code == "ContainerGroupNotRunning"
    aci.container_groups.begin_delete(GROUP, "shell").result()


def test_restart_policies_and_instance_view(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    aci.container_groups.begin_create_or_update(GROUP, "once", _group(["sh", "-c", "echo done"], policy="Never")
                                                ).result()
    cg = wait_until(lambda: (g := aci.container_groups.get(GROUP, "once")).instance_view.state == "Succeeded" and g,
                    what="the Never group's end")
    state = cg.containers[0].instance_view.current_state
    assert state.state == "Terminated" and state.exit_code == 0 and state.detail_status == "Completed"
    aci.container_groups.begin_create_or_update(GROUP, "flaky", _group(["sh", "-c", "exit 3"], policy="OnFailure")
                                                ).result()
    view = wait_until(lambda: (v := aci.container_groups.get(GROUP, "flaky").containers[0].instance_view)
                      .restart_count >= 2 and v, what="restarts")
    assert view.previous_state.exit_code == 3 and view.previous_state.state == "Terminated"
    for name in ("once", "flaky"):
        aci.container_groups.begin_delete(GROUP, name).result()


@pytest.mark.parametrize("change, code", [
    pytest.param({"name": "Bad_Name"}, "InvalidContainerGroupName", id="group-name"),
    pytest.param({"container": "Web"}, "InvalidContainerName", id="container-name"),
    pytest.param({"cpu": 8}, "ServiceUnavailable", id="over-cpu"),
    pytest.param({"memory": 20}, "ServiceUnavailable", id="over-memory"),
    pytest.param({"limit_cpu": 0.25}, "ResourceLimitsLessThanRequests", id="limit-below-request"),
    pytest.param({"limit_cpu": 2}, "ContainerLimitGreaterThanContainerGroupTotalRequest", id="limit-over-group"),
    pytest.param({"volume": {"name": "src", "gitRepo": {"repository": "https://github.com/x/y"}}},
                 "UnsupportedVolumeType", id="gitrepo"),
    pytest.param({"volume": {"name": "share", "azureFile": {"shareName": "s", "storageAccountName": "a"}}},
                 "UnsupportedVolumeType", id="azurefile"),
    pytest.param({"label": "A"}, "InvalidDnsNameLabel", id="dns-label"),
    pytest.param({"policy": "Sometimes"}, "InvalidRestartPolicy", id="restart-policy"),
])
def test_bad_input_gets_acis_errors(aci: ContainerInstanceManagementClient, change: dict[str, Any], code: str) -> None:
    body = _group(["sleep", "60"], port=80 if "label" in change else None, label=change.get("label"),
                  policy=change.get("policy", "Always"))
    c = body["properties"]["containers"][0]
    c["name"] = change.get("container", "main")
    req = c["properties"]["resources"]
    req["requests"]["cpu"] = change.get("cpu", 0.5)
    req["requests"]["memoryInGB"] = change.get("memory", 0.5)
    if "limit_cpu" in change:
        req["limits"] = {"cpu": change["limit_cpu"]}
    if "volume" in change:
        body["properties"]["volumes"] = [change["volume"]]
    with pytest.raises(HttpResponseError) as err:
        aci.container_groups.begin_create_or_update(GROUP, change.get("name", "bad"), body).result()
    assert err.value.error.code == code
    assert err.value.status_code in (400, 409)
    with pytest.raises(ResourceNotFoundError):
        aci.container_groups.get(GROUP, "bad")


def test_cli_shaped_like_az_container(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    out = lks_json(server, "container", "create", "-g", GROUP, "-n", "cli", "--image", "python:3",
                   "--command-line", f"{PY} -u -c \"import os; print('env', os.environ['A'], os.environ['S']); "
                   "import time; time.sleep(600)\"", "--cpu", "0.333", "--memory", "0.77", "--ports", "8080",
                   "--ip-address", "Public", "--dns-name-label", "lks-cli-e2e", "--environment-variables", "A=1",
                   "--secure-environment-variables", "S=hidden", "--restart-policy", "OnFailure")
    assert out["provisioningState"] == "Succeeded" and out["restartPolicy"] == "OnFailure"
    assert out["ipAddress"]["fqdn"] == "lks-cli-e2e.westeurope.azurecontainer.io"
    req = out["containers"][0]["resources"]["requests"]
    assert (req["cpu"], req["memoryInGb"]) == (0.33, 0.8)  # ACI's rounding (az prints memoryInGb)
    assert "hidden" not in json.dumps(out)
    listed = lks_json(server, "container", "list", "-g", GROUP)
    assert [g["name"] for g in listed] == ["cli"]
    logs = wait_until(lambda: lks_cli(server, "container", "logs", "-g", GROUP, "-n", "cli").stdout, what="logs")
    assert "env 1 hidden" in logs
    res = lks_cli(server, "container", "exec", "-g", GROUP, "-n", "cli", "--exec-command", "echo from-exec")
    assert res.returncode == 0 and "from-exec" in res.stdout, res.stderr
    assert lks_cli(server, "container", "stop", "-g", GROUP, "-n", "cli").returncode == 0
    assert lks_json(server, "container", "show", "-g", GROUP, "-n", "cli")["instanceView"]["state"] == "Stopped"
    assert lks_cli(server, "container", "start", "-g", GROUP, "-n", "cli").returncode == 0
    assert lks_cli(server, "container", "restart", "-g", GROUP, "-n", "cli").returncode == 0
    shown = lks_json(server, "container", "show", "-g", GROUP, "-n", "cli")
    assert shown["instanceView"]["state"] == "Running"
    assert shown["billing"]["cpuCoreSeconds"] > 0
    assert lks_cli(server, "container", "delete", "-g", GROUP, "-n", "cli", "--yes").returncode == 0
    res = lks_cli(server, "container", "show", "-g", GROUP, "-n", "cli")
    assert res.returncode != 0 and "ResourceNotFound" in res.stderr
    res = lks_cli(server, "container", "create", "-g", GROUP, "-n", "x", "--image", "python:3", "--command-line",
                  "sleep 1", "--cpu", "5")
    assert res.returncode != 0 and "ServiceUnavailable" in res.stderr


@pytest.mark.skipif(not ROOT, reason="a group's own network namespace needs root")
def test_private_groups_take_addresses_of_their_delegated_subnet(server: LKS,
                                                                 aci: ContainerInstanceManagementClient) -> None:
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import AddressSpace, Delegation, Subnet, VirtualNetwork

    config = json.loads((server.home / "config.json").read_text())
    net = NetworkManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                  base_url=config["endpoint"], connection_verify=config["ca_file"])
    net.virtual_networks.begin_create_or_update(GROUP, "vnet", VirtualNetwork(
        location="westeurope", address_space=AddressSpace(address_prefixes=["10.30.0.0/16"]))).result()
    aci_subnet = net.subnets.begin_create_or_update(GROUP, "vnet", "aci", Subnet(
        address_prefix="10.30.1.0/24", delegations=[Delegation(
            name="aci", service_name="Microsoft.ContainerInstance/containerGroups")])).result()
    plain = net.subnets.begin_create_or_update(GROUP, "vnet", "plain", Subnet(address_prefix="10.30.2.0/24")).result()

    def private(command: list[str], subnet: str) -> dict[str, Any]:
        body = _group(command, port=8000)
        body["properties"]["ipAddress"]["type"] = "Private"
        body["properties"]["subnetIds"] = [{"id": subnet}]
        return body

    server_cmd = [PY, "-m", "http.server", "8000", "--directory", str(server.home)]
    first = aci.container_groups.begin_create_or_update(GROUP, "priv1", private(server_cmd, aci_subnet.id)).result()
    second = aci.container_groups.begin_create_or_update(GROUP, "priv2", private(["sleep", "600"], aci_subnet.id)
                                                         ).result()
    assert (first.ip_address.type, first.ip_address.ip, second.ip_address.ip) == ("Private", "10.30.1.4", "10.30.1.5")
    fetch = f"import urllib.request as u; print(u.urlopen('http://{first.ip_address.ip}:8000/config.json').status)"

    def reached() -> bool:
        sock = aci.containers.execute_command(GROUP, "priv2", "main", {"command": f'{PY} -c "{fetch}"'})
        return "200" in _socket(server, sock)

    assert wait_until(reached, what="one private group reaching another")
    with pytest.raises(HttpResponseError) as err:
        aci.container_groups.begin_create_or_update(GROUP, "priv3", private(["sleep", "1"], plain.id)).result()
    assert err.value.error.code == "SubnetNotDelegated"
    for name in ("priv1", "priv2"):
        aci.container_groups.begin_delete(GROUP, name).result()


@pytest.mark.parametrize("body", [
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b'{"location": "westeurope", "properties": {"containers": [{"name": "a", "properties": '
                 b'{"image": "x", "command": "sleep 1", "ports": [{"port": "80"}]}}]}}', id="wrong-types"),
    pytest.param(b'{"location": "westeurope", "properties": {"containers": [{"name": "a", "properties": '
                 b'{"image": "x", "ports": [{"port": 70000}]}}]}}', id="port-range"),
])
def test_hostile_bodies_over_raw_http(server: LKS, aci: ContainerInstanceManagementClient, body: bytes) -> None:
    config = json.loads((server.home / "config.json").read_text())
    url = (f"{config['endpoint']}/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/"
           "Microsoft.ContainerInstance/containerGroups/hostile?api-version=2023-05-01")
    req = urllib.request.Request(url, data=body, method="PUT", headers={
        "Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=config["ca_file"]), timeout=10)
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"]["code"] in ("InvalidRequestContent", "InvalidContainerPort")


@pytest.mark.skipif(not ROOT, reason="mounting volumes needs a mount namespace (root)")
def test_secret_and_empty_dir_volumes_and_usages(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    import base64

    body = _group(["sh", "-c", "cat /mnt/secrets/greeting; echo; echo kept > /mnt/scratch/f; cat /mnt/scratch/f; "
                   "sleep 600"])
    body["properties"]["volumes"] = [
        {"name": "secrets", "secret": {"greeting": base64.b64encode(b"secret-hello").decode()}},
        {"name": "scratch", "emptyDir": {}}]
    body["properties"]["containers"][0]["properties"]["volumeMounts"] = [
        {"name": "secrets", "mountPath": "/mnt/secrets", "readOnly": True},
        {"name": "scratch", "mountPath": "/mnt/scratch"}]
    cg = aci.container_groups.begin_create_or_update(GROUP, "vols", body).result()
    assert [v.name for v in cg.volumes] == ["secrets", "scratch"] and not cg.volumes[0].secret  # never echoed
    logs = wait_until(lambda: (c := aci.containers.list_logs(GROUP, "vols", "main").content) and "kept" in c and c,
                      what="the volumes read")
    assert logs.splitlines()[:2] == ["secret-hello", "kept"]
    usages = {u.name.value: u for u in aci.location.list_usage("westeurope")}
    assert usages["ContainerGroups"].current_value >= 1 and usages["ContainerGroups"].limit == 100
    aci.container_groups.begin_delete(GROUP, "vols").result()


def test_update_reruns_the_group_and_keeps_its_address(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    first = aci.container_groups.begin_create_or_update(GROUP, "upd", _group(["sleep", "1111"], port=80)).result()
    assert wait_until(lambda: _pids(server, "1111"), what="the first version")
    second = aci.container_groups.begin_create_or_update(GROUP, "upd", _group(["sleep", "2222"], port=80)).result()
    assert second.provisioning_state == "Succeeded" and second.ip_address.ip == first.ip_address.ip
    assert wait_until(lambda: _pids(server, "2222"), what="the second version") and _pids(server, "1111") == []
    aci.container_groups.begin_delete(GROUP, "upd").result()


def test_deleting_the_resource_group_deletes_its_groups(server: LKS, aci: ContainerInstanceManagementClient) -> None:
    config = json.loads((server.home / "config.json").read_text())
    rg = ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                  base_url=config["endpoint"], connection_verify=config["ca_file"])
    rg.resource_groups.create_or_update("aci-doomed", {"location": "westeurope"})
    aci.container_groups.begin_create_or_update("aci-doomed", "doomed", _group(["sleep", "5678"])).result()
    assert wait_until(lambda: _pids(server, "5678"), what="the group's process")
    rg.resource_groups.begin_delete("aci-doomed").result()
    assert _pids(server, "5678") == []
    assert [g.name for g in aci.container_groups.list()] == [g.name for g in aci.container_groups.list_by_resource_group(GROUP)]


def test_groups_come_back_after_a_kill_9_and_nothing_is_left(server: LKS,
                                                              aci: ContainerInstanceManagementClient) -> None:
    """Last in the module: it kills the service. What a container forked outlives the kill (its
    parent-death signal is its own, not inherited); the next start sweeps it and runs the group again."""
    aci.container_groups.begin_create_or_update(GROUP, "survivor", _group(
        ["sh", "-c", "sleep 4321 & echo up; wait"])).result()
    old = wait_until(lambda: _pids(server, "4321"), what="the container's child")
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.log.close()
    server.start()
    assert not any(_alive(p) for p in old)
    new = wait_until(lambda: _pids(server, "4321"), what="the group running again")
    assert not set(new) & set(old)
    assert aci.container_groups.get(GROUP, "survivor").instance_view.state == "Running"
    aci.container_groups.begin_delete(GROUP, "survivor").result()
    assert _pids(server, "4321") == []
