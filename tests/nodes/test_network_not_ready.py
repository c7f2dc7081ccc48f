"""A node whose container runtime network is not ready, as upstream kubelet reports it: without a
pod CIDR (kubenet, Azure CNI overlay) the agent posts Ready=False, reason KubeletNotReady, with
containerd's NetworkReady message; the node lifecycle controller taints it not-ready; and when
the node IPAM controller gives it a CIDR (here after the cluster's range had been full) it posts
Ready at once, without waiting for a heartbeat, and loses the taints."""

from __future__ import annotations

import asyncio

import pytest

from lks.controllers import nodeipam, nodelifecycle
from lks.nodes import agent as agents
from lks.nodes import pods, runtime

MESSAGE = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
           "message:Network plugin returns error: cni plugin not initialized")
NODES = ("", "v1", "nodes")


async def _node(cluster, name):
    return await cluster.registry(*NODES).get(None, name)


def _conditions(node):
    return {c["type"]: c for c in node["status"]["conditions"]}


def _ready(node):
    c = _conditions(node)["Ready"]
    return c["status"], c["reason"], c["message"]


def _taints(node):
    return sorted((t["key"], t["effect"]) for t in node["spec"].get("taints") or [])


def _assign(cidr):
    def update(node):
        node["spec"]["podCIDR"], node["spec"]["podCIDRs"] = cidr, [cidr]
        return node

    return update


async def _until(settle, cluster, name, check, tries=2000):
    async def ok():
        return check(await _node(cluster, name))

    await settle(ok, tries=tries)


@pytest.fixture
async def start(cluster):
    """Starts agents of the test's pool; stops them at the end."""
    started: list[agents.NodeAgent] = []

    async def start_(template, index, **kwargs):
        a = agents.NodeAgent(cluster=cluster, template=template, index=index, address=f"10.224.0.{4 + index}",
                             **kwargs)
        await a.start()
        started.append(a)
        return a

    yield start_
    for a in started:
        await a.stop()


@pytest.mark.parametrize("cidr", [pytest.param(None, id="none"), pytest.param("10.244.0.0/33", id="invalid")])
def test_the_runtime_network_needs_a_valid_pod_cidr(cidr):
    assert runtime.network_error(cidr) == runtime.NETWORK_NOT_READY
    assert runtime.network_error("10.244.7.0/24") is None
    assert MESSAGE == f"container runtime network not ready: {runtime.NETWORK_NOT_READY}"


async def test_a_node_without_a_pod_cidr_posts_not_ready(cluster, template, start):
    agent = await start(template, 0)
    node = await _node(cluster, agent.name)
    assert "podCIDR" not in node["spec"]
    assert _ready(node) == ("False", "KubeletNotReady", MESSAGE)
    # only Ready says so: the pressure conditions are as healthy as ever
    assert [(c["type"], c["status"], c["reason"]) for c in node["status"]["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "False", "KubeletNotReady"),
    ]


async def test_a_node_registered_with_its_pod_cidr_is_ready_at_once(cluster, template, start):
    agent = await start(template, 0, pod_cidrs=["10.244.3.0/24"])
    node = await _node(cluster, agent.name)
    assert _ready(node) == ("True", "KubeletReady", "kubelet is posting ready status")


async def test_ready_as_soon_as_the_pod_cidr_comes(cluster, template, start, clock, settle):
    agent = await start(template, 0)
    registered = _conditions(await _node(cluster, agent.name))["Ready"]["lastTransitionTime"]
    beats = agent._heartbeats.beats
    await clock.advance(3)  # less than a heartbeat: the Node update is what makes it post
    await cluster.registry(*NODES).patch(None, agent.name, _assign("10.244.5.0/24"))
    await _until(settle, cluster, agent.name, lambda n: _ready(n)[0] == "True")
    ready = _conditions(await _node(cluster, agent.name))["Ready"]
    assert (ready["reason"], ready["message"]) == ("KubeletReady", "kubelet is posting ready status")
    assert ready["lastTransitionTime"] == "2023-11-14T22:13:23Z" != registered
    assert agent._heartbeats.beats == beats


async def test_the_next_beat_posts_what_the_informer_missed(cluster, template, start, clock, settle, monkeypatch):
    agent = await start(template, 0)
    monkeypatch.setattr(agent, "network_changed", lambda: None)  # as if the event never reached it
    await cluster.registry(*NODES).patch(None, agent.name, _assign("10.244.5.0/24"))
    for _ in range(200):
        await asyncio.sleep(0)
    assert _ready(await _node(cluster, agent.name))[0] == "False"
    await clock.advance(agents.RENEW_INTERVAL)
    await _until(settle, cluster, agent.name, lambda n: _ready(n)[0] == "True")


async def test_a_process_pool_follows_the_same_rule(cluster, make_template, start, settle, tmp_path):
    pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
    agent = await start(make_template(workload_runtime="Process"), 0)
    assert _ready(await _node(cluster, agent.name)) == ("False", "KubeletNotReady", MESSAGE)
    await cluster.registry(*NODES).patch(None, agent.name, _assign("10.244.5.0/24"))
    await _until(settle, cluster, agent.name, lambda n: _ready(n)[0] == "True")


async def test_host_network_pods_still_run_on_a_not_ready_node(cluster, template, start, clock, settle):
    agent = await start(template, 0)
    registry = cluster.registry("", "v1", "pods")
    await registry.create("default", {"metadata": {"name": "host"}, "spec": {
        "nodeName": agent.name, "hostNetwork": True, "containers": [{"name": "main", "image": "nginx"}]}})
    await registry.create("default", {"metadata": {"name": "web"}, "spec": {
        "nodeName": agent.name, "containers": [{"name": "main", "image": "nginx"}]}})

    async def phase(name):
        return ((await registry.get("default", name)).get("status") or {}).get("phase")

    await settle(lambda: _is(phase("web"), "Pending"), tries=2000)
    await clock.advance(0.01)
    await settle(lambda: _is(phase("host"), "Running"), tries=2000)
    assert await phase("web") == "Pending"  # waits for the network, as the node says


async def _is(value, expected):
    return await value == expected


async def _true(value):
    return value


async def test_cidrs_run_out_then_free_up(cluster, template, start, settle, monkeypatch):
    """Two /24s for three nodes: the third stays NotReady with the not-ready taints until a
    node's deletion frees a CIDR; then it is Ready and untainted."""
    monkeypatch.setattr(cluster, "pod_cidr", "10.244.0.0/23")
    ipam = nodeipam.NodeIPAMController(cluster)
    lifecycle = nodelifecycle.NodeLifecycleController(cluster)
    await ipam.start()
    await lifecycle.start()
    try:
        a, b, c = [await start(template, i) for i in range(3)]
        for agent in (a, b):
            await _until(settle, cluster, agent.name, lambda n: _ready(n)[0] == "True")
        await settle(lambda: _true(c.name in ipam._waiting), tries=2000)
        await _until(settle, cluster, c.name, lambda n: (nodelifecycle.NOT_READY, "NoSchedule") in _taints(n))
        node = await _node(cluster, c.name)
        assert _ready(node) == ("False", "KubeletNotReady", MESSAGE) and "podCIDR" not in node["spec"]
        for agent in (a, b):
            await _until(settle, cluster, agent.name, lambda n: not _taints(n))

        await a.stop(delete_node=True)
        await _until(settle, cluster, c.name, lambda n: _ready(n)[0] == "True" and not _taints(n))
        assert (await _node(cluster, c.name))["spec"]["podCIDR"] == "10.244.0.0/24"  # a's, free again
    finally:
        await lifecycle.stop()
        await ipam.stop()
