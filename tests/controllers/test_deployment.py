"""The Deployment controller with the ReplicaSet controller, on the memory store with a manual
clock. There is no scheduler or kubelet here: tests mark pods Running and Ready themselves."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import deployment_util as du
from lks.controllers.deployment import DeploymentController
from lks.controllers.replicaset import ReplicaSetController
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]
NS = "default"
EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))


async def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


@pytest.fixture
async def controllers(cluster: Cluster) -> AsyncIterator[tuple[DeploymentController, ReplicaSetController]]:
    rsc, dc = ReplicaSetController(cluster), DeploymentController(cluster)
    await rsc.start()
    await dc.start()
    yield dc, rsc
    await dc.stop()
    await rsc.stop()


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def get_d(cluster: Cluster, name: str = "web") -> Obj:
    return await cluster.registry("apps", "v1", "deployments").get(NS, name)


async def replica_sets(cluster: Cluster) -> list[Obj]:
    body = await cluster.registry("apps", "v1", "replicasets").list(NS, EVERYTHING)
    return sorted(body["items"], key=lambda r: du.revision(r))


async def live_pods(cluster: Cluster) -> list[Obj]:
    body = await cluster.registry("", "v1", "pods").list(NS, EVERYTHING)
    return [p for p in body["items"] if "deletionTimestamp" not in p["metadata"]]


async def events(cluster: Cluster, reason: str) -> list[str]:
    body = await cluster.registry("", "v1", "events").list(NS, EVERYTHING)
    # in the order written (timestamps have a second's resolution and the clock stands still)
    return [e["message"] for e in sorted(body["items"], key=lambda e: int(e["metadata"]["resourceVersion"]))
            if e["reason"] == reason]


async def make_ready(cluster: Cluster) -> int:
    """Mark every live pod that is not yet Ready as Running and Ready (a kubelet's work)."""
    pods = cluster.registry("", "v1", "pods")
    now = rfc3339(cluster.clock.now())
    n = 0
    for pod in await live_pods(cluster):
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            continue

        def put(current: Obj) -> Obj:
            current.setdefault("status", {}).update(
                phase="Running", conditions=[{"type": "Ready", "status": "True", "lastTransitionTime": now}])
            return current

        await pods.patch(NS, pod["metadata"]["name"], put, subresource="status")
        n += 1
    return n


def complete(d: Obj) -> bool:
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas", 0) == want
            and st.get("replicas", 0) == want and st.get("availableReplicas", 0) == want)


async def roll_out(cluster: Cluster, name: str = "web", timeout: float = 10.0) -> Obj:
    """Keep making pods ready until the Deployment reports its rollout complete."""
    async def step() -> Obj | None:
        await make_ready(cluster)
        d = await get_d(cluster, name)
        return d if complete(d) and _condition(d, "Progressing")["reason"] == du.NEW_RS_AVAILABLE else None

    return await wait_for(step, timeout)


