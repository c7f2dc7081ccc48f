"""Management API benchmark: managed cluster create latency, and the cost of idle clusters, against
a real `lks up --demo` (`api_bench.Server`), over raw HTTPS with the bearer token of
`$LKS_HOME/config.json`.

Create latency: 20 managed clusters, one after the other (System pool `nodepool1`, 3 x
Standard_DS2_v2). Each is timed from sending the `PUT` until its operation is `Succeeded` *and*
its 3 Nodes are Ready: a PUT answered with its final state is done; otherwise we poll the
`Azure-AsyncOperation` URL every 20 ms (not after the Retry-After the service suggests: we
measure the service, not a client's back-off), then fetch `listClusterUserCredential` and read
the Nodes with its token, again every 20 ms until all 3 are Ready. Figures: p50 and p95 of that
time, and p50 of the operation alone (`PUT` to `Succeeded`).

What a user waits for: 10 more such clusters created through the Azure SDK,
`begin_create_or_update(...).result()` (azure-core's ARMPolling, which sleeps `Retry-After`
between polls), one after the other. Figures: p50 and max of that time, and how many of the
creates needed a poll at all (the service answers an operation that ends within 0.5 s with its
final state, and the SDK then polls nothing).

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
SDK_CREATES = 10
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
            poll = r.headers.get("Azure-AsyncOperation")  # none: answered with its final state
            op = {"status": (await r.json())["properties"]["provisioningState"]}
        while poll:
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


def sdk_create_latency(srv: Server) -> dict[str, float]:
    """Clusters of 3 nodes created with the Azure SDK, as a user waits for them."""
    from azure.core.credentials import AccessToken
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.containerservice.models import ManagedCluster, ManagedClusterAgentPoolProfile

    class Token:
        def __init__(self, token: str):
            self.token = token

        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken(self.token, int(time.time()) + 3600)

    class Polls(SansIOHTTPPolicy):
        count = 0

        def on_request(self, request) -> None:  # type: ignore[no-untyped-def]
            if request.http_request.method == "GET" and "/operations/" in request.http_request.url:
                Polls.count += 1

    cfg = orjson.loads((srv.home / "config.json").read_bytes())
    aks = ContainerServiceClient(Token(cfg["token"]), cfg["subscription_id"], base_url=cfg["endpoint"],
                                 connection_verify=cfg["ca_file"], per_call_policies=[Polls()])
    times, polled = [], 0
    for i in range(-1, SDK_CREATES):  # the first warms up
        before = Polls.count
        began = time.perf_counter()
        mc = aks.managed_clusters.begin_create_or_update("latency", f"sdk{i + 1:02d}", ManagedCluster(
            location="eastus", dns_prefix=f"sdk{i + 1}", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
                name="nodepool1", count=3, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
        elapsed = time.perf_counter() - began
        if mc.provisioning_state != "Succeeded":
            raise RuntimeError(f"SDK create ended {mc.provisioning_state}")
        if i >= 0:
            times.append(elapsed * 1000)
            polled += Polls.count > before
    return {
        "cluster create via the Azure SDK, .result(), p50 (ms)": statistics.median(times),
        "cluster create via the Azure SDK, .result(), max (ms)": max(times),
        f"cluster creates via the Azure SDK that polled (of {SDK_CREATES})": polled,
    }


def run() -> dict[str, float]:
    with Server() as srv:
        out = asyncio.run(_create_latency(srv))
        out.update(sdk_create_latency(srv))
    with Server() as srv:
        out.update(idle_clusters(srv))
    return out


async def _group(srv: Server, name: str) -> None:
    async with Management(srv) as mgmt:
        await mgmt.group(name)


if __name__ == "__main__":
    if sys.argv[1:] == ["sdk"]:  # only the SDK-observed create time
        with Server() as srv:
            asyncio.run(_group(srv, "latency"))
            figures = sdk_create_latency(srv)
    else:
        figures = run()
    for k, v in figures.items():
        print(f"{k:60s} {v:10.1f}")
