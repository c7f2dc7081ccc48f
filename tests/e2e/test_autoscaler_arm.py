"""The cluster autoscaler's management surface through the official Azure SDK: a pool's
`enableAutoScaling`/`minCount`/`maxCount` with AKS's rules, the cluster's `autoScalerProfile`
shown in full with AKS's defaults once a pool autoscales, and refused requests changing nothing.
The autoscaler runs meanwhile, so a count is only checked where it cannot have moved it."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice.models import (
    AgentPool,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterPropertiesAutoScalerProfile,
)

from lks.autoscaler import profile

from .conftest import aks_client

GROUP = "ca-rg"


@pytest.fixture(scope="module")
def aks(lks):
    return aks_client(lks, GROUP)


def _pool(**kw) -> ManagedClusterAgentPoolProfile:
    return ManagedClusterAgentPoolProfile(**{"name": "nodepool1", "count": 1, "vm_size": "Standard_DS2_v2",
                                             "mode": "System", "os_type": "Linux", **kw})


def _refused(call, message: str, target: str | None = None) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400, err.value
    assert err.value.error.code == "InvalidParameter"
    assert message in err.value.error.message, err.value.error.message
    if target:
        assert err.value.error.target == target
    return err.value


@pytest.fixture(scope="module")
def cluster(aks):
    """A cluster whose system pool autoscales (1..3) with a profile of two keys."""
    mc = ManagedCluster(location="westeurope", dns_prefix="ca", agent_pool_profiles=[
        _pool(enable_auto_scaling=True, min_count=1, max_count=3)],
        auto_scaler_profile=ManagedClusterPropertiesAutoScalerProfile(scan_interval="20s", expander="least-waste"))
    return aks.managed_clusters.begin_create_or_update(GROUP, "ca1", mc).result()


def test_profile_shown_in_full_with_defaults(aks, cluster):
    shown = aks.managed_clusters.get(GROUP, "ca1").auto_scaler_profile.as_dict()
    expected = {**profile.DEFAULTS, "scan-interval": "20s", "expander": "least-waste",
                "scale-down-delay-after-delete": "20s"}
    assert {k.replace("_", "-"): v for k, v in shown.items()} == expected
    pool = aks.agent_pools.get(GROUP, "ca1", "nodepool1")
    assert (pool.enable_auto_scaling, pool.min_count, pool.max_count) == (True, 1, 3)
    assert 1 <= pool.count <= 3  # the autoscaler may have moved it


def test_no_profile_without_autoscaling(aks, cluster):
    mc = ManagedCluster(location="westeurope", dns_prefix="ca2", agent_pool_profiles=[_pool()])
    made = aks.managed_clusters.begin_create_or_update(GROUP, "ca2", mc).result()
    assert made.auto_scaler_profile is None
    pool = made.agent_pool_profiles[0]
    assert pool.enable_auto_scaling is False and pool.min_count is None and pool.max_count is None
    # a user pool added with the autoscaler on: the cluster now shows the whole default profile
    aks.agent_pools.begin_create_or_update(GROUP, "ca2", "burst", AgentPool(
        count=0, vm_size="Standard_DS2_v2", mode="User", enable_auto_scaling=True, min_count=0, max_count=5)).result()
    shown = aks.managed_clusters.get(GROUP, "ca2").auto_scaler_profile
    assert shown.scan_interval == "10s" and shown.daemonset_eviction_for_occupied_nodes is True
    aks.managed_clusters.begin_delete(GROUP, "ca2").result()


def test_bad_profile_value_refused_and_nothing_changes(aks, cluster):
    mc = aks.managed_clusters.get(GROUP, "ca1")
    mc.auto_scaler_profile.scale_down_delay_after_add = "30s"
    _refused(lambda: aks.managed_clusters.begin_create_or_update(GROUP, "ca1", mc),
             "Invalid value specified for the cluster-autoscaler parameter 'scale-down-delay-after-add'. Please refer "
             "to https://aka.ms/cluster-autoscaler for more details.")
    assert aks.managed_clusters.get(GROUP, "ca1").auto_scaler_profile.scale_down_delay_after_add == "10m"


def test_profile_update_overlays(aks, cluster):
    mc = aks.managed_clusters.get(GROUP, "ca1")
    mc.auto_scaler_profile = ManagedClusterPropertiesAutoScalerProfile(scale_down_unneeded_time="1m",
                                                                       ignore_daemonsets_utilization=True)
    done = aks.managed_clusters.begin_create_or_update(GROUP, "ca1", mc).result().auto_scaler_profile
    assert done.scale_down_unneeded_time == "1m" and done.ignore_daemonsets_utilization is True
    assert done.scan_interval == "20s" and done.expander == "least-waste"  # the keys set before stay


@pytest.mark.parametrize("pool,message,target", [
    pytest.param(dict(enable_auto_scaling=True, min_count=3, max_count=2),
                 "minCount (3) must be less than or equal to maxCount (2)", "agentPoolProfile.minCount", id="min>max"),
    pytest.param(dict(enable_auto_scaling=True, min_count=1, max_count=1001),
                 "Valid values are 0 to 1000 for user node pools", "agentPoolProfile.maxCount", id="max>1000"),
    pytest.param(dict(enable_auto_scaling=True, min_count=2, max_count=4, count=5),
                 "agentPoolProfile.count was 5. It must be greater or equal to minCount:2 and less than or equal "
                 "to maxCount:4.", "agentPoolProfile.count", id="count-outside"),
    pytest.param(dict(enable_auto_scaling=True, min_count=1), "agentPoolProfile.maxCount is missing",
                 "agentPoolProfile.maxCount", id="max-missing"),
    pytest.param(dict(min_count=1, max_count=3), "minCount can only be set when enableAutoScaling is true",
                 "agentPoolProfile.minCount", id="range-without-autoscaling"),
])
def test_pool_range_rules(aks, cluster, pool, message, target):
    body = AgentPool(**{"count": 2, "vm_size": "Standard_DS2_v2", "mode": "User", **pool})
    _refused(lambda: aks.agent_pools.begin_create_or_update(GROUP, "ca1", "bad", body), message, target)
    assert [p.name for p in aks.agent_pools.list(GROUP, "ca1")] == ["nodepool1"]


def test_system_pool_min_is_one(aks, cluster):
    pool = aks.agent_pools.get(GROUP, "ca1", "nodepool1")
    pool.min_count = 0
    _refused(lambda: aks.agent_pools.begin_create_or_update(GROUP, "ca1", "nodepool1", pool),
             "Valid values are 1 to 1000 for system node pools", "agentPoolProfile.minCount")


def test_manual_scale_of_autoscaled_pool_refused(aks, cluster):
    pool = aks.agent_pools.get(GROUP, "ca1", "nodepool1")
    pool.count = 3 if pool.count < 3 else 2
    _refused(lambda: aks.agent_pools.begin_create_or_update(GROUP, "ca1", "nodepool1", pool),
             "Cannot scale cluster autoscaler enabled node pool", "agentPoolProfile.count")
    mc = aks.managed_clusters.get(GROUP, "ca1")
    mc.agent_pool_profiles[0].count = 3 if mc.agent_pool_profiles[0].count < 3 else 2
    _refused(lambda: aks.managed_clusters.begin_create_or_update(GROUP, "ca1", mc),
             "Cannot scale cluster autoscaler enabled node pool")


def test_range_moves_and_autoscaler_turns_off(aks, cluster):
    pool = aks.agent_pools.get(GROUP, "ca1", "nodepool1")
    pool.min_count, pool.max_count = 2, 4  # past the count: allowed, the autoscaler brings it up
    done = aks.agent_pools.begin_create_or_update(GROUP, "ca1", "nodepool1", pool).result()
    assert (done.min_count, done.max_count) == (2, 4) and done.count <= 2  # min: reached by the autoscaler
    done.enable_auto_scaling = False  # GET-modify-PUT sends the old range back: dropped
    off = aks.agent_pools.begin_create_or_update(GROUP, "ca1", "nodepool1", done).result()
    assert (off.enable_auto_scaling, off.min_count, off.max_count) == (False, None, None)
    off.count = 3  # a manual scale once the autoscaler is off
    assert aks.agent_pools.begin_create_or_update(GROUP, "ca1", "nodepool1", off).result().count == 3
    # the profile stays, as AKS keeps it
    assert aks.managed_clusters.get(GROUP, "ca1").auto_scaler_profile.scan_interval == "20s"


@pytest.mark.parametrize("pool,profile_in,target", [
    pytest.param({"enableAutoScaling": "yes", "minCount": 1, "maxCount": 2}, None,
                 "agentPoolProfile.enableAutoScaling", id="enable-not-bool"),
    pytest.param({"enableAutoScaling": True, "minCount": "1", "maxCount": 2}, None, "agentPoolProfile.minCount",
                 id="min-a-string"),
    pytest.param({"enableAutoScaling": True, "minCount": 1, "maxCount": 2.5}, None, "agentPoolProfile.maxCount",
                 id="max-a-float"),
    pytest.param({}, "scan-interval=10s", "autoScalerProfile", id="profile-a-string"),
    pytest.param({}, {"scan-interval": ["10s"]}, "autoScalerProfile.scan-interval", id="value-a-list"),
    pytest.param({}, {"ignore-daemonsets-utilization": 1}, "autoScalerProfile.ignore-daemonsets-utilization",
                 id="bool-an-int"),
])
def test_hostile_bodies_answered_400(lks, aks, pool, profile_in, target):
    """Raw JSON no SDK would send: AKS's InvalidParameter, never a 500, and no cluster made."""
    config = json.loads((lks.home / "config.json").read_text())
    props = {"dnsPrefix": "hostile", "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "mode": "System",
                                                            "vmSize": "Standard_DS2_v2", **pool}]}
    if profile_in is not None:
        props["autoScalerProfile"] = profile_in
    url = urllib.parse.urlsplit(config["endpoint"])
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                       context=ssl.create_default_context(cafile=config["ca_file"]))
    path = (f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/"
            "Microsoft.ContainerService/managedClusters/hostile?api-version=2026-08-01")
    try:
        conn.request("PUT", path, body=json.dumps({"location": "westeurope", "properties": props}),
                     headers={"Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        error = json.loads(resp.read())["error"]
    finally:
        conn.close()
    assert resp.status == 400 and error["code"] == "InvalidParameter" and error["target"] == target, error
    assert "hostile" not in [c.name for c in aks.managed_clusters.list_by_resource_group(GROUP)]
