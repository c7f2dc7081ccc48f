"""The Process runtime's pod network (`lks.net.podnet`) through the node agent: a pod's
containers share a network namespace of its own with its `status.podIP` on `eth0`, probes reach
it there, its namespace goes with its sandbox; and where namespaces cannot be made, pods run on the
host's network and the Node's annotation says why."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from support import pod_until

from lks.net import netns
from lks.nodes import agent as agents
from lks.nodes import kubelets, pods, streams
from lks.nodes.streams import LogOptions

CIDR = "10.244.7.0/24"


@pytest.fixture
def no_namespaces(monkeypatch):
    monkeypatch.setattr(netns, "unsupported_reason", lambda: "network namespaces need root")


async def _start_node(cluster, make_template, tmp_path):
    pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
    a = agents.NodeAgent(cluster=cluster, template=make_template(workload_runtime="Process"), index=0,
                         address="10.224.0.4", pod_cidrs=[CIDR])
    await a.start()
    return a


async def _run(cluster, node, name, script, **spec):
    body = {"metadata": {"name": name},
            "spec": {"nodeName": node.name, "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}], **spec}}
    await cluster.registry("", "v1", "pods").create("default", body)
    pod = await pod_until(cluster, name, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"))
    k = streams.lookup(cluster.id, node.name)
    assert isinstance(k, kubelets.ProcessKubelet)
    out = b"".join([chunk async for chunk in k.logs(pod, LogOptions(container="main"))]).decode()
    return pod, out


async def _annotation(cluster, node):
    got = await cluster.registry("", "v1", "nodes").get(None, node.name)
    return got["metadata"]["annotations"].get(agents.POD_NETWORK_ANNOTATION)


@pytest.mark.skipif(not netns.supported(), reason="needs root and network namespaces")
async def test_pod_gets_its_own_namespace_with_its_ip(cluster, make_template, tmp_path):
    node = await _start_node(cluster, make_template, tmp_path)
    try:
        assert await _annotation(cluster, node) == "namespaces"
        pod, out = await _run(cluster, node, "own", "readlink /proc/self/ns/net; ip -4 -o addr show eth0")
        assert out.splitlines()[0] != os.readlink("/proc/self/ns/net")
        assert f"inet {pod['status']['podIP']}/24" in out
        # a finished pod's sandbox goes, as kubelet's: its namespace with it
        uid = pod["metadata"]["uid"]
        deadline = time.monotonic() + 10
        while [n for n in netns.listed("lks-") if n.endswith(uid)] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not [n for n in netns.listed("lks-") if n.endswith(uid)]
    finally:
        await node.stop()


async def test_without_namespaces_pods_share_the_hosts_network_and_the_node_says_so(
        cluster, make_template, tmp_path, no_namespaces):
    node = await _start_node(cluster, make_template, tmp_path)
    try:
        assert await _annotation(cluster, node) == "host (network namespaces need root)"
        pod, out = await _run(cluster, node, "shared", "readlink /proc/self/ns/net")
        assert out.strip() == os.readlink("/proc/self/ns/net")
        assert pod["status"]["podIP"].startswith("10.244.7.")  # an address for Services, not routed
    finally:
        await node.stop()
