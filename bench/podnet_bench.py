"""Pod network benchmark: in-process on the memory store with the real clock, one node of a
`workloadRuntime: Process` pool, as root (`lks.net.podnet`). Pods created one at a time
(`sh -c 'sleep 3600'`), each timed from its create to the moment its Running status is stored,
its container inside the pod's own network namespace (p50/p99); then the plumbing alone:
a pod's namespace with its veth, address and route made (`PodNetwork.add_pod`) and removed.
Without root it reports nothing (pods share the host's network there).

Run: `.venv/bin/python bench/podnet_bench.py [pods]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import process_bench

from lks import pki, store
from lks.clock import Clock
from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster
from lks.net import netns, podnet
from lks.nodes import agent as agents
from lks.nodes import pods as podworkers

Obj = dict[str, Any]


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _pods(count: int) -> list[float]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=Clock())
    await cluster.start()
    data = tempfile.TemporaryDirectory(prefix="lks-podnet-bench-")
    podworkers.PodWorkers.configure(cluster, data_dir=Path(data.name))
    node = agents.NodeAgent(cluster=cluster, template=process_bench._template(), index=0,  # noqa: SLF001
                            address="10.224.0.4", pod_cidrs=["10.244.0.0/24"])
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
        for i in range(count):
            name = f"net-{i}"
            waiters[name] = asyncio.get_running_loop().create_future()
            start = time.perf_counter()
            created = await registry.create("default", process_bench._pod(name, node.name))  # noqa: SLF001
            await asyncio.wait_for(waiters[name], 30)
            latencies.append(running[name] - start)
            runtime = podworkers.PodWorkers.shared(cluster).process
            assert runtime is not None and runtime.net.pod_netns(created["metadata"]["uid"]), "no namespace"
    finally:
        await node.stop()
        await informer.stop()
        await cluster.stop()
        await backend.close()
        data.cleanup()
    return latencies


async def _plumbing(count: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="lks-podnet-bench-") as data:
        net = podnet.PodNetwork(data_dir=Path(data))
        assert await net.start(), net.error
        adds, removes = [], []
        try:
            for i in range(count):
                start = time.perf_counter()
                await net.add_pod(uid=f"bench-{i}", node="n0", cidr="10.244.0.0/24", ip=f"10.244.0.{2 + i % 250}")
                adds.append(time.perf_counter() - start)
                start = time.perf_counter()
                net.remove_pod(f"bench-{i}")
                removes.append(time.perf_counter() - start)
        finally:
            await net.close()
    return adds, removes


async def run(count: int = 50) -> dict[str, float]:
    if not netns.supported():
        return {}
    latencies = await _pods(count)
    adds, removes = await _plumbing(count)
    return {
        "create → Running (own netns) p50 ms": statistics.median(latencies) * 1000,
        "create → Running (own netns) p99 ms": _p(latencies, 0.99) * 1000,
        "pod namespace + veth + address + route p50 ms": statistics.median(adds) * 1000,
        "pod namespace removed p50 ms": statistics.median(removes) * 1000,
    }


def main() -> None:
    args = [int(a) for a in sys.argv[1:2]]
    for key, value in asyncio.run(run(*args)).items():
        print(f"{key:50} {value:10.1f}")


if __name__ == "__main__":
    main()
