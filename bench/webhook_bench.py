"""Admission webhook benchmark: what one validating webhook on loopback adds to a create.

A real `lks up` (api_bench's Server) and, in this process, a plain Python HTTPS webhook that
allows everything. ConfigMaps are created one at a time in a namespace without the webhook and
in one its namespaceSelector matches; the figure is the difference of the medians, with the
webhook's own time (measured in its handler) shown apart. Connections to the webhook are kept
alive, so after the first call a create costs one request on a warm TLS connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import orjson
from api_bench import Server, _cm

CREATES = 300


class _Webhook:
    """Allows every request; keeps how long each answer took inside the handler."""

    def __init__(self) -> None:
        from lks import pki

        ca = pki.create_ca("bench-webhook-ca")
        serving = pki.create_serving_cert(ca, ["127.0.0.1"])
        self.ca_bundle = base64.b64encode(ca.cert_pem).decode()
        self.tmp = tempfile.TemporaryDirectory(prefix="lks-bench-webhook-")
        cert, key = Path(self.tmp.name) / "tls.crt", Path(self.tmp.name) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.handler_ms: list[float] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as Go's servers: no 40 ms wait on delayed ACKs

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                t = time.perf_counter()
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["request"]
                data = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": {"uid": request["uid"], "allowed": True}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                hook.handler_ms.append((time.perf_counter() - t) * 1000)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/validate"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.tmp.cleanup()


async def _bench(srv: Server, hook: _Webhook) -> dict[str, float]:
    conn = aiohttp.TCPConnector(ssl=srv.ssl(), limit=0)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:
        base = srv.server

        async def post(path: str, body: bytes) -> float:
            t = time.perf_counter()
            async with http.post(base + path, data=body) as r:
                if r.status != 201:
                    raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                await r.read()
            return (time.perf_counter() - t) * 1000

        for ns, labels in (("plain", {}), ("hooked", {"webhook": "on"})):
            await post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": ns, "labels": labels}}))
        config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                  "metadata": {"name": "bench"},
                  "webhooks": [{"name": "allow.bench.example.com", "sideEffects": "None",
                                "admissionReviewVersions": ["v1"],
                                "clientConfig": {"url": hook.url, "caBundle": hook.ca_bundle},
                                "namespaceSelector": {"matchLabels": {"webhook": "on"}},
                                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                           "resources": ["configmaps"]}]}]}
        await post("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", orjson.dumps(config))
        for i in range(20):  # warm both paths (caches, the webhook's connection)
            await post("/api/v1/namespaces/plain/configmaps", _cm(f"warm-{i}"))
            await post("/api/v1/namespaces/hooked/configmaps", _cm(f"warm-{i}"))
        hook.handler_ms.clear()
        plain, hooked = [], []
        for i in range(CREATES):  # interleaved, so drift in the machine's load hits both alike
            plain.append(await post("/api/v1/namespaces/plain/configmaps", _cm(f"c-{i}")))
            hooked.append(await post("/api/v1/namespaces/hooked/configmaps", _cm(f"c-{i}")))
        if len(hook.handler_ms) != CREATES:
            raise RuntimeError(f"the webhook saw {len(hook.handler_ms)} of {CREATES} creates")
    p50_plain, p50_hooked = statistics.median(plain), statistics.median(hooked)
    return {
        "create p50 without webhook (ms)": p50_plain,
        "create p50 with 1 validating webhook (ms)": p50_hooked,
        "added per create p50 (ms)": p50_hooked - p50_plain,
        "of which the webhook's handler p50 (ms)": statistics.median(hook.handler_ms),
    }


def run() -> dict[str, float]:
    hook = _Webhook()
    try:
        with Server() as srv:
            return asyncio.run(_bench(srv, hook))
    finally:
        hook.close()


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:45s} {v:10.2f}")
