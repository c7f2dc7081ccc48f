"""Density benchmark: what an idle hosted cluster costs (issue 20).

The service (`lks.server.Service`, as `lks up` runs it) is hosted in this process, so that its
heap can be looked at; clusters are created through its management API over HTTPS, as any client
would (`arm_bench.Management`): a warm-up cluster first (first-use costs: imports, the catalog of
the Kubernetes version, TLS sessions), then `--clusters` N more (3 nodes each, System pool,
AKS's default add-ons), 10 creates in flight. Idle means settled: 10 s after the last create for
the CPU figure; for RSS, once every watch cache has dropped the events of the creates (`IDLE`:
a cache trims events older than `watchcache.FRESH` at most every FRESH seconds, so an event
lives up to twice that; before, it held ~3.4 MiB per cluster of superseded objects).

Figures: RSS growth per cluster ((after - before the N) / N); idle CPU of the whole service over
30 s (percent of one core); first-request latency to idle clusters (a new TLS connection, as a
fresh kubectl, then `GET /api/v1/namespaces/default/pods` with the cluster's user token; p50 and
max over 10 random clusters); then the service is stopped and `lks up` started as its own process
on the same home: seconds until it answers `/healthz` (every control plane started by then), its
RSS, and the first request to a random cluster after that restart.

`--breakdown` instead traces the heap (tracemalloc, 8 frames) while the N clusters are created
and idle, and prints per cluster: traced MiB by component (each allocation charged to the
innermost frame of `lks` that matches a component, see COMPONENTS), by module and the top
allocation sites, the growth in gc-tracked objects by type, and what the traces cannot see:
SQLite's own heap (`sqlite3_memory_used`), threads, open database files, TLS contexts.

    .venv/bin/python bench/density_bench.py [--clusters N] [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import ctypes
import ctypes.util
import gc
import os
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import types
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from api_bench import _free_port  # noqa: E402
from arm_bench import CLUSTER_API, Management, cpu_seconds, rss_mib  # noqa: E402

from lks.kube import watchcache  # noqa: E402
from lks.server import Service  # noqa: E402

CLUSTERS = 30
NODES = 3
IN_FLIGHT = 10
SETTLE = 10.0
IDLE_WINDOW = 30.0
FIRST_REQUESTS = 10
IDLE = 2 * watchcache.FRESH + 5  # seconds after the last create
GROUP = "density"

# (path fragment, component): an allocation is charged to the innermost `lks` frame that
# contains one of these fragments, checked in this order; else to "other lks" / "outside lks".
COMPONENTS = [
    ("lks/kube/watchcache.py", "watch caches (decoded objects, events)"),
    ("lks/store/", "store (SQLite backend, log, broadcaster)"),
    ("lks/kube/rbac/", "RBAC (bootstrap policy, index)"),
    ("lks/kube/authz", "authorizers"),
    ("lks/controllers/addons/", "add-on manifests"),
    ("lks/controllers/informer.py", "informers (controllers' caches)"),
    ("lks/controllers/workqueue.py", "work queues"),
    ("lks/controllers/", "controllers"),
    ("lks/nodes/", "node agents"),
    ("lks/kube/catalog.py", "type catalog"),
    ("lks/kube/openapi", "OpenAPI"),
    ("lks/kube/structural.py", "schemas"),
    ("lks/kube/crd", "CRDs"),
    ("lks/kube/fieldmanager.py", "managedFields"),
    ("lks/kube/registry.py", "registries"),
    ("lks/kube/admission/", "admission"),
    ("lks/kube/", "API server (other)"),
    ("lks/arm/", "management plane (ARM)"),
    ("lks/controlplanes.py", "control plane records"),
    ("lks/pki.py", "PKI"),
    ("lks/", "other lks"),
]


def _sqlite_memory() -> int | None:
    """Bytes SQLite's own allocator holds (page caches, schemas, statements) for every
    connection of the process: invisible to tracemalloc."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    fn = ctypes.CDLL(name).sqlite3_memory_used
    fn.restype = ctypes.c_int64
    return fn()


def _db_files() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").endswith(".db")
        except OSError:
            pass
    return n


def _component(tb: tracemalloc.Traceback) -> str:
    for frame in reversed(tb):  # a traceback lists the oldest frame first
        f = frame.filename
        if "/lks/" not in f or "/bench/" in f:
            continue
        rel = f[f.rindex("/lks/") + 1:]
        for fragment, component in COMPONENTS:
            if rel.startswith(fragment):
                return component
    return "outside lks"


def _module(tb: tracemalloc.Traceback) -> str:
    """The innermost frame of `lks` (else the innermost frame), as a module path."""
    for frame in reversed(tb):
        if "/lks/" in frame.filename and "/bench/" not in frame.filename:
            return frame.filename[frame.filename.rindex("/lks/") + 1:]
    return tb[-1].filename.rsplit("site-packages/", 1)[-1]


