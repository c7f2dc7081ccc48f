"""Upgrades through the real clients against one `lks up`: AKS's 400s for bad versions and bad
upgrade settings through the Azure SDK (nothing changes), `upgradeNodeImageVersion` through
the SDK, what-if and rollback through the `lks` CLI, and the PDB blocker what-if finds in the
demo cluster through kubectl, and a removed API in use (the deprecated-API gate's blocker)."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPool,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterSKU,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from e2e.conftest import LKS, StaticToken, lks_cli, lks_json, wait_until
from e2e.test_deprecated_api_gate import FLOW_SCHEMA

GROUP, NAME = "up-rg", "up"
OLD = "1.34.12"  # Ubuntu 22.04 node images up to 1.34, 24.04 from 1.35


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-upgrade-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aks(server) -> ContainerServiceClient:
    config = json.loads((server.home / "config.json").read_text())
    ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                             connection_verify=config["ca_file"]).resource_groups.create_or_update(
        GROUP, {"location": "westeurope"})
    client = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                    base_url=config["endpoint"], connection_verify=config["ca_file"])
    client.managed_clusters.begin_create_or_update(GROUP, NAME, ManagedCluster(
        location="westeurope", kubernetes_version=OLD, agent_pool_profiles=[
            ManagedClusterAgentPoolProfile(name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System",
                                           os_type="Linux")])).result()
    return client


def _refused(call, code: str) -> dict:
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400, err.value
    assert err.value.error.code == code, err.value.error
    return {"message": err.value.error.message, "target": err.value.error.target}


@pytest.mark.parametrize(("version", "code", "message"), [
    pytest.param("1.34.99", "K8sVersionNotSupported", "has invalid version 1.34.99", id="unknown"),
    pytest.param("1.36.4", "OperationNotAllowed", f"Upgrading Kubernetes version {OLD} to 1.36.4 is not allowed",
                 id="skipped-minor"),
    pytest.param("1.33.8", "OperationNotAllowed", f"Downgrading Kubernetes version {OLD} to 1.33.8 is not allowed",
                 id="downgrade"),
])
def test_bad_versions_are_refused_and_nothing_changes(aks, version, code, message):
    mc = aks.managed_clusters.get(GROUP, NAME)
    mc.kubernetes_version = version
    for pool in mc.agent_pool_profiles:
        pool.orchestrator_version = version
    refused = _refused(lambda: aks.managed_clusters.begin_create_or_update(GROUP, NAME, mc), code)
    assert message in refused["message"]
    after = aks.managed_clusters.get(GROUP, NAME)
    assert after.current_kubernetes_version == OLD and after.provisioning_state == "Succeeded"


@pytest.mark.parametrize(("settings", "field"), [
    pytest.param({"max_surge": "0", "max_unavailable": "0"}, "maxSurge", id="surge-0-unavailable-0"),
    pytest.param({"max_surge": "ten"}, "maxSurge", id="surge-not-a-number"),
    pytest.param({"max_surge": "150%"}, "maxSurge", id="surge-over-100%"),
    pytest.param({"drain_timeout_in_minutes": 0}, "drainTimeoutInMinutes", id="drain-0"),
    pytest.param({"drain_timeout_in_minutes": 1441}, "drainTimeoutInMinutes", id="drain-over-a-day"),
    pytest.param({"node_soak_duration_in_minutes": 31}, "nodeSoakDurationInMinutes", id="soak-31"),
    pytest.param({"undrainable_node_behavior": "Evict"}, "undrainableNodeBehavior", id="behavior"),
])
def test_bad_upgrade_settings_are_refused_and_nothing_changes(aks, settings, field):
    pool = aks.agent_pools.get(GROUP, NAME, "nodepool1")
    before = pool.upgrade_settings.as_dict()
    body = AgentPool(properties=pool.properties)
    for key, value in settings.items():
        setattr(body.properties.upgrade_settings, key, value)
    refused = _refused(lambda: aks.agent_pools.begin_create_or_update(GROUP, NAME, "nodepool1", body),
                       "InvalidParameter")
    assert refused["target"] == f"agentPoolProfile.upgradeSettings.{field}"
    after = aks.agent_pools.get(GROUP, NAME, "nodepool1")
    assert after.upgrade_settings.as_dict() == before and after.provisioning_state == "Succeeded"


def test_good_upgrade_settings_are_kept(aks):
    pool = aks.agent_pools.get(GROUP, NAME, "nodepool1")
    pool.upgrade_settings.max_surge = "33%"
    pool.upgrade_settings.drain_timeout_in_minutes = 5
    pool.upgrade_settings.undrainable_node_behavior = "Cordon"
    after = aks.agent_pools.begin_create_or_update(GROUP, NAME, "nodepool1", AgentPool(properties=pool.properties))
    settings = after.result().upgrade_settings
    assert (settings.max_surge, settings.drain_timeout_in_minutes, settings.undrainable_node_behavior) == (
        "33%", 5, "Cordon")


def test_node_image_upgrade_through_the_sdk(aks):
    pool = aks.agent_pools.get(GROUP, NAME, "nodepool1")
    assert pool.node_image_version.startswith("AKSUbuntu-2204gen2containerd-")
    profile = aks.agent_pools.get_upgrade_profile(GROUP, NAME, "nodepool1")
    assert profile.latest_node_image_version == pool.node_image_version  # a new pool has the newest
    assert aks.agent_pools.begin_upgrade_node_image_version(GROUP, NAME, "nodepool1").result() is None
    after = aks.agent_pools.get(GROUP, NAME, "nodepool1")
    assert after.provisioning_state == "Succeeded" and after.node_image_version == profile.latest_node_image_version


def test_what_if_then_upgrade_then_rollback_with_the_cli(server, aks):
    def what_if():
        return lks_json(server, "aks", "upgrade", "-g", GROUP, "-n", NAME, "-k", "1.35.9", "--what-if")

    # the add-ons' budgets (coredns, metrics-server: minAvailable 1) block until both replicas are Ready
    what = wait_until(lambda: (w := what_if())["canProceed"] and w, timeout=60, what="no blockers")
    assert what["blockers"] == []
    assert what["controlPlane"] == {"currentKubernetesVersion": OLD, "kubernetesVersion": "1.35.9", "upgrade": True}
    [plan] = what["agentPools"]
    assert (plan["orchestratorVersion"], plan["nodeReplacements"], plan["maxSurge"]) == ("1.35.9", 1, 1)
    assert plan["nodeImageVersion"].startswith("AKSUbuntu-2404gen2containerd-")
    assert what["estimatedNodeReplacements"] == 1
    assert aks.managed_clusters.get(GROUP, NAME).current_kubernetes_version == OLD  # what-if changed nothing

    old_image = aks.agent_pools.get(GROUP, NAME, "nodepool1").node_image_version
    upgraded = lks_json(server, "aks", "upgrade", "-g", GROUP, "-n", NAME, "-k", "1.35.9", "--yes")
    assert upgraded["currentKubernetesVersion"] == "1.35.9"
    assert upgraded["agentPoolProfiles"][0]["currentOrchestratorVersion"] == "1.35.9"
    assert upgraded["agentPoolProfiles"][0]["nodeImageVersion"].startswith("AKSUbuntu-2404gen2containerd-")

    versions = lks_json(server, "aks", "nodepool", "get-rollback-versions", "-g", GROUP, "--cluster-name", NAME,
                        "-n", "nodepool1")
    assert [(v["orchestratorVersion"], v["nodeImageVersion"]) for v in versions] == [(OLD, old_image)]
    res = lks_cli(server, "aks", "nodepool", "rollback", "-g", GROUP, "--cluster-name", NAME, "-n", "nodepool1",
                  "-o", "json")
    assert res.returncode == 0, res.stderr
    rolled = json.loads(res.stdout)
    assert (rolled["currentOrchestratorVersion"], rolled["nodeImageVersion"]) == (OLD, old_image)
    assert rolled["provisioningState"] == "Succeeded"
    # the upgrade it undid is what it may roll back to now
    versions = lks_json(server, "aks", "nodepool", "get-rollback-versions", "-g", GROUP, "--cluster-name", NAME,
                        "-n", "nodepool1")
    assert versions[0]["orchestratorVersion"] == "1.35.9"


def test_what_if_names_pools_too_far_behind(server, aks):
    lks_json(server, "aks", "nodepool", "add", "-g", GROUP, "--cluster-name", NAME, "-n", "old", "-c", "1",
             "-k", "1.32.12")
    what = lks_json(server, "aks", "upgrade", "-g", GROUP, "-n", NAME, "-k", "1.36.4", "--control-plane-only",
                    "--what-if")
    assert what["canProceed"] is False
    assert [b["code"] for b in what["blockers"]] == ["NodePoolMcVersionIncompatible"]
    assert "Node pool version 1.32.12 and control plane version 1.36.4" in what["blockers"][0]["message"]


def test_what_if_finds_the_budget_that_would_block_the_drain(server):
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""
    server.kubectl("apply", "-f", "-", input=manifest)
    server.kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    wait_until(lambda: server.kubectl("get", "pdb", "web", "-o", "jsonpath={.status.currentHealthy}").stdout == "1",
               what="the budget to count the pod")
    what = lks_json(server, "aks", "upgrade", "-g", "demo", "-n", "demo", "-k", "1.37.2", "--what-if")
    assert what["canProceed"] is False and what["estimatedNodeReplacements"] == 3
    [blocker] = what["blockers"]
    assert blocker["code"] == "PodDrainFailure" and blocker["target"] == "default/web"
    assert "allows 0 disruptions" in blocker["message"] and "default/web-" in blocker["message"]
    server.kubectl("scale", "deployment/web", "--replicas=2")
    wait_until(lambda: server.kubectl("get", "pdb", "web", "-o", "jsonpath={.status.disruptionsAllowed}").stdout
               == "1", what="the budget to allow a disruption")
    what = lks_json(server, "aks", "upgrade", "-g", "demo", "-n", "demo", "-k", "1.37.2", "--what-if")
    assert what["canProceed"] is True and what["blockers"] == []


def test_what_if_names_a_removed_api_in_use(server, aks, tmp_path):
    aks.managed_clusters.begin_create_or_update(GROUP, "lts", ManagedCluster(
        location="westeurope", kubernetes_version="1.31", sku=ManagedClusterSKU(name="Base", tier="Premium"),
        support_plan="AKSLongTermSupport", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
            name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, "lts").kubeconfigs[0].value)
    server.kubectl("create", "-f", "-", input=FLOW_SCHEMA, kubeconfig=kubeconfig)
    what = lks_json(server, "aks", "upgrade", "-g", GROUP, "-n", "lts", "-k", "1.32.12", "--control-plane-only",
                    "--what-if")
    assert what["canProceed"] is False
    [blocker] = what["blockers"]
    assert (blocker["code"], blocker["subcode"]) == ("ValidationError", "UpgradeBlockedOnDeprecatedAPIUsage")
    assert "flowcontrol.apiserver.k8s.io.flowschemas.v1beta3" in blocker["message"]
    assert aks.managed_clusters.get(GROUP, "lts").current_kubernetes_version == "1.31.14"


@pytest.mark.parametrize("label", ["node-role.kubernetes.io/web", "node-restriction.kubernetes.io/team"])
def test_a_pool_label_the_kubelet_could_not_set_is_refused_as_aks_does(aks, label):
    pool = AgentPool(count=1, vm_size="Standard_DS2_v2", mode="User", node_labels={label: "x"})
    refused = _refused(lambda: aks.agent_pools.begin_create_or_update(GROUP, NAME, "labels", pool), "BadRequest")
    assert refused["message"].startswith("For Kubernetes version greater than or equal to 1.16, node label keys in "
                                         "the 'kubernetes.io' or 'k8s.io' namespace must begin with an allowed prefix")
    assert refused["target"] == f"{label}=x"
    assert "labels" not in [p.name for p in aks.agent_pools.list(GROUP, NAME)]
