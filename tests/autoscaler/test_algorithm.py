"""The autoscaler's decisions on a made-up cluster, without a control plane: which pods a
scale-up is for and how many nodes each pool needs (with its taints and DaemonSets), the
expanders, balancing similar pools, and which pods keep their node from scale-down."""

from __future__ import annotations

import random
import types
import uuid

import pytest

from lks import clock
from lks.arm import nodeshape, vmsizes
from lks.autoscaler import autoscaler, expander, groups, profile, scaledown, scaleup
from lks.autoscaler.simulator import Picture, PodCache
from lks.controllers.scheduler import preemption
from lks.nodes import NodeTemplate, parse_taint

SETTINGS = profile.Profile()
RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1", "controller": True}


def template(pool: str, *, size: str = "Standard_DS2_v2", taints: tuple[str, ...] = ()) -> NodeTemplate:
    vm = vmsizes.lookup(size)
    return NodeTemplate(pool=pool, name_digits="12345678", subscription_id="sub", node_resource_group="MC_rg",
                        mode="User", labels={"agentpool": pool}, taints=tuple(parse_taint(t) for t in taints),
                        capacity=nodeshape.capacity(vm, max_pods=30, os_disk_gb=128),
                        allocatable=nodeshape.allocatable(vm, 30, "1.36.2", os_disk_gb=128))


def group(pool: str, target: int = 1, max_size: int = 10, **kw) -> groups.Group:
    return groups.Group(name=pool, template=template(pool, **kw), target=target, min_size=1, max_size=max_size)


def node(g: groups.Group, index: int, annotations: dict | None = None) -> dict:
    name = g.template.node_name(index)
    g.nodes.append(name)
    return {"metadata": {"name": name, "labels": g.template.node_labels(name), "annotations": annotations or {}},
            "spec": {"taints": g.template.node_taints()},
            "status": {"allocatable": dict(g.template.allocatable), "capacity": dict(g.template.capacity),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "500m", *, on: str | None = None, owner: dict | None = RS, namespace: str = "default",
        tolerate: bool = False, annotations: dict | None = None, volumes: list | None = None,
        labels: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}
    if tolerate:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    if volumes:
        spec["volumes"] = volumes
    obj = {"metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "resourceVersion": "1",
                        "labels": labels or {"app": "web"}, "annotations": annotations or {},
                        "ownerReferences": [owner] if owner else []},
           "spec": spec, "status": {"phase": "Running" if on else "Pending"}}
    if on:
        spec["nodeName"] = on
    else:
        obj["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    return obj


def plan(nodes: list[dict], pods: list[dict], gs: list[groups.Group], settings: profile.Profile = SETTINGS,
         daemonsets: tuple = (), priorities: str | None = None) -> scaleup.Result:
    picture = Picture.build(nodes=nodes, pods=pods, cache=PodCache(), daemonsets=daemonsets)
    return scaleup.plan(picture, gs, settings=settings, now=0.0, created={}, priorities=priorities,
                        rng=random.Random(1))


def test_binpacking_counts_nodes_and_max_caps_them():
    g = group("burst", max_size=4)
    nodes = [node(g, 0)]
    # DS2_v2: 1900m allocatable, three 500m pods a node; the first node is full
    pods = [pod(f"busy-{i}", on=nodes[0]["metadata"]["name"]) for i in range(3)]
    pods += [pod(f"p-{i}") for i in range(7)]
    result = plan(nodes, pods, [g])
    assert result.increases == {"burst": (1, 4)}  # 3 nodes for 7 pods; 1 + 3 = max
    assert len(result.triggered) == 7
    assert scaleup.info_text(result, [g]) == f"[{{{g.id} 1->4 (max: 4)}}]"


def test_pending_pods_that_fit_an_existing_node_trigger_nothing():
    g = group("burst")
    nodes = [node(g, 0)]
    result = plan(nodes, [pod("p")], [g])
    assert not result.needed and not result.increases


def test_pods_below_priority_minus_ten_never_trigger_a_scale_up():
    g = group("burst", target=0)
    low, reserved = pod("low"), pod("overprovisioning")
    low["spec"]["priority"], reserved["spec"]["priority"] = -11, -10
    assert plan([], [low], [g]).increases == {}
    assert plan([], [reserved], [g]).increases == {"burst": (0, 1)}


def test_a_taint_the_pod_does_not_tolerate_is_the_reason_given():
    g = group("tainted", taints=("dedicated=x:NoSchedule",))
    full = group("full", target=3, max_size=3)
    result = plan([], [pod("p")], [g, full])
    assert not result.increases
    assert scaleup.reasons_text(result.rejected[result.remaining[0].key]) == \
        "1 max node group size reached, 1 node(s) had untolerated taint(s)"
    assert plan([], [pod("p", tolerate=True)], [g]).increases == {"tainted": (1, 2)}


def test_daemonset_pods_take_room_on_the_template():
    g = group("burst", target=0)
    ds = {"metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds-1"},
          "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
              "containers": [{"name": "a", "image": "a", "resources": {"requests": {"cpu": "900m"}}}]}}}}
    # without the DaemonSet three 500m pods fit a node; with its 900m only two do
    assert plan([], [pod(f"p-{i}") for i in range(6)], [g]).increases == {"burst": (0, 2)}
    assert plan([], [pod(f"p-{i}") for i in range(6)], [g], daemonsets=(ds,)).increases == {"burst": (0, 3)}


