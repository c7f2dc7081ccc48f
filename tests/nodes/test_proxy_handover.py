"""Service VIPs across a control-plane restart (`PodWorkers.hand_over`): the Process runtime's
proxier (`lks.net.proxy`) follows the next `Cluster` of that id as soon as its pod workers take
the runtime over, so a Service created after the restart gets its rules with no new pod."""

from __future__ import annotations

import asyncio
import time

import pytest
from support import pod_until

from lks.net import netns
from lks.net.proxy import nft, rules
from lks.nodes import agent as agents
from lks.nodes import pods

pytestmark = pytest.mark.skipif(not netns.supported() or nft.available() is not None,
                                reason="needs root, network namespaces and nft")

CIDR = "10.244.3.0/24"


async def _until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not reached"
        await asyncio.sleep(0.02)
    return found


async def test_the_proxier_follows_the_new_control_plane(open_cluster, make_template, tmp_path):
    template = make_template(workload_runtime="Process")
    cluster = await open_cluster()
    pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
    agent = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
    await agent.start()
    try:
        await cluster.registry("", "v1", "pods").create("default", {
            "metadata": {"name": "keeper"},
            "spec": {"nodeName": agent.name, "terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "300"]}]}})
        await pod_until(cluster, "keeper", lambda p: (p.get("status") or {}).get("phase") == "Running")
        runtime = pods.PodWorkers.shared(cluster).process
        assert runtime is not None and runtime.proxy is not None and runtime.proxy.cluster is cluster

        parked = pods.PodWorkers.hand_over(cluster)
        await agent.stop()
        cluster = await open_cluster()
        pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes", process=parked)
        agent = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
        await agent.start()
        proxier = await _until(lambda: parked.proxy if parked.proxy and parked.proxy.cluster is cluster else None)

        await cluster.registry("", "v1", "services").create("default", {"metadata": {"name": "after"}, "spec": {
            "clusterIP": "10.0.0.77", "ports": [{"port": 80}]}})
        await proxier.wait_synced()
        assert "10.0.0.77" in await nft.list_table(parked.net.name, rules.TABLE)
    finally:
        await agent.stop()
