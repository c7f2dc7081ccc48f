"""The real `az` drives lks end to end as an AKS user does, signed in as a service principal:
cloud register and set, login, resource group, cluster create / list / show / get-credentials
(then kubectl with that kubeconfig), node pools, stop and start, upgrade, scale, update,
maintenance windows, add-ons, command invoke, delete. Each test is one step of that story and needs the ones before it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e.conftest import lks_json

from .conftest import AzError

GROUP, CLUSTER, LOCATION = "az-rg", "az-aks", "eastus"
AUDIENCE = "api://AzureADTokenExchange"  # what workload identity federation asks of a token


@pytest.fixture(scope="module")
def sp(lks, az) -> dict[str, Any]:
    """A service principal that is Owner of the subscription (appId, password, tenant), made
    with the lks CLI as the bootstrap owner."""
    return lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-e2e", "--role", "Owner",
                    "--scopes", f"/subscriptions/{az.config['subscription_id']}")


@pytest.fixture(scope="module")
def signed_in(az, sp) -> dict[str, Any]:
    """`az cloud register` (endpoints discovered from lks), `az cloud set`, then a service
    principal login with its secret; the account az shows."""
    az("cloud", "register", "-n", "lks", "--endpoint-resource-manager", az.server.endpoint)
    az("cloud", "set", "-n", "lks")
    az("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"], "--tenant", sp["tenant"])
    return az("account", "show")


def test_login(signed_in, az):
    assert signed_in["id"] == az.config["subscription_id"] and signed_in["tenantId"] == az.config["tenant_id"]
    assert signed_in["user"]["type"] == "servicePrincipal" and signed_in["state"] == "Enabled"
    assert az("cloud", "show")["name"] == "lks"


def test_group_and_cluster_create(signed_in, az):
    assert az("group", "create", "-n", GROUP, "-l", LOCATION)["properties"]["provisioningState"] == "Succeeded"
    versions = az("aks", "get-versions", "-l", LOCATION)["values"]
    older = sorted((v["version"] for v in versions if not v.get("isPreview")), key=_semver)[-2]
    cluster = az("aks", "create", "-g", GROUP, "-n", CLUSTER, "--node-count", "1", "--no-ssh-key",
                 "-k", older, "--nodepool-name", "nodepool1", "--enable-oidc-issuer")
    assert cluster["provisioningState"] == "Succeeded" and cluster["kubernetesVersion"].startswith(older)
    assert cluster["servicePrincipalProfile"]["clientId"] == "msi"
    assert cluster["identity"]["tenantId"] == az.config["tenant_id"]


def test_list_and_show(signed_in, az):
    assert [c["name"] for c in az("aks", "list", "-g", GROUP)] == [CLUSTER]
    assert CLUSTER in [c["name"] for c in az("aks", "list")]
    shown = az("aks", "show", "-g", GROUP, "-n", CLUSTER)
    assert shown["agentPoolProfiles"][0]["count"] == 1 and shown["powerState"]["code"] == "Running"


def test_get_credentials_then_kubectl(signed_in, az, lks):
    path = az.home / "aks.kubeconfig"
    az("aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "--file", str(path))
    nodes = lks.kubectl("get", "nodes", "-o", "name", kubeconfig=path).stdout.split()
    assert len(nodes) == 1 and "aks-nodepool1-" in nodes[0]


def test_federated_token_login(signed_in, az, lks, sp):
    """`az login --federated-token`: a service account token from the cluster's OIDC issuer,
    trusted through a federated credential on the app."""
    kubeconfig = az.home / "aks.kubeconfig"
    lks.kubectl("create", "serviceaccount", "deployer", kubeconfig=kubeconfig)
    token = lks.kubectl("create", "token", "deployer", "--audience", AUDIENCE, kubeconfig=kubeconfig).stdout.strip()
    oidc = az("aks", "show", "-g", GROUP, "-n", CLUSTER)["oidcIssuerProfile"]
    issuer = oidc.get("issuerUrl") or oidc["issuerURL"]
    # the directory's administrator trusts the issuer (az as this principal may not: Graph's 403)
    lks_json(lks, "ad", "app", "federated-credential", "create", "--id", sp["appId"], "--parameters", json.dumps(
        {"name": "deployer", "issuer": issuer, "subject": "system:serviceaccount:default:deployer",
         "audiences": [AUDIENCE]}))
    az("login", "--service-principal", "-u", sp["appId"], "--federated-token", token, "--tenant", sp["tenant"])
    assert az("account", "show")["user"] == {"name": sp["appId"], "type": "servicePrincipal"}
    assert az("aks", "show", "-g", GROUP, "-n", CLUSTER)["name"] == CLUSTER


def test_nodepools(signed_in, az):
    added = az("aks", "nodepool", "add", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pool2", "--node-count", "1")
    assert added["count"] == 1 and added["mode"] == "User"
    scaled = az("aks", "nodepool", "scale", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pool2", "--node-count", "2")
    assert scaled["count"] == 2
    pools = az("aks", "nodepool", "list", "-g", GROUP, "--cluster-name", CLUSTER)
    assert {p["name"]: p["count"] for p in pools} == {"nodepool1": 1, "pool2": 2}


def test_stop_and_start(signed_in, az):
    az("aks", "stop", "-g", GROUP, "-n", CLUSTER)
    assert az("aks", "show", "-g", GROUP, "-n", CLUSTER)["powerState"]["code"] == "Stopped"
    az("aks", "start", "-g", GROUP, "-n", CLUSTER)
    assert az("aks", "show", "-g", GROUP, "-n", CLUSTER)["powerState"]["code"] == "Running"


def test_upgrade(signed_in, az):
    upgrades = az("aks", "get-upgrades", "-g", GROUP, "-n", CLUSTER)["controlPlaneProfile"]["upgrades"]
    target = max((u["kubernetesVersion"] for u in upgrades), key=_semver)
    upgraded = az("aks", "upgrade", "-g", GROUP, "-n", CLUSTER, "-k", target, "--yes")
    assert upgraded["currentKubernetesVersion"] == target
    assert {p["currentOrchestratorVersion"] for p in upgraded["agentPoolProfiles"]} == {target}


def test_scale_update_and_maintenance(signed_in, az):
    """The README's other everyday commands, as az sends them."""
    scaled = az("aks", "scale", "-g", GROUP, "-n", CLUSTER, "--node-count", "2", "--nodepool-name", "nodepool1")
    assert {p["name"]: p["count"] for p in scaled["agentPoolProfiles"]}["nodepool1"] == 2
    updated = az("aks", "update", "-g", GROUP, "-n", CLUSTER, "--auto-upgrade-channel", "patch")
    assert updated["autoUpgradeProfile"]["upgradeChannel"] == "patch"
    pool = az("aks", "nodepool", "update", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pool2",
              "--enable-cluster-autoscaler", "--min-count", "1", "--max-count", "5")
    assert (pool["enableAutoScaling"], pool["minCount"], pool["maxCount"]) == (True, 1, 5)
    window = az("aks", "maintenanceconfiguration", "add", "-g", GROUP, "--cluster-name", CLUSTER,
                "-n", "aksManagedAutoUpgradeSchedule", "--schedule-type", "Weekly", "--day-of-week", "Saturday",
                "--interval-weeks", "1", "--duration", "8", "--start-time", "00:00")
    assert window["maintenanceWindow"]["schedule"]["weekly"] == {"dayOfWeek": "Saturday", "intervalWeeks": 1}
    shown = az("aks", "nodepool", "show", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pool2")
    assert shown["enableAutoScaling"] is True
    az("aks", "nodepool", "delete", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pool2")
    assert [p["name"] for p in az("aks", "nodepool", "list", "-g", GROUP, "--cluster-name", CLUSTER)] == ["nodepool1"]


def test_addons(signed_in, az):
    cluster = az("aks", "enable-addons", "-g", GROUP, "-n", CLUSTER, "-a", "azure-policy")
    assert cluster["addonProfiles"]["azurepolicy"]["enabled"] is True
    cluster = az("aks", "disable-addons", "-g", GROUP, "-n", CLUSTER, "-a", "azure-policy")
    assert cluster["addonProfiles"]["azurepolicy"]["enabled"] is False


def test_command_invoke(signed_in, az):
    result = az("aks", "command", "invoke", "-g", GROUP, "-n", CLUSTER, "--command", "kubectl get nodes")
    assert result["exitCode"] == 0 and "aks-nodepool1-" in result["logs"]


def test_delete(signed_in, az):
    az("aks", "delete", "-g", GROUP, "-n", CLUSTER, "--yes")
    assert az("aks", "list", "-g", GROUP) == []
    az("group", "delete", "-n", GROUP, "--yes")
    assert az("group", "exists", "-n", GROUP) is False


def test_a_principal_without_roles_sees_no_subscription(signed_in, az, lks):
    nobody = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-nobody")
    login = ("login", "--service-principal", "-u", nobody["appId"], "-p", nobody["password"],
             "--tenant", nobody["tenant"])
    with pytest.raises(AzError) as err:
        az(*login)
    assert f"No subscriptions found for {nobody['appId']}." in err.value.stderr
    accounts = az(*login, "--allow-no-subscriptions")
    assert [a["id"] for a in accounts] == [nobody["tenant"]]  # az's tenant-level account


def _semver(version: str) -> tuple[int, ...]:
    return tuple(map(int, version.split(".")))
