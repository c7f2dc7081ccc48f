"""Upgrade benchmark, against a real `lks up --demo` (`api_bench.Server`) whose drain minutes
last 0.1 s (`LKS_DRAIN_MINUTE_SECONDS`), over raw HTTPS with the bearer token of
`$LKS_HOME/config.json`.

Surge upgrade: a 1.35 cluster with one pool of 100 nodes (Standard_DS2_v2, `maxSurge: 10%`)
running a 200-replica Deployment is upgraded to 1.36 by a PUT of the cluster with the pool's
`orchestratorVersion` (as `az aks upgrade` sends it): 10 surge nodes, then 10 batches of 10
nodes cordoned, drained through the Eviction API and reimaged, the surge nodes drained and
deleted. Timed from the PUT until its operation is `Succeeded` (polled every 50 ms); a watch of
the Deployment's pods counts those deleted meanwhile (each one an eviction). Figures: the wall
time, and pods evicted per second of it.

Control-plane-only upgrade of an idle cluster (3 nodes, nothing running): a PUT with only
`kubernetesVersion` raised, 1.35 to 1.36 then 1.36 to 1.37, timed until `Succeeded` (the API
server restarts on the new version; the nodes and their pods stay). Figure: the slower of the
two (target: at most 1 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import time
from pathlib import Path

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from api_bench import Server  # noqa: E402
from arm_bench import CLUSTER_API, Management  # noqa: E402

DRAIN_MINUTE = "0.1"
NODES = 100
REPLICAS = 200
POLL = 0.05


def _cluster(name: str, count: int, version: str) -> dict:
    return {"location": "eastus", "properties": {"dnsPrefix": name, "kubernetesVersion": version, "agentPoolProfiles": [
        {"name": "nodepool1", "count": count, "vmSize": "Standard_DS2_v2", "mode": "System", "osType": "Linux",
         "upgradeSettings": {"maxSurge": "10%"}}]}}


async def _put(mgmt: Management, url: str, body: dict, timeout: float = 600.0) -> float:
    """PUT `body` and wait for its operation to succeed; seconds from the PUT."""
    began = time.perf_counter()
    async with mgmt.http.put(f"{url}?{CLUSTER_API}", json=body) as r:
        if r.status not in (200, 201):
            raise RuntimeError(f"PUT {url}: {r.status} {await r.text()}")
        poll = r.headers.get("Azure-AsyncOperation")
        status = (await r.json())["properties"]["provisioningState"]
    while poll:
        async with mgmt.http.get(poll) as r:
            op = await r.json()
        status = op["status"]
        if status != "InProgress":
            if status != "Succeeded":
                raise RuntimeError(f"{url}: {status} {op.get('error')}")
            break
        if time.perf_counter() - began > timeout:
            raise RuntimeError(f"{url}: not done after {timeout} s")
        await asyncio.sleep(POLL)
    if status != "Succeeded":
        raise RuntimeError(f"{url}: {status}")
    return time.perf_counter() - began


async def _get(mgmt: Management, url: str) -> dict:
    async with mgmt.http.get(f"{url}?{CLUSTER_API}") as r:
        r.raise_for_status()
        return await r.json()


async def _kube(mgmt: Management, url: str) -> tuple[str, dict[str, str]]:
    """The cluster's API server URL and the clusterUser's bearer header."""
    async with mgmt.http.post(f"{url}/listClusterUserCredential?{CLUSTER_API}") as r:
        r.raise_for_status()
        kubeconfig = yaml.safe_load(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))
    return kubeconfig["clusters"][0]["cluster"]["server"], {
        "Authorization": f"Bearer {kubeconfig['users'][0]['user']['token']}"}


def _ready(pod: dict) -> bool:
    return "deletionTimestamp" not in pod["metadata"] and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


async def _surge_upgrade(mgmt: Management) -> dict[str, float]:
    url = mgmt.cluster_url("upgrade", "big")
    await _put(mgmt, url, _cluster("big", NODES, "1.35"))
    server, auth = await _kube(mgmt, url)
    pods_url = f"{server}/api/v1/namespaces/default/pods"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "terminationGracePeriodSeconds": 0, "containers": [{"name": "web", "image": "nginx"}]}}}}
    async with mgmt.http.post(f"{server}/apis/apps/v1/namespaces/default/deployments", json=deployment,
                              headers=auth) as r:
        r.raise_for_status()
    while True:
        async with mgmt.http.get(f"{pods_url}?labelSelector=app%3Dweb", headers=auth) as r:
            listed = await r.json()
        if sum(_ready(p) for p in listed["items"]) == REPLICAS:
            break
        await asyncio.sleep(0.2)
    deleted = 0

    async def watch() -> None:
        nonlocal deleted
        rv = listed["metadata"]["resourceVersion"]
        while True:  # the API server restarts on the new version: watch again from where it ended
            with contextlib.suppress(Exception):
                async with mgmt.http.get(f"{pods_url}?watch=1&labelSelector=app%3Dweb&resourceVersion={rv}",
                                         headers=auth, timeout=None) as r:
                    async for line in r.content:
                        event = orjson.loads(line)
                        if event["type"] == "ERROR":
                            break
                        rv = event["object"]["metadata"]["resourceVersion"]
                        deleted += event["type"] == "DELETED"
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.5)  # the watch is open
    body = await _get(mgmt, url)
    body["properties"]["kubernetesVersion"] = "1.36"
    for pool in body["properties"]["agentPoolProfiles"]:
        pool["orchestratorVersion"] = "1.36"
    seconds = await _put(mgmt, url, body, timeout=1800.0)
    await asyncio.sleep(1.0)  # the last deletions reach the watch
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return {
        f"surge upgrade of a {NODES}-node pool, maxSurge 10%, {REPLICAS} pods: PUT to Succeeded (s)": seconds,
        "surge upgrade: pods evicted": float(deleted),
        "surge upgrade: pods evicted per second": deleted / seconds,
    }


async def _control_plane_only(mgmt: Management) -> dict[str, float]:
    url = mgmt.cluster_url("upgrade", "idle")
    await _put(mgmt, url, _cluster("idle", 3, "1.35"))
    times = []
    for version in ("1.36", "1.37"):
        body = await _get(mgmt, url)
        body["properties"]["kubernetesVersion"] = version  # the pools keep their orchestratorVersion
        times.append(await _put(mgmt, url, body))
    return {"control-plane-only upgrade of an idle 3-node cluster, slower of two (ms)": max(times) * 1000}


async def _run(srv: Server) -> dict[str, float]:
    async with Management(srv) as mgmt:
        await mgmt.group("upgrade")
        figures = await _control_plane_only(mgmt)
        figures.update(await _surge_upgrade(mgmt))
        return figures


def run() -> dict[str, float]:
    saved = os.environ.get("LKS_DRAIN_MINUTE_SECONDS")
    os.environ["LKS_DRAIN_MINUTE_SECONDS"] = DRAIN_MINUTE
    try:
        with Server() as srv:
            return asyncio.run(_run(srv))
    finally:
        if saved is None:
            os.environ.pop("LKS_DRAIN_MINUTE_SECONDS", None)
        else:
            os.environ["LKS_DRAIN_MINUTE_SECONDS"] = saved


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:<90}  {v:>10,.1f}")
