"""What it costs the node agents to write as their kubelets, in process on the memory store.

Figures: the decision p50/p99 (µs, `Chain.authorize`, the Node authorizer first) of each write a
node agent makes as `system:node:<name>` (pod status, Lease, Node status, an Event, the final
pod delete) and of a graph lookup (a secret of one of its pods) and a pod list by
`spec.nodeName`, with 1,000 nodes and 10,000 pods in the graph; then NodeRestriction's check of a
pod status write (µs). The decisions are O(1): they do not grow with the nodes or the pods.

Run: `.venv/bin/python bench/node_authz_bench.py`.
"""

from __future__ import annotations

import asyncio
import time

from lks import pki, store
from lks.clock import ManualClock
from lks.kube import authz
from lks.kube.admission.noderestriction import NodeRestriction
from lks.kube.authn import acting_as
from lks.kube.cluster import Cluster
from lks.kube.rbac.nodegraph import node_user
from lks.kube.registry import WriteOptions
from lks.kube.selectors import FieldRequirement

NODES, PODS = 1_000, 10_000


async def _timed(fn, n: int = 20_000) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        await fn()
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return times[len(times) // 2] / 1000, times[int(len(times) * 0.99)] / 1000


async def run() -> dict[str, float]:
    out: dict[str, float] = {}
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=ManualClock())
    await cluster.start()
    try:
        pods = cluster.registry("", "v1", "pods")
        await cluster.registry("", "v1", "serviceaccounts").create("default", {"metadata": {"name": "default"}})
        for i in range(PODS):
            await pods.create("default", {"metadata": {"name": f"p{i}"}, "spec": {
                "nodeName": f"n{i % NODES}", "containers": [{"name": "c", "image": "nginx"}],
                "volumes": [{"name": "s", "secret": {"secretName": f"s{i}"}}]}})
        user = node_user("n7")
        chain = cluster.authorizer
        await chain.authorize(authz.Attributes(user, "get", True, "default", "", "v1", "secrets", "", "s7"))
        cases = {
            "pod status": authz.Attributes(user, "patch", True, "default", "", "v1", "pods", "status", "p7"),
            "Lease": authz.Attributes(user, "patch", True, "kube-node-lease", "coordination.k8s.io", "v1", "leases",
                                      "", "n7"),
            "Node status": authz.Attributes(user, "patch", True, "", "", "v1", "nodes", "status", "n7"),
            "Event create": authz.Attributes(user, "create", True, "default", "", "v1", "events"),
            "final pod delete": authz.Attributes(user, "delete", True, "default", "", "v1", "pods", "", "p7"),
            "secret of its pod (graph)": authz.Attributes(user, "get", True, "default", "", "v1", "secrets", "",
                                                          "s7"),
        }
        for what, attrs in cases.items():
            p50, p99 = await _timed(lambda a=attrs: chain.authorize(a))
            out[f"{what} decision p50 (µs)"], out[f"{what} decision p99 (µs)"] = p50, p99
        listing = authz.Attributes(user, "list", True, "", "", "v1", "pods",
                                   field_selector=(FieldRequirement("spec.nodeName", "n7", True),))
        out["pod list by spec.nodeName decision p50 (µs)"], _ = await _timed(lambda: chain.authorize(listing))

        plugin = next(p for p in cluster.admission if isinstance(p, NodeRestriction))
        old = await pods.get("default", "p7")
        new = {**old, "status": {**old["status"], "phase": "Running"}}
        opts = WriteOptions(subresource="status", trusted=True)

        async def check() -> None:
            with acting_as(user):
                await plugin.validate("UPDATE", pods, new, old, opts)

        out["NodeRestriction pod status check p50 (µs)"], _ = await _timed(check)
    finally:
        await cluster.stop()
        await backend.close()
    return out


def main() -> None:
    figures = asyncio.run(run())
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:>10,.2f}")


if __name__ == "__main__":
    main()
