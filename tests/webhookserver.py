"""A plain Python HTTPS admission webhook for the tests: `http.server` in a thread on loopback,
its certificate from `lks.pki`. Each path has a behaviour (`answer`, `hang`, `garbage`) and
every AdmissionReview received is kept in `reviews`."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Review = dict[str, Any]
Behaviour = Callable[[Review], Any]  # the response (dict), or bytes to send as they are


def allow(request: Review, **response: Any) -> Review:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": request["uid"], "allowed": True, **response}}


def deny(request: Review, message: str, code: int = 403) -> Review:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": request["uid"], "allowed": False, "status": {"code": code, "message": message}}}


def json_patch(request: Review, ops: list, **response: Any) -> Review:
    return allow(request, patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode(),
                 **response)


class WebhookServer:
    def __init__(self) -> None:
        from lks import pki  # here: a Process-pool pod runs this file (`_serve_pod`) without lks

        self.ca = pki.create_ca("webhook-test-ca")
        self.ca_bundle = base64.b64encode(self.ca.cert_pem).decode()
        serving = pki.create_serving_cert(self.ca, ["127.0.0.1", "localhost"])
        self._dir = tempfile.TemporaryDirectory()
        cert, key = Path(self._dir.name) / "tls.crt", Path(self._dir.name) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.paths: dict[str, Behaviour] = {}
        self.reviews: dict[str, list[Review]] = {}
        self.stopping = threading.Event()
        self.received = threading.Event()  # set at each review (tests clear it)
        self.peers: list[int] = []  # the client port of each review: one per connection
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real webhooks serve
            disable_nagle_algorithm = True  # as Go's servers: no 40 ms wait on delayed ACKs

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.partition("?")[0]
                behaviour = server.paths.get(path)
                review = json.loads(body)
                server.reviews.setdefault(path, []).append(review)
                server.peers.append(self.client_address[1])
                server.received.set()
                if behaviour is None:
                    self.send_error(404)
                    return
                out = behaviour(review["request"])
                if out == "hang":
                    server.stopping.wait(60)
                    return
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()


def configuration(kind: str, name: str, hooks: list[dict]) -> dict:
    """A Validating- or MutatingWebhookConfiguration of `hooks` (each needs name, clientConfig, rules)."""
    filled = [{"sideEffects": "None", "admissionReviewVersions": ["v1"], **h} for h in hooks]
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": filled}


def rule(operations: list[str], resources: list[str], groups: list[str] | None = None,
         versions: list[str] | None = None, **extra: Any) -> dict:
    return {"operations": operations, "apiGroups": groups or [""], "apiVersions": versions or ["v1"],
            "resources": resources, **extra}


def _serve_pod(cert: str, key: str, port: int) -> None:
    """The webhook a Process-pool pod runs (`python webhookserver.py CERT KEY PORT`): it denies
    ConfigMaps whose name starts with `deny-`, naming the pod's port in its message."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))["request"]
            out = (deny(request, f"refused by the pod on port {port}") if request["name"].startswith("deny-")
                   else allow(request))
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.serve_forever()


if __name__ == "__main__":
    import sys

    _serve_pod(sys.argv[1], sys.argv[2], int(sys.argv[3]))
