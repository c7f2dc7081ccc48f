"""Per-pool overrides of the autoscaler profile (an lks extension; AKS's profile is cluster-wide):
the keys a pool may set (upstream's NodeGroupAutoscalingOptions), their checks, how they lay over
the cluster's profile, and scale-down deciding each pool's nodes by its own threshold, unneeded
time and DaemonSet rule; then the autoscaler's explanation of a scan in words."""

from __future__ import annotations

import types

import pytest

from lks.arm import model
from lks.arm.errors import ARMError
from lks.autoscaler import autoscaler, explain, profile, scaledown, scaleup
from lks.autoscaler.simulator import Picture, PodCache

from .test_algorithm import SETTINGS, group, node, pod


def test_pool_keys_are_checked_merged_and_cleared():
    stored = profile.normalize_pool({"scale-down-unneeded-time": "2m", "ignore-daemonsets-utilization": "TRUE"})
    assert stored == {"ignore-daemonsets-utilization": True, "scale-down-unneeded-time": "2m"}
    merged = profile.normalize_pool({"scale-down-utilization-threshold": "0.7"}, stored)
    assert merged == {**stored, "scale-down-utilization-threshold": "0.7"}
    assert profile.normalize_pool({"scale-down-unneeded-time": None, "ignore-daemonsets-utilization": ""},
                                  stored) is None
    assert profile.normalize_pool(None, stored) == stored  # a PUT that leaves it out keeps it


@pytest.mark.parametrize("given,message,target", [
    pytest.param({"scan-interval": "20s"}, "The cluster-autoscaler parameter 'scan-interval' cannot be set on an agent "
                 "pool: it applies to the whole cluster: set it in the managed cluster's autoScalerProfile. An agent "
                 "pool's autoScalerProfile takes ignore-daemonsets-utilization, max-node-provision-time, "
                 "scale-down-unneeded-time, scale-down-unready-time, scale-down-utilization-threshold.",
                 "agentPoolProfile.autoScalerProfile.scan-interval", id="cluster-wide-key"),
    pytest.param({"scale-down-gpu-threshold": "0.5"}, "The cluster-autoscaler parameter 'scale-down-gpu-threshold' "
                 "cannot be set on an agent pool: it is not a cluster-autoscaler parameter.",
                 "agentPoolProfile.autoScalerProfile.scale-down-gpu-threshold", id="unknown-key"),
    pytest.param({"scale-down-unneeded-time": "30s"}, "Invalid value specified for the cluster-autoscaler parameter "
                 "'scale-down-unneeded-time'. Please refer to https://aka.ms/cluster-autoscaler for more details.",
                 "agentPoolProfile.autoScalerProfile.scale-down-unneeded-time", id="minutes-only"),
    pytest.param({"scale-down-utilization-threshold": "2"}, "Invalid value specified for the cluster-autoscaler "
                 "parameter 'scale-down-utilization-threshold'.",
                 "agentPoolProfile.autoScalerProfile.scale-down-utilization-threshold", id="threshold-above-one"),
    pytest.param({"ignore-daemonsets-utilization": 1}, "Invalid value specified for the cluster-autoscaler parameter "
                 "'ignore-daemonsets-utilization'.", "agentPoolProfile.autoScalerProfile.ignore-daemonsets-utilization",
                 id="bool-an-int"),
    pytest.param("scale-down-unneeded-time=2m", "The value of parameter agentPoolProfile.autoScalerProfile is invalid.",
                 "agentPoolProfile.autoScalerProfile", id="not-an-object"),
])
def test_refusals_name_the_key(given, message, target):
    with pytest.raises(ARMError) as err:
        profile.normalize_pool(given)
    assert (err.value.code, err.value.status, err.value.target) == ("InvalidParameter", 400, target)
    assert message in err.value.message


def test_the_pool_model_stores_and_keeps_the_overrides():
    args = dict(cluster_version="1.36.2", network={})
    pool = model.agent_pool({"name": "burst", "mode": "User", "autoScalerProfile": {
        "scale-down-unneeded-time": "2m"}}, existing=None, **args)
    assert pool["autoScalerProfile"] == {"scale-down-unneeded-time": "2m"}
    again = model.agent_pool({"name": "burst", "count": pool["count"]}, existing=pool, **args)
    assert again["autoScalerProfile"] == {"scale-down-unneeded-time": "2m"}
    assert "autoScalerProfile" not in model.agent_pool({"name": "plain", "mode": "User"}, existing=None, **args)


def test_overrides_lay_over_the_cluster_profile():
    base = profile.parse({"scale-down-unneeded-time": "5m", "scan-interval": "30s"})
    mine = profile.for_pool(base, {"scale-down-unneeded-time": "1m", "scale-down-utilization-threshold": "0.8",
                                   "ignore-daemonsets-utilization": True, "max-node-provision-time": "5m"})
    assert (mine.scale_down_unneeded_time, mine.scale_down_utilization_threshold) == (60, 0.8)
    assert mine.ignore_daemonsets_utilization is True and mine.max_node_provision_time == 300
    assert mine.scan_interval == 30  # a cluster-wide key stays the cluster's
    assert profile.for_pool(base, {"scale-down-unneeded-time": "bad"}) == base  # unreadable: the cluster's
    assert profile.for_pool(base, None) is base


