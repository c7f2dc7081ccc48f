"""Certificates API benchmark: a real `lks up` process; this process creates client-certificate
CSRs (EC P-256, `kubernetes.io/kube-apiserver-client`) over HTTPS with the demo cluster's admin
certificate, approves each through `/approval`, and watches for the certificates the in-process
csrsigning controller writes.

Figures: certificates issued/s with 16 clients creating and approving; approve-to-certificate
latency p50/p99 (the signer's reaction, seen through a watch).
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import time

import aiohttp
import orjson
from api_bench import Server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CSRS = 300
CONCURRENCY = 16
PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def _request(i: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bench"), x509.NameAttribute(NameOID.COMMON_NAME, f"user-{i}")]))
    pem = req.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return orjson.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                         "metadata": {"name": f"bench-{i}"},
                         "spec": {"request": base64.b64encode(pem).decode(), "usages": ["client auth"],
                                  "signerName": "kubernetes.io/kube-apiserver-client"}})


async def _bench(srv: Server) -> dict[str, float]:
    bodies = [_request(i) for i in range(CSRS)]  # key generation is the client's cost, not timed
    approved_at: dict[str, float] = {}
    issued_at: dict[str, float] = {}
    done = asyncio.Event()
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=srv.ssl(), limit=64)) as http:
        base = srv.server

        async def watch() -> None:
            async with http.get(f"{base}{PATH}?watch=1&resourceVersion=0", timeout=None) as resp:
                async for line in resp.content:
                    obj = orjson.loads(line)["object"]
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("certificate") and name not in issued_at:
                        issued_at[name] = time.perf_counter()
                        if len(issued_at) == CSRS:
                            done.set()
                            return

        watcher = asyncio.create_task(watch())
        queue = list(range(CSRS))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                async with http.post(f"{base}{PATH}", data=bodies[i], headers=headers) as resp:
                    csr = await resp.json()
                    assert resp.status == 201, csr
                csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Bench",
                                                 "message": "approved by the benchmark"}]}
                approved_at[csr["metadata"]["name"]] = time.perf_counter()
                async with http.put(f"{base}{PATH}/{csr['metadata']['name']}/approval", data=orjson.dumps(csr),
                                    headers=headers) as resp:
                    assert resp.status == 200, await resp.text()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - start
        watcher.cancel()
    lat = sorted((issued_at[n] - approved_at[n]) * 1000 for n in approved_at)
    return {"certificates issued/s (16 clients: create + approve)": CSRS / elapsed,
            "approve to certificate p50 (ms)": statistics.median(lat),
            "approve to certificate p99 (ms)": lat[int(len(lat) * 0.99) - 1]}


def run() -> dict[str, float]:
    with Server() as srv:
        figures = asyncio.run(_bench(srv))
    for k, v in figures.items():
        print(f"{k:<55} {v:>10,.1f}")
    return figures


if __name__ == "__main__":
    run()
