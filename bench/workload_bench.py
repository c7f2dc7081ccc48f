"""Workload benchmark (issue 5): a real `lks up`, a managed cluster of 1,000 simulated nodes
created through the management API, then a 10,000-replica Deployment timed until every pod is
Running and Ready.

Figures: seconds from the Deployment's `POST` until all 10,000 pods are Running; scheduling
throughput (pods bound per second, from the Deployment's creation to the last binding, as the
watch of this process sees them); p50/p99 of mutating API calls made meanwhile (a ConfigMap
created and deleted every 100 ms, as upstream's API call latency SLO measures); the server's RSS
growth for the 1,000 nodes (their Node and Lease objects, agents, and the add-on DaemonSets' pods
AKS runs on every node: 6 per node) and for the 10,000 pods.

Run: `.venv/bin/python bench/workload_bench.py [nodes] [replicas]`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from api_bench import Server  # noqa: E402
from arm_bench import CLUSTER_API, Management, _percentile, rss_mib, wait_quiet  # noqa: E402

NAMESPACE = "bench"
PROBE_EVERY = 0.1


async def _kube(mgmt: Management, cluster_url: str) -> tuple[str, dict[str, str]]:
    async with mgmt.http.post(f"{cluster_url}/listClusterUserCredential?{CLUSTER_API}") as r:
        r.raise_for_status()
        kubeconfig = yaml.safe_load(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))
    return (kubeconfig["clusters"][0]["cluster"]["server"],
            {"Authorization": f"Bearer {kubeconfig['users'][0]['user']['token']}"})


async def _create_cluster(mgmt: Management, nodes: int) -> tuple[str, dict[str, str]]:
    await mgmt.group("bench")
    url = mgmt.cluster_url("bench", "big")
    # a node takes a /24 of the pod CIDR: the default /16 holds 256 nodes, a /14 1,024
    body = {"location": "eastus", "properties": {
        "dnsPrefix": "big", "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay",
                                               "podCidr": "10.244.0.0/14"},
        "agentPoolProfiles": [{"name": "nodepool1", "count": nodes, "vmSize": "Standard_D4s_v3", "mode": "System",
                               "osType": "Linux"}]}}
    async with mgmt.http.put(f"{url}?{CLUSTER_API}", json=body) as r:
        if r.status not in (200, 201):
            raise RuntimeError(f"PUT: {r.status} {await r.text()}")
        poll = r.headers.get("Azure-AsyncOperation")  # none: answered with its final state
        op = {"status": (await r.json())["properties"]["provisioningState"]}
    while poll:
        async with mgmt.http.get(poll) as r:
            op = await r.json()
        if op["status"] != "InProgress":
            break
        await asyncio.sleep(0.5)
    if op["status"] != "Succeeded":
        raise RuntimeError(f"creating the cluster ended {op['status']}: {op.get('error')}")
    server, auth = await _kube(mgmt, url)
    while True:  # every node Ready
        async with mgmt.http.get(f"{server}/api/v1/nodes", headers=auth) as r:
            items = (await r.json())["items"]
        ready = sum(1 for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in n["status"].get("conditions") or []))
        if ready == nodes:
            return server, auth
        await asyncio.sleep(1)


async def _probe(http: aiohttp.ClientSession, server: str, auth: dict[str, str], stop: asyncio.Event,
                 latencies: list[float]) -> None:
    """A ConfigMap created and deleted every PROBE_EVERY seconds; each call's latency in ms."""
    i = 0
    base = f"{server}/api/v1/namespaces/{NAMESPACE}/configmaps"
    while not stop.is_set():
        name = f"probe-{i}"
        t = time.perf_counter()
        async with http.post(base, headers=auth, json={"metadata": {"name": name}, "data": {"k": "v"}}) as r:
            await r.read()
        latencies.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        async with http.delete(f"{base}/{name}", headers=auth) as r:
            await r.read()
        latencies.append((time.perf_counter() - t) * 1000)
        i += 1
        await asyncio.sleep(PROBE_EVERY)


