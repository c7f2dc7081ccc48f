"""Apply benchmark: `kubectl apply` of a 500-object manifest, and server-side applies/s, against
a real `lks up --demo` (`api_bench.Server`).

Client-side apply: kubectl with default flags (`--validate=strict`, so it fetches the OpenAPI
schema) applies one multi-document manifest of 500 objects in one namespace — 150 ConfigMaps,
100 Secrets, 100 Services, 100 Deployments, 50 ServiceAccounts — and we time the whole kubectl
process. Each step starts once the server is quiet again (its controllers done with the
previous step's Deployments), and comes with the server's CPU time during the run (utime +
stime from `/proc`), which tells the server's share of the wall time from kubectl's. Steps:
- creates, cold cache: the first apply, from a fresh `HOME` (kubectl's discovery and OpenAPI
  caches empty);
- creates, warm cache: the same manifest into a second namespace;
- 50 changed: the first manifest again with every 10th object changed, so kubectl sends 50
  three-way merge patches and leaves 450 objects unchanged. kubectl computes every object's
  patch against the OpenAPI v3 document of its group-version, which it decodes afresh for each
  object (kubernetes/kubernetes#127095): ~100 ms per core/v1 object on this machine, whatever
  the server does;
- `--server-side`, creates and 50 changed: the same two steps as server-side applies into a
  third namespace (kubectl sends all 500 objects as apply patches and computes nothing).

Server-side apply: an aiohttp client with the admin client certificate sends
`PATCH /api/v1/namespaces/ssa/configmaps/<name>?fieldManager=bench&force=true` with
`Content-Type: application/apply-patch+yaml` (a JSON body, which is valid YAML) over 400
ConfigMaps. The first pass creates them; then every apply changes the `value` data key of an
existing object. Each client owns its own slice of objects, so no two applies race on one
object. Figure: applies/s with 1 and 8 concurrent clients.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))

import arm_bench  # noqa: E402
from api_bench import PAYLOAD, Server  # noqa: E402

KUBECTL = Path(sys.executable).parent / "kubectl"
MIX = {"ConfigMap": 150, "Secret": 100, "Service": 100, "Deployment": 100, "ServiceAccount": 50}
SSA_OBJECTS = 400


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _object(kind: str, i: int, namespace: str, rev: int) -> dict:
    """One object of the manifest; `rev` > 0 marks a changed copy (data, port, image, label)."""
    name = f"{kind.lower()}-{i:03d}"
    meta = {"name": name, "namespace": namespace, "labels": {"app": f"app-{i % 20}", "bench": "apply"}}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "data": {"settings.yaml": f"replicas: {i}\nrev: {rev}\n", "payload": PAYLOAD[:400]}}
    if kind == "Secret":  # `data`: stringData is merged into it on the server, so kubectl would
        # find it missing and re-send it on every apply (as against kube-apiserver)
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
                "data": {"password": _b64(f"pw-{i}-{rev}"), "user": _b64(f"user-{i}")}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {
            "selector": {"app": f"app-{i % 20}"},
            "ports": [{"name": "http", "port": 80 + rev, "targetPort": 8080}, {"name": "metrics", "port": 9090}]}}
    if kind == "Deployment":
        labels = {"app": f"app-{i % 20}", "deploy": name}
        container = {"name": "app", "image": f"registry.example.com/app:1.{rev}", "ports": [{"containerPort": 8080}],
                     "env": [{"name": "MODE", "value": "bench"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}
        pod = {"serviceAccountName": f"serviceaccount-{i % 50:03d}", "containers": [container]}
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod}}}
    meta["labels"]["rev"] = str(rev)
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def manifest(namespace: str, *, changed_every: int = 0) -> str:
    """The 500 objects as one YAML stream; with `changed_every` n, every n-th object is changed."""
    docs = []
    n = 0
    for kind, count in MIX.items():
        for i in range(count):
            rev = 1 if changed_every and n % changed_every == 0 else 0
            docs.append(_object(kind, i, namespace, rev))
            n += 1
    return yaml.safe_dump_all(docs, sort_keys=False)


def _kubectl_apply(srv: Server, home: Path, text: str, *flags: str) -> tuple[float, float, str]:
    """One `kubectl apply -f -`: its wall time (s), the server's CPU time meanwhile (s), and its
    output. The difference is kubectl's own work (decoding, OpenAPI, patch computation)."""
    env = {**os.environ, "KUBECONFIG": str(srv.home / "kubeconfig"), "HOME": str(home)}
    cpu = arm_bench.cpu_seconds(srv.proc.pid)
    began = time.perf_counter()
    res = subprocess.run([str(KUBECTL), "apply", *flags, "-f", "-"], env=env, input=text, capture_output=True,
                         text=True, timeout=600)
    elapsed = time.perf_counter() - began
    if res.returncode != 0:
        raise RuntimeError(f"kubectl apply failed ({res.returncode}): {res.stderr[-2000:]}")
    return elapsed, arm_bench.cpu_seconds(srv.proc.pid) - cpu, res.stdout


