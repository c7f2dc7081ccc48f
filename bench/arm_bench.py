"""Management API benchmark: managed cluster create latency, and the cost of idle clusters, against
a real `lks up --demo` (`api_bench.Server`), over raw HTTPS with the bearer token of
`$LKS_HOME/config.json`.

Create latency: 20 managed clusters, one after the other (System pool `nodepool1`, 3 x
Standard_DS2_v2). Each is timed from sending the `PUT` until its operation is `Succeeded` *and*
its 3 Nodes are Ready: we poll the `Azure-AsyncOperation` URL every 20 ms (not after the
Retry-After the service suggests: we measure the service, not a client's back-off), then fetch
`listClusterUserCredential` and read the Nodes with its token, again every 20 ms until all 3 are
Ready. Figures: p50 and p95 of that time, and p50 of the operation alone (`PUT` to `Succeeded`).

Idle clusters: on a fresh server, 100 clusters of 1 node each (10 creates in flight at a time),
until all are `Succeeded` with their Node Ready; then ~10 s to settle. Figures: its CPU over the
next 30 s of idling (utime + stime from `/proc/<pid>/stat`, as percent of one core), with the CPU
of the idle demo cluster alone before the creates for comparison; the server's RSS growth per
cluster (VmRSS minus VmRSS before, over 100) once the watch caches' windows of recent events
(75 s) have passed; and how fast RSS still grows over the next 30 s (idle clusters are not free
of writes: every Node renews its Lease every 10 s).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from api_bench import Server  # noqa: E402

from lks.kube import watchcache  # noqa: E402

CLUSTER_API = "api-version=2026-08-01"
GROUP_API = "api-version=2025-04-01"
POLL = 0.02  # seconds between polls of an operation or of the Nodes
LATENCY_CREATES = 20
IDLE_CLUSTERS = 100
IDLE_IN_FLIGHT = 10
SETTLE = 10.0
IDLE_WINDOW = 30.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of stat(5)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_percent(pid: int, seconds: float) -> float:
    """CPU of `pid` over the next `seconds`, in percent of one core."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds * 100


def wait_quiet(pid: int, *, below: float = 5.0, timeout: float = 120.0) -> None:
    """Wait until `pid` uses less than `below` percent of a core over half a second (its
    controllers have caught up), or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while cpu_percent(pid, 0.5) >= below and time.monotonic() < deadline:
        pass


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Management:
    """A raw HTTPS client of the management API, as the service's own `config.json` describes it."""

    def __init__(self, srv: Server):
        cfg = orjson.loads((srv.home / "config.json").read_bytes())
        self.base = f"{cfg['endpoint']}/subscriptions/{cfg['subscription_id']}"
        self.ssl = ssl.create_default_context(cafile=cfg["ca_file"])
        self.headers = {"Authorization": f"Bearer {cfg['token']}"}

    async def __aenter__(self) -> Management:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
                                          headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def group(self, name: str, location: str = "eastus") -> None:
        async with self.http.put(f"{self.base}/resourcegroups/{name}?{GROUP_API}", json={"location": location}) as r:
            r.raise_for_status()

    def cluster_url(self, group: str, name: str) -> str:
        return f"{self.base}/resourcegroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"

    async def create(self, group: str, name: str, count: int) -> tuple[float, float]:
        """Create a cluster; (seconds until the operation `Succeeded`, seconds until its `count`
        Nodes are also Ready), both from the moment the `PUT` goes out."""
        body = {"location": "eastus", "properties": {"dnsPrefix": name, "agentPoolProfiles": [
            {"name": "nodepool1", "count": count, "vmSize": "Standard_DS2_v2", "mode": "System", "osType": "Linux"}]}}
        url = self.cluster_url(group, name)
        began = time.perf_counter()
        async with self.http.put(f"{url}?{CLUSTER_API}", json=body) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"PUT {name}: {r.status} {await r.text()}")
            poll = r.headers["Azure-AsyncOperation"]
        while True:
            async with self.http.get(poll) as r:
                op = await r.json()
            if op["status"] != "InProgress":
                break
            await asyncio.sleep(POLL)
        succeeded = time.perf_counter() - began
        if op["status"] != "Succeeded":
            raise RuntimeError(f"creating {name} ended {op['status']}: {op.get('error')}")
        await self._await_nodes(url, count)
        return succeeded, time.perf_counter() - began

    async def _await_nodes(self, cluster_url: str, count: int, timeout: float = 30.0) -> None:
        async with self.http.post(f"{cluster_url}/listClusterUserCredential?{CLUSTER_API}") as r:
            r.raise_for_status()
            kubeconfig = yaml.safe_load(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))
        server = kubeconfig["clusters"][0]["cluster"]["server"]
        auth = {"Authorization": f"Bearer {kubeconfig['users'][0]['user']['token']}"}
        deadline = time.perf_counter() + timeout
        while True:
            async with self.http.get(f"{server}/api/v1/nodes", headers=auth) as r:
                r.raise_for_status()
                nodes = (await r.json())["items"]
            if len(nodes) == count and all(_ready(n) for n in nodes):
                return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{cluster_url}: {len(nodes)} nodes, not {count} Ready, after {timeout} s")
            await asyncio.sleep(POLL)


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def _create_latency(srv: Server) -> dict[str, float]:
    async with Management(srv) as mgmt:
        await mgmt.group("latency")
        await mgmt.create("latency", "warmup", 3)  # first-use costs (imports, TLS sessions) out of the figures
        ops, totals = [], []
        for i in range(LATENCY_CREATES):
            op, total = await mgmt.create("latency", f"c{i:02d}", 3)
            ops.append(op * 1000)
            totals.append(total * 1000)
    return {
        "cluster create, PUT to Succeeded, p50 (ms)": statistics.median(ops),
        "cluster create, PUT to Succeeded + 3 Nodes Ready, p50 (ms)": statistics.median(totals),
        "cluster create, PUT to Succeeded + 3 Nodes Ready, p95 (ms)": _percentile(totals, 95),
    }


