"""API benchmark: a real `lks up` process, driven over HTTPS with the demo cluster's admin
client certificate from this (separate) process.

Figures: creates/s and gets/s with 1 and 32 concurrent clients; list latency over 10,000
objects, from the watch cache (`resourceVersion=0`) and consistent (from the store); watch
delivery latency p50/p99 with 100 watchers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

PAYLOAD = "x" * 700  # ~1 KB objects


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="lks-bench-")
        self.home = Path(self.tmp.name)
        self.port = _free_port()

    def __enter__(self) -> Server:
        env = {**os.environ, "LKS_HOME": str(self.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lks", "up", "--demo", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (self.home / "kubeconfig").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("lks up did not start")
            time.sleep(0.1)
        time.sleep(0.3)
        cfg = yaml.safe_load((self.home / "kubeconfig").read_text())
        self.server = cfg["clusters"][0]["cluster"]["server"]
        user = cfg["users"][0]["user"]
        for name, field in (("ca.crt", None), ("client.crt", "client-certificate-data"), ("client.key", "client-key-data")):
            data = (base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]) if field is None
                    else base64.b64decode(user[field]))
            (self.home / name).write_bytes(data)
        return self

    def ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.home / "ca.crt"))
        ctx.load_cert_chain(self.home / "client.crt", self.home / "client.key")
        return ctx

    async def token(self) -> str:
        """The demo cluster's bearer token (wrk cannot present client certificates)."""
        from lks import store
        from lks.controlplanes import ControlPlanes

        meta = store.open_store(f"sqlite://{self.home / 'lks.db'}")
        await meta.start()
        try:
            records = await ControlPlanes(meta=meta, data_dir=self.home / "clusters").records()
        finally:
            await meta.close()
        return records[0]["token"]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


_WRK_POST = f"""
wrk.method = "POST"
wrk.body = '{{"metadata":{{"generateName":"w-","labels":{{"bench":"yes"}}}},"data":{{"payload":"{PAYLOAD}"}}}}'
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk(url: str, token: str, connections: int, *, post: bool = False, seconds: int = 8) -> float:
    """Requests/s that wrk (a C load generator, so the client costs little CPU) reaches."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make bench does)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_POST if post else "")
        script.flush()
        res = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name,
             "-H", f"Authorization: Bearer {token}", url],
            capture_output=True, text=True, check=True,
        )
    if "Non-2xx" in res.stdout:
        raise RuntimeError(f"wrk saw errors: {res.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", res.stdout).group(1))


def _cm(name: str, **annotations: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": name, "labels": {"bench": "yes"}, "annotations": annotations},
                         "data": {"payload": PAYLOAD}})


async def _run_concurrent(n_total: int, concurrency: int, op) -> float:
    """ops/s for `n_total` calls of `op(i)` spread over `concurrency` workers."""
    counter = iter(range(n_total))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n_total / (time.perf_counter() - start)


async def _bench(srv: Server) -> dict[str, float]:
    out: dict[str, float] = {}
    conn = aiohttp.TCPConnector(ssl=srv.ssl(), limit=0)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:
        base = srv.server

        async def post(path: str, body: bytes) -> None:
            async with http.post(base + path, data=body) as r:
                if r.status != 201:
                    raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                await r.read()

        for ns in ("c1", "c32", "list", "watch"):
            await post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": ns}}))

        await post("/api/v1/namespaces/c1/configmaps", _cm("target"))
        token = await srv.token()
        for conc in (1, 32):
            clients = f"{conc} client{'s' if conc > 1 else ''}"
            out[f"creates/s ({clients})"] = _wrk(f"{base}/api/v1/namespaces/c{conc}/configmaps", token, conc, post=True)
            out[f"gets/s ({clients})"] = _wrk(f"{base}/api/v1/namespaces/c1/configmaps/target", token, conc)

        # 10,000 objects in one namespace, then list them
        await _run_concurrent(10_000, 32, lambda i: post("/api/v1/namespaces/list/configmaps", _cm(f"l-{i}")))
        for label, query in (("list 10k from cache (ms)", "?resourceVersion=0"), ("list 10k consistent (ms)", "")):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                async with http.get(f"{base}/api/v1/namespaces/list/configmaps{query}") as r:
                    body = await r.read()
                times.append((time.perf_counter() - t) * 1000)
                assert len(orjson.loads(body)["items"]) >= 10_000  # plus kube-root-ca.crt
            out[label] = statistics.median(times)

        out.update(await _watch_latency(http, base))
        out["server RSS (MB)"] = srv.rss_mb()
    return out


async def _watch_latency(http: aiohttp.ClientSession, base: str, watchers: int = 100, events: int = 200) -> dict[str, float]:
    latencies: list[float] = []
    ready = 0
    all_ready = asyncio.Event()

    async def watch() -> None:
        nonlocal ready
        async with http.get(f"{base}/api/v1/namespaces/watch/configmaps?watch=1&timeoutSeconds=120") as r:
            ready += 1
            if ready == watchers:
                all_ready.set()
            seen = 0
            async for line in r.content:
                now = time.time()
                ev = orjson.loads(line)
                sent_at = (ev["object"]["metadata"].get("annotations") or {}).get("sent")
                if sent_at is None:
                    continue  # objects the cluster adds itself (kube-root-ca.crt)
                sent = float(sent_at)
                latencies.append((now - sent) * 1000)
                seen += 1
                if seen == events:
                    return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await asyncio.wait_for(all_ready.wait(), 30)
    await asyncio.sleep(0.5)
    for i in range(events):
        async with http.post(f"{base}/api/v1/namespaces/watch/configmaps",
                             data=_cm(f"w-{i}", sent=repr(time.time()))) as r:
            await r.read()
        await asyncio.sleep(0.01)  # a steady stream, not a burst
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies.sort()
    return {
        "watch delivery p50 (ms, 100 watchers)": latencies[len(latencies) // 2],
        "watch delivery p99 (ms, 100 watchers)": latencies[int(len(latencies) * 0.99)],
    }


def run() -> dict[str, float]:
    with Server() as srv:
        return asyncio.run(_bench(srv))


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:45s} {v:10.1f}")
