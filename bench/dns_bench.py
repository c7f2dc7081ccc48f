"""Cluster DNS benchmark: in-process on the memory store, 1,000 ClusterIP Services and a headless
Service with 10 ready endpoints, the cluster's DNS server (`lks.net.dns`) on a loopback port.

Figures: answers/s of the server's own work (wire in, wire out, no sockets) over a mix of
queries (Service A, headless A, SRV, NXDOMAIN, pod A), rendered (the first time a query is asked
since the records changed) and repeated (kept until the next change); UDP queries/s from a client in another process
keeping 64 queries in flight; Service create -> the name answered p50 (ms).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

import dns.message

from lks import pki, store
from lks.clock import ManualClock
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.net.dns import ClusterDNS

SERVICES = 1_000
SECONDS = 3.0
NAMES = [(f"svc-{i}.bench.svc.cluster.local", "A") for i in range(0, SERVICES, 7)] + [
    ("db.bench.svc.cluster.local", "A"), ("_http._tcp.svc-1.bench.svc.cluster.local", "SRV"),
    ("missing.bench.svc.cluster.local", "A"), ("10-244-0-1.bench.pod.cluster.local", "A")]

# the client: sends WINDOW queries, reads the answers, again, for SECONDS; prints how many came back
_CLIENT = """
import socket, sys, time
port, seconds, wires = int(sys.argv[1]), float(sys.argv[2]), [bytes.fromhex(w) for w in sys.argv[3:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port)); s.settimeout(1.0)
WINDOW, done, i = 64, 0, 0
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    for _ in range(WINDOW):
        s.send(wires[i % len(wires)]); i += 1
    for _ in range(WINDOW):
        try:
            s.recv(65535); done += 1
        except socket.timeout:
            break
print(done / seconds)
"""


async def _setup() -> tuple[Cluster, ClusterDNS]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={"t": User("admin", ("system:masters",))},
                      clock=ManualClock())
    await cluster.start()
    core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
    await core("namespaces").create(None, {"metadata": {"name": "bench"}})
    for i in range(SERVICES):
        await core("services").create("bench", {"metadata": {"name": f"svc-{i}"}, "spec": {
            "ports": [{"name": "http", "port": 80}]}})
    await core("services").create("bench", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
    await cluster.registry("discovery.k8s.io", "v1", "endpointslices").create("bench", {
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}}, "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": [f"10.244.0.{i}"], "conditions": {"ready": True}} for i in range(1, 11)]})
    dns_ = ClusterDNS(cluster, upstreams=[])
    await dns_.start()
    return cluster, dns_


async def _created_to_answered(cluster: Cluster, dns_: ClusterDNS) -> float:
    services = cluster.registry("", "v1", "services")
    latencies = []
    for i in range(100):
        name = f"new-{i}"
        wire = dns.message.make_query(f"{name}.bench.svc.cluster.local", "A").to_wire()
        start = time.perf_counter()
        await services.create("bench", {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}})
        while not dns.message.from_wire(dns_.server.answer(wire, tcp=False)).answer:
            await asyncio.sleep(0)
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies) * 1000


async def run() -> dict[str, float]:
    cluster, dns_ = await _setup()
    try:
        wires = [dns.message.make_query(n, t).to_wire() for n, t in NAMES]
        answer = dns_.server.answer
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < SECONDS:
            for w in wires:
                answer(w, tcp=False)
            n += len(wires)
        repeated = n / (time.perf_counter() - start)
        render = dns_.server._answer  # the work of a query not answered since the last change
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < SECONDS:
            for w in wires:
                render(w, tcp=False)
            n += len(wires)
        rendered = n / (time.perf_counter() - start)

        listener = await dns_.serve("127.0.0.1", 0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, str(listener.port), str(SECONDS), *(w.hex() for w in wires),
            stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        udp = float(out.decode().strip())
        return {"answers/s, first since a change (in process, no sockets)": rendered,
                "answers/s, repeated (in process, no sockets)": repeated,
                "UDP queries/s (client process, 64 in flight)": udp,
                "Service create -> answered p50 (ms)": await _created_to_answered(cluster, dns_)}
    finally:
        await dns_.stop()
        await cluster.stop()


if __name__ == "__main__":
    for k, v in asyncio.run(run()).items():
        print(f"{k}: {v:,.1f}")