@pytest.mark.parametrize(("name", "n", "winner"), [
    pytest.param("most-pods", 7, "big", id="most-pods"),
    pytest.param("least-waste", 7, "big", id="least-waste-big"),  # 3.5 of 3.86 cores used, not 1.5 of 1.9
    pytest.param("least-waste", 3, "small", id="least-waste-small"),  # 1.5 of 1.9, not of 3.86
    pytest.param("priority", 7, "small", id="priority"),
    pytest.param("priority,most-pods", 7, "small", id="chain"),
])
def test_expanders(name, n, winner):
    small = group("small", max_size=2)  # one more node: three pods
    big = group("big", size="Standard_D4s_v3", max_size=2)  # one more node: seven pods
    pods = [pod(f"p-{i}") for i in range(n)]
    settings = profile.Profile(expander=name)
    result = plan([], pods, [small, big], settings, priorities="10:\n  - .*big.*\n50:\n  - .*small.*\n")
    assert list(result.increases) == [winner]


def test_priority_patterns_match_anywhere_in_the_vmss_name():
    small, big = group("small", max_size=2), group("big", size="Standard_D4s_v3", max_size=2)
    settings = profile.Profile(expander="priority")
    result = plan([], [pod(f"p-{i}") for i in range(7)], [small, big], settings, priorities="10:\n  - small\n50:\n  - -big-\n")
    assert list(result.increases) == ["big"]


def test_priorities_configmap_parsing():
    parsed = expander.parse_priorities("10: [.*spot.*]\n50: [.*ondemand.*]\n")
    assert [p for p, _ in parsed] == [50, 10]
    assert expander.parse_priorities("not: [valid") == []


def test_balance_similar_node_groups_splits_the_increase():
    a, b = group("zone1", max_size=10), group("zone2", max_size=10)
    settings = profile.Profile(balance_similar_node_groups=True)
    result = plan([], [pod(f"p-{i}") for i in range(12)], [a, b], settings)
    assert result.increases == {"zone1": (1, 3), "zone2": (1, 3)}


def verdicts(pods_on: list[dict], settings: profile.Profile = SETTINGS, budgets: list[dict] = (),
             annotations: dict | None = None) -> dict[str, str | None]:
    g = group("burst", target=2)
    n0, n1 = node(g, 0, annotations), node(g, 1)
    for p in pods_on:
        p["spec"]["nodeName"] = n0["metadata"]["name"]
        p["status"] = {"phase": "Running"}
    picture = Picture.build(nodes=[n0, n1], pods=pods_on, cache=PodCache())
    found = scaledown.find_unneeded(picture, [g], [preemption.Budget(b) for b in budgets], settings, deleting=set())
    return {v.node[-1:]: v.reason for v in found}


@pytest.mark.parametrize(("pods", "settings", "reason"), [
    pytest.param([pod("a")], SETTINGS, None, id="movable"),
    pytest.param([pod("a", owner=None)], SETTINGS, "NotReplicated", id="no-controller"),
    pytest.param([pod("a", owner=None, annotations={scaledown.SAFE_TO_EVICT: "true"})], SETTINGS, None,
                 id="safe-to-evict-true"),
    pytest.param([pod("a", annotations={scaledown.SAFE_TO_EVICT: "false"})], SETTINGS, "NotSafeToEvictAnnotation",
                 id="safe-to-evict-false"),
    pytest.param([pod("a", namespace="kube-system")], SETTINGS, "UnmovableKubeSystemPod", id="kube-system"),
    pytest.param([pod("a", namespace="kube-system")], profile.Profile(skip_nodes_with_system_pods=False), None,
                 id="kube-system-allowed"),
    pytest.param([pod("a", volumes=[{"name": "v", "emptyDir": {}}])], profile.Profile(
        skip_nodes_with_local_storage=True), "LocalStorageRequested", id="local-storage"),
    pytest.param([pod("a", volumes=[{"name": "v", "emptyDir": {}}])], SETTINGS, None, id="local-storage-allowed"),
    pytest.param([pod("a", "1500m")], SETTINGS, "NotUnderutilized", id="busy"),
])
def test_what_keeps_a_node(pods, settings, reason):
    assert verdicts(pods, settings)["0"] == reason