async def _create_many(srv: Server) -> float:
    """Seconds to create `IDLE_CLUSTERS` clusters of 1 node, `IDLE_IN_FLIGHT` at a time."""
    async with Management(srv) as mgmt:
        await mgmt.group("idle")
        names = iter(range(IDLE_CLUSTERS))

        async def worker() -> None:
            for i in names:
                await mgmt.create("idle", f"idle{i:03d}", 1)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IDLE_IN_FLIGHT)))
        return time.perf_counter() - began


def idle_clusters(srv: Server) -> dict[str, float]:
    pid = srv.proc.pid
    time.sleep(SETTLE)
    rss_before = rss_mib(pid)
    idle_demo = cpu_percent(pid, SETTLE)
    elapsed = asyncio.run(_create_many(srv))
    created = time.monotonic()
    time.sleep(SETTLE)
    idle = cpu_percent(pid, IDLE_WINDOW)
    # idle means settled: the watch caches keep the last FRESH seconds of events
    time.sleep(max(0.0, created + watchcache.FRESH + 5 - time.monotonic()))
    rss_after = rss_mib(pid)
    time.sleep(IDLE_WINDOW)
    rss_later = rss_mib(pid)
    return {
        f"{IDLE_CLUSTERS} clusters of 1 node, creates/s ({IDLE_IN_FLIGHT} in flight)": IDLE_CLUSTERS / elapsed,
        "server RSS before, demo cluster only (MiB)": rss_before,
        f"server RSS after, {IDLE_CLUSTERS + 1} clusters (MiB)": rss_after,
        "server RSS growth per idle cluster (MiB)": (rss_after - rss_before) / IDLE_CLUSTERS,
        f"server RSS growth while idle, {IDLE_CLUSTERS + 1} clusters (MiB/min)": (rss_later - rss_after) / IDLE_WINDOW * 60,
        "server idle CPU, demo cluster only (% of a core)": idle_demo,
        f"server idle CPU, {IDLE_CLUSTERS + 1} clusters (% of a core)": idle,
    }


def run() -> dict[str, float]:
    with Server() as srv:
        out = asyncio.run(_create_latency(srv))
    with Server() as srv:
        out.update(idle_clusters(srv))
    return out


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:60s} {v:10.1f}")
