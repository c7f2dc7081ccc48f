"""App routing ingress benchmark (`lks.net.ingress`): in process on the memory store, the add-on
started with an external IP of the pool, an Ingress routing `/a` and `/b` of one host to two
Services, each with one "pod": an HTTP server on loopback in a process of its own (the two
servers share it). A client process keeps connections alive to EXTERNAL-IP:80 and sends GETs
with the Host header, alternating the paths.

Figures: requests/s through the ingress with 1 and 16 connections, p50 latency (ms) of one
connection, the ingress's CPU time per request (this process: the figure that holds on a busy
machine); the same client straight to a backend, for scale. As root only (ports 80 and 443).

Run: `.venv/bin/python bench/ingress_bench.py [seconds]`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from lks import pki, store
from lks.clock import ManualClock
from lks.controllers.addons import approuting
from lks.controllers.crd import CRDController
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.net import ingress as appingress
from lks.net import netns

SECONDS = 3.0

# two "pods": HTTP/1.1 keep-alive servers answering their name
_BACKENDS = """
import asyncio, sys
from aiohttp import web
async def main():
    runners = []
    for name in ("pod-a", "pod-b"):
        async def answer(request, name=name):
            return web.Response(text=name)
        server = web.Server(answer, access_log=None)
        runner = web.ServerRunner(server, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

# the client: `conns` keep-alive connections sending GETs for `seconds`; prints count and p50 (s)
_CLIENT = """
import asyncio, statistics, sys, time
ip, port, host, conns, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
paths = sys.argv[6:]
async def one(i, end, times):
    reader, writer = await asyncio.open_connection(ip, port)
    n = 0
    while time.perf_counter() < end:
        start = time.perf_counter()
        writer.write(f"GET {paths[n % len(paths)]} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\\r\\n") if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        times.append(time.perf_counter() - start)
        n += 1
    writer.close()
async def main():
    times = []
    end = time.perf_counter() + seconds
    await asyncio.gather(*(one(i, end, times) for i in range(conns)))
    print(len(times) / seconds, statistics.median(times))
asyncio.run(main())
"""


async def _client(ip: str, port: int, host: str, conns: int, seconds: float, paths: list[str]) -> tuple[float, float]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CLIENT, ip, str(port), host, str(conns),
                                                str(seconds), *paths, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    rate, p50 = out.decode().split()
    return float(rate), float(p50)


async def run(seconds: float = SECONDS) -> dict[str, float]:
    if not netns.supported():
        return {}
    backends = await asyncio.create_subprocess_exec(sys.executable, "-c", _BACKENDS, stdout=subprocess.PIPE)
    assert backends.stdout is not None
    ports = [int((await backends.stdout.readline()).decode()) for _ in range(2)]
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={"t": User("admin", ("system:masters",))},
                      clock=ManualClock())
    await cluster.start()
    crds = CRDController(cluster)  # serves the add-on's NginxIngressController type
    await crds.start()
    ing = appingress.Ingress(cluster, namespace=lambda: None)  # the "pods" listen on the host's loopback
    try:
        await ing.start()
        core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
        for name, port in zip(("a", "b"), ports, strict=True):
            await core("services").create("default", {"metadata": {"name": name}, "spec": {
                "ports": [{"name": "http", "port": 80, "targetPort": port}]}})
            await cluster.registry("discovery.k8s.io", "v1", "endpointslices").create("default", {
                "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})
        await cluster.registry("networking.k8s.io", "v1", "ingresses").create("default", {
            "metadata": {"name": "bench"}, "spec": {"ingressClassName": approuting.INGRESS_CLASS, "rules": [
                {"host": "bench.test", "http": {"paths": [
                    {"path": f"/{n}", "pathType": "Prefix", "backend": {"service": {"name": n, "port": {"number": 80}}}}
                    for n in ("a", "b")]}}]}})
        deadline = time.monotonic() + 10
        while ing.proxy.address is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        ip = ing.proxy.address
        assert ip is not None, "the ingress did not listen"
        paths = ["/a", "/b"]
        one, p50 = await _client(ip, 80, "bench.test", 1, seconds, paths)
        cpu = time.process_time()
        many, _ = await _client(ip, 80, "bench.test", 16, seconds, paths)
        cpu = time.process_time() - cpu
        direct, direct_p50 = await _client("127.0.0.1", ports[0], "bench.test", 16, seconds, ["/a"])
        return {"requests/s through the ingress, 1 connection": one,
                "requests/s through the ingress, 16 connections": many,
                "request p50 through the ingress, 1 connection (ms)": p50 * 1000,
                "ingress CPU per request, 16 connections (µs)": cpu / (many * seconds) * 1e6,
                "requests/s straight to a backend, 16 connections (scale)": direct}
    finally:
        await ing.stop()
        await crds.stop()
        await cluster.stop()
        await backend.close()
        backends.kill()
        await backends.wait()


def main() -> None:
    import uvloop

    uvloop.install()  # as `lks up` runs
    args = [float(a) for a in sys.argv[1:2]]
    for key, value in asyncio.run(run(*args)).items():
        print(f"{key:60} {value:10.1f}")


if __name__ == "__main__":
    main()
