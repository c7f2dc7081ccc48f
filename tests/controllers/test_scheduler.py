"""The scheduler: each filter and score on small fake nodes and pods, the FailedScheduling
message, preemption, the queue's back-off, and the controller binding pods in a cluster on the
memory store (`cluster`, `clock` and `settle` come from this folder's conftest)."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from lks.controllers.scheduler import Scheduler, framework, preemption, queue, resources, snapshot
from lks.kube import errors, selectors
from lks.kube.registry import WriteOptions
from lks.kube.subresources import binding

Obj = dict[str, Any]
HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


def node(name: str, cpu: str = "2", mem: str = "4Gi", pods: str = "110", *, labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, zone: str | None = None, **extra: str) -> Obj:
    alloc = {"cpu": cpu, "memory": mem, "pods": pods, "ephemeral-storage": "100Gi", **extra}
    lab = {HOST: name, **({ZONE: zone} if zone else {}), **(labels or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": lab}, "spec": spec,
            "status": {"capacity": alloc, "allocatable": alloc}}


def pod(name: str, cpu: str | None = None, mem: str | None = None, *, node_name: str | None = None,
        labels: dict | None = None, priority: int | None = None, **spec: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    container: Obj = {"name": "c", "image": "nginx"}
    if requests:
        container["resources"] = {"requests": requests}
    body: Obj = {"containers": [container], **spec}
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    return {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4()),
                         "labels": labels or {}, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": body}


class World:
    """A snapshot and framework over fake objects, without a cluster."""

    def __init__(self, nodes: list[Obj], pods: list[Obj] = (), *, default_selector=None):
        self.snap = snapshot.Snapshot()
        for n in nodes:
            self.snap.set_node(n)
        for p in pods:
            self.snap.set_pod(self.info(p))
        self.fw = framework.Framework(self.snap, ns_labels=lambda ns: {}, rng=random.Random(7),
                                      default_selector=default_selector or (lambda p: None))

    @staticmethod
    def info(p: Obj) -> snapshot.PodInfo:
        return snapshot.PodInfo(p, p["spec"].get("priority", 0))

    def schedule(self, p: Obj) -> str:
        return self.fw.schedule(self.info(p), {})

    def place(self, p: Obj) -> str:
        info = self.info(p)
        name = self.fw.schedule(info, {})
        self.snap.assume(info, name)
        return name

    def error(self, p: Obj) -> framework.FitError:
        with pytest.raises(framework.FitError) as err:
            self.schedule(p)
        return err.value

    def preempt(self, p: Obj) -> preemption.Outcome:
        info = self.info(p)
        err = self.error(p)
        return preemption.Evaluator(self.fw, budgets=lambda: [], rng=random.Random(1)).preempt(info, err, {})


# -- resources -----------------------------------------------------------------------------------------

def test_pod_requests_follow_upstream_pod_requests():
    spec = {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                       {"name": "b", "resources": {"requests": {"cpu": "500m", "example.com/gpu": "1"}}}],
        "initContainers": [{"name": "i1", "resources": {"requests": {"cpu": "3"}}},
                           {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                           {"name": "i2", "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}],
        "overhead": {"cpu": "100m"},
    }
    req = resources.pod_requests(spec)
    # containers 1.5 + sidecar 0.2 = 1.7; init peak max(3, 0.2 + 1) = 3 -> 3, plus overhead
    assert req.cpu == 3100
    assert req.mem == 4 * 1024**3  # i2 with the sidecar's (none) beats the containers' 1Gi
    assert req.scalars == {"example.com/gpu": 1}
    assert req.nz_mem == 4 * 1024**3 + 200 * 1024**2  # the sidecar counts the default memory then


def test_request_less_pods_count_the_defaults_for_spreading():
    req = resources.pod_requests({"containers": [{"name": "a"}, {"name": "b"}]})
    assert (req.cpu, req.mem) == (0, 0)
    assert (req.nz_cpu, req.nz_mem) == (200, 400 * 1024 * 1024)
    pod_level = resources.pod_requests({"resources": {"requests": {"cpu": "2"}}, "containers": [
        {"name": "a", "resources": {"requests": {"cpu": "1"}}}]})
    assert pod_level.cpu == 2000


# -- filters and the message ------------------------------------------------------------------------

def test_insufficient_cpu_message_and_preemption_not_helpful():
    w = World([node("n1"), node("n2"), node("n3")])
    err = w.error(pod("big", cpu="100"))
    err.postfilter = w.preempt(pod("big", cpu="100")).message
    assert err.message() == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                             "3 Preemption is not helpful for scheduling.")


def test_full_nodes_without_victims():
    w = World([node("n1", cpu="1"), node("n2", cpu="1")],
              [pod("a", cpu="800m", node_name="n1"), pod("b", cpu="800m", node_name="n2")])
    outcome = w.preempt(pod("c", cpu="500m"))
    assert outcome.node == ""  # no candidate: any nomination is cleared
    err = w.error(pod("c", cpu="500m"))
    err.postfilter = outcome.message
    assert err.message() == ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
                             "2 No preemption victims found for incoming pod.")


def test_reasons_are_a_sorted_histogram_of_first_failures():
    w = World([node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
               node("n2", unschedulable=True), node("n3", cpu="1", pods="1", labels={"disk": "ssd"}),
               node("n4")], [pod("x", node_name="n3")])
    err = w.error(pod("p", cpu="1500m", nodeSelector={"disk": "ssd"}))
    assert err.message() == ("0/4 nodes are available: 1 Insufficient cpu, 1 Too many pods, 1 node(s) didn't "
                             "match Pod's node affinity/selector, 1 node(s) had untolerated taint(s), "
                             "1 node(s) were unschedulable.")


def test_no_nodes():
    w = World([])
    assert w.error(pod("p")).message() == "no nodes available to schedule pods"


def test_node_unschedulable_and_its_toleration():
    w = World([node("n1", unschedulable=True)])
    assert w.error(pod("p")).message() == "0/1 nodes are available: 1 node(s) were unschedulable."
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert w.schedule(pod("p", tolerations=tol)) == "n1"


@pytest.mark.parametrize("effect", ["NoSchedule", "NoExecute"])
def test_taints_need_tolerations(effect):
    w = World([node("n1", taints=[{"key": "k", "value": "v", "effect": effect}])])
    assert w.error(pod("p")).message() == "0/1 nodes are available: 1 node(s) had untolerated taint(s)."
    assert w.schedule(pod("p", tolerations=[{"key": "k", "operator": "Equal", "value": "v"}])) == "n1"
    assert w.schedule(pod("p", tolerations=[{"operator": "Exists"}])) == "n1"
    with pytest.raises(framework.FitError):
        w.schedule(pod("p", tolerations=[{"key": "k", "value": "other"}]))


def test_prefer_no_schedule_only_scores():
    w = World([node("n1", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("n2")])
    assert {w.schedule(pod(f"p{i}")) for i in range(10)} == {"n2"}


@pytest.mark.parametrize("affinity,expected", [
    pytest.param({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]},
                 {"n1"}, id="In"),
    pytest.param({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]},
                 {"n2", "n3"}, id="NotIn"),
    pytest.param({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]},
                 {"n1", "n2"}, id="Exists"),
    pytest.param({"nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]}]}]},
                 {"n2"}, id="Gt"),
    pytest.param({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]},
                 {"n3"}, id="matchFields"),
    pytest.param({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                                        {"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["2"]}]}]},
                 {"n1", "n3"}, id="ORed-terms"),
])
def test_required_node_affinity(affinity, expected):
    w = World([node("n1", labels={"disk": "ssd", "gen": "3"}), node("n2", labels={"disk": "hdd", "gen": "5"}),
               node("n3", labels={"gen": "1"})])
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": affinity}}}
    assert {w.schedule(pod(f"p{i}", **spec)) for i in range(30)} == expected


def test_pinned_node_that_is_full():
    w = World([node("n1", pods="1"), node("n2")], [pod("x", node_name="n1")])
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}
    assert w.error(pod("ds", **spec)).message() == (
        "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't satisfy plugin(s) [NodeAffinity].")


def test_preferred_node_affinity_wins():
    w = World([node("n1"), node("n2", labels={"fast": "yes"})])
    spec = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [{"key": "fast", "operator": "In", "values": ["yes"]}]}}]}}}
    assert {w.schedule(pod(f"p{i}", **spec)) for i in range(10)} == {"n2"}


def test_host_ports_conflict():
    ports = [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
    w = World([node("n1"), node("n2")], [pod("x", node_name="n1", containers=ports)])
    assert {w.schedule(pod(f"p{i}", containers=ports)) for i in range(10)} == {"n2"}
    w.snap.set_pod(w.info(pod("y", node_name="n2", containers=ports)))
    assert w.error(pod("z", containers=ports)).message() == (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.")


def test_pod_count_and_extended_resources():
    w = World([node("n1", pods="2", **{"example.com/gpu": "1"})], [pod("a", node_name="n1"), pod("b", node_name="n1")])
    assert w.error(pod("c")).message() == "0/1 nodes are available: 1 Too many pods."
    w2 = World([node("n1", **{"example.com/gpu": "1"}), node("n2")])
    gpu = [{"name": "c", "image": "cuda", "resources": {"requests": {"example.com/gpu": "1"}}}]
    assert w2.schedule(pod("g", containers=gpu)) == "n1"
    w2.place(pod("g1", containers=gpu))
    assert w2.error(pod("g2", containers=gpu)).message() == "0/2 nodes are available: 2 Insufficient example.com/gpu."


def _anti(labels: dict, key: str = HOST) -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}


def test_required_anti_affinity_of_the_pod_and_of_existing_pods():
    w = World([node("n1", zone="z1"), node("n2", zone="z1"), node("n3", zone="z2")])
    placed = {w.place(pod(f"web{i}", labels={"app": "web"}, affinity=_anti({"app": "web"}))) for i in range(3)}
    assert placed == {"n1", "n2", "n3"}
    assert w.error(pod("web3", labels={"app": "web"}, affinity=_anti({"app": "web"}))).message() == (
        "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.")
    w2 = World([node("n1", zone="z1"), node("n2", zone="z2")], [pod("db", labels={"app": "db"}, node_name="n1")])
    assert w2.schedule(pod("x", affinity=_anti({"app": "db"}, ZONE))) == "n2"


def test_required_affinity_and_the_first_pod_of_a_group():
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": ZONE}]}}
    w = World([node("n1", zone="z1"), node("n2", zone="z2"), node("n3")])
    first = w.place(pod("c0", labels={"app": "cache"}, affinity=affinity))  # matches its own terms
    assert first in ("n1", "n2")
    assert {w.schedule(pod(f"c{i}", labels={"app": "cache"}, affinity=affinity)) for i in range(10)} == {first}
    err = World([node("n1", zone="z1")]).error(pod("lonely", affinity=affinity))
    assert err.message() == "0/1 nodes are available: 1 node(s) didn't match pod affinity rules."


def test_preferred_anti_affinity_spreads():
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "w"}}, "topologyKey": HOST}}]}}
    w = World([node("n1"), node("n2"), node("n3")])
    assert {w.place(pod(f"w{i}", labels={"app": "w"}, affinity=affinity)) for i in range(3)} == {"n1", "n2", "n3"}


def test_topology_spread_do_not_schedule():
    tsc = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "s"}}}]
    w = World([node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("x")],
              [pod("s0", labels={"app": "s"}, node_name="a1")])
    assert w.schedule(pod("s1", labels={"app": "s"}, topologySpreadConstraints=tsc)) == "b1"
    full = World([node("a1", zone="a", pods="5"), node("b1", zone="b", pods="1"), node("x")],
                 [pod("s0", labels={"app": "s"}, node_name="a1"), pod("s1", labels={"app": "s"}, node_name="b1"),
                  pod("s2", labels={"app": "s"}, node_name="a1")])
    assert full.error(pod("s3", labels={"app": "s"}, topologySpreadConstraints=tsc)).message() == (
        "0/3 nodes are available: 1 Too many pods, 1 node(s) didn't match pod topology spread constraints, "
        "1 node(s) didn't match pod topology spread constraints (missing required label).")


def test_system_default_spreading_evens_out_a_replicaset():
    sel = selectors.LabelSelector([selectors.Requirement("app", "=", frozenset(["rs"]))])
    w = World([node(f"n{i}", zone=f"z{i % 3}", cpu="64", mem="256Gi") for i in range(9)],
              default_selector=lambda p: sel if p.labels.get("app") == "rs" else None)
    for i in range(27):
        w.place(pod(f"rs{i}", labels={"app": "rs"}))
    counts = [sum(1 for p in n.pods.values()) for n in w.snap.node_list()]
    assert counts == [3] * 9


def test_least_allocated_prefers_the_emptier_node():
    w = World([node("n1", cpu="4", mem="8Gi"), node("n2", cpu="4", mem="8Gi")],
              [pod("x", cpu="2", mem="4Gi", node_name="n1")])
    assert {w.schedule(pod(f"p{i}", cpu="100m", mem="100Mi")) for i in range(10)} == {"n2"}


def test_feasible_nodes_to_find():
    fw = World([]).fw
    assert [fw.feasible_to_find(n) for n in (3, 100, 500, 1000, 5000, 10000)] == [3, 100, 230, 420, 500, 500]


# -- preemption --------------------------------------------------------------------------------------------

def test_preemption_picks_the_fewest_and_least_important_victims():
    w = World([node("n1", cpu="2"), node("n2", cpu="2")],
              [pod("low1", cpu="1", priority=1, node_name="n1"), pod("low2", cpu="1", priority=1, node_name="n1"),
               pod("mid", cpu="1500m", priority=5, node_name="n2")])
    outcome = w.preempt(pod("high", cpu="1", priority=10))
    assert outcome.node == "n1"
    assert [v.name for v in outcome.victims] == ["low1"] or [v.name for v in outcome.victims] == ["low2"]
    assert outcome.message == ""


def test_preemption_never_and_equal_priority():
    w = World([node("n1", cpu="1")], [pod("a", cpu="1", priority=5, node_name="n1")])
    assert w.preempt(pod("b", cpu="1", priority=10, preemptionPolicy="Never")).message == \
        "not eligible due to preemptionPolicy=Never."
    assert w.preempt(pod("c", cpu="1", priority=5)).node == ""


def test_budgets_are_respected_when_possible():
    pods = [pod("a", cpu="1", priority=1, node_name="n1", labels={"app": "guarded"}),
            pod("b", cpu="1", priority=1, node_name="n2", labels={"app": "free"})]
    w = World([node("n1", cpu="1"), node("n2", cpu="1")], pods)
    budget = preemption.Budget({"metadata": {"name": "pdb", "namespace": "default"},
                                "spec": {"selector": {"matchLabels": {"app": "guarded"}}},
                                "status": {"disruptionsAllowed": 0}})
    info = w.info(pod("h", cpu="1", priority=9))
    err = w.error(pod("h", cpu="1", priority=9))
    outcome = preemption.Evaluator(w.fw, budgets=lambda: [budget]).preempt(info, err, {})
    assert outcome.node == "n2" and [v.name for v in outcome.victims] == ["b"]


# -- queue -----------------------------------------------------------------------------------------------

def test_queue_orders_by_priority_and_backs_off():
    now = [100.0]
    q = queue.SchedulingQueue(lambda: now[0])
    q.add(World.info(pod("low", priority=1)))
    q.add(World.info(pod("high", priority=100)))
    first = q.pop()
    assert first.info.name == "high"
    q.failed(first, unschedulable=True)
    assert "default/high" in q.unschedulable
    q.move_all()
    assert q.pop().info.name == "low"  # high waits out its 1 s back-off
    assert q.pop() is None
    assert q.next_deadline() == 101.0
    now[0] = 101.0
    q.flush()
    again = q.pop()
    assert again.info.name == "high" and again.attempts == 2
    q.failed(again, unschedulable=False)
    assert q.backoff_expiry(again) == 103.0  # 2 s after the second failure
    again.attempts = 9
    assert q.backoff_expiry(again) == 111.0  # capped at 10 s


def test_an_event_during_the_attempt_sends_it_to_backoff():
    now = [0.0]
    q = queue.SchedulingQueue(lambda: now[0])
    q.add(World.info(pod("p")))
    qp = q.pop()
    q.move_all()  # a node was added while we were trying
    q.failed(qp, unschedulable=True)
    assert not q.unschedulable and q.next_deadline() == 1.0


# -- the controller in a cluster ---------------------------------------------------------------------------

@pytest.fixture
async def sched(cluster):
    s = Scheduler(cluster, seed=3)
    await s.start()
    yield s
    await s.stop()


async def _create_nodes(cluster, *nodes: Obj) -> None:
    reg = cluster.registry("", "v1", "nodes")
    for n in nodes:
        await reg.create(None, n)


async def _create(cluster, p: Obj) -> Obj:
    p = {**p, "metadata": {k: v for k, v in p["metadata"].items() if k not in ("uid", "creationTimestamp")}}
    return await cluster.registry("", "v1", "pods").create("default", p)


async def _get(cluster, name: str) -> Obj:
    return await cluster.registry("", "v1", "pods").get("default", name)


def _cond(p: Obj) -> Obj | None:
    return next((c for c in (p.get("status") or {}).get("conditions") or () if c["type"] == "PodScheduled"), None)


async def test_binds_pods_and_marks_them_scheduled(cluster, sched, settle):
    await _create_nodes(cluster, node("n1"), node("n2"))
    await _create(cluster, pod("web", cpu="100m"))

    async def bound():
        return (await _get(cluster, "web"))["spec"].get("nodeName")
    await settle(bound)
    p = await _get(cluster, "web")
    assert p["spec"]["nodeName"] in ("n1", "n2")
    assert _cond(p)["status"] == "True" and _cond(p)["lastProbeTime"] is None

    async def event():
        evs = (await cluster.registry("", "v1", "events").list("default", _all()))["items"]
        return [e for e in evs if e["reason"] == "Scheduled"]
    await settle(event)
    (ev,) = await event()
    assert ev["message"] == f"Successfully assigned default/web to {p['spec']['nodeName']}"
    assert ev["source"]["component"] == "default-scheduler"


def _all():
    from lks.kube.registry import ListOptions
    return ListOptions(selectors.LabelSelector([]), selectors.FieldSelector([]))


async def test_unschedulable_pod_waits_for_room(cluster, sched, settle, clock):
    await _create_nodes(cluster, node("n1", cpu="1"))
    await _create(cluster, pod("big", cpu="2"))

    async def condition():
        return _cond(await _get(cluster, "big"))
    await settle(condition)
    cond = await condition()
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"] == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                               "available: 1 Preemption is not helpful for scheduling.")
    evs = (await cluster.registry("", "v1", "events").list("default", _all()))["items"]
    failed = [e for e in evs if e["reason"] == "FailedScheduling"]
    assert failed and failed[0]["type"] == "Warning" and failed[0]["message"] == cond["message"]
    await _create_nodes(cluster, node("n2", cpu="4"))
    await clock.advance(2)  # past the back-off

    async def bound():
        return (await _get(cluster, "big"))["spec"].get("nodeName")
    await settle(bound)
    assert await bound() == "n2"
    assert _cond(await _get(cluster, "big"))["status"] == "True"


async def test_deleting_a_blocker_makes_room(cluster, sched, settle, clock):
    await _create_nodes(cluster, node("n1", cpu="1"))
    await _create(cluster, pod("blocker", cpu="800m", node_name="n1"))
    await _create(cluster, pod("waiting", cpu="500m"))

    async def failed():
        return _cond(await _get(cluster, "waiting"))
    await settle(failed)
    from lks.kube import deletion
    await cluster.registry("", "v1", "pods").delete("default", "blocker", deletion.DeleteOptions(grace_period_seconds=0))
    await clock.advance(2)

    async def bound():
        return (await _get(cluster, "waiting"))["spec"].get("nodeName")
    await settle(bound)
    assert await bound() == "n1"


async def test_preemption_evicts_and_nominates(cluster, sched, settle, clock):
    await _create_nodes(cluster, node("n1", cpu="1"))
    await cluster.registry("scheduling.k8s.io", "v1", "priorityclasses").create(
        None, {"metadata": {"name": "high"}, "value": 1000})
    await _create(cluster, pod("victim", cpu="800m", node_name="n1"))
    await _create(cluster, pod("vip", cpu="500m", priorityClassName="high"))

    async def evicted():
        v = await _get(cluster, "victim")
        return "deletionTimestamp" in v["metadata"] and v
    await settle(evicted)
    v = await evicted()
    target = next(c for c in v["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert target["reason"] == "PreemptionByScheduler"

    async def nominated():
        return (await _get(cluster, "vip")).get("status", {}).get("nominatedNodeName")
    await settle(nominated)
    assert await nominated() == "n1"
    from lks.kube import deletion  # the kubelet confirms the victim is gone
    await cluster.registry("", "v1", "pods").delete("default", "victim", deletion.DeleteOptions(grace_period_seconds=0))
    await clock.advance(2)

    async def bound():
        return (await _get(cluster, "vip"))["spec"].get("nodeName")
    await settle(bound)
    vip = await _get(cluster, "vip")
    assert vip["spec"]["nodeName"] == "n1" and "nominatedNodeName" not in vip["status"]


async def test_other_schedulers_pods_are_left_alone(cluster, sched, settle):
    await _create_nodes(cluster, node("n1"))
    await _create(cluster, pod("mine", schedulerName="my-scheduler"))
    await _create(cluster, pod("ours"))

    async def bound():
        return (await _get(cluster, "ours"))["spec"].get("nodeName")
    await settle(bound)
    await asyncio.sleep(0)
    assert "nodeName" not in (await _get(cluster, "mine"))["spec"]


# -- the binding subresource ---------------------------------------------------------------------------

async def test_binding_sets_the_node_once(cluster):
    pods = cluster.registry("", "v1", "pods")
    created = await _create(cluster, pod("p"))
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "annotations": {"a": "b"}},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    status, answer = await binding.pod_binding(pods, "default", "p", "create", body, WriteOptions())
    assert status == 201 and answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "code": 201}
    bound = await _get(cluster, "p")
    assert bound["spec"]["nodeName"] == "n1" and bound["metadata"]["annotations"] == {"a": "b"}
    assert _cond(bound)["status"] == "True"
    with pytest.raises(errors.APIError) as err:
        await binding.pod_binding(pods, "default", "p", "create", {**body, "target": {"name": "n2"}}, WriteOptions())
    assert err.value.code == 409
    assert err.value.message == 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    other = await _create(cluster, pod("q"))
    with pytest.raises(errors.APIError) as err:
        await binding.assign(pods, "default", "q", "n1", uid="not-" + other["metadata"]["uid"])
    assert err.value.code == 409 and "Precondition failed: UID in precondition" in err.value.message
    assert created["metadata"]["uid"] != other["metadata"]["uid"]


@pytest.mark.parametrize("body,code,message", [
    pytest.param({"metadata": {"name": "other"}, "target": {"name": "n1"}}, 400,
                 "name in URL does not match name in Binding object", id="name"),
    pytest.param({"metadata": {"name": "p"}, "target": {"kind": "Pod"}}, 500,
                 '[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]',
                 id="target"),
    pytest.param({"metadata": {"name": "p", "namespace": "kube-system"}, "target": {"name": "n1"}}, 400,
                 "the namespace of the provided object does not match the namespace sent on the request", id="namespace"),
])
async def test_binding_validation(cluster, body, code, message):
    await _create(cluster, pod("p"))
    with pytest.raises(errors.APIError) as err:
        await binding.pod_binding(cluster.registry("", "v1", "pods"), "default", "p", "create", body, WriteOptions())
    assert (err.value.code, err.value.message) == (code, message)


async def test_legacy_bindings_resource(cluster):
    await _create(cluster, pod("p"))
    status, _ = await binding.create_legacy(cluster, "default", {"metadata": {"name": "p"}, "target": {"name": "n9"}},
                                            WriteOptions())
    assert status == 201 and (await _get(cluster, "p"))["spec"]["nodeName"] == "n9"
    with pytest.raises(errors.APIError) as err:
        await binding.create_legacy(cluster, "default", {"metadata": {"name": "gone"}, "target": {"name": "n9"}},
                                    WriteOptions())
    assert err.value.code == 404


async def test_priority_and_preemption_policy_come_from_the_class(cluster, sched, settle):
    await cluster.registry("scheduling.k8s.io", "v1", "priorityclasses").create(
        None, {"metadata": {"name": "batch"}, "value": 50, "preemptionPolicy": "Never"})
    await settle(lambda: "batch" in sched.listers.classes)
    p = pod("job", priorityClassName="batch")
    assert sched.listers.priority(p) == 50
    assert sched.listers.preemption_policy(World.info(p)) == "Never"
    assert sched.listers.priority(pod("crit", priorityClassName="system-node-critical")) == 2000001000
    assert sched.listers.priority(pod("plain")) == 0
