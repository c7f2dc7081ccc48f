"""Scheduler benchmark: in-process on the memory store, 1,000 Ready nodes and 10,000 pending
pods of one ReplicaSet (so upstream's default topology spreading applies), then the scheduler
started and timed until every pod is bound. Prints pods/s, and the spread of pods over nodes.

Run: `.venv/bin/python bench/scheduler_bench.py [nodes] [pods]`.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import time
import uuid

import orjson

from lks import pki, store
from lks.clock import ManualClock
from lks.controllers.scheduler import Scheduler
from lks.kube.cluster import Cluster

NODE_ALLOCATABLE = {"cpu": "3860m", "memory": "13611048Ki", "pods": "110", "ephemeral-storage": "141633937005"}


async def setup(nodes: int, pods: int) -> tuple[Cluster, store.Backend]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=ManualClock())
    await cluster.start()
    node_reg = cluster.registry("", "v1", "nodes")
    for i in range(nodes):
        await node_reg.create(None, {
            "metadata": {"name": f"aks-nodepool1-{i:06d}", "labels": {
                "kubernetes.io/hostname": f"aks-nodepool1-{i:06d}", "topology.kubernetes.io/zone": f"eastus-{i % 3 + 1}",
                "agentpool": "nodepool1"}},
            "status": {"capacity": NODE_ALLOCATABLE, "allocatable": NODE_ALLOCATABLE,
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })
    rs = await cluster.registry("apps", "v1", "replicasets").create("default", {
        "metadata": {"name": "web-5d8f7"},
        "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7"}},
                 "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f7"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    })
    pod_reg = cluster.registry("", "v1", "pods")
    template = await pod_reg.create("default", {
        "metadata": {"name": "web-5d8f7-00000", "labels": {"app": "web", "pod-template-hash": "5d8f7"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7",
                                          "uid": rs["metadata"]["uid"], "controller": True}]},
        "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    })
    template["metadata"].pop("resourceVersion", None)
    for i in range(1, pods):  # the rest straight into the store: the setup is not what we time
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = f"web-5d8f7-{i:05d}"
        pod["metadata"]["uid"] = str(uuid.uuid4())
        await backend.create(f"/registry/pods/default/{pod['metadata']['name']}", orjson.dumps(pod))
    return cluster, backend


async def run(nodes: int = 1000, pods: int = 10000) -> dict[str, float]:
    cluster, backend = await setup(nodes, pods)
    sched = Scheduler(cluster, seed=1)
    start, cpu = time.perf_counter(), time.process_time()
    await sched.start()
    while sched.scheduled < pods:
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    per_node: dict[str, int] = {}
    for p in sched.snapshot.pods.values():
        per_node[p.node] = per_node.get(p.node, 0) + 1
    await sched.stop()
    await cluster.stop()
    await backend.close()
    # the machine may be shared: pods per CPU-second says what one core does
    return {"pods/s": pods / elapsed, "pods per CPU-second": pods / cpu, "seconds": elapsed,
            "min pods per node": min(per_node.values()), "max pods per node": max(per_node.values())}


def main() -> None:
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    pods = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    for k, v in asyncio.run(run(nodes, pods)).items():
        print(f"scheduler {nodes} nodes, {pods} pods: {k:<18} {v:>10,.1f}")


if __name__ == "__main__":
    main()
