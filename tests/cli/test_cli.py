"""The `lks` command: argument parsing, az-shaped output and errors against a scripted
management API (unit tests), then the real thing, `.venv/bin/lks` driving a real `lks up`,
with kubectl reading the credentials it merged (end to end)."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import yaml

from lks.cli import commands, main, output
from lks.cli.client import Client, Config, ServiceError
from lks.cli.commands import aks, nodepool

SUB = "00000000-0000-0000-0000-000000000001"
RG_PATH = f"/subscriptions/{SUB}/resourcegroups/rg1"
MC_PATH = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/c1"
MC_ID = f"/subscriptions/{SUB}/resourcegroups/rg1/providers/Microsoft.ContainerService/managedClusters/c1"
OP_URL = f"https://lks.test/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations/op1"


def cluster(count: int = 1, pools: int = 1, state: str = "Succeeded") -> dict[str, Any]:
    """A managed cluster as the management API returns it (wire names, nested properties)."""
    return {"id": MC_ID, "name": "c1", "type": "Microsoft.ContainerService/ManagedClusters", "location": "westeurope",
            "tags": {"Team-Name": "a"}, "sku": {"name": "Base", "tier": "Free"},
            "properties": {"provisioningState": state, "powerState": {"code": "Running"},
                           "kubernetesVersion": "1.36", "currentKubernetesVersion": "1.36.4",
                           "fqdn": "c1-abc.hcp.westeurope.azmk8s.io", "enableRBAC": True, "maxAgentPools": 100,
                           "networkProfile": {"dnsServiceIP": "10.0.0.10", "podCidr": "10.244.0.0/16"},
                           "autoScalerProfile": {"scan-interval": "10s"},
                           "addonProfiles": {"azurepolicy": {"enabled": False, "config": {"Some_Key": "v"}}},
                           "agentPoolProfiles": [
                               {"name": f"pool{i}", "count": count, "vmSize": "Standard_DS2_v2", "osDiskSizeGB": 128,
                                "maxPods": 250, "mode": "System" if i == 0 else "User", "osType": "Linux",
                                "type": "VirtualMachineScaleSets", "provisioningState": state,
                                "orchestratorVersion": "1.36.4", "currentOrchestratorVersion": "1.36.4",
                                "nodeLabels": {"team_name": "x"}, "enableAutoScaling": False}
                               for i in range(pools)]}}


class FakeARM:
    """A scripted management API: each (method, path) answers its queued responses in turn,
    the last one forever; requests are recorded."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, dict[str, str], Any]]] = {}
        self.calls: list[tuple[str, str, dict[str, list[str]], Any]] = []

    def on(self, method: str, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        """(Re)script a route with one answer."""
        self.routes[(method, path)] = []
        self.then(method, path, status, body, **headers)

    def then(self, method: str, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        """Queue one more answer on a route."""
        headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        self.routes.setdefault((method, path), []).append((status, headers, body))

    def __call__(self, method: str, url: str, headers: dict[str, str], data: bytes | None):
        parts = urllib.parse.urlsplit(url)
        assert headers["Authorization"] == "Bearer t0ken"
        self.calls.append((method, parts.path, urllib.parse.parse_qs(parts.query), json.loads(data) if data else None))
        queue = self.routes.get((method, parts.path))
        if not queue:
            return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"no route {parts.path}"}}).encode()
        status, resp_headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return status, resp_headers, b"" if body is None else json.dumps(body).encode()

    def sent(self, method: str, path: str) -> Any:
        return [body for m, p, _, body in self.calls if (m, p) == (method, path)][-1]


@pytest.fixture
def arm() -> FakeARM:
    return FakeARM()


@pytest.fixture
def client(arm: FakeARM) -> Client:
    return Client(Config("https://lks.test", "t0ken", "/nonexistent/ca.crt", SUB), transport=arm)


def parse(*argv: str):
    return main._parser().parse_args(list(argv))


def run(client: Client, *argv: str) -> Any:
    args = parse(*argv)
    return args.func(args, client)


# -- parsing ------------------------------------------------------------------------------------------

