"""A surge upgrade of a node pool (`lks.upgrade.surge` driving `lks.nodes.pool`) on a manual
clock: a 3-node pool moves to a new kubelet version and node image with one surge node (named
after the highest instance), each old node cordoned, drained and reimaged under its own name, the
surge node gone at the end, AKS's node Events; an upgrade that stopped halfway continues from the
nodes' versions; a budget that blocks a drain fails it as `Schedule` or `Cordon` say."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lks.controllers.disruption import DisruptionController
from lks.controllers.nodeipam import NodeIPAMController
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import drain
from lks.nodes.pool import NodePool
from lks.upgrade import surge

Obj = dict[str, Any]
PREFIX = "aks-nodepool1-12345678-vmss"
EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))
OLD_IMAGE, NEW_IMAGE = "AKSUbuntu-2404gen2containerd-202610.05.0", "AKSUbuntu-2404gen2containerd-202611.09.0"


@pytest.fixture
async def controllers(cluster):
    started = [NodeIPAMController(cluster), DisruptionController(cluster)]
    for c in started:
        await c.start()
    yield
    for c in reversed(started):
        await c.stop()


def _tmpl(make_template, version: str, image: str):
    base = make_template()
    return make_template(kubelet_version=version, labels={**base.labels, surge.IMAGE_LABEL: image})


@pytest.fixture
async def pool(cluster, make_template, controllers):
    p = NodePool(cluster=cluster, template=_tmpl(make_template, "v1.35.9", OLD_IMAGE), count=3,
                 drain_timeout=300.0)
    await p.start()
    yield p
    await p.close()


async def _run(clock, coro, *, step: float = 0.5, limit: float = 3600.0) -> Any:
    """Run `coro` to its end while the clock moves."""
    task = asyncio.ensure_future(coro)
    moved = 0.0
    try:
        while not task.done():
            for _ in range(50):
                await asyncio.sleep(0)
                if task.done():
                    break
            else:
                if moved >= limit:
                    raise AssertionError("not done in time")
                await clock.advance(step)
                moved += step
        return task.result()
    finally:
        task.cancel()


async def _nodes(cluster) -> dict[str, Obj]:
    items = (await cluster.registry("", "v1", "nodes").list(None, EVERYTHING))["items"]
    return {n["metadata"]["name"]: n for n in items}


async def _events(cluster) -> list[tuple[str, str, str]]:
    items = (await cluster.registry("", "v1", "events").list("default", EVERYTHING))["items"]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"].get("creationTimestamp") or ""))
    return [(e["reason"], e["involvedObject"]["name"], e["message"]) for e in items
            if (e.get("source") or {}).get("component") == drain.COMPONENT]


async def _pod(cluster, name: str, node: str) -> None:
    await cluster.registry("", "v1", "pods").create("default", {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]}})


async def test_every_node_is_reimaged_and_the_surge_node_goes(cluster, clock, pool, make_template):
    before = await _nodes(cluster)
    assert sorted(before) == [PREFIX + "000000", PREFIX + "000001", PREFIX + "000002"]
    new = _tmpl(make_template, "v1.36.4", NEW_IMAGE)
    assert surge.outdated(pool, new)
    done: list[int] = []

    async def progress(n: int) -> None:
        done.append(n)

    await _run(clock, surge.upgrade(pool, new, 3, surge.Settings(), progress=progress))
    after = await _nodes(cluster)
    assert sorted(after) == sorted(before)  # reimaged under their own names; the surge node 000003 gone
    for name, node in after.items():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.4"
        assert node["metadata"]["labels"][surge.IMAGE_LABEL] == NEW_IMAGE
        assert node["metadata"]["uid"] != before[name]["metadata"]["uid"]  # a new Node
        assert not node["spec"].get("unschedulable")
    assert done == [1, 2, 3]
    assert not surge.outdated(pool, new)
    events = await _events(cluster)
    surge_node = PREFIX + "000003"
    assert ("Surge", surge_node, f"Created a surge node {surge_node} for agentpool nodepool1") in events
    for i in range(3):
        name = PREFIX + f"00000{i}"
        assert ("Drain", name, f"Draining node: {name}") in events
        assert ("Upgrade", name, f"Successfully upgraded node: {name}") in events
    assert [e[0] for e in events].count("Delete") == 1


async def test_an_upgrade_that_stopped_halfway_continues_from_the_nodes(cluster, clock, pool, make_template):
    new = _tmpl(make_template, "v1.36.4", NEW_IMAGE)
    # as if a run stopped after adding the surge node and upgrading node 0
    await pool.add_nodes([3], new)
    await pool.reimage([0], new)
    await _run(clock, surge.upgrade(pool, new, 3, surge.Settings()))
    after = await _nodes(cluster)
    assert sorted(after) == [PREFIX + "000000", PREFIX + "000001", PREFIX + "000002"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in after.values()} == {"v1.36.4"}
    assert [e[0] for e in await _events(cluster)].count("Surge") == 0  # no second surge node


async def _blocked(cluster, clock) -> None:
    """A pod on node 0 that a budget keeps there."""
    await _pod(cluster, "db", PREFIX + "000000")
    pdbs = cluster.registry("policy", "v1", "poddisruptionbudgets")
    await pdbs.create("default", {"metadata": {"name": "db"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})

    async def ready() -> bool:
        pdb = await pdbs.get("default", "db")
        return (pdb.get("status") or {}).get("currentHealthy") == 1

    for _ in range(400):
        if await ready():
            return
        await clock.advance(0.05)
        await asyncio.sleep(0)
    raise AssertionError("budget never observed")


async def test_schedule_leaves_the_blocked_node_schedulable_and_removes_the_surge_node(
        cluster, clock, pool, make_template):
    await _blocked(cluster, clock)
    new = _tmpl(make_template, "v1.36.4", NEW_IMAGE)
    with pytest.raises(drain.DrainError) as err:
        await _run(clock, surge.upgrade(pool, new, 3, surge.Settings(drain_timeout=30.0)))
    assert "Too Many Requests" in err.value.message
    after = await _nodes(cluster)
    assert sorted(after) == [PREFIX + "000000", PREFIX + "000001", PREFIX + "000002"]  # no surge node left
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in after.values()} == {"v1.35.9"}
    assert not after[PREFIX + "000000"]["spec"].get("unschedulable")


async def test_cordon_quarantines_the_blocked_node_and_upgrades_the_others(cluster, clock, pool, make_template):
    await _blocked(cluster, clock)
    new = _tmpl(make_template, "v1.36.4", NEW_IMAGE)
    with pytest.raises(drain.DrainError):
        await _run(clock, surge.upgrade(pool, new, 3, surge.Settings(drain_timeout=30.0, undrainable="Cordon")))
    after = await _nodes(cluster)
    blocked = after.pop(PREFIX + "000000")
    assert blocked["spec"]["unschedulable"] is True
    assert blocked["metadata"]["labels"][surge.STATUS_LABEL] == "Quarantined"
    assert blocked["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.9"
    # a surge node stays in the blocked node's place: 3 nodes of the new version
    assert sorted(after) == [PREFIX + "000001", PREFIX + "000002", PREFIX + "000003"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in after.values()} == {"v1.36.4"}


async def test_a_subnet_without_room_for_the_full_surge_falls_back_to_one_node(cluster, make_template, controllers,
                                                                               clock):
    # a /29 has three node addresses (.4-.6): two nodes and one surge node, not the two maxSurge asks
    old = make_template(kubelet_version="v1.35.9", subnet="10.224.0.0/29")
    p = NodePool(cluster=cluster, template=old, count=2, drain_timeout=300.0)
    await p.start()
    try:
        new = make_template(kubelet_version="v1.36.4", subnet="10.224.0.0/29")
        await _run(clock, surge.upgrade(p, new, 2, surge.Settings(max_surge="100%")))
        after = await _nodes(cluster)
        assert sorted(after) == [PREFIX + "000000", PREFIX + "000001"]
        assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in after.values()} == {"v1.36.4"}
        assert [e[0] for e in await _events(cluster)].count("Surge") == 1
    finally:
        await p.close()
