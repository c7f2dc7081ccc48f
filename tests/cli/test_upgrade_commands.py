"""`lks aks upgrade` and `lks aks nodepool upgrade|get-upgrades|get-rollback-versions|rollback`
against a scripted management API: the requests az 2.91 sends (acs/custom.py `aks_upgrade`,
`aks_agentpool_upgrade`, `aks_agentpool_rollback`), its prompts, messages and conflicts."""

from __future__ import annotations

import urllib.parse

import pytest

from cli.test_cli import MC_PATH, OP_URL, SUB, FakeARM, cluster, parse, run
from lks.cli import output
from lks.cli.client import Client, Config

POOL_PATH = f"{MC_PATH}/agentPools/pool0"
OP_PATH = urllib.parse.urlsplit(OP_URL).path


@pytest.fixture
def arm() -> FakeARM:
    return FakeARM()


@pytest.fixture
def client(arm: FakeARM) -> Client:
    return Client(Config("https://lks.test", "t0ken", "/nonexistent/ca.crt", SUB), transport=arm)


@pytest.fixture
def no_tty(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)


def test_upgrade_puts_the_cluster_and_every_pool(client, arm):
    arm.on("GET", MC_PATH, 200, cluster(pools=2))
    arm.on("PUT", MC_PATH, 200, cluster(pools=2))
    run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37", "--yes")
    props = arm.sent("PUT", MC_PATH)["properties"]
    assert props["kubernetesVersion"] == "1.37"
    assert [p["orchestratorVersion"] for p in props["agentPoolProfiles"]] == ["1.37", "1.37"]
    assert "provisioningState" not in props and "currentKubernetesVersion" not in props
    assert all("currentOrchestratorVersion" not in p for p in props["agentPoolProfiles"])


def test_control_plane_only_leaves_the_pools(client, arm):
    arm.on("GET", MC_PATH, 200, cluster(pools=2))
    arm.on("PUT", MC_PATH, 200, cluster(pools=2))
    run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37.2", "--control-plane-only", "--yes")
    props = arm.sent("PUT", MC_PATH)["properties"]
    assert props["kubernetesVersion"] == "1.37.2"
    assert [p["orchestratorVersion"] for p in props["agentPoolProfiles"]] == ["1.36.4", "1.36.4"]


def test_upgrade_prompts_need_a_terminal_or_yes(client, arm, no_tty):
    with pytest.raises(output.CLIError, match="Unable to prompt for confirmation as no tty available. Use --yes."):
        run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37")
    assert not arm.calls


def test_upgrade_prompts_and_a_no_sends_nothing(client, arm, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["y", "n"])
    prompts = []
    monkeypatch.setattr("builtins.input", lambda text: prompts.append(text) or next(answers))
    arm.on("GET", MC_PATH, 200, cluster())
    assert run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37") is None
    assert prompts == [
        "Kubernetes may be unavailable during cluster upgrades.\n Are you sure you want to perform this operation? "
        "(y/N): ",
        "Since --control-plane-only parameter is not specified, this will upgrade the control plane AND all "
        "nodepools to version 1.37. Continue? (y/N): "]
    assert [c[0] for c in arm.calls] == ["GET"]


def test_same_version_warns_as_az(client, arm, capsys):
    arm.on("GET", MC_PATH, 200, cluster())
    arm.on("PUT", MC_PATH, 200, cluster())
    run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "--yes")
    assert ("The cluster is already on version 1.36 and is not in a failed state. No operations will occur when "
            "upgrading to the same version if the cluster is not in a failed state.") in capsys.readouterr().err
    assert arm.sent("PUT", MC_PATH)["properties"]["kubernetesVersion"] == ""  # az sends the empty version