def test_aks_create_defaults_are_az_defaults():
    args = parse("aks", "create", "-g", "rg1", "-n", "c1")
    assert (args.node_count, args.nodepool_name, args.kubernetes_version, args.output) == (3, "nodepool1", "", "json")
    assert args.no_wait is False and args.generate_ssh_keys is False
    args = parse("aks", "nodepool", "add", "-g", "rg1", "--cluster-name", "c1", "--nodepool-name", "p2")
    assert (args.nodepool_name, args.node_count, args.mode) == ("p2", 3, "User")


@pytest.mark.parametrize("argv, message", [
    pytest.param(["aks", "show", "-n", "c1"], "ERROR: the following arguments are required: --resource-group/-g",
                 id="missing-group"),
    pytest.param(["aks", "scale", "-g", "rg", "-n", "c1"], "required: --node-count/-c", id="scale-needs-count"),
    pytest.param(["aks", "get-versions"], "required: --location/-l", id="versions-need-location"),
    pytest.param(["aks", "list", "--query", "[?"], "ERROR: argument --query: invalid jmespath_type value: '[?'",
                 id="bad-query"),
    pytest.param(["aks", "list", "-o", "xml"], "ERROR: argument --output/-o: invalid choice: 'xml'", id="bad-output"),
])
def test_usage_errors_exit_2_like_az(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_key_value_arguments():
    assert commands.tags(["a=b", "c", "d=e=f"]) == {"a": "b", "c": "", "d": "e=f"}
    assert commands.tags([""]) == {} and commands.tags(None) is None
    assert commands.labels(["team=a", "example.com/tier=web"]) == {"team": "a", "example.com/tier": "web"}
    with pytest.raises(output.CLIError, match="Label definition must be of format name=value"):
        commands.labels(["team"])
    assert commands.taints("a=b:NoSchedule, c=d:NoExecute") == ["a=b:NoSchedule", "c=d:NoExecute"]
    assert commands.taints("") == []
    with pytest.raises(output.CLIError, match="special=true:NoSchedule"):
        commands.taints("a=b:Sometimes")


# -- output -------------------------------------------------------------------------------------------

def test_arm_documents_take_the_shape_az_prints():
    shown = output.from_arm(cluster())
    assert shown["provisioningState"] == "Succeeded" and "properties" not in shown
    assert shown["networkProfile"] == {"dnsServiceIp": "10.0.0.10", "podCidr": "10.244.0.0/16"}
    assert shown["enableRbac"] is True and shown["autoScalerProfile"] == {"scanInterval": "10s"}
    pool = shown["agentPoolProfiles"][0]
    assert pool["osDiskSizeGb"] == 128 and pool["nodeLabels"] == {"team_name": "x"}  # map keys are data
    assert shown["tags"] == {"Team-Name": "a"} and shown["addonProfiles"]["azurepolicy"]["config"] == {"Some_Key": "v"}
    agent_pool = output.from_arm({"id": MC_ID + "/agentPools/p", "name": "p", "type": "t",
                                  "properties": {"type": "VirtualMachineScaleSets", "count": 1}})
    assert agent_pool["typePropertiesType"] == "VirtualMachineScaleSets" and agent_pool["type"] == "t"
    group = output.from_arm({"id": RG_PATH, "name": "rg1", "properties": {"provisioningState": "Succeeded"}},
                            flatten=False)
    assert group["properties"] == {"provisioningState": "Succeeded"}


def emitted(result: Any, capsys, **kwargs) -> str:
    output.emit(result, **kwargs)
    return capsys.readouterr().out


def test_table_output_matches_az(capsys):
    text = emitted([output.from_arm(cluster())], capsys, output="table", table=aks.LIST_TABLE)
    assert text == (
        "Name    Location    ResourceGroup    KubernetesVersion    CurrentKubernetesVersion    ProvisioningState    Fqdn\n"
        "------  ----------  ---------------  -------------------  --------------------------  -------------------  "
        "-------------------------------\n"
        "c1      westeurope  rg1              1.36                 1.36.4                      Succeeded            "
        "c1-abc.hcp.westeurope.azmk8s.io\n")
    pools = output.from_arm(cluster(pools=2))["agentPoolProfiles"]
    lines = emitted(pools, capsys, output="table", table=nodepool.LIST_TABLE).splitlines()
    assert lines[0].split() == ["Name", "OsType", "KubernetesVersion", "VmSize", "OsDiskSizeGB", "Count", "MaxPods",
                                "ProvisioningState", "Mode"]
    assert lines[3].split() == ["pool1", "Linux", "1.36.4", "Standard_DS2_v2", "128", "1", "250", "Succeeded", "User"]
    # no transformer: scalar fields only, sorted, id/type left out, None columns dropped
    assert emitted({"id": "x", "name": "a", "b": None, "c": [1], "Zeta": True}, capsys, output="table") == (
        "Zeta    Name\n------  ------\nTrue    a\n")


def test_query_json_tsv_yaml_and_none(capsys):
    doc = output.from_arm(cluster())
    assert json.loads(emitted(doc, capsys, query=output.jmespath_type("agentPoolProfiles[0].count"))) == 1
    # --query turns the table transformer off and keeps the query's column order
    text = emitted([doc], capsys, output="table", table=aks.LIST_TABLE,
                   query=output.jmespath_type("[].{Z: name, A: location}"))
    assert text.splitlines()[0] == "Z    A"
    assert emitted({"b": 1, "a": [1, 2], "c": {"x": 1}, "d": True}, capsys, output="tsv") == "2\t1\t\tTrue\n"
    assert yaml.safe_load(emitted(doc, capsys, output="yaml"))["resourceGroup"] == "rg1"
    assert emitted(doc, capsys, output="none") == "" and emitted(None, capsys) == ""
    text = emitted({"b": 1, "a": "é"}, capsys)
    assert text == '{\n  "a": "é",\n  "b": 1\n}\n'  # az: sorted keys, two spaces, unicode kept


def test_versions_and_upgrades_tables():
    versions = {"values": [
        {"version": "1.36", "isDefault": True, "capabilities": {"supportPlan": ["KubernetesOfficial"]},
         "patchVersions": {"1.36.2": {"upgrades": ["1.36.10", "1.36.3"]}, "1.36.10": {"upgrades": []}}}]}
    rows = aks.versions_table(versions)
    assert [r["kubernetesVersion"] for r in rows] == ["1.36.10", "1.36.2"]
    assert rows[0]["upgrades"] == "None available" and rows[1]["upgrades"] == "1.36.3, 1.36.10"
    assert output.format_result(versions, output="table", table=aks.versions_table).splitlines()[0].split() == [
        "KubernetesVersion", "Upgrades", "SupportPlan"]  # isPreview absent: az drops the column
    profile = {"name": "default", "resourceGroup": "rg1", "controlPlaneProfile": {
        "kubernetesVersion": "1.36.4", "upgrades": [{"kubernetesVersion": "1.37.1", "isPreview": True},
                                                    {"kubernetesVersion": "1.36.10"}]}}
    assert aks.upgrades_table(profile) == [OrderedDict(name="default", resourceGroup="rg1", masterVersion="1.36.4",
                                                       upgrades="1.36.10, 1.37.1(preview)")]


# -- the client -----------------------------------------------------------------------------------

def test_service_errors_print_like_az(client, arm):
    arm.on("GET", RG_PATH, 404, {"error": {"code": "ResourceGroupNotFound",
                                           "message": "Resource group 'rg1' could not be found."}})
    with pytest.raises(ServiceError) as err:
        run(client, "group", "show", "-n", "rg1")
    assert err.value.exit_code == 3
    assert str(err.value) == ("(ResourceGroupNotFound) Resource group 'rg1' could not be found.\n"
                              "Code: ResourceGroupNotFound\nMessage: Resource group 'rg1' could not be found.")
    arm.on("GET", MC_PATH, 409, {"error": {"code": "OperationNotAllowed", "message": "busy", "target": "x"}})
    with pytest.raises(ServiceError) as err:
        run(client, "aks", "show", "-g", "rg1", "-n", "c1")
    assert err.value.exit_code == 1 and "Target: x" in str(err.value)


def test_create_follows_the_operation_then_gets_the_cluster(client, arm):
    arm.on("GET", MC_PATH, 404, {"error": {"code": "ResourceNotFound", "message": "no"}})
    arm.then("GET", MC_PATH, 200, cluster())  # once created
    arm.on("GET", RG_PATH, 200, {"id": RG_PATH, "name": "rg1", "location": "northeurope"})
    arm.on("PUT", MC_PATH, 201, cluster(state="Creating"), Azure_AsyncOperation=OP_URL, Retry_After="0")
    arm.on("GET", urllib.parse.urlsplit(OP_URL).path, 200, {"status": "InProgress"}, Retry_After="0")
    arm.then("GET", urllib.parse.urlsplit(OP_URL).path, 200, {"status": "Succeeded"})
    result = run(client, "aks", "create", "-g", "rg1", "-n", "c1", "-c", "1", "-s", "Standard_D4s_v3",
                 "--nodepool-labels", "team=a", "--nodepool-taints", "k=v:NoSchedule", "--network-plugin", "kubenet",
                 "--pod-cidr", "10.10.0.0/16", "--tags", "env=dev", "-p", "mydns", "--generate-ssh-keys")
    body = arm.sent("PUT", MC_PATH)
    assert body["location"] == "northeurope" and body["tags"] == {"env": "dev"}  # location: the group's, as az
    assert body["properties"]["dnsPrefix"] == "mydns"
    assert body["properties"]["networkProfile"] == {"networkPlugin": "kubenet", "podCidr": "10.10.0.0/16"}
    assert body["properties"]["agentPoolProfiles"] == [{
        "name": "nodepool1", "count": 1, "mode": "System", "osType": "Linux", "type": "VirtualMachineScaleSets",
        "vmSize": "Standard_D4s_v3", "nodeLabels": {"team": "a"}, "nodeTaints": ["k=v:NoSchedule"]}]
    polls = [c for c in arm.calls if c[1].endswith("/operations/op1")]
    assert len(polls) == 2 and arm.calls[-1][:2] == ("GET", MC_PATH)
    assert result["provisioningState"] == "Succeeded"


def test_create_refuses_an_existing_cluster_and_no_wait_returns_at_once(client, arm):
    arm.on("GET", MC_PATH, 200, cluster())
    with pytest.raises(output.CLIError, match="The cluster 'c1' under resource group 'rg1' already exists"):
        run(client, "aks", "create", "-g", "rg1", "-n", "c1", "-l", "westeurope")
    arm.routes.clear()
    arm.on("PUT", MC_PATH, 201, cluster(state="Creating"), Azure_AsyncOperation=OP_URL, Retry_After="0")
    assert run(client, "aks", "create", "-g", "rg1", "-n", "c1", "-l", "westeurope", "--no-wait") is None
    assert not [c for c in arm.calls if "operations" in c[1]]


def test_failed_operation_raises_its_error(client, arm):
    arm.on("DELETE", MC_PATH, 202, None, Azure_AsyncOperation=OP_URL, Location=OP_URL + "x", Retry_After="0")
    arm.on("GET", urllib.parse.urlsplit(OP_URL).path, 200, {"status": "Failed", "error": {
        "code": "Conflict", "message": "nope"}})
    with pytest.raises(ServiceError, match=r"^\(Conflict\) nope"):
        run(client, "aks", "delete", "-g", "rg1", "-n", "c1", "--yes")


def test_location_polling_for_group_delete(client, arm):
    result_path = f"/subscriptions/{SUB}/operationresults/op2"
    arm.on("DELETE", RG_PATH, 202, None, Location="https://lks.test" + result_path, Retry_After="0")
    arm.on("GET", result_path, 202, None, Location="https://lks.test" + result_path, Retry_After="0")
    arm.then("GET", result_path, 200, None)
    assert run(client, "group", "delete", "-n", "rg1", "-y") is None
    assert [c[1] for c in arm.calls].count(result_path) == 2


def test_deletion_without_a_terminal_needs_yes(client, arm, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(output.CLIError, match="Operation cancelled."):
        run(client, "aks", "delete", "-g", "rg1", "-n", "c1")
    assert "Unable to prompt for confirmation as no tty available. Use --yes." in capsys.readouterr().err
    assert not arm.calls


def test_scale_picks_the_pool_like_az(client, arm):
    arm.on("GET", MC_PATH, 200, cluster(pools=2))
    with pytest.raises(output.CLIError, match="There are more than one node pool in the cluster"):
        run(client, "aks", "scale", "-g", "rg1", "-n", "c1", "-c", "3")
    with pytest.raises(output.CLIError, match='The nodepool "nope" was not found.'):
        run(client, "aks", "scale", "-g", "rg1", "-n", "c1", "-c", "3", "--nodepool-name", "nope")
    arm.on("PUT", MC_PATH, 200, cluster(pools=2))
    run(client, "aks", "scale", "-g", "rg1", "-n", "c1", "-c", "3", "--nodepool-name", "pool1")
    body = arm.sent("PUT", MC_PATH)
    assert [p["count"] for p in body["properties"]["agentPoolProfiles"]] == [1, 3]
    assert "provisioningState" not in body["properties"] and "id" not in body  # read-only fields stay home


def test_nodepool_checks_before_writing(client, arm):
    pools = f"{MC_PATH}/agentPools"
    arm.on("GET", pools, 200, {"value": [{"name": "nodepool1", "properties": {}}]})
    with pytest.raises(output.CLIError, match="Node pool nodepool1 already exists, please try a different name"):
        run(client, "aks", "nodepool", "add", "-g", "rg1", "--cluster-name", "c1", "-n", "nodepool1")
    with pytest.raises(output.CLIError, match="Node pool p9 doesnt exist, use 'aks nodepool list'"):
        run(client, "aks", "nodepool", "delete", "-g", "rg1", "--cluster-name", "c1", "-n", "p9")
    arm.on("GET", f"{pools}/nodepool1", 200, {"name": "nodepool1", "properties": {"count": 3}})
    with pytest.raises(output.CLIError, match="The new node count is the same as the current node count."):
        run(client, "aks", "nodepool", "scale", "-g", "rg1", "--cluster-name", "c1", "-n", "nodepool1")


def kubeconfig(name: str, user: str, secret: str) -> dict[str, Any]:
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                           "clusters": [{"name": name, "cluster": {"server": "https://x"}}],
                           "users": [{"name": user, "user": {"token": secret}}],
                           "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
                           "current-context": name})
    return {"kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(text.encode()).decode()}]}


def test_get_credentials_merges_like_az(client, arm, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    path = tmp_path / "kube" / "config"
    arm.on("POST", f"{MC_PATH}/listClusterUserCredential", 200, kubeconfig("c1", "clusterUser_rg1_c1", "a"))
    arm.on("POST", f"{MC_PATH}/listClusterAdminCredential", 200, kubeconfig("c1", "clusterAdmin_rg1_c1", "b"))
    run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", str(path))
    assert f'Merged "c1" as current context in {path}' in capsys.readouterr().err
    assert path.stat().st_mode & 0o777 == 0o600
    run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", str(path), "--admin")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "c1-admin"  # az renames the admin context
    assert {c["name"] for c in doc["contexts"]} == {"c1", "c1-admin"}
    arm.on("POST", f"{MC_PATH}/listClusterUserCredential", 200, kubeconfig("c1", "clusterUser_rg1_c1", "changed"))
    with pytest.raises(output.CLIError, match="^A different object named clusterUser_rg1_c1 already exists in users "
                                              "in your kubeconfig file.$"):
        run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", str(path))
    run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", str(path), "--overwrite-existing")
    users = {u["name"]: u["user"] for u in yaml.safe_load(path.read_text())["users"]}
    assert users["clusterUser_rg1_c1"] == {"token": "changed"}
    run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", "-")
    assert yaml.safe_load(capsys.readouterr().out)["users"][0]["user"] == {"token": "changed"}


def test_main_maps_failures_to_exit_codes(tmp_path, monkeypatch, capsys, arm):
    (tmp_path / "config.json").write_text(json.dumps({"endpoint": "https://lks.test", "token": "t0ken",
                                                      "ca_file": "x", "subscription_id": SUB}))
    monkeypatch.setenv("LKS_HOME", str(tmp_path))
    monkeypatch.setattr("lks.cli.client.urllib_transport", lambda ca_file: arm)
    arm.on("GET", RG_PATH, 404, {"error": {"code": "ResourceGroupNotFound", "message": "gone"}})
    assert main.main(["group", "show", "-n", "rg1"]) == 3
    assert capsys.readouterr().err.startswith("ERROR: (ResourceGroupNotFound) gone\nCode: ResourceGroupNotFound\n")
    arm.on("GET", RG_PATH, 200, {"id": RG_PATH, "name": "rg1", "location": "x", "properties": {}})
    assert main.main(["group", "show", "-n", "rg1", "--query", "name", "-o", "tsv"]) == 0
    assert capsys.readouterr().out == "rg1\n"
    monkeypatch.setenv("LKS_HOME", str(tmp_path / "nowhere"))
    assert main.main(["group", "list"]) == 1
    assert "Run 'lks up' first" in capsys.readouterr().err


# -- end to end: .venv/bin/lks against a real `lks up` ----------------------------------------------

def _nodes(cli, kubeconfig: Path, *selector: str) -> list[dict[str, Any]]:
    res = cli.server.kubectl("get", "nodes", "-o", "json", *selector, kubeconfig=kubeconfig)
    return json.loads(res.stdout)["items"]


def test_groups(cli):
    group = cli.json("group", "create", "-n", "cli-rg", "-l", "westeurope", "--tags", "team=a", "x")
    assert group["name"] == "cli-rg" and group["tags"] == {"team": "a", "x": ""}
    assert group["properties"] == {"provisioningState": "Succeeded"} and "resourceGroup" not in group
    assert cli.ok("group", "show", "-n", "cli-rg", "-o", "table").stdout == (
        "Location    Name\n----------  ------\nwesteurope  cli-rg\n")
    table = cli.ok("group", "list", "-o", "table").stdout.splitlines()
    assert table[0].split() == ["Name", "Location", "Status"]
    assert ["cli-rg", "westeurope", "Succeeded"] in [line.split() for line in table]
    assert cli.ok("group", "list", "--query", "[?name=='cli-rg'].location", "-o", "tsv").stdout == "westeurope\n"
    res = cli.ok("group", "delete", "-n", "cli-rg", "--yes")
    assert res.stdout == ""
    res = cli("group", "show", "-n", "cli-rg")
    assert res.returncode == 3
    assert res.stderr == ("ERROR: (ResourceGroupNotFound) Resource group 'cli-rg' could not be found.\n"
                          "Code: ResourceGroupNotFound\nMessage: Resource group 'cli-rg' could not be found.\n")


def test_cluster_lifecycle(cli, tmp_path):
    cli.ok("group", "create", "-n", "cli-aks", "-l", "westeurope", "-o", "none")
    mc = cli.json("aks", "create", "-g", "cli-aks", "-n", "c1", "--node-count", "1", "--generate-ssh-keys")
    assert mc["provisioningState"] == "Succeeded" and mc["powerState"] == {"code": "Running"}
    assert mc["location"] == "westeurope" and mc["resourceGroup"] == "cli-aks"  # the group's location, as az
    assert mc["agentPoolProfiles"][0]["name"] == "nodepool1" and mc["agentPoolProfiles"][0]["count"] == 1
    assert mc["networkProfile"]["dnsServiceIp"] == "10.0.0.10"

    table = cli.ok("aks", "show", "-g", "cli-aks", "-n", "c1", "-o", "table").stdout.splitlines()
    assert table[0].split() == ["Name", "Location", "ResourceGroup", "KubernetesVersion", "CurrentKubernetesVersion",
                                "ProvisioningState", "Fqdn"]
    assert table[2].split()[:3] == ["c1", "westeurope", "cli-aks"] and table[2].split()[5] == "Succeeded"
    listed = cli.ok("aks", "list", "-g", "cli-aks", "-o", "table").stdout.splitlines()
    assert len(listed) == 3 and listed[2].startswith("c1 ")
    assert cli.ok("aks", "list", "--query", "[?name=='c1'].agentPoolProfiles[0].count", "-o", "tsv").stdout == "1\n"

    scaled = cli.json("aks", "scale", "-g", "cli-aks", "-n", "c1", "-c", "2")
    assert scaled["agentPoolProfiles"][0]["count"] == 2 and scaled["provisioningState"] == "Succeeded"

    kubeconfig = tmp_path / "kubeconfig"
    res = cli.ok("aks", "get-credentials", "-g", "cli-aks", "-n", "c1", "-f", str(kubeconfig))
    assert res.stderr == f'WARNING: Merged "c1" as current context in {kubeconfig}\n'
    assert len(_nodes(cli, kubeconfig)) == 2
    get_nodes = cli.server.kubectl("get", "nodes", kubeconfig=kubeconfig).stdout
    assert get_nodes.count(" Ready ") == 2 and "aks-nodepool1-" in get_nodes

    pool = cli.json("aks", "nodepool", "add", "-g", "cli-aks", "--cluster-name", "c1", "-n", "user1", "-c", "1",
                    "--labels", "team=a", "--node-taints", "dedicated=a:NoSchedule")
    assert pool["provisioningState"] == "Succeeded" and pool["mode"] == "User" and pool["nodeLabels"] == {"team": "a"}
    assert pool["typePropertiesType"] == "VirtualMachineScaleSets" and pool["resourceGroup"] == "cli-aks"
    pools = cli.ok("aks", "nodepool", "list", "-g", "cli-aks", "--cluster-name", "c1", "-o", "table").stdout
    rows = [line.split() for line in pools.splitlines()]
    assert rows[0] == ["Name", "OsType", "KubernetesVersion", "VmSize", "OsDiskSizeGB", "Count", "MaxPods",
                       "ProvisioningState", "Mode"]
    assert [(r[0], r[5], r[8]) for r in rows[2:]] == [("nodepool1", "2", "System"), ("user1", "1", "User")]
    user_nodes = _nodes(cli, kubeconfig, "-l", "kubernetes.azure.com/agentpool=user1")
    assert len(user_nodes) == 1 and user_nodes[0]["metadata"]["labels"]["team"] == "a"
    assert user_nodes[0]["spec"]["taints"] == [{"key": "dedicated", "value": "a", "effect": "NoSchedule"}]

    res = cli("aks", "scale", "-g", "cli-aks", "-n", "c1", "-c", "3")
    assert res.returncode == 1 and "There are more than one node pool in the cluster" in res.stderr
    pool = cli.json("aks", "nodepool", "scale", "-g", "cli-aks", "--cluster-name", "c1", "-n", "user1", "-c", "2")
    assert pool["count"] == 2
    assert len(_nodes(cli, kubeconfig, "-l", "kubernetes.azure.com/agentpool=user1")) == 2
    pool = cli.json("aks", "nodepool", "update", "-g", "cli-aks", "--cluster-name", "c1", "-n", "user1",
                    "--labels", "team=b", "--node-taints", "")
    assert pool["nodeLabels"] == {"team": "b"} and pool["nodeTaints"] == []
    assert cli.ok("aks", "nodepool", "delete", "-g", "cli-aks", "--cluster-name", "c1", "-n", "user1").stdout == ""
    assert [n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] for n in _nodes(cli, kubeconfig)] == [
        "nodepool1", "nodepool1"]

    assert cli.ok("aks", "stop", "-g", "cli-aks", "-n", "c1").stdout == ""
    assert cli.ok("aks", "show", "-g", "cli-aks", "-n", "c1", "--query", "powerState.code", "-o", "tsv").stdout == (
        "Stopped\n")
    assert cli.server.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False).returncode != 0
    cli.ok("aks", "start", "-g", "cli-aks", "-n", "c1")
    assert len(_nodes(cli, kubeconfig)) == 2

    upgrades = cli.ok("aks", "get-upgrades", "-g", "cli-aks", "-n", "c1", "-o", "table").stdout.splitlines()
    assert upgrades[0].split() == ["Name", "ResourceGroup", "MasterVersion", "Upgrades"]
    assert upgrades[2].split()[:3] == ["default", "cli-aks", mc["currentKubernetesVersion"]]

    assert cli.ok("aks", "delete", "-g", "cli-aks", "-n", "c1", "--yes").stdout == ""
    res = cli("aks", "show", "-g", "cli-aks", "-n", "c1")
    assert res.returncode == 3 and "(ResourceNotFound)" in res.stderr
    assert cli.server.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False).returncode != 0
    cli.ok("group", "delete", "-n", "cli-aks", "--yes")


