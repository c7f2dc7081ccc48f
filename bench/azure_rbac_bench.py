"""Azure RBAC benchmark of the management plane, in process on the SQLite store.

Figures: the cost of authorizing one ARM request (what `ManagementAPI._authorize` does: the
caller's access, the route's action and scope, the decision) with 1,000 role assignments in the
service, p50/p90 in µs (a p99 on a shared 2-core machine measures its scheduler), for a request a
group-scoped Reader may make, one it may not, and a caller that itself holds 100 assignments (the
index keeps a decision to the caller's own); and loading the 1,000 assignments at start-up.

Run: `.venv/bin/python bench/azure_rbac_bench.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from lks import store
from lks.arm import actions
from lks.identity import rbac, roles
from lks.identity.caller import Caller

SUB = "00000000-0000-0000-0000-00000000000a"
CLUSTER = "/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.ContainerService/" \
          "managedClusters/{name}"
NOW = "2026-12-07T00:00:00.000000Z"


def _caller(oid: str) -> Caller:
    return Caller(object_id=oid, tenant_id="t", kind="ServicePrincipal", name=oid, groups=("g-1", "g-2"))


def _authorize(assignments: rbac.RoleAssignments, caller: Caller, method: str, path: str) -> bool:
    access = assignments.access(caller)
    op = actions.of(CLUSTER, method, path)
    assert op is not None
    return access.allows(op.action, op.scope)


def _time(fn, n: int = 20_000) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return times[len(times) // 2] / 1000, times[int(len(times) * 0.9)] / 1000


async def _assign(a: rbac.RoleAssignments, principal: str, role: str, scope: str) -> None:
    guid = roles.by_name(role).id
    await a.create(rbac.document(str(uuid.uuid4()), scope, roles.definition_id(guid, scope), principal,
                                 "ServicePrincipal", created_by="bench", now=NOW))


async def run() -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-azure-rbac-bench-") as tmp:
        backend = store.open_store(f"sqlite://{Path(tmp) / 'bench.db'}")
        await backend.start()
        try:
            a = rbac.RoleAssignments(backend)
            await a.start(SUB, now=NOW)
            for i in range(899):  # with the bootstrap Owner, the reader's and the busy caller's: 1,000
                await _assign(a, f"sp-{i % 300}", ("Reader", "Contributor", "Azure Kubernetes Service Cluster User Role")
                              [i % 3], f"/subscriptions/{SUB}/resourceGroups/rg-{i}")
            await _assign(a, "reader", "Reader", f"/subscriptions/{SUB}/resourceGroups/rg-7")
            for i in range(99):
                await _assign(a, "busy", "Azure Kubernetes Service Cluster User Role",
                              f"/subscriptions/{SUB}/resourceGroups/rg-{i}/providers/Microsoft.ContainerService/"
                              f"managedClusters/c")
            assert len(list(a.all())) == 1000
            t = time.perf_counter()
            again = rbac.RoleAssignments(backend)
            await again.load()
            out["load 1,000 role assignments (ms)"] = (time.perf_counter() - t) * 1000
            cluster = f"/subscriptions/{SUB}/resourceGroups/rg-7/providers/Microsoft.ContainerService/managedClusters/c"
            reader = _caller("reader")
            assert _authorize(a, reader, "GET", cluster) and not _authorize(a, reader, "PUT", cluster)
            out["ARM authorization, allowed (Reader GET), p50 (µs)"], out["ARM authorization, allowed, p90 (µs)"] = \
                _time(lambda: _authorize(a, reader, "GET", cluster))
            out["ARM authorization, denied (Reader PUT), p50 (µs)"], out["ARM authorization, denied, p90 (µs)"] = \
                _time(lambda: _authorize(a, reader, "PUT", cluster))
            busy = _caller("busy")
            last = cluster.replace("rg-7", "rg-98")
            assert _authorize(a, busy, "GET", last)
            out["ARM authorization, caller with 100 assignments, p50 (µs)"], \
                out["ARM authorization, caller with 100 assignments, p90 (µs)"] = \
                _time(lambda: _authorize(a, busy, "GET", last))
        finally:
            await backend.close()
    return out


if __name__ == "__main__":
    for key, value in asyncio.run(run()).items():
        print(f"{key:<60} {value:>10,.1f}")
