"""How a process of a Process pod reaches its cluster's API (`KUBERNETES_SERVICE_HOST`/`PORT`),
for `lks.nodes.process`.

A pod expects the API at `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/...`
with a bearer token from `/var/run/secrets/kubernetes.io/serviceaccount/token`. lks serves each
cluster's API under `/clusters/<id>`, so one small endpoint per cluster, on a free loopback
port, stands in for the `kubernetes` Service: it serves TLS with the API server's own
certificate (so the `ca.crt` of `kube-root-ca.crt` verifies it) and forwards every request,
its headers (the bearer token) included, to `/clusters/<id>/...` on the real endpoint
(responses, watches included, are streamed back). The pod's token is a service-account token
the API server issued and verifies itself (`lks.nodes.podtokens`), so nothing is translated
here. Connection upgrades (exec, attach, port-forward from inside a pod) are not forwarded.
A pod in a network namespace of its own (`lks.net.podnet`) has a loopback of its own: the
endpoint also listens there, on the same port (`serve_in`), so the address stays 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import tempfile

import aiohttp
from aiohttp import web

from lks import pki
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host"}


class APIAccess:
    def __init__(self, cluster: Cluster, *, tls: ssl.SSLContext | None = None):
        self.cluster = cluster
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._in_pods: dict[str, asyncio.AbstractServer] = {}  # pod uid -> its listener
        self.port = 0

    @property
    def endpoint(self) -> tuple[str, int] | None:
        return ("127.0.0.1", self.port) if self.port else None

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        self._ssl = self._server_tls()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        self._runner = runner

    async def serve_in(self, uid: str, sock: socket.socket) -> None:
        """Serve also on `sock`: a listening socket on 127.0.0.1:`port` in pod `uid`'s network
        namespace (replacing one it had)."""
        self.unserve(uid)
        if self._runner is None or self._runner.server is None:
            sock.close()
            return
        self._in_pods[uid] = await asyncio.get_running_loop().create_server(self._runner.server, sock=sock,
                                                                            ssl=self._ssl)

    def unserve(self, uid: str) -> None:
        server = self._in_pods.pop(uid, None)
        if server is not None:
            server.close()

    async def stop(self) -> None:
        for uid in list(self._in_pods):
            self.unserve(uid)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.port = 0

    # -- forwarding ----------------------------------------------------------------------

    def _server_tls(self) -> ssl.SSLContext:
        if self._tls is not None:
            return self._tls
        pair = pki.create_serving_cert(self.cluster.ca, ["127.0.0.1", "localhost", "kubernetes.default.svc"])
        return _context(ssl.Purpose.CLIENT_AUTH, pair)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            ctx = ssl.create_default_context(cadata=self.cluster.serving_ca_pem.decode())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ctx), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        host, port = self.cluster.api_endpoint
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        url = f"https://{host}:{port}/clusters/{self.cluster.id}{request.rel_url}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = request.content if request.body_exists else None
        try:
            # no Content-Type of our own: a body the client sent without one is JSON to the API server
            async with self._client().request(request.method, url, headers=headers, data=body, allow_redirects=False,
                                              skip_auto_headers=("Content-Type",)) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for k, v in upstream.headers.items():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        response.headers.add(k, v)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as err:
            log.debug("in-cluster API request to %s failed: %s", url, err)
            return web.Response(status=502, text=f"the cluster's API server is not reachable: {err}")


def _load(ctx: ssl.SSLContext, pair: pki.KeyPair) -> None:
    """`load_cert_chain` reads files only: through a private temporary directory."""
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        with open(crt, "wb") as f:
            f.write(pair.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pair.key_pem)
        ctx.load_cert_chain(crt, key)


def _context(purpose: ssl.Purpose, pair: pki.KeyPair) -> ssl.SSLContext:
    ctx = ssl.create_default_context(purpose)
    _load(ctx, pair)
    return ctx
