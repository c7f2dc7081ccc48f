"""Per-pool overrides of the autoscaler profile (an lks extension: AKS's `autoScalerProfile` is
the cluster's only) through the `lks` CLI and raw JSON sent down the Azure SDK's own pipeline
(its models do not know the property): set on `nodepool add`, shown on GET, kept over a typed
SDK GET-modify-PUT, cleared key by key, and refused by name when a key is not a pool's."""

from __future__ import annotations

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedCluster, ManagedClusterAgentPoolProfile

from .conftest import aks_client, lks_cli, lks_json

GROUP, CLUSTER = "pp-rg", "pp1"
API = "api-version=2026-08-01"


@pytest.fixture(scope="module")
def aks(lks):
    client = aks_client(lks, GROUP)
    client.managed_clusters.begin_create_or_update(GROUP, CLUSTER, ManagedCluster(
        location="westeurope", dns_prefix=CLUSTER, agent_pool_profiles=[ManagedClusterAgentPoolProfile(
            name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
    yield client
    client.managed_clusters.begin_delete(GROUP, CLUSTER).result()


def _pool_path(aks: ContainerServiceClient, pool: str) -> str:
    return (f"/subscriptions/{aks._config.subscription_id}/resourceGroups/{GROUP}/providers/"
            f"Microsoft.ContainerService/managedClusters/{CLUSTER}/agentPools/{pool}?{API}")


def _raw(aks: ContainerServiceClient, method: str, pool: str, body: dict | None = None):
    """The request through the SDK's pipeline (its credential, TLS settings and policies)."""
    response = aks.send_request(HttpRequest(method, _pool_path(aks, pool), json=body))
    return response.status_code, response.json()


def test_set_shown_kept_and_cleared(lks, aks):
    added = lks_json(lks, "aks", "nodepool", "add", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "burst",
                     "--node-count", "1", "--enable-cluster-autoscaler", "--min-count", "1", "--max-count", "2",
                     "--cluster-autoscaler-profile", "scale-down-unneeded-time=2m",
                     "scale-down-utilization-threshold=0.7,ignore-daemonsets-utilization=true")
    assert added["autoScalerProfile"] == {"ignoreDaemonsetsUtilization": True, "scaleDownUnneededTime": "2m",
                                          "scaleDownUtilizationThreshold": "0.7"}  # az's camelCase
    status, pool = _raw(aks, "GET", "burst")
    assert status == 200
    assert pool["properties"]["autoScalerProfile"] == {
        "ignore-daemonsets-utilization": True, "scale-down-unneeded-time": "2m",
        "scale-down-utilization-threshold": "0.7"}

    # the SDK's typed model drops the property on a GET-modify-PUT: the overrides stay
    typed = aks.agent_pools.get(GROUP, CLUSTER, "burst")
    typed.max_count = 3
    aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "burst", typed).result()
    _, pool = _raw(aks, "GET", "burst")
    assert pool["properties"]["maxCount"] == 3
    assert pool["properties"]["autoScalerProfile"]["scale-down-unneeded-time"] == "2m"
    # and so does the cluster's, whose pools arrive in agentPoolProfiles
    cluster = aks.managed_clusters.get(GROUP, CLUSTER)
    cluster.tags = {"touched": "yes"}
    aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, cluster).result()
    _, pool = _raw(aks, "GET", "burst")
    assert pool["properties"]["autoScalerProfile"]["scale-down-unneeded-time"] == "2m"

    # an empty value goes back to the cluster's; "" clears them all
    updated = lks_json(lks, "aks", "nodepool", "update", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "burst",
                       "--cluster-autoscaler-profile", "scale-down-unneeded-time=", "scale-down-unready-time=30m")
    assert updated["autoScalerProfile"] == {"ignoreDaemonsetsUtilization": True, "scaleDownUnreadyTime": "30m",
                                            "scaleDownUtilizationThreshold": "0.7"}
    cleared = lks_json(lks, "aks", "nodepool", "update", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "burst",
                       "--cluster-autoscaler-profile", "")
    assert "autoScalerProfile" not in cleared
    # the cluster's own profile is untouched by all of it
    assert aks.managed_clusters.get(GROUP, CLUSTER).auto_scaler_profile.scale_down_unneeded_time == "10m"


@pytest.mark.parametrize("profile,message,target", [
    pytest.param({"scan-interval": "20s"}, "The cluster-autoscaler parameter 'scan-interval' cannot be set on an "
                 "agent pool: it applies to the whole cluster", "agentPoolProfile.autoScalerProfile.scan-interval",
                 id="cluster-wide-key"),
    pytest.param({"max-nodes-total": "10"}, "The cluster-autoscaler parameter 'max-nodes-total' cannot be set on an "
                 "agent pool: it is not a cluster-autoscaler parameter",
                 "agentPoolProfile.autoScalerProfile.max-nodes-total", id="unknown-key"),
    pytest.param({"scale-down-unneeded-time": "90s"}, "Invalid value specified for the cluster-autoscaler parameter "
                 "'scale-down-unneeded-time'. Please refer to https://aka.ms/cluster-autoscaler for more details.",
                 "agentPoolProfile.autoScalerProfile.scale-down-unneeded-time", id="bad-value"),
    pytest.param(["scale-down-unneeded-time=2m"], "The value of parameter agentPoolProfile.autoScalerProfile is "
                 "invalid.", "agentPoolProfile.autoScalerProfile", id="not-an-object"),
])
def test_refused_by_name_and_nothing_changes(aks, profile, message, target):
    status, body = _raw(aks, "PUT", "bad", {"properties": {"count": 1, "mode": "User", "vmSize": "Standard_DS2_v2",
                                                            "autoScalerProfile": profile}})
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["target"]) == ("InvalidParameter", target)
    assert message in body["error"]["message"]
    assert "bad" not in [p.name for p in aks.agent_pools.list(GROUP, CLUSTER)]


def test_cli_shows_the_services_refusal(lks, aks):
    res = lks_cli(lks, "aks", "nodepool", "add", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "bad2",
                  "--node-count", "1", "--cluster-autoscaler-profile", "expander=random")
    assert res.returncode != 0
    assert "The cluster-autoscaler parameter 'expander' cannot be set on an agent pool" in res.stderr