def test_node_image_only(client, arm):
    arm.on("GET", MC_PATH, 200, cluster(pools=2))  # az reads the cluster before it checks the flags
    with pytest.raises(output.CLIError, match="^Conflicting flags. Upgrading the Kubernetes version will also"):
        run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37", "--node-image-only", "--yes")
    for i in range(2):
        arm.on("POST", f"{MC_PATH}/agentPools/pool{i}/upgradeNodeImageVersion", 202, None,
               Azure_AsyncOperation=OP_URL, Retry_After="0")
    arm.on("GET", OP_PATH, 200, {"status": "Succeeded"})
    result = run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "--node-image-only", "--yes")
    posts = [c[1] for c in arm.calls if c[0] == "POST"]
    assert posts == [f"{MC_PATH}/agentPools/pool{i}/upgradeNodeImageVersion" for i in range(2)]
    assert not [c for c in arm.calls if c[0] == "PUT"]
    assert result["name"] == "c1" and arm.calls[-1][:2] == ("GET", MC_PATH)


def test_force_upgrade_sets_the_override(client, arm):
    arm.on("GET", MC_PATH, 200, cluster())
    arm.on("PUT", MC_PATH, 200, cluster())
    run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37", "--enable-force-upgrade", "--yes")
    override = arm.sent("PUT", MC_PATH)["properties"]["upgradeSettings"]["overrideSettings"]
    assert override["forceUpgrade"] is True and override["until"]  # three days on, as az
    with pytest.raises(output.CLIError, match="Providing both --disable-force-upgrade and --enable-force-upgrade"):
        run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37", "--enable-force-upgrade",
            "--disable-force-upgrade", "--yes")


def test_what_if_asks_without_prompting(client, arm, no_tty):
    arm.on("GET", MC_PATH, 200, cluster())
    arm.on("PUT", MC_PATH, 200, {"id": MC_PATH + "/whatIf", "name": "whatIf", "properties": {
        "estimatedNodeReplacements": 1, "blockers": [], "canProceed": True}})
    result = run(client, "aks", "upgrade", "-g", "rg1", "-n", "c1", "-k", "1.37", "--what-if")
    method, path, query, body = [c for c in arm.calls if c[0] == "PUT"][-1]
    assert query["whatIf"] == ["true"] and body["properties"]["kubernetesVersion"] == "1.37"
    assert result["estimatedNodeReplacements"] == 1 and result["canProceed"] is True