def test_credentials_conflict_and_overwrite(cli, tmp_path):
    cli.ok("group", "create", "-n", "cli-creds", "-l", "westeurope", "-o", "none")
    cli.ok("aks", "create", "-g", "cli-creds", "-n", "c2", "-c", "1", "-o", "none")
    kubeconfig = tmp_path / "config"
    cli.ok("aks", "get-credentials", "-g", "cli-creds", "-n", "c2", "-f", str(kubeconfig), "--admin")
    # every admin credential is a new client certificate: the second one conflicts, as in az
    res = cli("aks", "get-credentials", "-g", "cli-creds", "-n", "c2", "-f", str(kubeconfig), "--admin")
    assert res.returncode == 1
    assert res.stderr == ("ERROR: A different object named clusterAdmin_cli-creds_c2 already exists in users in your "
                          "kubeconfig file.\n")
    res = cli.ok("aks", "get-credentials", "-g", "cli-creds", "-n", "c2", "-f", str(kubeconfig), "--admin",
                 "--overwrite-existing")
    assert 'Merged "c2-admin" as current context' in res.stderr
    assert len(_nodes(cli, kubeconfig)) == 1  # the admin context, a client certificate in system:masters
    # the default file is ~/.kube/config (HOME is the test's own directory)
    cli.ok("aks", "get-credentials", "-g", "cli-creds", "-n", "c2")
    assert (Path(cli.env["HOME"]) / ".kube" / "config").exists()
    cli.ok("group", "delete", "-n", "cli-creds", "--yes")


