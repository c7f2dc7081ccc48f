"""Audit log benchmark: what auditing adds to a request of a hosted API server.

Two measures. Over HTTP (in process, memory store, aiohttp test server): the mean time of a
GET of one ConfigMap and of a ConfigMap create, with the audit log off, with a policy whose
level is None for everything, with the default policy (Metadata) and at RequestResponse.
Then the audit layer alone (start, begin, finish and the event's encoding, on a mocked request),
per request, for the same policies: the HTTP figures are noisy at this scale.

Run: `.venv/bin/python bench/audit_bench.py [requests]`.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import test_utils, web

from lks import pki, store
from lks.clock import ManualClock
from lks.kube import audit
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.http import requestinfo
from lks.kube.http.app import KubeAPI

TOKEN = "bench-token"
ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICIES = {
    "level None": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}]\n",
    "default (Metadata)": None,
    "RequestResponse": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: RequestResponse}]\n",
}


async def _http_round(cluster: Cluster, home: Path | None, prefix: str, n: int) -> tuple[float, float]:
    """Mean seconds per GET and per create."""
    api = KubeAPI(lambda _id: cluster, audit_home=home)
    app = web.Application()
    app.add_routes(api.routes())
    path = "/clusters/bench/api/v1/namespaces/default/configmaps"
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        await client.post(path, json={"metadata": {"name": f"{prefix}-read"}}, headers=AUTH)
        for _ in range(50):  # warm up
            (await client.get(f"{path}/{prefix}-read", headers=AUTH)).release()
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            (await client.get(f"{path}/{prefix}-read", headers=AUTH)).release()
        reads = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for i in range(n):
            (await client.post(path, json={"metadata": {"name": f"{prefix}-{i}"}, "data": {"k": "v"}},
                               headers=AUTH)).release()
        creates = (time.perf_counter() - start) / n
    await api.close_streams()
    return reads, creates


def _layer_round(home: Path, n: int) -> float:
    """Mean seconds the audit layer spends on one GET (no HTTP, no registry)."""
    auditor = audit.Auditor(home)
    req = test_utils.make_mocked_request("GET", "/clusters/bench/api/v1/namespaces/default/configmaps/x",
                                         headers={"User-Agent": "kubectl/v1.36.0"})
    resp = web.Response(body=b'{"kind":"ConfigMap"}', content_type="application/json")
    info = requestinfo.parse("GET", "/api/v1/namespaces/default/configmaps/x", req.query)

    async def go() -> float:
        start = time.perf_counter()
        for _ in range(n):
            auditor.start(req)
            auditor.begin("bench", ADMIN, info)
            audit.authorized(True, "")
            resp.headers.popall("Audit-Id", None)
            auditor.finish(req, resp)
        elapsed = (time.perf_counter() - start) / n
        await auditor.close()
        return elapsed

    return asyncio.run(go())


async def _http(n: int, homes: dict[str, Path]) -> dict[str, float]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={TOKEN: ADMIN}, clock=ManualClock())
    await cluster.start()
    figures: dict[str, float] = {}
    try:
        for i, (name, home) in enumerate([("off", None), *homes.items()]):
            reads, creates = await _http_round(cluster, home, f"r{i}", n)
            figures[f"GET, audit {name} (us)"] = reads * 1e6
            figures[f"create, audit {name} (us)"] = creates * 1e6
    finally:
        await cluster.stop()
        await backend.close()
    return figures


def run(requests: int = 2000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        homes = {}
        for i, (name, text) in enumerate(POLICIES.items()):
            home = Path(tmp) / str(i)
            home.mkdir()
            if text is not None:
                (home / "audit-policy.yaml").write_text(text)
            homes[name] = home
        figures = asyncio.run(_http(requests, homes))
        for name, home in homes.items():
            figures[f"audit layer alone, {name} (us per request)"] = _layer_round(home, requests * 5) * 1e6
    for k, v in figures.items():
        print(f"{k:<50} {v:>10,.1f}")
    return figures


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