def test_nodepool_upgrade(client, arm):
    pool = {"name": "pool0", "properties": {**cluster()["properties"]["agentPoolProfiles"][0],
                                             "upgradeSettings": {"maxSurge": "10%"}, "eTag": "e1"}}
    arm.on("GET", POOL_PATH, 200, pool)
    arm.on("PUT", POOL_PATH, 200, pool)
    run(client, "aks", "nodepool", "upgrade", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0", "-k", "1.37.2",
        "--max-surge", "33%", "--drain-timeout", "5", "--node-soak-duration", "0", "--undrainable-node-behavior",
        "Cordon")
    props = arm.sent("PUT", POOL_PATH)["properties"]
    assert props["orchestratorVersion"] == "1.37.2"
    assert props["upgradeSettings"] == {"maxSurge": "33%", "drainTimeoutInMinutes": 5,
                                        "nodeSoakDurationInMinutes": 0, "undrainableNodeBehavior": "Cordon"}
    assert "eTag" not in props and "provisioningState" not in props
    with pytest.raises(output.CLIError, match="^Conflicting flags. Unable to specify max-surge"):
        run(client, "aks", "nodepool", "upgrade", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0",
            "--node-image-only", "--max-surge", "1")


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("x", "--max-surge should be an int or percentage", id="not-a-number"),
    pytest.param("-1", "--max-surge must be positive", id="negative"),
])
def test_nodepool_upgrade_checks_max_surge_like_az(value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("aks", "nodepool", "upgrade", "-g", "rg1", "--cluster-name", "c1", "-n", "p", f"--max-surge={value}")
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_nodepool_node_image_only_posts_the_action(client, arm):
    arm.on("POST", f"{POOL_PATH}/upgradeNodeImageVersion", 202, None, Azure_AsyncOperation=OP_URL, Retry_After="0")
    arm.on("GET", OP_PATH, 200, {"status": "Succeeded"})
    assert run(client, "aks", "nodepool", "upgrade", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0",
               "--node-image-only") is None
    assert [c[:2] for c in arm.calls][0] == ("POST", f"{POOL_PATH}/upgradeNodeImageVersion")


def test_rollback_takes_the_most_recent_version(client, arm, capsys):
    arm.on("GET", MC_PATH, 200, cluster())
    profile = {"properties": {"kubernetesVersion": "1.36.4", "recentlyUsedVersions": [
        {"orchestratorVersion": "1.34.12", "nodeImageVersion": "img-a", "timestamp": "2026-11-01T00:00:00Z"},
        {"orchestratorVersion": "1.35.9", "nodeImageVersion": "img-b", "timestamp": "2026-12-01T00:00:00Z"}]}}
    arm.on("GET", f"{POOL_PATH}/upgradeProfiles/default", 200, profile)
    pool = {"name": "pool0", "properties": cluster()["properties"]["agentPoolProfiles"][0]}
    arm.on("GET", POOL_PATH, 200, pool)
    arm.on("PUT", POOL_PATH, 200, pool)
    run(client, "aks", "nodepool", "rollback", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0")
    props = arm.sent("PUT", POOL_PATH)["properties"]
    assert (props["orchestratorVersion"], props["nodeImageVersion"]) == ("1.35.9", "img-b")
    table = output.format_result(run(client, "aks", "nodepool", "get-rollback-versions", "-g", "rg1",
                                     "--cluster-name", "c1", "-n", "pool0"),
                                 output="table", table=parse("aks", "nodepool", "get-rollback-versions", "-g", "rg1",
                                                             "--cluster-name", "c1", "-n", "p").table)
    assert table.splitlines()[0].split() == ["KubernetesVersion", "NodeImageVersion", "Timestamp"]


def test_rollback_without_history(client, arm):
    arm.on("GET", MC_PATH, 200, {**cluster(), "properties": {**cluster()["properties"], "autoUpgradeProfile": {
        "upgradeChannel": "none", "nodeOSUpgradeChannel": "None"}}})
    arm.on("GET", f"{POOL_PATH}/upgradeProfiles/default", 200, {"properties": {"kubernetesVersion": "1.36.4"}})
    with pytest.raises(output.CLIError, match="No rollback versions available. The nodepool must have been upgraded"):
        run(client, "aks", "nodepool", "rollback", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0")
    assert not [c for c in arm.calls if c[0] == "PUT"]


def test_nodepool_add_and_update_take_the_upgrade_settings(client, arm):
    pools = f"{MC_PATH}/agentPools"
    arm.on("GET", pools, 200, {"value": []})
    arm.on("PUT", POOL_PATH, 200, {"name": "pool0", "properties": {}})
    run(client, "aks", "nodepool", "add", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0", "--max-surge", "2",
        "--node-soak-duration", "3", "--no-wait")
    assert arm.sent("PUT", POOL_PATH)["properties"]["upgradeSettings"] == {"maxSurge": "2",
                                                                           "nodeSoakDurationInMinutes": 3}
    arm.on("GET", POOL_PATH, 200, {"name": "pool0", "properties": {"upgradeSettings": {
        "maxSurge": "10%", "maxUnavailable": "0"}, "provisioningState": "Succeeded"}})
    run(client, "aks", "nodepool", "update", "-g", "rg1", "--cluster-name", "c1", "-n", "pool0",
        "--drain-timeout", "10", "--undrainable-node-behavior", "Cordon", "--no-wait")
    assert arm.sent("PUT", POOL_PATH)["properties"] == {"upgradeSettings": {
        "maxSurge": "10%", "maxUnavailable": "0", "drainTimeoutInMinutes": 10, "undrainableNodeBehavior": "Cordon"}}
