"""Process runtime benchmark: in-process on the memory store with the real clock, one node of a
`workloadRuntime: Process` pool. First pods created one at a time (`sh -c 'sleep 3600'`), each
timed from its create to the moment its Running status is stored (p50/p99); then 200 pods
created at once on the same node, timed until all are Running, with the service's and the
containers' memory (RSS).

Run: `.venv/bin/python bench/process_bench.py [sequential pods] [concurrent pods]`.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lks import pki, store
from lks.clock import Clock
from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster
from lks.nodes import agent as agents
from lks.nodes import pods as podworkers
from lks.nodes import template as templates

Obj = dict[str, Any]


def _template() -> templates.NodeTemplate:
    return templates.NodeTemplate(
        pool="procs", name_digits="12345678", subscription_id="00000000-0000-0000-0000-000000000001",
        node_resource_group="MC_rg_bench_eastus", mode="User", workload_runtime="Process",
        capacity={"cpu": "4", "memory": "16Gi", "pods": "250"}, allocatable={"cpu": "4", "memory": "16Gi", "pods": "250"})


def _pod(name: str, node: str) -> Obj:
    return {"metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}]}}


def _rss_kib(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children_rss_kib(runtime: Any) -> int:
    """RSS of every container process (the containers' main processes and their children)."""
    pids = {str(i.pid) for st in runtime._pods.values() for found in st.instances.values()  # noqa: SLF001
            for i in found if i.running}
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if str(fields[2]) in pids:  # in a container's process group
            total += _rss_kib(entry.name)
    return total


async def run(sequential: int = 50, concurrent: int = 200) -> dict[str, float]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=Clock())
    await cluster.start()
    data = tempfile.TemporaryDirectory(prefix="lks-process-bench-")
    podworkers.PodWorkers.configure(cluster, data_dir=Path(data.name))
    node = agents.NodeAgent(cluster=cluster, template=_template(), index=0, address="10.224.0.4",
                            pod_cidrs=["10.244.0.0/23"])
    await node.start()
    registry = cluster.registry("", "v1", "pods")
    running: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}

    def on_pod(_kind: str, obj: Obj, _prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        if (obj.get("status") or {}).get("phase") == "Running" and name not in running:
            running[name] = time.perf_counter()
            fut = waiters.pop(name, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    informer = Informer(registry, on_pod)
    await informer.start()
    try:
        latencies = []
        for i in range(sequential):
            name = f"seq-{i}"
            waiters[name] = asyncio.get_running_loop().create_future()
            start = time.perf_counter()
            await registry.create("default", _pod(name, node.name))
            await asyncio.wait_for(waiters[name], 30)
            latencies.append(running[name] - start)
        await node.stop()  # the sequential pods' processes go; a fresh node for the burst
        node = agents.NodeAgent(cluster=cluster, template=_template(), index=1, address="10.224.0.5",
                                pod_cidrs=["10.244.2.0/23"])
        await node.start()
        rss_before = _rss_kib("self")
        names = [f"burst-{i}" for i in range(concurrent)]
        start = time.perf_counter()
        await asyncio.gather(*(registry.create("default", _pod(n, node.name)) for n in names))
        deadline = time.monotonic() + 120
        while not all(n in running for n in names):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(n in running for n in names)} of {concurrent} pods Running")
            await asyncio.sleep(0.005)
        burst = max(running[n] for n in names) - start
        runtime = podworkers.PodWorkers.shared(cluster).process
        children = _children_rss_kib(runtime)
        rss_after = _rss_kib("self")
    finally:
        await node.stop()
        await informer.stop()
        await cluster.stop()
        await backend.close()
        data.cleanup()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return {
        "create → Running p50 ms": statistics.median(latencies) * 1000,
        "create → Running p99 ms": p99 * 1000,
        f"{concurrent} pods Running s": burst,
        f"{concurrent} pods: service RSS growth MiB": (rss_after - rss_before) / 1024,
        f"{concurrent} pods: container RSS MiB": children / 1024,
        "service max RSS MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    args = [int(a) for a in sys.argv[1:3]]
    for key, value in asyncio.run(run(*args)).items():
        print(f"{key:45} {value:10.1f}")


if __name__ == "__main__":
    main()
