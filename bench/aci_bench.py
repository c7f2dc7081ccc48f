"""Container groups benchmark (`lks.aci`), in process on the memory store: 200 groups of one
`sleep` container each, created through the service as the ARM handler does (`put`, then the
create operation), as root each in a network namespace of its own with a public address.

Figures: create -> Running (ms, p50 and p95: the PUT stored, the operation run, the container's
process started), the 200 groups' total, and per idle group the service's memory (Python heap,
tracemalloc) and its processes' (RSS of the container's process), then stopping them all.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from lks import store
from lks.aci import groups
from lks.arm import documents
from lks.arm.operations import Operations

GROUPS = 200
SUB = "00000000-0000-0000-0000-000000000000"


def _body(i: int) -> dict:
    return {"location": "westeurope", "properties": {
        "containers": [{"name": "main", "properties": {
            "image": "busybox", "command": ["sleep", "3600"], "ports": [{"port": 80}],
            "resources": {"requests": {"cpu": 0.1, "memoryInGB": 0.1}}}}],
        "ipAddress": {"type": "Public", "ports": [{"port": 80}]}, "restartPolicy": "Always"}}


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def run() -> dict[str, float]:
    backend = store.open_store("memory://")
    await backend.start()
    ops = Operations(backend, sync_budget=5.0)
    with tempfile.TemporaryDirectory() as tmp:
        service = groups.ContainerGroups(docs=documents.Documents(backend), operations=ops, data_dir=Path(tmp))
        await service.start()
        try:
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            times = []
            t0 = time.perf_counter()
            for i in range(GROUPS):
                t = time.perf_counter()
                _doc, op, _ = await service.put(SUB, "bench", f"g{i}", _body(i))
                await ops.wait(op["name"])
                times.append((time.perf_counter() - t) * 1000)
            total = time.perf_counter() - t0
            heap = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            running = sum(1 for g in service.runtime.groups.values() if g.state == "Running")
            pids = [p for key in service.runtime.groups for p in service.runtime.pids(key)]
            rss = sum(_rss_kib(p) for p in pids)
            t = time.perf_counter()
            await service.stop()
            stop_all = time.perf_counter() - t
        finally:
            await service.runtime.close()
    await ops.stop()
    await backend.close()
    times.sort()
    return {
        "groups": GROUPS, "running": running, "network namespaces": 1.0 if service.runtime.net else 0.0,
        "create -> Running p50 (ms)": round(statistics.median(times), 1),
        "create -> Running p95 (ms)": round(times[int(len(times) * 0.95) - 1], 1),
        f"{GROUPS} groups created (s)": round(total, 2),
        "service heap per group (KiB)": round(heap / GROUPS / 1024, 1),
        "process RSS per idle group (KiB)": round(rss / max(len(pids), 1), 1),
        f"stop all {GROUPS} (s)": round(stop_all, 2),
    }


if __name__ == "__main__":
    for k, v in asyncio.run(run()).items():
        print(f"{k:40} {v}")
    print("root" if os.geteuid() == 0 else "not root: the groups shared the host's network")