def _site(tb: tracemalloc.Traceback) -> str:
    """The innermost frame, and the innermost of `lks` when it is not the same."""
    last = tb[-1]
    inner = f"{'/'.join(last.filename.split('/')[-2:])}:{last.lineno}"
    for frame in reversed(tb):
        if "/lks/" in frame.filename and "/bench/" not in frame.filename:
            mine = f"{frame.filename[frame.filename.rindex('/lks/') + 1:]}:{frame.lineno}"
            return inner if frame is last else f"{inner} <- {mine}"
    return inner


def _by_type() -> collections.Counter[str]:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


class Density:
    def __init__(self, clusters: int, nodes: int):
        self.clusters, self.nodes = clusters, nodes
        self.tmp = tempfile.TemporaryDirectory(prefix="lks-density-")
        self.home = Path(self.tmp.name)
        self.service = Service(home=self.home, port=0)
        self.mgmt: Management | None = None

    async def __aenter__(self) -> Density:
        await self.service.start()
        gc.collect()
        gc.freeze()  # as `lks up` after start-up
        self.mgmt = await Management(self).__aenter__()
        await self.mgmt.group(GROUP)
        await self.mgmt.create(GROUP, "warmup", self.nodes)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.mgmt is not None:
            await self.mgmt.__aexit__()
        await self.service.stop()

    async def create_all(self) -> float:
        assert self.mgmt is not None
        names = iter(range(self.clusters))

        async def worker() -> None:
            for i in names:
                await self.mgmt.create(GROUP, f"c{i:04d}", self.nodes)  # type: ignore[union-attr]

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - began

    async def user_kubeconfig(self, name: str) -> tuple[str, str]:
        """(API server URL, bearer token) of a cluster's user credential."""
        assert self.mgmt is not None
        url = self.mgmt.cluster_url(GROUP, name)
        async with self.mgmt.http.post(f"{url}/listClusterUserCredential?{CLUSTER_API}") as r:
            r.raise_for_status()
            kc = yaml.safe_load(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))
        return kc["clusters"][0]["cluster"]["server"], kc["users"][0]["user"]["token"]


