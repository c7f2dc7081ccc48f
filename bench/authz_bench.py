"""Authorization benchmark, in process on the SQLite store.

Figures: the RBAC decision p50/p99 (µs, `Chain.authorize`) with 1,000 RoleBindings in the
cluster, for an allowed and a denied request; then ConfigMap creates/s over HTTP (the real
`KubeAPI` on a local aiohttp server, 32 concurrent clients) as the cluster admin
(system:masters, decided before RBAC) and as a user bound to `edit` in the namespace (every
request decided by RBAC and checked by the escalation step's no-op path), and their ratio.

Run: `.venv/bin/python bench/authz_bench.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
import inprocess
import orjson

from lks import pki, store
from lks.clock import ManualClock
from lks.controllers.clusterroleaggregation import ClusterRoleAggregationController
from lks.kube import authz
from lks.kube.authn import User
from lks.kube.cluster import Cluster

ADMIN_TOKEN, JANE_TOKEN = "admin-token", "jane-token"
ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
JANE = User("jane", ("devs", "system:authenticated"))
GROUP = "rbac.authorization.k8s.io"
PAYLOAD = "x" * 700


def _binding(name: str, role: str, user: str, namespace: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": GROUP, "name": user}]}


async def _decisions(cluster: Cluster, attrs: authz.Attributes, n: int = 20_000) -> tuple[float, float]:
    chain = cluster.authorizer
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        await chain.authorize(attrs)
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return times[len(times) // 2] / 1000, times[int(len(times) * 0.99)] / 1000


async def _creates(url: str, token: str, prefix: str, n: int = 3_000) -> float:
    async def create(http: aiohttp.ClientSession, i: int) -> None:
        body = orjson.dumps({"metadata": {"name": f"{prefix}-{i}"}, "data": {"payload": PAYLOAD}})
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
            if r.status != 201:
                raise RuntimeError(f"create failed: {r.status} {await r.text()}")
            await r.read()

    return await inprocess.throughput(token, create, n=n)


async def run() -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-authz-bench-") as tmp:
        backend = store.open_store(f"sqlite://{Path(tmp) / 'bench.db'}")
        await backend.start()
        cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                          ca=pki.create_ca("bench"), tokens={ADMIN_TOKEN: ADMIN, JANE_TOKEN: JANE}, clock=ManualClock())
        t = time.perf_counter()
        await cluster.start()
        out["cluster start with the bootstrap policy (ms)"] = (time.perf_counter() - t) * 1000
        aggregation = ClusterRoleAggregationController(cluster)
        await aggregation.start()
        namespaces = cluster.registry("", "v1", "namespaces")
        bindings = cluster.registry(GROUP, "v1", "rolebindings")
        for i in range(100):
            await namespaces.create(None, {"metadata": {"name": f"ns-{i}"}})
        for i in range(1_000):  # other users' grants, 10 per namespace
            await bindings.create(f"ns-{i % 100}", _binding(f"rb-{i}", "view", f"user-{i}", f"ns-{i % 100}"))
        await bindings.create("ns-7", _binding("jane-edit", "edit", "jane", "ns-7"))
        while not await cluster.authorizer.allowed(authz.Attributes(JANE, "create", True, "ns-7", "", "v1",
                                                                    "configmaps")):
            await asyncio.sleep(0.01)  # the aggregation controller fills `edit`

        allowed = authz.Attributes(JANE, "list", True, "ns-7", "", "v1", "pods")
        denied = authz.Attributes(JANE, "list", True, "ns-8", "", "v1", "pods")
        p50, p99 = await _decisions(cluster, allowed)
        out["decision allowed p50 (µs, 1k RoleBindings)"], out["decision allowed p99 (µs)"] = p50, p99
        p50, p99 = await _decisions(cluster, denied)
        out["decision denied p50 (µs)"], out["decision denied p99 (µs)"] = p50, p99

        try:
            async with inprocess.serve(cluster) as base:
                url = f"{base}/api/v1/namespaces/ns-7/configmaps"
                await _creates(url, ADMIN_TOKEN, "warm", n=500)  # warm up
                admin = jane = 0.0
                for i in range(2):  # interleaved, so that drift in the machine's load hits both alike
                    admin += await _creates(url, ADMIN_TOKEN, f"admin-{i}", n=2_000) / 2
                    jane += await _creates(url, JANE_TOKEN, f"jane-{i}", n=2_000) / 2
        finally:
            await aggregation.stop()
            await cluster.stop()
            await backend.close()
        out["creates/s as cluster-admin (32 clients)"] = admin
        out["creates/s as a user bound to edit (32 clients)"] = jane
        out["RBAC creates/s vs cluster-admin (%)"] = 100 * jane / admin
    return out


def main() -> None:
    figures = asyncio.run(run())
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:>10,.1f}")


if __name__ == "__main__":
    main()