def _condition(d: Obj, type_: str) -> Obj:
    return next((c for c in (d.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


async def set_image(cluster: Cluster, image: str, name: str = "web") -> None:
    def change(o: Obj) -> Obj:
        o = copy.deepcopy(o)
        o["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return o

    await cluster.registry("apps", "v1", "deployments").patch(NS, name, change)


async def set_spec(cluster: Cluster, name: str = "web", **fields: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").patch(NS, name, lambda o: {**o, "spec": {**o["spec"], **fields}})


async def test_creates_a_replica_set_named_by_the_template_hash(cluster: Cluster, controllers: Any) -> None:
    d = await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=3))
    rss = await wait_for(lambda: replica_sets(cluster))
    assert len(rss) == 1
    rs = rss[0]
    hash_ = rs["metadata"]["labels"][du.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert hash_ == du.compute_hash(d["spec"]["template"], None)
    assert set(hash_) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(hash_) <= 10
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", du.HASH_LABEL: hash_}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", du.HASH_LABEL: hash_}
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["ownerReferences"][0] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}
    ann = rs["metadata"]["annotations"]
    assert ann[du.REVISION] == "1" and ann[du.DESIRED_REPLICAS] == "3" and ann[du.MAX_REPLICAS] == "4"
    pods = await wait_for(lambda: _n(live_pods(cluster), 3))
    assert all(p["metadata"]["name"].startswith(f"web-{hash_}-") for p in pods)
    assert await wait_for(lambda: events(cluster, "ScalingReplicaSet")) == [
        f"Scaled up replica set web-{hash_} from 0 to 3"]

    got = await wait_for(lambda: _with_status(cluster, replicas=3))
    assert got["metadata"]["annotations"][du.REVISION] == "1"
    assert _condition(got, "Available")["reason"] == du.MIN_UNAVAILABLE
    assert _condition(got, "Progressing")["reason"] in (du.NEW_RS_CREATED, du.RS_UPDATED)

    done = await roll_out(cluster)
    st = done["status"]
    assert st["replicas"] == st["updatedReplicas"] == st["readyReplicas"] == st["availableReplicas"] == 3
    assert "unavailableReplicas" not in st and st["observedGeneration"] == 1 and st["terminatingReplicas"] == 0
    assert _condition(done, "Available").items() >= {"status": "True", "reason": du.MIN_AVAILABLE,
                                                     "message": "Deployment has minimum availability."}.items()
    assert _condition(done, "Progressing")["message"] == f'ReplicaSet "web-{hash_}" has successfully progressed.'


async def test_rolling_update_keeps_availability_and_surge(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=4))
    await roll_out(cluster)
    await set_image(cluster, "nginx:2")
    peak = 0
    seen_min_available = 4

    async def step() -> Obj | None:
        nonlocal peak, seen_min_available
        pods = await live_pods(cluster)
        peak = max(peak, len(pods))
        d = await get_d(cluster)
        seen_min_available = min(seen_min_available, (d.get("status") or {}).get("availableReplicas", 0))
        # one new pod at a time becomes ready, as a slow kubelet would
        for pod in pods:
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []):
                await _ready(cluster, pod)
                break
        return d if complete(d) and d["metadata"]["generation"] == 2 else None

    await wait_for(step, 10)
    assert peak <= 4 + 1  # maxSurge 25% of 4 = 1
    assert seen_min_available >= 3  # maxUnavailable 25% of 4 = 1
    rss = await replica_sets(cluster)
    assert [du.revision(r) for r in rss] == [1, 2]
    assert [r["spec"]["replicas"] for r in rss] == [0, 4]
    assert (await get_d(cluster))["metadata"]["annotations"][du.REVISION] == "2"
    msgs = await events(cluster, "ScalingReplicaSet")
    new_name, old_name = rss[1]["metadata"]["name"], rss[0]["metadata"]["name"]
    assert f"Scaled up replica set {new_name} from 0 to 1" in msgs
    assert any(m.startswith(f"Scaled down replica set {old_name} from ") and m.endswith(" to 0") for m in msgs)


async def test_recreate_removes_old_pods_first(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=2, strategy={"type": "Recreate"}))
    await roll_out(cluster)
    await set_image(cluster, "nginx:2")
    done = await roll_out(cluster)
    assert done["metadata"]["generation"] == 2
    rss = await replica_sets(cluster)
    assert [r["spec"]["replicas"] for r in rss] == [0, 2]
    msgs = await events(cluster, "ScalingReplicaSet")
    old, new = rss[0]["metadata"]["name"], rss[1]["metadata"]["name"]
    assert msgs.index(f"Scaled down replica set {old} from 2 to 0") < msgs.index(
        f"Scaled up replica set {new} from 0 to 2")


async def test_scaling_mid_rollout_is_proportional(cluster: Cluster, controllers: Any) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=10, strategy=strategy))
    await roll_out(cluster)
    await set_image(cluster, "nginx:2")  # new pods never become ready here
    # 13 pods at most (10 + 3), 8 available at least (10 - 2): old 10 -> 8, new 0 -> 5

    async def mid_rollout() -> list[int] | None:
        sizes = [r["spec"]["replicas"] for r in await replica_sets(cluster)]
        return sizes if sizes == [8, 5] else None

    await wait_for(mid_rollout)
    await set_spec(cluster, replicas=15)

    async def scaled() -> list[int] | None:
        sizes = [r["spec"]["replicas"] for r in await replica_sets(cluster)]
        return sizes if sum(sizes) == 18 else None

    # 18 allowed (15 + maxSurge 3), 5 more, in proportion to the 13 they were sized for:
    # old 8 -> round(8 * 18 / 13) = 11, new 5 -> round(5 * 18 / 13) = 7
    assert await wait_for(scaled) == [11, 7]
    rss = await replica_sets(cluster)
    assert all(r["metadata"]["annotations"][du.DESIRED_REPLICAS] == "15" for r in rss)
    assert all(r["metadata"]["annotations"][du.MAX_REPLICAS] == "18" for r in rss)