def _two_pools(overrides: dict) -> tuple[Picture, list]:
    """Two pools alike, each with one node running 1000m of 1900m (53%): only the overrides differ."""
    plain, own = group("plain", target=2), group("own", target=2)
    own.overrides = overrides
    nodes = [node(plain, 0), node(plain, 1), node(own, 0), node(own, 1)]
    pods = [pod("a", "1000m", on=nodes[0]["metadata"]["name"]), pod("b", "1000m", on=nodes[2]["metadata"]["name"])]
    return Picture.build(nodes=nodes, pods=pods, cache=PodCache()), [plain, own]


def test_scale_down_uses_each_pools_threshold():
    picture, gs = _two_pools({"scale-down-utilization-threshold": "0.6"})
    found = {(v.group.name, v.node[-1:]): v for v in scaledown.find_unneeded(picture, gs, [], SETTINGS, deleting=set())}
    assert found["plain", "0"].reason == "NotUnderutilized"  # 53% against the cluster's 50%
    assert found["own", "0"].reason is None  # against the pool's 60%: it goes, its pod moves
    assert found["own", "0"].settings.scale_down_utilization_threshold == 0.6


def test_scale_down_waits_each_pools_unneeded_time():
    picture, gs = _two_pools({"scale-down-unneeded-time": "1m"})
    empty = {v.group.name: v for v in scaledown.find_unneeded(picture, gs, [], SETTINGS, deleting=set())
             if v.node.endswith("1")}
    assert autoscaler._unneeded_time(empty["plain"]) == 600  # the cluster's 10m
    assert autoscaler._unneeded_time(empty["own"]) == 60


def test_explanation_in_words():
    picture, gs = _two_pools({"scale-down-unneeded-time": "1m"})
    state = autoscaler.ClusterState()
    state.last_verdicts = scaledown.find_unneeded(picture, gs, [], SETTINGS, deleting=set())
    state.unneeded = {v.node: 1000.0 for v in state.last_verdicts if v.reason is None}
    state.cluster.health.set("Healthy", 1000.0)
    pending = pod("big", "64")
    state.last_scale_up = scaleup.plan(Picture.build(nodes=[], pods=[pending], cache=PodCache()), gs,
                                       settings=SETTINGS, now=0.0, created={})
    got = explain.report(state, now=1030.0)
    assert got["state"] == "Scanned" and got["health"] == "Healthy"
    (waiting,) = got["pendingPods"]
    assert (waiting["namespace"], waiting["name"]) == ("default", "big")
    assert waiting["message"] == "pod didn't trigger scale-up: 2 Insufficient cpu"
    assert waiting["nodePools"] == [{"name": "own", "reasons": ["Insufficient cpu"]},
                                    {"name": "plain", "reasons": ["Insufficient cpu"]}]
    nodes = {(n["nodePool"], n["name"][-1:]): n for n in got["nodes"]}
    busy = nodes["plain", "0"]
    assert busy["reason"] == "NotUnderutilized" and not busy["removable"]
    assert busy["message"] == ("cpu requested (52.6% of allocatable) is above the scale-down utilization threshold "
                               "(50%)")
    assert nodes["own", "1"]["reason"] == "NotUnneededLongEnough"
    assert nodes["own", "1"]["message"] == "unneeded for less than 1m (scale-down-unneeded-time): it can go in 30s"
    assert nodes["plain", "1"]["message"] == ("unneeded for less than 10m (scale-down-unneeded-time): it can go in "
                                              "9m30s")


def test_a_node_blocked_by_a_pod_names_it():
    g = group("burst", target=2)
    n0, n1 = node(g, 0), node(g, 1)
    bare = pod("bare", on=n0["metadata"]["name"], owner=None)
    picture = Picture.build(nodes=[n0, n1], pods=[bare], cache=PodCache())
    state = autoscaler.ClusterState()
    state.last_verdicts = scaledown.find_unneeded(picture, [g], [], SETTINGS, deleting=set())
    state.last_scale_up = scaleup.Result()
    first = explain.report(state, now=0.0)["nodes"][0]
    assert (first["reason"], first["blockingPod"]) == ("NotReplicated", "default/bare")
    assert first["message"] == "default/bare is not replicated"


@pytest.mark.parametrize("pools,power,state", [
    pytest.param([{"name": "a", "enableAutoScaling": True}], "Running", "NotScanned", id="not-scanned-yet"),
    pytest.param([{"name": "a", "enableAutoScaling": False}], "Running", "NotAutoscaled", id="no-autoscaled-pool"),
    pytest.param([{"name": "a", "enableAutoScaling": True}], "Stopped", "Stopped", id="stopped"),
])
def test_before_any_scan_the_answer_says_why(pools, power, state):
    doc = {"id": "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c",
           "properties": {"powerState": {"code": power}, "agentPoolProfiles": pools}}
    got = autoscaler.ClusterAutoscaler.explain(types.SimpleNamespace(states={}), doc["id"], doc)
    assert got["state"] == state and got["message"]