def test_a_budget_allowing_no_disruption_keeps_the_node_and_the_annotation_opts_out():
    pdb = {"metadata": {"name": "b", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "web"}}}, "status": {"disruptionsAllowed": 0}}
    assert verdicts([pod("a")], budgets=[pdb])["0"] == "NotEnoughPdb"
    pdb["status"]["disruptionsAllowed"] = 1
    assert verdicts([pod("a")], budgets=[pdb])["0"] is None
    assert verdicts([pod("a", "300m"), pod("b", "300m")], budgets=[pdb])["0"] == "NotEnoughPdb"  # one for two
    assert verdicts([], annotations={scaledown.SCALE_DOWN_DISABLED: "true"})["0"] == "ScaleDownDisabledAnnotation"


def test_pods_that_fit_nowhere_else_keep_the_node():
    # node 0's pods fit node 1, which then holds them: they cannot go back to node 0, which goes
    found = verdicts([pod("a", "400m"), pod("b", "400m")])
    assert found["0"] is None
    assert found["1"] == "NoPlaceToMovePods"


def test_an_unready_node_is_unneeded_whatever_its_utilization():
    g = group("burst", target=2)
    n0, n1 = node(g, 0), node(g, 1)
    n0["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    busy = pod("a", "1500m", on=n0["metadata"]["name"])
    picture = Picture.build(nodes=[n0, n1], pods=[busy], cache=PodCache())
    found = {v.node[-1:]: v for v in scaledown.find_unneeded(picture, [g], [], SETTINGS, deleting=set())}
    assert found["0"].reason is None and not found["0"].ready


def test_a_pool_in_backoff_is_not_grown_and_says_so():
    g = group("burst")
    picture = Picture.build(nodes=[], pods=[pod("p")], cache=PodCache())
    result = scaleup.plan(picture, [g], settings=SETTINGS, now=0.0, created={}, backoff=frozenset({"burst"}))
    assert not result.increases
    assert scaleup.reasons_text(result.rejected[result.remaining[0].key]) == "1 in backoff after failed scale-up"


def test_backoff_doubles_up_to_thirty_minutes():
    state = autoscaler.ClusterState()
    lengths = []
    for _ in range(5):
        autoscaler._back_off(state, "burst", 0.0)
        lengths.append(state.backoff["burst"][1])
    assert lengths == [300.0, 600.0, 1200.0, 1800.0, 1800.0]


def test_daemonset_pods_do_not_count_as_pods_to_move_and_are_listed_apart():
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds-1", "controller": True}
    g = group("burst", target=2)
    n0, n1 = node(g, 0), node(g, 1)
    agent = pod("agent-x", "100m", on=n0["metadata"]["name"], owner=ds, namespace="kube-system")
    picture = Picture.build(nodes=[n0, n1], pods=[agent], cache=PodCache())
    found = {v.node[-1:]: v for v in scaledown.find_unneeded(picture, [g], [], SETTINGS, deleting=set())}
    assert found["0"].reason is None and found["0"].pods == []  # empty: kube-system or not, it stays behind
    assert [p.name for p in found["0"].daemons] == ["agent-x"]


@pytest.mark.parametrize(("unready", "healthy"), [
    pytest.param(3, True, id="ok-total-unready-count"),
    pytest.param(4, False, id="past-both"),
])
def test_too_many_unready_nodes_halt_the_autoscaler(unready, healthy):
    g = group("burst", target=8)
    nodes = [node(g, i) for i in range(8)]
    for n in nodes[:unready]:
        n["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    picture = Picture.build(nodes=nodes, pods=[], cache=PodCache())
    scaler = autoscaler.ClusterAutoscaler(plane=types.SimpleNamespace(clock=None), clock=clock.Clock())
    state = autoscaler.ClusterState()
    # max(3, 45% of 8 = 3.6): four unready nodes are too many
    assert scaler._health(picture, [g], state, SETTINGS, 0.0) is healthy
    assert state.cluster.health.status == ("Healthy" if healthy else "Unhealthy")
    assert state.cluster.counts.ready == 8 - unready
