"""A plain Python HTTPS extension API server for the aggregation tests: `http.server` in a
thread on loopback, its certificate from `lks.pki` for `<service>.<namespace>.svc`. It serves
the group-version `wardle.example.com/v1alpha1` (one resource, `flunders`) and answers a read
of flunders with the front-proxy headers it received, so tests see who lks said was asking."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GROUP, VERSION = "wardle.example.com", "v1alpha1"
RESOURCES = [{"name": "flunders", "singularName": "flunder", "namespaced": True, "kind": "Flunder",
              "verbs": ["get", "list"]}]


class ExtensionServer:
    def __init__(self, service: str = "api", namespace: str = "wardle") -> None:
        from lks import pki

        self.ca = pki.create_ca("extension-test-ca")
        self.ca_bundle = base64.b64encode(self.ca.cert_pem).decode()
        serving = pki.create_serving_cert(self.ca, [f"{service}.{namespace}.svc", "127.0.0.1"])
        self._dir = tempfile.TemporaryDirectory()
        cert, key = Path(self._dir.name) / "tls.crt", Path(self._dir.name) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # method, path, headers
        self.peers: list[str] = []  # the client certificate's CN of each request ("" for none)
        self._ctx = ctx
        self.httpd = _TLSServer(("127.0.0.1", 0), _handler(self), ctx)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def trust(self, client_ca_pem: str) -> None:
        """Ask clients for a certificate and accept those `client_ca_pem` signed (the
        requestheader CA of extension-apiserver-authentication), as a real extension server."""
        self._ctx.load_verify_locations(cadata=client_ca_pem)
        self._ctx.verify_mode = ssl.CERT_OPTIONAL

    def __enter__(self) -> ExtensionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()


class _TLSServer(ThreadingHTTPServer):
    """HTTPS whose TLS handshake runs in the connection's own thread. A wrapped listening socket
    shakes hands inside `accept`, on the serving thread: a client that connects and then stalls
    (lks's aggregator on the event loop of an in-process test, blocked in `__exit__`'s
    `shutdown`) would hold that thread, and `shutdown` would wait for it for ever."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext):
        self.ctx = ctx
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a probe or a client that went away: nothing to answer
        with tls:
            super().finish_request(tls, client_address)


def _handler(server: Any) -> type[BaseHTTPRequestHandler]:
    """The extension server's request handler; `server` keeps `requests` and `peers`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            headers: dict[str, list[str]] = {}
            for k, v in self.headers.items():
                headers.setdefault(k.lower(), []).append(v)
            path = self.path.partition("?")[0]
            server.requests.append(("GET", self.path, headers))
            cert = self.connection.getpeercert() or {}
            server.peers.append(next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), ""))
            if path == f"/apis/{GROUP}/{VERSION}":
                self._answer(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                   "groupVersion": f"{GROUP}/{VERSION}", "resources": RESOURCES})
            elif path.startswith(f"/apis/{GROUP}/{VERSION}/") and path.endswith("/flunders"):
                seen = {"user": headers.get("x-remote-user", []), "groups": headers.get("x-remote-group", []),
                        "authorization": headers.get("authorization", [])}
                self._answer(200, {"kind": "FlunderList", "apiVersion": f"{GROUP}/{VERSION}",
                                   "metadata": {"resourceVersion": "1"},
                                   "items": [{"kind": "Flunder", "apiVersion": f"{GROUP}/{VERSION}",
                                              "metadata": {"name": "seen", "namespace": "default",
                                                           "annotations": {"seen": json.dumps(seen)}}}]})
            else:
                self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "NotFound", "code": 404})


    return Handler


def apiservice(*, service: dict | None, ca_bundle: str = "", group: str = GROUP, version: str = VERSION,
               priority: int = 100) -> dict:
    spec: dict[str, Any] = {"group": group, "version": version, "groupPriorityMinimum": priority,
                            "versionPriority": 15}
    if service is not None:
        spec["service"] = service
    if ca_bundle:
        spec["caBundle"] = ca_bundle
    elif service is not None:
        spec["insecureSkipTLSVerify"] = True
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}"}, "spec": spec}


def service_with_endpoints(port: int, name: str = "api", namespace: str = "wardle") -> list[dict]:
    """A selector-less Service on 443 and its EndpointSlice at 127.0.0.1:`port` (no pod behind)."""
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{name}-1", "namespace": namespace, "labels": {"kubernetes.io/service-name": name}},
         "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    ]


class _Recorder:
    requests: list = []
    peers: list = []


def _serve_pod(cert: str, key: str, port: int) -> None:
    """What a Process-pool pod runs (`python extensionserver.py CERT KEY PORT`)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # every address of the pod: kubelet's probes go to the pod's IP, port-forward to its 127.0.0.1
    _TLSServer(("", port), _handler(_Recorder()), ctx).serve_forever()


if __name__ == "__main__":
    import sys

    _serve_pod(sys.argv[1], sys.argv[2], int(sys.argv[3]))
