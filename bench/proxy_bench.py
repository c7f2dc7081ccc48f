"""Service VIP benchmark (`lks.net.proxy`): in process on the memory store with the real clock,
as root with nft. A cluster's pod network with two nodes and 1,000 Services of two endpoints
each: the first sync (the whole table in one `nft -f`), then the rule update latency after an
EndpointSlice change (from the write to the rules in the kernel, partial syncs, p50/p99); then
the connection rate from a pod's namespace to a ClusterIP backed by a server process in another
pod (a client process connecting and closing in a loop for two seconds), and to the pod's IP
directly for comparison. Without root or nft it reports nothing.

Run: `.venv/bin/python bench/proxy_bench.py [services]`.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lks import pki, store
from lks.clock import Clock
from lks.kube.cluster import Cluster
from lks.net import netns, podnet
from lks.net.proxy import Proxier, nft

NODES = (("aks-bench-0", "10.224.0.4", "10.244.0.0/24"), ("aks-bench-1", "10.224.0.5", "10.244.1.0/24"))
SERVER = ("import socket\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', 8080)); s.listen(1024)\n"
          "while True:\n"
          "    c, _ = s.accept(); c.close()\n")
CLIENT = ("import socket, sys, time\n"
          "ip, end, n = sys.argv[1], time.monotonic() + float(sys.argv[2]), 0\n"
          "while time.monotonic() < end:\n"
          "    c = socket.create_connection((ip, 80 if ip.startswith('10.0.') else 8080), timeout=2)\n"
          "    c.recv(1); c.close(); n += 1\n"
          "print(n)\n")
SECONDS = 2.0


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _slice(i: int, a: int, b: int) -> dict:
    return {"metadata": {"name": f"svc-{i}-abc", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.244.{n}.{2 + (i + x) % 250}"], "nodeName": NODES[n][0],
                           "conditions": {"ready": True}} for n, x in ((0, a), (1, b))]}


async def _run(services: int) -> dict[str, float]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=Clock())
    await cluster.start()
    data = tempfile.TemporaryDirectory(prefix="lks-proxy-bench-")
    net = podnet.PodNetwork(data_dir=Path(data.name))
    assert await net.start(), net.error
    proxier = Proxier(cluster, net)
    server = None
    try:
        core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
        slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
        for name, ip, cidr in NODES:
            await core("nodes").create(None, {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
                                              "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
        for i in range(services):
            await core("services").create("default", {"metadata": {"name": f"svc-{i}"}, "spec": {
                "clusterIP": f"10.0.{100 + i // 250}.{1 + i % 250}",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            await slices.create("default", _slice(i, 0, 0))
        start = time.perf_counter()
        await proxier.start()
        await proxier.wait_synced(timeout=120)
        first = time.perf_counter() - start

        updates = []
        for round_ in range(1, 31):
            i = (round_ * 37) % services
            obj = await slices.get("default", f"svc-{i}-abc")
            obj.update({k: v for k, v in _slice(i, round_, round_ + 1).items() if k != "metadata"})
            start = time.perf_counter()
            await slices.update("default", obj["metadata"]["name"], obj)
            await proxier.wait_synced()
            updates.append(time.perf_counter() - start)

        # the connection rate: svc-0's first endpoint is a server process in a pod of node 0
        i = 0
        await slices.update("default", "svc-0-abc", {**(await slices.get("default", "svc-0-abc")),
                                                      **{k: v for k, v in _slice(0, 0, 0).items() if k != "metadata"}})
        await proxier.wait_synced()
        backend_ip, client_ip = "10.244.0.2", "10.244.1.200"
        await net.add_pod(uid="backend", node=NODES[0][0], cidr=NODES[0][2], ip=backend_ip)
        await net.add_pod(uid="client", node=NODES[1][0], cidr=NODES[1][2], ip=client_ip)
        # only the server's endpoint: the other one is not a live pod here
        obj = await slices.get("default", "svc-0-abc")
        obj["endpoints"] = obj["endpoints"][:1]
        await slices.update("default", "svc-0-abc", obj)
        await proxier.wait_synced()
        server = subprocess.Popen(["nsenter", f"--net={netns.path(net.pod_netns('backend'))}",
                                   sys.executable, "-c", SERVER])
        rates = {}
        for label, target in (("ClusterIP", "10.0.100.1"), ("pod IP (no VIP)", backend_ip)):
            done = await asyncio.to_thread(subprocess.run, ["nsenter", f"--net={netns.path(net.pod_netns('client'))}",
                                                            sys.executable, "-c", CLIENT, target, str(SECONDS)],
                                           capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                time.sleep(0.5)  # the server was not listening yet: once more
                done = await asyncio.to_thread(subprocess.run, ["nsenter", f"--net={netns.path(net.pod_netns('client'))}",
                                                                sys.executable, "-c", CLIENT, target, str(SECONDS)],
                                               capture_output=True, text=True, timeout=60)
            rates[label] = int(done.stdout.strip() or 0) / SECONDS
    finally:
        if server is not None:
            server.kill()
            server.wait()
        await proxier.stop()
        await net.close()
        await cluster.stop()
        await backend.close()
        data.cleanup()
    return {
        f"first sync, {services} Services (whole table) ms": first * 1000,
        "EndpointSlice change → rules in the kernel p50 ms": statistics.median(updates) * 1000,
        "EndpointSlice change → rules in the kernel p99 ms": _p(updates, 0.99) * 1000,
        "connections/s to a ClusterIP from a pod": rates["ClusterIP"],
        "connections/s to the pod IP (no VIP) from a pod": rates["pod IP (no VIP)"],
    }


async def run(services: int = 1000) -> dict[str, float]:
    if not netns.supported() or nft.available() is not None:
        return {}
    return await _run(services)


def main() -> None:
    args = [int(a) for a in sys.argv[1:2]]
    for key, value in asyncio.run(run(*args)).items():
        print(f"{key:55} {value:10.1f}")


if __name__ == "__main__":
    main()