def test_no_wait_returns_at_once(cli):
    cli.ok("group", "create", "-n", "cli-nowait", "-l", "westeurope", "-o", "none")
    res = cli.ok("aks", "create", "-g", "cli-nowait", "-n", "c3", "-c", "1", "--no-wait")
    assert res.stdout == "" and res.stderr == ""
    deadline = time.monotonic() + 60
    while cli.ok("aks", "show", "-g", "cli-nowait", "-n", "c3", "--query", "provisioningState", "-o",
                 "tsv").stdout != "Succeeded\n":
        assert time.monotonic() < deadline, "the cluster did not finish creating"
        time.sleep(0.3)
    assert cli.ok("aks", "delete", "-g", "cli-nowait", "-n", "c3", "--yes", "--no-wait").stdout == ""
    cli.ok("group", "delete", "-n", "cli-nowait", "--yes")


def test_errors(cli):
    res = cli("aks", "create", "-g", "no-such-group", "-n", "c1", "-c", "1")
    assert res.returncode == 3 and res.stdout == ""
    assert res.stderr == ("ERROR: (ResourceGroupNotFound) Resource group 'no-such-group' could not be found.\n"
                          "Code: ResourceGroupNotFound\nMessage: Resource group 'no-such-group' could not be found.\n")
    res = cli("aks", "delete", "-g", "no-such-group", "-n", "c1", input="")  # stdin is not a terminal
    assert res.returncode == 1
    assert res.stderr == ("WARNING: Unable to prompt for confirmation as no tty available. Use --yes.\n"
                          "ERROR: Operation cancelled.\n")
    res = cli("aks", "show", "-n", "c1")
    assert res.returncode == 2 and "the following arguments are required: --resource-group/-g" in res.stderr
    res = cli("aks", "nodepool", "list", "-g", "demo", "--cluster-name", "nope")
    assert res.returncode == 3 and "(ResourceNotFound)" in res.stderr


def test_versions(cli):
    table = cli.ok("aks", "get-versions", "-l", "westeurope", "-o", "table").stdout.splitlines()
    assert table[0].split() == ["KubernetesVersion", "Upgrades", "SupportPlan"]
    versions = [line.split()[0] for line in table[2:]]
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
    data = cli.json("aks", "get-versions", "-l", "westeurope")
    assert sum(1 for v in data["values"] if v.get("isDefault")) == 1
