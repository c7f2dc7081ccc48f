"""AKS's deprecated-API gate, end to end through the Azure SDK, kubectl and the `lks` CLI: an
LTS 1.31 cluster (Premium tier, AKSLongTermSupport; without them AKS's LTS-only error) where
kubectl creates a FlowSchema through flowcontrol.apiserver.k8s.io/v1beta3 and prints upstream's
deprecation warning; the upgrade to 1.32, which stops serving v1beta3, is refused with AKS's
`ValidationError`/`UpgradeBlockedOnDeprecatedAPIUsage` and changes nothing; an override whose
`until` has passed does not help; `lks aks update --enable-force-upgrade` lets it through;
afterwards v1beta3 answers 404 and the FlowSchema is read through v1."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    ClusterUpgradeSettings,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterSKU,
    UpgradeOverrideSettings,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import LKS, StaticToken, lks_json

GROUP, CLUSTER = "gate-rg", "gate1"
FLOW_SCHEMA = """apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata:
  name: legacy-client
spec:
  priorityLevelConfiguration:
    name: global-default
  matchingPrecedence: 900
  rules:
  - subjects:
    - kind: Group
      group:
        name: system:authenticated
    resourceRules:
    - verbs: ["get"]
      apiGroups: [""]
      resources: ["configmaps"]
      namespaces: ["*"]
