"""Metrics API benchmark (issue 15): a real `lks up`, a managed cluster of 50 simulated nodes
created through the management API, a 10,000-replica Deployment of simulated pods (their usage
from the model's defaults), then `kubectl top pods -A` timed end to end (kubectl's discovery,
the `metrics.k8s.io` list through the aggregation layer, its sorting and printing) and the
PodMetricsList of every namespace on its own.

Figures: seconds of `kubectl top pods -A` (median of 5, target <= 1 s), and the CPU it costs
the server and kubectl itself (medians; steadier than wall time on a shared machine: kubectl
asks for protobuf, which the server answers and kubectl decodes far more cheaply than JSON);
milliseconds of `GET /apis/metrics.k8s.io/v1beta1/pods` as JSON (median of 5).

Run: `.venv/bin/python bench/metrics_bench.py [nodes] [replicas]`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from api_bench import Server  # noqa: E402
from arm_bench import CLUSTER_API, Management, cpu_seconds, wait_quiet  # noqa: E402
from workload_bench import _create_cluster  # noqa: E402

NAMESPACE = "bench"
KUBECTL = Path(sys.executable).parent / "kubectl"
RUNS = 5


async def _kubeconfig(mgmt: Management, path: Path) -> None:
    url = mgmt.cluster_url("bench", "big")
    async with mgmt.http.post(f"{url}/listClusterUserCredential?{CLUSTER_API}") as r:
        r.raise_for_status()
        path.write_bytes(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))


async def _pods_with_metrics(http: aiohttp.ClientSession, server: str, auth: dict[str, str], replicas: int) -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}
    async with http.post(f"{server}/api/v1/namespaces", headers=auth, json={"metadata": {"name": NAMESPACE}}) as r:
        r.raise_for_status()
    async with http.post(f"{server}/apis/apps/v1/namespaces/{NAMESPACE}/deployments", headers=auth, json=body) as r:
        r.raise_for_status()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:  # every pod Running: each has metrics
        async with http.get(f"{server}/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods", headers=auth) as r:
            if r.status == 200 and len((await r.json())["items"]) >= replicas:
                return
        await asyncio.sleep(2)
    raise RuntimeError("the pods did not all get metrics")


async def _list_ms(http: aiohttp.ClientSession, server: str, auth: dict[str, str]) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(RUNS):
        t = time.perf_counter()
        async with http.get(f"{server}/apis/metrics.k8s.io/v1beta1/pods", headers=auth) as r:
            count = len((await r.json())["items"])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), count


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _top(kubeconfig: Path, home: Path, server_pid: int) -> tuple[float, float, float, int]:
    """Medians of `kubectl top pods -A`: wall seconds, server CPU ms, kubectl CPU ms; its rows."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    times, server_ms, client_ms, rows = [], [], [], 0
    for _ in range(RUNS):
        server, client, t = cpu_seconds(server_pid), _children_cpu(), time.perf_counter()
        res = subprocess.run([str(KUBECTL), "top", "pods", "-A"], env=env, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - t)
        server_ms.append((cpu_seconds(server_pid) - server) * 1000)
        client_ms.append((_children_cpu() - client) * 1000)
        if res.returncode != 0:
            raise RuntimeError(f"kubectl top pods -A: {res.stderr}")
        rows = len(res.stdout.splitlines()) - 1
    return statistics.median(times), statistics.median(server_ms), statistics.median(client_ms), rows


async def _bench(srv: Server, nodes: int, replicas: int) -> dict[str, float]:
    async with Management(srv) as mgmt:
        server, auth = await _create_cluster(mgmt, nodes)
        await _pods_with_metrics(mgmt.http, server, auth, replicas)
        await asyncio.to_thread(wait_quiet, srv.proc.pid, timeout=300)  # the controllers have caught up
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            await _kubeconfig(mgmt, kubeconfig)
            seconds, server_ms, client_ms, rows = await asyncio.to_thread(_top, kubeconfig, Path(tmp), srv.proc.pid)
        list_ms, items = await _list_ms(mgmt.http, server, auth)
    if rows < replicas or items < replicas:
        raise RuntimeError(f"kubectl top showed {rows} pods, the list {items}")
    return {f"kubectl top pods -A, {rows:,} pods (s)": seconds,
            "kubectl top pods -A, server CPU (ms)": server_ms,
            "kubectl top pods -A, kubectl's own CPU (ms)": client_ms,
            f"GET metrics.k8s.io pods, {items:,} PodMetrics, JSON (ms)": list_ms}


def run(nodes: int = 50, replicas: int = 10000) -> dict[str, float]:
    with Server() as srv:
        return asyncio.run(_bench(srv, nodes, replicas))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for k, v in run(*args).items():
        print(f"{k:60s} {v:10.2f}")