async def test_scale_to_zero_and_back(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=2))
    await roll_out(cluster)
    await set_spec(cluster, replicas=0)
    await wait_for(lambda: _n(live_pods(cluster), 0))
    d = await wait_for(lambda: _with_status(cluster, replicas=0, observedGeneration=2))
    assert "availableReplicas" not in d["status"] and _condition(d, "Available")["status"] == "True"
    await set_spec(cluster, replicas=3)
    await wait_for(lambda: _n(live_pods(cluster), 3))
    assert len(await replica_sets(cluster)) == 1


async def test_pause_holds_the_rollout_and_resume_continues(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=2))
    await roll_out(cluster)
    await set_spec(cluster, paused=True)
    d = await wait_for(lambda: _progressing(cluster, du.PAUSED))
    assert _condition(d, "Progressing").items() >= {"status": "Unknown", "message": "Deployment is paused"}.items()
    await set_image(cluster, "nginx:2")
    await wait_for(lambda: _with_status(cluster, observedGeneration=3))
    assert len(await replica_sets(cluster)) == 1  # no rollout while paused
    await set_spec(cluster, paused=False)
    done = await roll_out(cluster)
    assert done["metadata"]["annotations"][du.REVISION] == "2"
    assert len(await replica_sets(cluster)) == 2


async def test_history_limit_and_undo_to_an_old_template(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=1, revisionHistoryLimit=1))
    await roll_out(cluster)
    first_template = copy.deepcopy((await get_d(cluster))["spec"]["template"])
    await set_image(cluster, "nginx:2")
    await roll_out(cluster)
    await set_image(cluster, "nginx:3")
    await roll_out(cluster)

    async def trimmed() -> list[Obj] | None:
        rss = await replica_sets(cluster)
        return rss if len(rss) == 2 else None

    rss = await wait_for(trimmed)
    assert [du.revision(r) for r in rss] == [2, 3]  # revision 1 is gone, one old set kept

    # what `kubectl rollout undo` does: the previous revision's template, without its hash label
    old = copy.deepcopy(rss[0]["spec"]["template"])
    del old["metadata"]["labels"][du.HASH_LABEL]
    await cluster.registry("apps", "v1", "deployments").patch(NS, "web", lambda o: {**o, "spec": {**o["spec"], "template": old}})
    done = await roll_out(cluster)
    assert done["metadata"]["annotations"][du.REVISION] == "4"
    rss = await wait_for(trimmed)
    back = next(r for r in rss if r["metadata"]["uid"] == rss[-1]["metadata"]["uid"])
    assert du.revision(back) == 4 and back["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "2"
    assert first_template["spec"]["containers"][0]["image"] == "nginx:1"


async def test_progress_deadline_exceeded(cluster: Cluster, clock: ManualClock, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=2, progressDeadlineSeconds=30))
    await wait_for(lambda: _n(live_pods(cluster), 2))
    await wait_for(lambda: _with_status(cluster, replicas=2))
    for _ in range(10):
        await clock.advance(5)
        await asyncio.sleep(0.01)
    d = await wait_for(lambda: _progressing(cluster, du.TIMED_OUT))
    cond = _condition(d, "Progressing")
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.") and cond["message"].startswith('ReplicaSet "web-')
    # progress afterwards is reported again
    await set_spec(cluster, replicas=3)
    done = await roll_out(cluster)
    assert _condition(done, "Progressing")["reason"] == du.NEW_RS_AVAILABLE


