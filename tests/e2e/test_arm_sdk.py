"""The management API through the official Azure SDK: resource groups, managed clusters and
agent pools, credentials into kubectl, AKS's errors, and deletion."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster, ManagedClusterAgentPoolProfile
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import StaticToken


@pytest.fixture(scope="module")
def config(lks):
    return json.loads((lks.home / "config.json").read_text())


@pytest.fixture(scope="module")
def aks(config):
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                  connection_verify=config["ca_file"])


@pytest.fixture(scope="module")
def resources(config):
    return ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                    base_url=config["endpoint"], connection_verify=config["ca_file"])


@pytest.fixture(scope="module")
def group(resources):
    resources.resource_groups.create_or_update("sdk-rg", {"location": "westeurope"})
    yield "sdk-rg"


def _cluster(count: int = 2) -> ManagedCluster:
    return ManagedCluster(location="westeurope", dns_prefix="sdk", agent_pool_profiles=[
        ManagedClusterAgentPoolProfile(name="nodepool1", count=count, vm_size="Standard_DS2_v2", mode="System",
                                       os_type="Linux")])


def test_resource_groups(resources):
    rg = resources.resource_groups.create_or_update("rg-a", {"location": "eastus", "tags": {"a": "b"}})
    assert rg.name == "rg-a" and rg.location == "eastus" and rg.properties.provisioning_state == "Succeeded"
    assert resources.resource_groups.check_existence("rg-a")
    assert "rg-a" in [g.name for g in resources.resource_groups.list()]
    resources.resource_groups.begin_delete("rg-a").result()
    assert not resources.resource_groups.check_existence("rg-a")
    with pytest.raises(ResourceNotFoundError):
        resources.resource_groups.get("rg-a")


def _nodes(lks, kubeconfig) -> list[dict]:
    out = lks.kubectl("get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout
    return json.loads(out)["items"]


def _ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def test_cluster_lifecycle_with_kubectl(aks, group, lks, tmp_path):
    mc = aks.managed_clusters.begin_create_or_update(group, "sdk1", _cluster(2)).result()
    assert mc.provisioning_state == "Succeeded" and mc.power_state.code == "Running"
    assert mc.current_kubernetes_version.startswith("1.") and mc.node_resource_group == "MC_sdk-rg_sdk1_westeurope"
    assert mc.network_profile.pod_cidr == "10.244.0.0/16" and mc.network_profile.dns_service_ip == "10.0.0.10"
    assert mc.agent_pool_profiles[0].provisioning_state == "Succeeded"

    creds = aks.managed_clusters.list_cluster_user_credentials(group, "sdk1")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(creds.kubeconfigs[0].value)
    nodes = _nodes(lks, kubeconfig)
    assert len(nodes) == 2 and all(_ready(n) for n in nodes)
    labels = nodes[0]["metadata"]["labels"]
    assert labels["kubernetes.azure.com/agentpool"] == "nodepool1"
    assert labels["kubernetes.azure.com/mode"] == "system"
    assert labels["node.kubernetes.io/instance-type"] == "Standard_DS2_v2"
    assert nodes[0]["metadata"]["name"].startswith("aks-nodepool1-") and "-vmss" in nodes[0]["metadata"]["name"]

    # scale through the cluster and add, scale and delete a user pool
    mc.agent_pool_profiles[0].count = 3
    aks.managed_clusters.begin_create_or_update(group, "sdk1", mc).result()
    assert len(_nodes(lks, kubeconfig)) == 3
    pool = aks.agent_pools.begin_create_or_update(group, "sdk1", "user1", AgentPool(
        count=1, vm_size="Standard_D4s_v3", mode="User", node_labels={"team": "a"},
        node_taints=["dedicated=a:NoSchedule"])).result()
    assert pool.provisioning_state == "Succeeded" and pool.count == 1
    user_nodes = [n for n in _nodes(lks, kubeconfig) if n["metadata"]["labels"].get("agentpool") == "user1"]
    assert len(user_nodes) == 1 and user_nodes[0]["metadata"]["labels"]["team"] == "a"
    assert user_nodes[0]["spec"]["taints"] == [{"key": "dedicated", "value": "a", "effect": "NoSchedule"}]
    assert {p.name for p in aks.agent_pools.list(group, "sdk1")} == {"nodepool1", "user1"}
    aks.agent_pools.begin_delete(group, "sdk1", "user1").result()
    assert len(_nodes(lks, kubeconfig)) == 3

    # admin credentials work too; the last system pool cannot go
    admin = aks.managed_clusters.list_cluster_admin_credentials(group, "sdk1").kubeconfigs[0].value
    assert b"client-certificate-data" in admin
    with pytest.raises(HttpResponseError) as err:
        aks.agent_pools.begin_delete(group, "sdk1", "nodepool1").result()
    assert err.value.status_code == 400

    # stop: the endpoint stops serving and the nodes go; start brings them back
    aks.managed_clusters.begin_stop(group, "sdk1").result()
    assert aks.managed_clusters.get(group, "sdk1").power_state.code == "Stopped"
    res = lks.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False)
    assert res.returncode != 0
    aks.managed_clusters.begin_start(group, "sdk1").result()
    assert len(_nodes(lks, kubeconfig)) == 3

    # delete: the endpoint stops serving
    aks.managed_clusters.begin_delete(group, "sdk1").result()
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.get(group, "sdk1")
    assert lks.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False).returncode != 0


def test_bad_requests_get_aks_errors_and_leave_nothing(aks, group):
    bad = _cluster()
    bad.agent_pool_profiles[0].vm_size = "Standard_Nope_v9"
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_create_or_update(group, "bad1", bad)
    assert err.value.status_code == 400
    bad = _cluster()
    bad.agent_pool_profiles[0].name = "Bad_Name"
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_create_or_update(group, "bad1", bad)
    assert err.value.error.code == "InvalidParameter"
    bad = _cluster()
    bad.kubernetes_version = "1.99.0"
    with pytest.raises(HttpResponseError):
        aks.managed_clusters.begin_create_or_update(group, "bad1", bad)
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.get(group, "bad1")
    with pytest.raises(ResourceNotFoundError) as err:
        aks.managed_clusters.get("no-such-group", "x")
    assert err.value.error.code == "ResourceGroupNotFound"


def test_versions_and_upgrade_profile(aks, group):
    versions = aks.managed_clusters.list_kubernetes_versions("westeurope")
    minors = {v.version for v in versions.values_property}
    assert {"1.34", "1.35", "1.36"} <= minors
    assert sum(1 for v in versions.values_property if v.is_default) == 1


def test_unauthenticated_requests_are_401(config):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{config['endpoint']}/subscriptions/{config['subscription_id']}/resourcegroups"
                                 "?api-version=2025-04-01")
    import ssl

    ctx = ssl.create_default_context(cafile=config["ca_file"])
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx)
    assert err.value.code == 401
    assert json.loads(err.value.read())["error"]["code"] == "AuthenticationFailed"


def test_management_openapi_document(config):
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=config["ca_file"])
    with urllib.request.urlopen(f"{config['endpoint']}/openapi/management.json", context=ctx) as r:
        doc = json.loads(r.read())
    paths = doc["paths"]
    cluster = next(p for p in paths if p.endswith("/managedClusters/{name}"))
    assert {"put", "get", "patch", "delete"} <= set(paths[cluster])
    assert "2026-08-01" in paths[cluster]["put"]["parameters"][-1]["schema"]["enum"]