"""
WARNING = ("Warning: flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema is deprecated in v1.29+, unavailable in "
           "v1.32+; use flowcontrol.apiserver.k8s.io/v1 FlowSchema")
BLOCKED = ("Control Plane upgrade is blocked due to recent usage of a Kubernetes API deprecated in the specified "
           "version. Please refer to https://kubernetes.io/docs/reference/using-api/deprecation-guide to migrate the "
           "usage. To bypass this error, set enable-force-upgrade in upgradeSettings.overrideSettings. Bypassing this "
           "error without migrating usage will result in the deprecated Kubernetes API calls failing. Usage details: "
           "1 error occurred:\n\t* usage has been detected on API flowcontrol.apiserver.k8s.io.flowschemas.v1beta3, "
           "and was recently seen at: ")


@pytest.fixture(scope="module")
def server(lks: LKS) -> LKS:
    return lks  # the session's service: this module keeps to a group and a cluster of its own


@pytest.fixture(scope="module")
def aks(server: LKS) -> ContainerServiceClient:
    config = json.loads((server.home / "config.json").read_text())
    resources = ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                         base_url=config["endpoint"], connection_verify=config["ca_file"])
    resources.resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                  base_url=config["endpoint"], connection_verify=config["ca_file"])


def _cluster(tier: str, plan: str | None) -> ManagedCluster:
    return ManagedCluster(location="westeurope", dns_prefix="gate", kubernetes_version="1.31",
                          sku=ManagedClusterSKU(name="Base", tier=tier), support_plan=plan,
                          agent_pool_profiles=[ManagedClusterAgentPoolProfile(
                              name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])


def _refused(fn, *args) -> dict:
    with pytest.raises(HttpResponseError) as err:
        fn(*args)
    assert err.value.status_code == 400
    return err.value.response.json()["error"]


def test_upgrade_across_a_removed_api_in_use(server: LKS, aks: ContainerServiceClient, tmp_path):
    # 1.31 is past community support: AKS offers it for LTS only
    versions = {v.version: v for v in aks.managed_clusters.list_kubernetes_versions("westeurope").values_property}
    assert versions["1.31"].capabilities.support_plan == ["AKSLongTermSupport"]
    assert versions["1.36"].capabilities.support_plan == ["KubernetesOfficial", "AKSLongTermSupport"]
    error = _refused(aks.managed_clusters.begin_create_or_update, GROUP, CLUSTER, _cluster("Free", None))
    assert error["code"] == "K8sVersionNotSupported"
    assert error["message"].startswith(f"Managed cluster {CLUSTER} is on version 1.31.14, which is only available "
                                       "for Long-Term Support (LTS).")
    assert CLUSTER not in [c.name for c in aks.managed_clusters.list_by_resource_group(GROUP)]
    mc = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, _cluster("Premium", "AKSLongTermSupport")).result()
    assert (mc.current_kubernetes_version, mc.support_plan, mc.sku.tier) == ("1.31.14", "AKSLongTermSupport", "Premium")

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, CLUSTER).kubeconfigs[0].value)
    res = server.kubectl("create", "-f", "-", input=FLOW_SCHEMA, kubeconfig=kubeconfig)
    assert WARNING in res.stderr.splitlines()
    assert "flowschema.flowcontrol.apiserver.k8s.io/legacy-client created" in res.stdout

    # the upgrade to 1.32 (control plane only, as `az aks upgrade --control-plane-only`) is refused
    mc.kubernetes_version = "1.32"
    error = _refused(aks.managed_clusters.begin_create_or_update, GROUP, CLUSTER, mc)
    assert (error["code"], error["subcode"]) == ("ValidationError", "UpgradeBlockedOnDeprecatedAPIUsage")
    assert error["message"].startswith(BLOCKED) and error["message"].endswith(", which will be removed in 1.32\n\n")
    seen = datetime.strptime(error["message"][len(BLOCKED):].split(",")[0], "%Y-%m-%d %H:%M:%S +0000 UTC")
    assert abs(seen.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=5)
    mc = aks.managed_clusters.get(GROUP, CLUSTER)
    assert (mc.kubernetes_version, mc.current_kubernetes_version, mc.provisioning_state) == \
        ("1.31", "1.31.14", "Succeeded")

    # an override that has run out does not count
    mc.kubernetes_version = "1.32"
    mc.upgrade_settings = ClusterUpgradeSettings(override_settings=UpgradeOverrideSettings(
        force_upgrade=True, until=datetime.now(UTC) - timedelta(hours=1)))
    assert _refused(aks.managed_clusters.begin_create_or_update, GROUP, CLUSTER, mc)["subcode"] == \
        "UpgradeBlockedOnDeprecatedAPIUsage"

    # `lks aks update --enable-force-upgrade` (until: three days from now, as az sets it); then it goes through
    shown = lks_json(server, "aks", "update", "-g", GROUP, "-n", CLUSTER, "--enable-force-upgrade")
    override = shown["upgradeSettings"]["overrideSettings"]
    assert override["forceUpgrade"] is True
    until = datetime.fromisoformat(override["until"].replace("Z", "+00:00"))
    assert timedelta(days=2, hours=23) < until - datetime.now(UTC) <= timedelta(days=3)
    mc = aks.managed_clusters.get(GROUP, CLUSTER)
    mc.kubernetes_version = "1.32"
    mc = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, mc).result()
    assert (mc.current_kubernetes_version, mc.provisioning_state) == ("1.32.12", "Succeeded")

    version = json.loads(server.kubectl("version", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.32.12"
    gone = server.kubectl("get", "--raw", "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
                          kubeconfig=kubeconfig, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    groups = json.loads(server.kubectl("get", "--raw", "/apis/flowcontrol.apiserver.k8s.io",
                                       kubeconfig=kubeconfig).stdout)
    assert [v["version"] for v in groups["versions"]] == ["v1"]
    fs = json.loads(server.kubectl("get", "flowschema", "legacy-client", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert fs["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1" and fs["spec"]["matchingPrecedence"] == 900


@pytest.mark.parametrize(("props", "code", "target"), [
    pytest.param({"upgradeSettings": {"overrideSettings": {"forceUpgrade": True, "until": "soon"}}},
                 "InvalidParameter", "upgradeSettings.overrideSettings.until", id="until-not-a-date"),
    pytest.param({"upgradeSettings": {"overrideSettings": {"forceUpgrade": "yes"}}},
                 "InvalidParameter", "upgradeSettings.overrideSettings.forceUpgrade", id="force-not-a-boolean"),
    pytest.param({"supportPlan": "Gold"}, "InvalidParameter", "supportPlan", id="unknown-support-plan"),
])
def test_bad_override_settings_are_refused(server: LKS, aks: ContainerServiceClient, props, code, target):
    config = json.loads((server.home / "config.json").read_text())
    body = {"location": "westeurope", "properties": {"dnsPrefix": "bad", "agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}], **props}}
    url = (f"{config['endpoint']}/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/"
           "Microsoft.ContainerService/managedClusters/bad1?api-version=2026-08-01")
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT", headers={
        "Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=config["ca_file"]), timeout=30)
    assert err.value.code == 400
    error = json.loads(err.value.read())["error"]
    assert (error["code"], error["target"]) == (code, target)
    assert "bad1" not in [c.name for c in aks.managed_clusters.list_by_resource_group(GROUP)]