async def first_request(server: str, token: str, ca_file: str) -> float:
    """Seconds for one request on a new TLS connection, as a fresh kubectl makes it."""
    ctx = ssl.create_default_context(cafile=ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        began = time.perf_counter()
        async with http.get(f"{server}/api/v1/namespaces/default/pods",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            await r.read()
            r.raise_for_status()
        return time.perf_counter() - began


async def _idle(d: Density) -> dict[str, float]:
    pid = os.getpid()
    await asyncio.sleep(SETTLE)
    rss_before = rss_mib(pid)
    elapsed = await d.create_all()
    created = time.monotonic()
    await asyncio.sleep(SETTLE)
    cpu = cpu_seconds(pid)
    await asyncio.sleep(IDLE_WINDOW)
    idle_cpu = (cpu_seconds(pid) - cpu) / IDLE_WINDOW * 100
    await asyncio.sleep(max(0.0, created + IDLE - time.monotonic()))
    gc.collect()
    rss_after = rss_mib(pid)
    creds = [await d.user_kubeconfig(f"c{i:04d}") for i in random.sample(range(d.clusters), min(FIRST_REQUESTS, d.clusters))]
    ca_file = d.service.config["ca_file"]
    firsts = [await first_request(server, token, ca_file) * 1000 for server, token in creds]
    return {
        f"{d.clusters} clusters of {d.nodes} nodes, creates/s ({IN_FLIGHT} in flight)": d.clusters / elapsed,
        "RSS before (service + warm-up cluster, MiB)": rss_before,
        f"RSS after {d.clusters} more clusters (MiB)": rss_after,
        "RSS per idle cluster (MiB)": (rss_after - rss_before) / d.clusters,
        f"idle CPU, {d.clusters + 1} clusters (% of a core)": idle_cpu,
        "first request to an idle cluster, new connection, p50 (ms)": statistics.median(firsts),
        "first request to an idle cluster, new connection, max (ms)": max(firsts),
    }


def restart(home: Path, clusters: int) -> dict[str, float]:
    """`lks up` on the home the in-process service left: start-up time with its clusters, RSS,
    and the first request to a random cluster."""
    port = _free_port()
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lks", "up", "--port", str(port)],
                            env={**os.environ, "LKS_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cfg = orjson.loads((home / "config.json").read_bytes())
        ctx = ssl.create_default_context(cafile=cfg["ca_file"])

        async def up() -> float:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError("lks up exited")
                    try:
                        async with http.get(f"https://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                return time.perf_counter() - began
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)

        started = asyncio.run(up())

        async def first() -> float:
            cfg = orjson.loads((home / "config.json").read_bytes())  # rewritten by `lks up`: its port
            async with Management(types.SimpleNamespace(home=home)) as mgmt:  # type: ignore[arg-type]
                url = mgmt.cluster_url(GROUP, f"c{random.randrange(clusters):04d}")
                async with mgmt.http.post(f"{url}/listClusterUserCredential?{CLUSTER_API}") as r:
                    r.raise_for_status()
                    kc = yaml.safe_load(base64.b64decode((await r.json())["kubeconfigs"][0]["value"]))
            return await first_request(kc["clusters"][0]["cluster"]["server"], kc["users"][0]["user"]["token"],
                                       cfg["ca_file"])

        latency = asyncio.run(first())
        time.sleep(SETTLE)
        return {
            f"restart: lks up with {clusters + 1} clusters, start to /healthz (s)": started,
            f"restart: RSS of lks up with {clusters + 1} clusters, settled (MiB)": rss_mib(proc.pid),
            "restart: first request to a random cluster, new connection (ms)": latency * 1000,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(300)  # stopping many clusters on a loaded machine takes a while
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(clusters: int = CLUSTERS, nodes: int = NODES, *, echo: bool = False) -> dict[str, float]:
    """The figures; `echo` prints each group as it is measured."""
    d = Density(clusters, nodes)

    async def measure() -> dict[str, float]:
        async with d:
            return await _idle(d)

    try:
        out = asyncio.run(measure())
        if echo:
            _print(out)
        later = restart(d.home, clusters)
        if echo:
            _print(later)
        return {**out, **later}
    finally:
        d.tmp.cleanup()


async def _breakdown(d: Density, top: int) -> None:
    gc.collect()
    gc.unfreeze()  # the counts by type walk every generation
    types_before = _by_type()
    sqlite_before, threads_before, files_before = _sqlite_memory(), threading.active_count(), _db_files()
    tls_before = sum(isinstance(o, ssl.SSLContext) for o in gc.get_objects())
    rss_before = rss_mib(os.getpid())
    tracemalloc.start(8)
    before = tracemalloc.take_snapshot()
    await d.create_all()
    created = time.monotonic()
    await asyncio.sleep(max(0.0, created + IDLE - time.monotonic()))
    gc.collect()
    after = tracemalloc.take_snapshot()
    rss_after = rss_mib(os.getpid())
    tracemalloc.stop()
    n = d.clusters
    mib = 1024 * 1024
    stats = after.compare_to(before, "traceback")
    by_component: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    by_site: collections.Counter[str] = collections.Counter()
    for s in stats:
        by_component[_component(s.traceback)] += s.size_diff
        by_module[_module(s.traceback)] += s.size_diff
        by_site[_site(s.traceback)] += s.size_diff
    traced = sum(by_component.values())
    sqlite_after = _sqlite_memory()
    rss = rss_after - rss_before
    print(f"{n} clusters of {d.nodes} nodes; RSS (traced, so inflated) +{rss / n:.2f} MiB per cluster;"
          f" Python heap traced +{traced / mib / n:.3f} MiB per cluster")
    if sqlite_before is not None and sqlite_after is not None:
        print(f"SQLite's own heap: +{(sqlite_after - sqlite_before) / mib / n:.3f} MiB per cluster")
    print(f"threads: +{(threading.active_count() - threads_before) / n:.1f} per cluster;"
          f" open .db files: +{(_db_files() - files_before) / n:.1f} per cluster;"
          f" SSLContexts: +{(sum(isinstance(o, ssl.SSLContext) for o in gc.get_objects()) - tls_before) / n:.1f}"
          " per cluster")
    print("\nby component (MiB per cluster):")
    for name, size in by_component.most_common():
        print(f"  {size / mib / n:8.3f}  {name}")
    print(f"\nby module, top {top} (MiB per cluster):")
    for name, size in by_module.most_common(top):
        print(f"  {size / mib / n:8.3f}  {name}")
    print(f"\nallocation sites, top {top} (MiB per cluster):")
    for name, size in by_site.most_common(top):
        print(f"  {size / mib / n:8.3f}  {name}")
    counts = _by_type()
    counts.subtract(types_before)
    print(f"\ngc-tracked objects by type, top {top} (per cluster):")
    for name, count in counts.most_common(top):
        print(f"  {count / n:10.0f}  {name}")


def breakdown(clusters: int = CLUSTERS, nodes: int = NODES, top: int = 15) -> None:
    d = Density(clusters, nodes)

    async def measure() -> None:
        async with d:
            await asyncio.sleep(SETTLE)
            await _breakdown(d, top)

    try:
        asyncio.run(measure())
    finally:
        d.tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=CLUSTERS)
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--breakdown", action="store_true", help="where the memory goes, by tracemalloc")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.clusters, args.nodes, args.top)
        return
    run(args.clusters, args.nodes, echo=True)


def _print(figures: dict[str, float]) -> None:
    for k, v in figures.items():
        print(f"{k:72s} {v:10.2f}", flush=True)


if __name__ == "__main__":
    main()