async def test_restart_annotation_rolls_out_a_new_replica_set(cluster: Cluster, controllers: Any) -> None:
    await cluster.registry("apps", "v1", "deployments").create(NS, deployment(replicas=1))
    await roll_out(cluster)

    def restart(o: Obj) -> Obj:
        o = copy.deepcopy(o)
        o["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
        return o

    await cluster.registry("apps", "v1", "deployments").patch(NS, "web", restart)
    await roll_out(cluster)
    rss = await replica_sets(cluster)
    assert len(rss) == 2 and rss[1]["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}


async def test_adopts_an_orphan_replica_set(cluster: Cluster, controllers: Any) -> None:
    d = deployment(replicas=1)
    hash_ = "abc"
    orphan = {"metadata": {"name": "web-old", "labels": {"app": "web", du.HASH_LABEL: hash_}},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", du.HASH_LABEL: hash_}},
                       "template": {"metadata": {"labels": {"app": "web", du.HASH_LABEL: hash_}},
                                    "spec": {"containers": [{"name": "c", "image": "old"}]}}}}
    await cluster.registry("apps", "v1", "replicasets").create(NS, orphan)
    created = await cluster.registry("apps", "v1", "deployments").create(NS, d)

    async def adopted() -> bool:
        rs = await cluster.registry("apps", "v1", "replicasets").get(NS, "web-old")
        refs = rs["metadata"].get("ownerReferences") or []
        return bool(refs) and refs[0]["uid"] == created["metadata"]["uid"]

    await wait_for(adopted)
    await roll_out(cluster)


# -- pure helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("surge", "unavailable", "desired", "want"), [
    pytest.param("25%", "25%", 4, (1, 1), id="defaults-4"),
    pytest.param("25%", "25%", 3, (1, 0), id="surge-rounds-up-unavailable-down"),
    pytest.param("25%", "25%", 10, (3, 2), id="defaults-10"),
    pytest.param(0, "10%", 5, (0, 1), id="both-zero-means-one-unavailable"),
    pytest.param(2, 0, 5, (2, 0), id="ints"),
])
def test_fenceposts(surge: Any, unavailable: Any, desired: int, want: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, desired) == want


def test_hash_changes_with_template_and_collision_count() -> None:
    t1 = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    t2 = copy.deepcopy(t1)
    t2["spec"]["containers"][0]["image"] = "y"
    assert du.compute_hash(t1, None) == du.compute_hash(copy.deepcopy(t1), None)
    assert du.compute_hash(t1, None) != du.compute_hash(t2, None)
    assert du.compute_hash(t1, None) != du.compute_hash(t1, 1)
    with_hash = du.template_with_hash(t1, "abc")
    assert du.equal_ignore_hash(with_hash, t1) and not du.equal_ignore_hash(with_hash, t2)


def test_revision_history_is_kept_when_a_set_comes_back() -> None:
    d = {"metadata": {"annotations": {"kubernetes.io/change-cause": "undo", du.LAST_APPLIED: "{}"}},
         "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    rs = {"metadata": {"annotations": {du.REVISION: "2", du.REVISION_HISTORY: "1"}}, "spec": {"replicas": 2}}
    assert du.set_new_replica_set_annotations(d, rs, 5, True)
    ann = rs["metadata"]["annotations"]
    assert ann[du.REVISION] == "5" and ann[du.REVISION_HISTORY] == "1,2"
    assert ann["kubernetes.io/change-cause"] == "undo" and du.LAST_APPLIED not in ann
    assert not du.set_new_replica_set_annotations(d, rs, 3, True)  # never lowered


# -- waits -------------------------------------------------------------------------------------

async def _n(listing: Any, n: int) -> Any:
    got = await listing
    return (got or True) if len(got) == n else None


async def _with_status(cluster: Cluster, **want: int) -> Obj | None:
    d = await get_d(cluster)
    st = d.get("status") or {}
    return d if all(st.get(k, 0) == v for k, v in want.items()) else None


async def _progressing(cluster: Cluster, reason: str) -> Obj | None:
    d = await get_d(cluster)
    return d if _condition(d, "Progressing").get("reason") == reason else None


async def _ready(cluster: Cluster, pod: Obj) -> None:
    now = rfc3339(cluster.clock.now())

    def put(current: Obj) -> Obj:
        current.setdefault("status", {}).update(
            phase="Running", conditions=[{"type": "Ready", "status": "True", "lastTransitionTime": now}])
        return current

    await cluster.registry("", "v1", "pods").patch(NS, pod["metadata"]["name"], put, subresource="status")
