"""Cluster autoscaler benchmark: one scan's decisions over 1,000 nodes (two autoscaled pools of
500) and 10,000 pods of ReplicaSets, with 100 unschedulable pods that need new nodes and 50
lightly loaded nodes that are scale-down candidates: the cluster picture (the scheduler's
snapshot), scale-up (template simulation, binpacking, expander) and the scale-down simulation
(moving every pod of each candidate). Prints the CPU time of the first scan (every PodInfo
parsed) and of a second one (pods unchanged: parsed PodInfos reused). The target is 200 ms.

Scale-up through the whole system (`scale_up`): an in-process service (`lks.server.Service`,
instant node provisioning, the real clock) with a cluster whose `burst` pool (Standard_D16s_v3,
one node, autoscaled up to 20, `scan-interval` 1s) gets a Deployment of 500 pods whose requests
fill about ten more nodes: the time from creating the Deployment to all 500 pods Running
(scheduler, autoscaler scans, the pool's scale operation, new nodes, pods started), the scans
it took, the nodes added and in how many scale-ups.

Run: `.venv/bin/python bench/autoscaler_bench.py` (every figure), or with `[nodes] [pods]` the
scan's CPU alone at that size.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from lks.arm import nodeshape, vmsizes
from lks.autoscaler import groups, profile, scaledown, scaleup
from lks.autoscaler.simulator import Picture, PodCache
from lks.controllers.scheduler import preemption
from lks.nodes import NodeTemplate
from lks.server import Service

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


def scan_cpu(n_nodes: int = 1000, n_pods: int = 10_000) -> dict[str, float]:
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


REPLICAS = 500
POD_CPU = "320m"  # 48 fit a D16s_v3 beside its DaemonSet pods: 500 need 11 nodes, 10 of them new
CLUSTER_API = "api-version=2026-08-01"


async def _create_cluster(svc: Service, http: aiohttp.ClientSession) -> str:
    config = json.loads((svc.home / "config.json").read_text())
    group = f"{svc.endpoint}/subscriptions/{config['subscription_id']}/resourcegroups/rg"
    url = f"{group}/providers/Microsoft.ContainerService/managedClusters/c1"
    async with http.put(f"{group}?api-version=2025-04-01", json={"location": "eastus"}) as r:
        r.raise_for_status()
    async with http.put(f"{url}?{CLUSTER_API}", json={"location": "eastus", "properties": {
            "kubernetesVersion": "1.36.2", "autoScalerProfile": {"scan-interval": "1s"},
            "agentPoolProfiles": [
                {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"},
                {"name": "burst", "count": 1, "vmSize": "Standard_D16s_v3", "mode": "User", "maxPods": 110,
                 "enableAutoScaling": True, "minCount": 1, "maxCount": 20}]}}) as r:
        r.raise_for_status()
        poll = r.headers.get("Azure-AsyncOperation")
    while poll:
        async with http.get(poll) as r:
            status = (await r.json())["status"]
        if status != "InProgress":
            if status != "Succeeded":
                raise RuntimeError(f"creating the cluster ended {status}")
            break
        await asyncio.sleep(0.05)
    stored = await svc.plane.docs.get(url.split(svc.endpoint, 1)[1])
    return stored.doc["properties"]["_lks"]["controlPlane"]


def _deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "load"}, "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": {"app": "load"}},
        "template": {"metadata": {"labels": {"app": "load"}}, "spec": {
            "nodeSelector": {"kubernetes.azure.com/agentpool": "burst"},
            "containers": [{"name": "c", "image": "nginx",
                            "resources": {"requests": {"cpu": POD_CPU, "memory": "64Mi"}}}]}}}}


async def scale_up() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        svc = Service(home=Path(home), port=0)
        await svc.start()
        try:
            config = json.loads((Path(home) / "config.json").read_text())
            tls = ssl.create_default_context(cafile=config["ca_file"])
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls),
                                             headers={"Authorization": f"Bearer {config['token']}"}) as http:
                cluster = svc.planes.get(await _create_cluster(svc, http))
            autoscaler = svc.autoscaler
            scans = 0
            scan = autoscaler.scan

            async def counted(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
                nonlocal scans
                scans += 1
                await scan(*args, **kwargs)

            autoscaler.scan = counted  # type: ignore[method-assign]
            pods = await cluster.registry("", "v1", "pods").cache()
            nodes = await cluster.registry("", "v1", "nodes").cache()

            def burst_nodes() -> int:
                return sum((n["metadata"].get("labels") or {}).get("kubernetes.azure.com/agentpool") == "burst"
                           for n in nodes.objects.values())

            before = burst_nodes()
            began = time.perf_counter()
            await cluster.registry("apps", "v1", "deployments").create("default", _deployment())
            while sum((p.get("status") or {}).get("phase") == "Running" and
                      (p["metadata"].get("labels") or {}).get("app") == "load"
                      for p in pods.objects.values()) < REPLICAS:
                if time.perf_counter() - began > 600:
                    raise RuntimeError("500 pods not Running within 10 minutes")
                await asyncio.sleep(0.02)
            took = time.perf_counter() - began
            events = await cluster.registry("", "v1", "events").cache()
            grown = sum(e.get("reason") == "ScaledUpGroup" for e in events.objects.values())
            return {
                "autoscaler: 500 pending pods -> all Running, instant provisioning (s)": took,
                "autoscaler: scans it took (scan-interval 1s)": float(scans),
                "autoscaler: nodes added": float(burst_nodes() - before),
                "autoscaler: scale-ups (ScaledUpGroup events)": float(grown),
            }
        finally:
            await svc.stop()


def run() -> dict[str, float]:
    """Every figure (`make bench`)."""
    return {**scan_cpu(), **asyncio.run(scale_up())}


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    figures = scan_cpu(*args) if args else run()
    for k, v in figures.items():
        print(f"{k:<70}  {v:>10,.1f}")
