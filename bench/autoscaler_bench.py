"""Cluster autoscaler benchmark: one scan's decisions over 1,000 nodes (two autoscaled pools of
500) and 10,000 pods of ReplicaSets, with 100 unschedulable pods that need new nodes and 50
lightly loaded nodes that are scale-down candidates: the cluster picture (the scheduler's
snapshot), scale-up (template simulation, binpacking, expander) and the scale-down simulation
(moving every pod of each candidate). Prints the CPU time of the first scan (every PodInfo
parsed) and of a second one (pods unchanged: parsed PodInfos reused). The target is 200 ms.

Run: `.venv/bin/python bench/autoscaler_bench.py [nodes] [pods]`.
"""

from __future__ import annotations

import random
import sys
import time
import uuid

from lks.arm import nodeshape, vmsizes
from lks.autoscaler import groups, profile, scaledown, scaleup
from lks.autoscaler.simulator import Picture, PodCache
from lks.controllers.scheduler import preemption
from lks.nodes import NodeTemplate

SIZE = "Standard_D4s_v3"


def _template(pool: str) -> NodeTemplate:
    size = vmsizes.lookup(SIZE)
    return NodeTemplate(pool=pool, name_digits="12345678", subscription_id=str(uuid.uuid4()),
                        node_resource_group="MC_rg_c1_eastus", mode="User", labels={"agentpool": pool},
                        capacity=nodeshape.capacity(size, max_pods=110, os_disk_gb=128),
                        allocatable=nodeshape.allocatable(size, 110, "1.36.2", os_disk_gb=128))


def _pod(name: str, node: str | None, cpu: str, owner: dict) -> dict:
    pod = {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4()), "resourceVersion": "1",
                        "labels": {"app": "web"}, "ownerReferences": [owner],
                        "creationTimestamp": "2026-12-07T00:00:00Z"},
           "spec": {"containers": [{"name": "c", "image": "nginx",
                                    "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]},
           "status": {"phase": "Running" if node else "Pending"}}
    if node:
        pod["spec"]["nodeName"] = node
    else:
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    return pod


def build(n_nodes: int, n_pods: int) -> tuple[list[dict], list[dict], list[groups.Group]]:
    templates = [_template("burst1"), _template("burst2")]
    node_groups = [groups.Group(name=t.pool, template=t, target=n_nodes // 2, min_size=1, max_size=n_nodes)
                   for t in templates]
    nodes = []
    for i in range(n_nodes):
        group = node_groups[i % 2]
        name = group.template.node_name(i)
        group.nodes.append(name)
        nodes.append({"metadata": {"name": name, "labels": group.template.node_labels(name)},
                      "spec": {}, "status": {"allocatable": dict(group.template.allocatable),
                                             "capacity": dict(group.template.capacity),
                                             "conditions": [{"type": "Ready", "status": "True"}]}})
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": True}
    light = set(range(0, n_nodes, n_nodes // 50 or 1))  # 50 candidates: one small pod each
    pods = []
    bound = n_pods - 100
    heavy = [i for i in range(n_nodes) if i not in light]
    for i in range(bound):
        if i < len(light):
            node = sorted(light)[i]
            pods.append(_pod(f"web-{i}", nodes[node]["metadata"]["name"], "100m", owner))
        else:
            node = heavy[i % len(heavy)]
            pods.append(_pod(f"web-{i}", nodes[node]["metadata"]["name"], "300m", owner))
    for i in range(100):  # pending: each wants a whole node's worth
        pods.append(_pod(f"big-{i}", None, "3800m", owner))
    return nodes, pods, node_groups


def scan(nodes: list[dict], pods: list[dict], node_groups: list[groups.Group], cache: PodCache,
         settings: profile.Profile) -> tuple[scaleup.Result, list[scaledown.Verdict]]:
    picture = Picture.build(nodes=nodes, pods=pods, cache=cache)
    up = scaleup.plan(picture, node_groups, settings=settings, now=time.time(), created={},
                      rng=random.Random(0))
    verdicts = scaledown.find_unneeded(picture, node_groups, [preemption.Budget(
        {"metadata": {"namespace": "other"}, "spec": {"selector": {"matchLabels": {"app": "x"}}}})], settings,
        deleting=set())
    return up, verdicts


def run(n_nodes: int = 1000, n_pods: int = 10_000) -> dict[str, float]:
    nodes, pods, node_groups = build(n_nodes, n_pods)
    settings = profile.Profile()
    cache = PodCache()
    t0 = time.process_time()
    up, verdicts = scan(nodes, pods, node_groups, cache, settings)
    first = time.process_time() - t0
    t0 = time.process_time()
    up, verdicts = scan(nodes, pods, node_groups, cache, settings)
    second = time.process_time() - t0
    unneeded = sum(v.reason is None for v in verdicts)
    grown = sum(b - a for a, b in up.increases.values())
    return {
        f"autoscaler scan, {n_nodes} nodes / {n_pods} pods, first (ms CPU)": first * 1000,
        f"autoscaler scan, {n_nodes} nodes / {n_pods} pods, next (ms CPU)": second * 1000,
        "autoscaler scan: new nodes planned for 100 pending pods": float(grown),
        "autoscaler scan: unneeded nodes found": float(unneeded),
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for k, v in run(*args).items():
        print(f"{k:<70}  {v:>10,.1f}")
