"""NetworkPolicy benchmark (`lks.net.netpol`): 2,000 pods in 20 namespaces, 50 policies (each
isolating a tier of its namespace both ways: ingress from the namespaces labelled team=x and from
an app, on a named port and 443; egress to 10.0.0.0/8 except a /16).

Figures: the evaluator's verdicts/s (`lks aks network-policy check`'s work), the table's compile
(ms, what the controller does off the loop per change) and its size, and as root with nft the
`nft -f` apply into a fresh network namespace (ms, the transaction the kernel commits).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path

from lks.net import netns, podnet
from lks.net.netpol import model, nft, rules

PODS, NAMESPACES, POLICIES = 2_000, 20, 50


def _state() -> tuple[list[dict], list[model.Pod], dict[str, dict[str, str]]]:
    rnd = random.Random(1)
    names = [f"ns{i}" for i in range(NAMESPACES)]
    pods = [model.Pod(rnd.choice(names), f"p{i}", {"app": f"a{i % 50}", "tier": rnd.choice(["web", "db", "cache"])},
                      (f"10.244.{i // 250}.{i % 250 + 2}",), (("http", 8080, "TCP"),)) for i in range(PODS)]
    policies = [{"metadata": {"namespace": names[i % NAMESPACES], "name": f"pol{i}"}, "spec": {
        "podSelector": {"matchLabels": {"tier": rnd.choice(["web", "db"])}}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}},
                              {"podSelector": {"matchLabels": {"app": f"a{i}"}}}],
                     "ports": [{"port": "http"}, {"port": 443}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}} for i in range(POLICIES)]
    labels = {n: {"team": "x" if i % 2 else "y"} for i, n in enumerate(names)}
    return policies, pods, labels


async def run() -> dict[str, float]:
    policies, pods, labels = _state()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        for a, b in zip(pods[:200], pods[200:400], strict=True):
            model.check(policies, labels, a, b, 8080)
        n += 200
    checks = n / (time.perf_counter() - start)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        script = rules.script(policies, pods, labels)
        times.append(time.perf_counter() - t)
    figures = {"verdicts/s (evaluator)": checks, "table compile, 2000 pods x 50 policies (ms)": min(times) * 1e3,
               "table size (KiB)": len(script) / 1024}
    if netns.supported() and nft.binary() is not None:
        net = podnet.PodNetwork(data_dir=Path(tempfile.mkdtemp(prefix="lks-netpol-bench-")))
        if await net.start():
            try:
                t = time.perf_counter()
                await nft.apply(net.name, script)
                figures["nft -f apply into the cluster network (ms)"] = (time.perf_counter() - t) * 1e3
            finally:
                await net.close()
    return figures


if __name__ == "__main__":
    for k, v in asyncio.run(run()).items():
        print(f"{k}: {v:,.1f}")
