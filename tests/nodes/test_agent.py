"""One simulated kubelet: the Node it registers, the Lease it keeps, how rarely it writes node
status, and how it adopts its Node after a restart."""

from __future__ import annotations

import asyncio
import re

import pytest

from lks.kube import errors
from lks.nodes import agent as agents

LEASES = ("coordination.k8s.io", "v1", "leases")


async def _node(cluster, name):
    return await cluster.registry("", "v1", "nodes").get(None, name)


async def _lease(cluster, name):
    return await cluster.registry(*LEASES).get(agents.LEASE_NAMESPACE, name)


def _conditions(node):
    return {c["type"]: c for c in node["status"]["conditions"]}


@pytest.fixture
async def agent(cluster, template):
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    await a.start()
    yield a
    await a.stop()


async def test_registers_the_node_as_kubelet_does(cluster, agent, template):
    name = "aks-nodepool1-12345678-vmss000000"
    node = await _node(cluster, name)
    meta, spec, status = node["metadata"], node["spec"], node["status"]
    assert meta["labels"]["kubernetes.io/hostname"] == name
    assert meta["labels"]["kubernetes.azure.com/agentpool"] == "nodepool1"
    assert meta["labels"]["kubernetes.azure.com/mode"] == "system"
    assert meta["labels"]["kubernetes.io/os"] == "linux" and meta["labels"]["kubernetes.io/arch"] == "amd64"
    assert meta["annotations"] == {"node.alpha.kubernetes.io/ttl": "0",
                                   "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    assert spec == {"providerID": "azure:///subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/"
                                  "mc_rg1_c1_eastus/providers/Microsoft.Compute/virtualMachineScaleSets/"
                                  "aks-nodepool1-12345678-vmss/virtualMachines/0"}
    assert status["capacity"] == dict(template.capacity)
    assert status["allocatable"] == dict(template.allocatable)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "False", "KubeletNotReady"),  # no pod CIDR yet: no node IPAM runs here
    ]
    assert _conditions(node)["Ready"]["message"].startswith("container runtime network not ready: ")
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.224.0.4"},
                                   {"type": "Hostname", "address": name}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.0" and info["kubeProxyVersion"] == ""
    assert info["operatingSystem"] == "linux" and info["architecture"] == "amd64"
    assert re.fullmatch(r"[0-9a-f]{32}", info["machineID"])
    assert re.fullmatch(r"[0-9a-f-]{36}", info["systemUUID"]) and re.fullmatch(r"[0-9a-f-]{36}", info["bootID"])
    assert "podCIDR" not in spec and "images" not in status