def _expect(out: str, counts: dict[str, int]) -> None:
    """`kubectl apply` printed `count` lines ending in `word`, for each word and count."""
    for word, count in counts.items():
        seen = sum(1 for line in out.splitlines() if line.endswith(f" {word}"))
        if seen != count:
            raise RuntimeError(f"expected {count} {word}, saw {seen}: {out[-500:]}")


async def _namespaces(srv: Server, *names: str) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=srv.ssl())) as http:
        for name in names:
            async with http.post(f"{srv.server}/api/v1/namespaces", json={"metadata": {"name": name}}) as r:
                if r.status != 201:
                    raise RuntimeError(f"namespace {name}: {r.status} {await r.text()}")


# (figure, namespace, every n-th object changed, kubectl flags, the output lines expected)
_STEPS = [
    ("creates, cold cache", "apply-a", 0, (), {"created": 500}),
    ("creates, warm cache", "apply-b", 0, (), {"created": 500}),
    ("50 changed", "apply-a", 10, (), {"configured": 50, "unchanged": 450}),
    ("--server-side, creates", "apply-c", 0, ("--server-side",), {"serverside-applied": 500}),
    ("--server-side, 50 changed", "apply-c", 10, ("--server-side",), {"serverside-applied": 500}),
]


def client_side(srv: Server) -> dict[str, float]:
    asyncio.run(_namespaces(srv, "apply-a", "apply-b", "apply-c"))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-bench-kubectl-") as home:
        for label, namespace, changed_every, flags, expected in _STEPS:
            arm_bench.wait_quiet(srv.proc.pid)  # the previous step's controller work is done
            wall, cpu, text = _kubectl_apply(srv, Path(home), manifest(namespace, changed_every=changed_every),
                                             *flags)
            _expect(text, expected)
            out[f"kubectl apply 500 objects, {label} (s)"] = wall
            out[f"kubectl apply 500 objects, {label}: server CPU (s)"] = cpu
    return out


async def _server_side(srv: Server) -> dict[str, float]:
    await _namespaces(srv, "ssa")
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
    base = f"{srv.server}/api/v1/namespaces/ssa/configmaps"
    conn = aiohttp.TCPConnector(ssl=srv.ssl(), limit=0)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:

        async def apply(i: int, value: int) -> None:
            name = f"ssa-{i:03d}"
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                 "data": {"value": str(value), "payload": PAYLOAD}})
            async with http.patch(f"{base}/{name}?fieldManager=bench&force=true", data=body) as r:
                if r.status not in (200, 201):
                    raise RuntimeError(f"apply {name}: {r.status} {await r.text()}")
                await r.read()

        async def rate(clients: int, per_client: int, value: int) -> float:
            """applies/s of `clients` workers, each applying round-robin over its own objects."""
            async def worker(w: int) -> None:
                mine = range(w, SSA_OBJECTS, clients)
                for k in range(per_client):
                    await apply(mine[k % len(mine)], value + k)

            began = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(clients)))
            return clients * per_client / (time.perf_counter() - began)

        await rate(8, SSA_OBJECTS // 8, 0)  # creates every object
        await rate(8, 100, 1)  # warm-up: connections, TLS sessions, caches
        out: dict[str, float] = {}
        for clients, per_client, value in ((1, 1_000, 10_000), (8, 500, 20_000)):
            await asyncio.to_thread(arm_bench.wait_quiet, srv.proc.pid)
            label = "1 client" if clients == 1 else f"{clients} clients"
            out[f"server-side applies/s ({label})"] = await rate(clients, per_client, value)
        return out


def run() -> dict[str, float]:
    with Server() as srv:
        out = client_side(srv)
        out.update(asyncio.run(_server_side(srv)))
        return out


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:55s} {v:10.2f}")