async def _deployment(http: aiohttp.ClientSession, server: str, auth: dict[str, str], replicas: int) -> dict[str, float]:
    async with http.post(f"{server}/api/v1/namespaces", headers=auth, json={"metadata": {"name": NAMESPACE}}) as r:
        r.raise_for_status()
    async with http.get(f"{server}/api/v1/namespaces/{NAMESPACE}/pods", headers=auth) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    bound: dict[str, float] = {}
    running: set[str] = set()
    done = asyncio.Event()

    def seen(pod: dict) -> None:
        name = pod["metadata"]["name"]
        if pod["spec"].get("nodeName") and name not in bound:
            bound[name] = time.perf_counter()
        st = pod.get("status") or {}
        if st.get("phase") == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []):
            running.add(name)
            if len(running) == replicas:
                done.set()

    async def watch(rv: str) -> None:
        while not done.is_set():
            url = (f"{server}/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={rv}"
                   "&allowWatchBookmarks=true&timeoutSeconds=600")
            async with http.get(url, headers=auth, timeout=aiohttp.ClientTimeout(total=None)) as r:
                async for line in r.content:
                    ev = orjson.loads(line)
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        seen(ev["object"])
                    elif ev["type"] == "BOOKMARK":
                        rv = ev["object"]["metadata"]["resourceVersion"]
                    if done.is_set():
                        return
            # the server ended the watch (a slow reader, an expired version): list, watch again
            async with http.get(f"{server}/api/v1/namespaces/{NAMESPACE}/pods", headers=auth) as r:
                listed = await r.json()
            for pod in listed["items"]:
                seen(pod)
            rv = listed["metadata"]["resourceVersion"]

    watcher = asyncio.create_task(watch(rv))
    await asyncio.sleep(0.5)
    stop = asyncio.Event()
    latencies: list[float] = []
    probe = asyncio.create_task(_probe(http, server, auth, stop, latencies))
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                           "resources": {"requests": {"cpu": "100m",
                                                                                      "memory": "128Mi"}}}]}}}}
    if os.environ.get("LKS_BENCH_PROFILE"):  # py-spy over the rollout, raw stacks for flame graphs
        subprocess.Popen(["py-spy", "record", "-r", "50", "-f", "raw", "-d", os.environ.get("LKS_BENCH_PROFILE_SECONDS", "20"), "-p", os.environ["LKS_BENCH_PID"],
                          "-o", os.environ["LKS_BENCH_PROFILE"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = time.perf_counter()
    async with http.post(f"{server}/apis/apps/v1/namespaces/{NAMESPACE}/deployments", headers=auth, json=body) as r:
        r.raise_for_status()
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - began
    stop.set()
    await probe
    watcher.cancel()
    last_bind = max(bound.values()) - began
    return {
        f"{replicas:,}-replica Deployment, POST to all Running (s)": elapsed,
        "pods scheduled per second (POST to last binding)": len(bound) / last_bind,
        "mutating API calls meanwhile, p50 (ms)": statistics.median(latencies),
        "mutating API calls meanwhile, p99 (ms)": _percentile(latencies, 99),
    }


async def _bench(srv: Server, nodes: int, replicas: int) -> dict[str, float]:
    pid = srv.proc.pid
    os.environ["LKS_BENCH_PID"] = str(pid)
    wait_quiet(pid)
    rss_before = rss_mib(pid)
    async with Management(srv) as mgmt:
        began = time.perf_counter()
        server, auth = await _create_cluster(mgmt, nodes)
        ready = time.perf_counter() - began
        wait_quiet(pid, timeout=300)  # the add-on DaemonSets' pods on every node
        rss_nodes = rss_mib(pid)
        out = {f"{nodes:,} nodes: PUT to all Ready (s)": ready,
               f"server RSS for {nodes:,} nodes with their add-on pods (MiB)": rss_nodes - rss_before}
        out.update(await _deployment(mgmt.http, server, auth, replicas))
        out[f"server RSS for {replicas:,} pods (MiB)"] = rss_mib(pid) - rss_nodes
    return out


def run(nodes: int = 1000, replicas: int = 10000) -> dict[str, float]:
    with Server() as srv:
        return asyncio.run(_bench(srv, nodes, replicas))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for k, v in run(*args).items():
        print(f"{k:60s} {v:10.1f}")