async def test_taints_and_pod_cidrs(cluster, make_template):
    template = make_template(taints=({"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"},))
    a = agents.NodeAgent(cluster=cluster, template=template, index=11, address="10.224.0.9",
                         pod_cidrs=["10.244.3.0/24"])
    await a.start()
    try:
        node = await _node(cluster, "aks-nodepool1-12345678-vmss00000b")
        assert node["spec"]["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}]
        assert node["spec"]["podCIDR"] == "10.244.3.0/24" and node["spec"]["podCIDRs"] == ["10.244.3.0/24"]
        assert node["spec"]["providerID"].endswith("/virtualMachines/11")
    finally:
        await a.stop()


async def test_lease_is_created_and_renewed_every_ten_seconds(cluster, agent, clock, settle):
    node = await _node(cluster, agent.name)
    lease = await _lease(cluster, agent.name)
    assert lease["spec"] == {"holderIdentity": agent.name, "leaseDurationSeconds": 40,
                             "renewTime": "2023-11-14T22:13:20.000000Z"}
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": agent.name, "uid": node["metadata"]["uid"]}]

    async def renewed_at(expected):
        return (await _lease(cluster, agent.name))["spec"]["renewTime"] == expected

    await clock.advance(10)
    await settle(lambda: renewed_at("2023-11-14T22:13:30.000000Z"))
    await clock.advance(9)
    await settle(lambda: renewed_at("2023-11-14T22:13:30.000000Z"))
    await clock.advance(1)
    await settle(lambda: renewed_at("2023-11-14T22:13:40.000000Z"))


async def test_node_status_is_posted_every_five_minutes_only(cluster, agent, clock, settle):
    before = await _node(cluster, agent.name)
    heartbeats = agent._heartbeats
    for _ in range(29):  # 290 s: leases only
        beats = heartbeats.beats
        await clock.advance(10)
        await settle(lambda: _true(heartbeats.beats == beats + 1))  # noqa: B023 - awaited right here
    node = await _node(cluster, agent.name)
    assert node["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    await clock.advance(10)  # 300 s: kubelet's nodeStatusReportFrequency

    async def reported():
        node = await _node(cluster, agent.name)
        return _conditions(node)["Ready"]["lastHeartbeatTime"] == "2023-11-14T22:18:20Z"

    await settle(reported)
    ready = _conditions(await _node(cluster, agent.name))["Ready"]
    assert ready["lastTransitionTime"] == "2023-11-14T22:13:20Z"  # no transition, only a heartbeat


@pytest.fixture
async def ready_agent(cluster, template):
    """An agent whose node has a pod CIDR, so that it posts Ready."""
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=["10.244.0.0/24"])
    await a.start()
    yield a
    await a.stop()


async def test_status_changed_by_others_is_posted_at_the_next_beat(cluster, ready_agent, clock, settle):
    agent = ready_agent
    nodes = cluster.registry("", "v1", "nodes")

    def unknown(node):
        for c in node["status"]["conditions"]:
            if c["type"] == "Ready":
                c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
        return node

    await nodes.patch(None, agent.name, unknown, subresource="status")
    await clock.advance(10)

    async def ready_again():
        ready = _conditions(await _node(cluster, agent.name))["Ready"]
        return ready["status"] == "True" and ready["lastTransitionTime"] == "2023-11-14T22:13:30Z"

    await settle(ready_again)


async def test_stop_ends_heartbeats_and_keeps_the_node(cluster, template, clock, settle):
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    await a.start()
    await a.stop()
    await clock.advance(60)
    for _ in range(50):
        await asyncio.sleep(0)
    assert (await _lease(cluster, a.name))["spec"]["renewTime"] == "2023-11-14T22:13:20.000000Z"
    assert (await _node(cluster, a.name))["metadata"]["name"] == a.name


async def test_stop_deleting_the_node_removes_node_and_lease(cluster, template):
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    await a.start()
    await a.stop(delete_node=True)
    for get in (_node, _lease):
        with pytest.raises(errors.APIError) as err:
            await get(cluster, a.name)
        assert err.value.code == 404


async def test_a_restarted_agent_adopts_its_node(cluster, template, clock):
    first = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    await first.start()
    await first.stop()
    nodes = cluster.registry("", "v1", "nodes")

    def user_changes(node):
        node["metadata"]["labels"]["team"] = "blue"
        node["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        return node

    await nodes.patch(None, first.name, user_changes)
    before = await _node(cluster, first.name)
    await clock.advance(120)
    again = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    await again.start()  # no AlreadyExists
    try:
        node = await _node(cluster, first.name)
        assert node["metadata"]["uid"] == before["metadata"]["uid"] == again.uid
        assert node["metadata"]["labels"]["team"] == "blue"
        assert node["spec"]["taints"] == [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        info = node["status"]["nodeInfo"]
        assert info["bootID"] == before["status"]["nodeInfo"]["bootID"]  # kubelet restarted, not the VM
        assert _conditions(node)["Ready"]["lastHeartbeatTime"] == "2023-11-14T22:15:20Z"
        lease = await _lease(cluster, first.name)
        assert lease["spec"]["renewTime"] == "2023-11-14T22:15:20.000000Z"
    finally:
        await again.stop()


async def test_heartbeats_share_one_task(cluster, make_template, clock, settle):
    beats = agents.Heartbeats(clock=clock)
    await beats.start()
    template = make_template()
    fleet = [agents.NodeAgent(cluster=cluster, template=template, index=i, address=f"10.224.0.{4 + i}",
                              heartbeats=beats) for i in range(5)]
    try:
        for a in fleet:
            await a.start()
            await clock.advance(2)  # registered 2 s apart: each keeps its own phase
        assert beats.agents == 5
        await clock.advance(1)  # 11 s after the first registration
        await settle(lambda: _true(beats.beats == 1))
        renewed = [(await _lease(cluster, a.name))["spec"]["renewTime"] for a in fleet]
        assert renewed[0] == "2023-11-14T22:13:30.000000Z"
        assert renewed[1:] == [f"2023-11-14T22:13:{22 + 2 * i}.000000Z" for i in range(4)]
    finally:
        for a in fleet:
            await a.stop()
        await beats.stop()


async def _true(value):
    return value
