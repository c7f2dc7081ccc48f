"""Service-account token benchmark, in process on the SQLite store.

Figures: TokenRequest's signing p50 (µs, an RS256 JWT bound to a pod); authentication p50
(µs, `Cluster.authenticate`) of a static token, of a service-account token seen before (its
signature check remembered) and of one seen for the first time; then ConfigMap GETs/s over
HTTP (the real `KubeAPI` on a local aiohttp server, 32 concurrent clients, best of three
alternated runs) with a static token and with a service-account token, both bound to a Role that may read them, and their ratio.

Run: `.venv/bin/python bench/satoken_bench.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
import inprocess

from lks import pki, store
from lks.clock import ManualClock
from lks.kube import authz
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.subresources.tokenrequest import request_token

JANE_TOKEN = "jane-token"
JANE = User("jane", ("devs", "system:authenticated"))
GROUP = "rbac.authorization.k8s.io"
NS = "bench"


def _binding(name: str, subject: dict) -> dict:
    return {"metadata": {"name": name, "namespace": NS},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "reader"}, "subjects": [subject]}


def _p50(times: list[int]) -> float:
    times.sort()
    return times[len(times) // 2] / 1000


async def _timed(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        await fn()
        times.append(time.perf_counter_ns() - t)
    return _p50(times)


async def _gets(url: str, token: str, n: int = 3_000) -> float:
    async def get(http: aiohttp.ClientSession, _i: int) -> None:
        async with http.get(url) as r:
            if r.status != 200:
                raise RuntimeError(f"get failed: {r.status} {await r.text()}")
            await r.read()

    return await inprocess.throughput(token, get, n=n)


async def run() -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-satoken-bench-") as tmp:
        backend = store.open_store(f"sqlite://{Path(tmp) / 'bench.db'}")
        await backend.start()
        cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                          ca=pki.create_ca("bench"), tokens={JANE_TOKEN: JANE}, clock=ManualClock())
        await cluster.start()
        await cluster.registry("", "v1", "namespaces").create(None, {"metadata": {"name": NS}})
        await cluster.registry("", "v1", "serviceaccounts").create(NS, {"metadata": {"name": "robot"}})
        pod = await cluster.registry("", "v1", "pods").create(NS, {"metadata": {"name": "p"}, "spec": {
            "serviceAccountName": "robot", "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": "busybox"}]}})
        await cluster.registry("", "v1", "configmaps").create(NS, {"metadata": {"name": "cm"}, "data": {"k": "v"}})
        await cluster.registry(GROUP, "v1", "roles").create(NS, {"metadata": {"name": "reader"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]})
        bindings = cluster.registry(GROUP, "v1", "rolebindings")
        await bindings.create(NS, _binding("jane-view", {"kind": "User", "apiGroup": GROUP, "name": "jane"}))
        await bindings.create(NS, _binding("robot-view", {"kind": "ServiceAccount", "name": "robot", "namespace": NS}))
        body = {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p",
                                            "uid": pod["metadata"]["uid"]}}}
        await request_token(cluster, NS, "robot", body)  # the key is made on first use
        issued: list[str] = []

        async def issue() -> None:
            issued.append((await request_token(cluster, NS, "robot", body))["status"]["token"])
        out["TokenRequest bound to a pod p50 (µs)"] = await _timed(issue, 1_000)
        sa_token = issued[0]
        robot = await cluster.authenticate(bearer=sa_token, peer_cert_der=None)
        assert robot is not None
        while not await cluster.authorizer.allowed(authz.Attributes(robot, "get", True, NS, "", "v1", "configmaps")):
            await asyncio.sleep(0.01)  # the RBAC index catches up
        out["authenticate a static token p50 (µs)"] = await _timed(
            lambda: cluster.authenticate(bearer=JANE_TOKEN, peer_cert_der=None), 20_000)
        out["authenticate a service-account token p50 (µs)"] = await _timed(
            lambda: cluster.authenticate(bearer=sa_token, peer_cert_der=None), 20_000)
        fresh = iter(issued[1:])
        out["authenticate a new service-account token p50 (µs)"] = await _timed(
            lambda: cluster.authenticate(bearer=next(fresh), peer_cert_der=None), len(issued) - 1)

        try:
            async with inprocess.serve(cluster) as base:
                url = f"{base}/api/v1/namespaces/{NS}/configmaps/cm"
                await _gets(url, JANE_TOKEN, n=500)  # warm up
                static = sa = 0.0
                for _ in range(3):  # alternated, best of three: the machine's load moves between runs
                    static = max(static, await _gets(url, JANE_TOKEN))
                    sa = max(sa, await _gets(url, sa_token))
        finally:
            await cluster.stop()
            await backend.close()
        out["GETs/s with a static token (32 clients)"] = static
        out["GETs/s with a service-account token (32 clients)"] = sa
        out["service-account vs static token GETs/s (%)"] = 100 * sa / static
    return out


def main() -> None:
    figures = asyncio.run(run())
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:>10,.1f}")


if __name__ == "__main__":
    main()
