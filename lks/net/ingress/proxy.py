"""The ingress controller's reverse proxy: HTTP on port 80 and HTTPS on 443 of the `nginx`
Service's external IP on the host, answering as ingress-nginx does.

A request is routed by its Host and path (`routes.Table`); a host with TLS answers plain HTTP
with a 308 to HTTPS (`routes` says when); no route is the default backend's 404; a route whose Service has no ready
endpoint is a 503. Otherwise the request goes to the Service port's ready endpoints in turn
(round-robin), through `upstream.Upstreams` (inside the cluster's network namespace), with the
headers ingress-nginx sets: `Host` as sent, `X-Request-ID` (the client's, else a new one),
`X-Real-IP`, `X-Forwarded-For` (the client's address), `X-Forwarded-Host`, `-Port`, `-Proto`,
`-Scheme`, `X-Scheme`, and `X-Original-Forwarded-For` when the client sent one. Hop-by-hop
headers stop at the proxy, the answer carries `Server: nginx`; a pod that cannot be reached
passes the request to the next (`proxy_next_upstream`), WebSockets go through.

TLS: the handshake's SNI picks the Secret of the Ingress `tls` entry naming that host (type
`kubernetes.io/tls`: `tls.crt`, `tls.key`); without one, ingress-nginx's self-signed
"Kubernetes Ingress Controller Fake Certificate".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import logging
import os
import random
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from lks import pki
from lks.net.ingress import routes, upstream
from lks.net.ingress.controller import IngressController

log = logging.getLogger(__name__)

HTTP_PORT, HTTPS_PORT = 80, 443
Inside = Callable[[str, int], Awaitable[socket.socket | None]]  # a listener in the cluster's network
FAKE_CERTIFICATE = "Kubernetes Ingress Controller Fake Certificate"
_HOP = frozenset(h.lower() for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
                                     "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length",
                                     "Host"))
_HIDDEN = _HOP | {"server", "date"}  # and nginx's proxy_hide_header defaults: its own go out
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))  # nginx passes them on again
_BUFFERED = 1 << 20  # an answer up to this size is read whole and sent in one go


def _page(status: int, reason: str) -> bytes:
    """nginx's own error page."""
    return (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n").encode()


def _error(status: int, reason: str) -> web.Response:
    return web.Response(status=status, body=_page(status, reason), content_type="text/html",
                        headers={"Server": "nginx"})


class _TLS:
    """The HTTPS listener's contexts: the default (fake certificate) and one per Secret, picked
    by SNI."""

    def __init__(self, controller: IngressController):
        self.controller = controller
        fake = pki.create_ca(FAKE_CERTIFICATE)
        self.default = self._context(fake.cert_pem, fake.key_pem)
        self.default.sni_callback = self._pick
        self._by_secret: dict[tuple[str, str], tuple[str, int, ssl.SSLContext | None]] = {}

    @staticmethod
    def _context(cert: bytes, key: bytes) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # ingress-nginx's ssl-protocols: TLSv1.2 TLSv1.3
        ctx.set_alpn_protocols(["http/1.1"])
        fd, path = tempfile.mkstemp(prefix="lks-ingress-", suffix=".pem")  # the ssl module reads files only
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(cert.rstrip(b"\n") + b"\n" + key)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
        return ctx

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if not server_name:
            return
        ref = self.controller.table.tls_secret(server_name)
        if ref is None:
            return
        ctx = self.context(*ref)
        if ctx is not None:
            sslobj.context = ctx

    def context(self, namespace: str, name: str) -> ssl.SSLContext | None:
        secret = self.controller.secret(namespace, name)
        rv = (secret or {}).get("metadata", {}).get("resourceVersion") or ""
        known = self._by_secret.get((namespace, name))
        if known is not None and known[0] == rv and known[1] == self.controller.secret_version:
            return known[2]
        ctx = None
        data = (secret or {}).get("data") or {}
        if secret is not None and data.get("tls.crt") and data.get("tls.key"):
            try:
                ctx = self._context(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
            except (ValueError, ssl.SSLError, OSError) as err:
                log.warning("ingress: Secret %s/%s has no usable certificate: %s", namespace, name, err)
        self._by_secret[(namespace, name)] = (rv, self.controller.secret_version, ctx)
        return ctx


class Proxy:
    """The listeners and the request handler of one cluster's ingress."""

    def __init__(self, controller: IngressController, upstreams: upstream.Upstreams, *, inside: Inside | None = None):
        """`inside`: listens on an address of the cluster's network, for one the host does not
        have (an internal load balancer's, from the node subnet)."""
        self.controller = controller
        self.upstreams = upstreams
        self._inside = inside
        self.tls = _TLS(controller)
        self._next: dict[routes.Backend, int] = {}  # round-robin position per backend
        self._servers: list[asyncio.AbstractServer] = []
        self.address: str | None = None

    async def listen(self, ip: str) -> bool:
        """Serve on `ip` (ports 80 and 443), instead of where it served: on the host, or for an
        address the host does not have, inside the cluster's network; False if they are taken
        (or not to be had)."""
        try:
            plain, secure = await self._sockets(ip)
        except OSError as err:
            log.warning("ingress of %s: %s:80/443 unavailable: %s", self.controller.cluster.name, ip, err)
            return False
        await self.close()
        loop = asyncio.get_running_loop()
        handler = web.Server(self.handle, access_log=None)
        self._servers = [await loop.create_server(handler, sock=plain),
                         await loop.create_server(handler, sock=secure, ssl=self.tls.default)]
        self.address = ip
        log.info("ingress of %s on %s:80 and :443", self.controller.cluster.name, ip)
        return True

    async def _sockets(self, ip: str) -> tuple[socket.socket, socket.socket]:
        plain: socket.socket | None = None
        try:
            try:
                plain = _socket(ip, HTTP_PORT)
                return plain, _socket(ip, HTTPS_PORT)
            except OSError as err:
                if err.errno != errno.EADDRNOTAVAIL or self._inside is None:
                    raise
                plain = await self._inside(ip, HTTP_PORT)
                secure = await self._inside(ip, HTTPS_PORT) if plain is not None else None
                if plain is None or secure is None:
                    raise
                return plain, secure
        except BaseException:
            if plain is not None:
                plain.close()
            raise

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        secure = request.transport is not None and request.transport.get_extra_info("sslcontext") is not None
        host = request.host or ""
        table = self.controller.table
        server, backend = table.route(host, request.path)
        if not secure and table.redirects(server, backend):
            location = f"https://{routes.normalize_host(host)}{request.raw_path}"
            return web.Response(status=308, body=_page(308, "Permanent Redirect"), content_type="text/html",
                                headers={"Location": location, "Server": "nginx"})
        if backend is None:
            return _error(404, "Not Found")
        endpoints = self.controller.endpoints(backend)
        if not endpoints:
            return _error(503, "Service Temporarily Unavailable")
        i = self._next.get(backend, 0)
        self._next[backend] = i + 1
        return await self._forward(request, [endpoints[(i + k) % len(endpoints)] for k in range(len(endpoints))],
                                   secure=secure)

    async def _forward(self, request: web.BaseRequest, endpoints: list[tuple[str, int]], *,
                       secure: bool) -> web.StreamResponse:
        """To the first endpoint that answers: one that cannot be reached (or, for an idempotent
        request, fails or times out) passes the request to the next, as nginx's
        `proxy_next_upstream error timeout`."""
        session = self.upstreams.session
        assert session is not None
        peer = request.remote or ""
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
        scheme = "https" if secure else "http"
        own_port = str(HTTPS_PORT if secure else HTTP_PORT)
        if "X-Forwarded-For" in headers:
            headers["X-Original-Forwarded-For"] = headers["X-Forwarded-For"]
        request_id = request.headers.get("X-Request-ID") or f"{random.getrandbits(128):032x}"
        headers.update({
            "Host": request.host or "", "X-Request-ID": request_id, "X-Real-IP": peer,
            "X-Forwarded-For": peer, "X-Forwarded-Host": request.host or "", "X-Forwarded-Port": own_port,
            "X-Forwarded-Proto": scheme, "X-Forwarded-Scheme": scheme, "X-Scheme": scheme})
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, endpoints, headers)
        try:  # up to nginx's client_max_body_size (1m), aiohttp's limit too
            body = await request.read() if request.body_exists else None
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "Request Entity Too Large")
        for n, (ip, port) in enumerate(endpoints):
            url = f"http://{ip if ':' not in ip else f'[{ip}]'}:{port}{request.raw_path}"
            try:
                upstream_response = await session.request(request.method, url, headers=headers, data=body,
                                                          allow_redirects=False, compress=False)
                break
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                log.debug("ingress: %s:%d: %s", ip, port, err)
                again = isinstance(err, aiohttp.ClientConnectorError) or request.method in _IDEMPOTENT
                if again and n + 1 < len(endpoints):
                    continue
                return _error(504 if isinstance(err, TimeoutError) else 502,
                              "Gateway Time-out" if isinstance(err, TimeoutError) else "Bad Gateway")
        async with upstream_response as up:
            out = CIMultiDict((k, v) for k, v in up.headers.items() if k.lower() not in _HIDDEN)
            out["Server"] = "nginx"
            length = up.content_length
            if request.method == "HEAD":  # the length the pod says its answer has, with none
                if length is not None:
                    out["Content-Length"] = str(length)
                return web.Response(status=up.status, reason=up.reason, headers=out)
            if length is not None and length <= _BUFFERED:
                return web.Response(status=up.status, reason=up.reason, headers=out, body=await up.read())
            response = web.StreamResponse(status=up.status, reason=up.reason, headers=out)
            if length is not None:
                response.content_length = length
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(self, request: web.BaseRequest, endpoints: list[tuple[str, int]],
                         headers: CIMultiDict[str]) -> web.StreamResponse:
        """A WebSocket (ingress-nginx passes upgrades through): the upstream handshake first, with
        the client's subprotocols, then the client's with the one the pod chose; messages, pings
        and the close are relayed both ways until either side closes."""
        session = self.upstreams.session
        assert session is not None
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol",
                     "Sec-WebSocket-Extensions"):
            headers.popall(name, None)
        for ip, port in endpoints:
            url = f"http://{ip if ':' not in ip else f'[{ip}]'}:{port}{request.raw_path}"
            try:
                upstream_ws = await session.ws_connect(url, headers=headers, protocols=offered, autoclose=False,
                                                       autoping=False, compress=0, max_msg_size=0)
                break
            except aiohttp.WSServerHandshakeError as err:  # the pod answered, without an upgrade
                return _error(err.status or 502, err.message or "Bad Gateway")
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                log.debug("ingress: websocket to %s:%d: %s", ip, port, err)
        else:
            return _error(502, "Bad Gateway")
        ws = web.WebSocketResponse(protocols=(upstream_ws.protocol,) if upstream_ws.protocol else (),
                                   autoclose=False, autoping=False, compress=False, max_msg_size=0)
        ws.headers["Server"] = "nginx"
        try:
            await ws.prepare(request)
            await asyncio.gather(_relay(ws, upstream_ws), _relay(upstream_ws, ws))
        finally:
            await upstream_ws.close()
            await ws.close()
        return ws


async def _relay(source: Any, sink: Any) -> None:
    """One direction of a WebSocket: each message as it came, the close with its code."""
    while True:
        msg = await source.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.PING:
            await sink.ping(msg.data)
        elif msg.type == aiohttp.WSMsgType.PONG:
            await sink.pong(msg.data)
        else:  # CLOSE, CLOSING, CLOSED, ERROR
            if not sink.closed:
                code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int) else 1000
                await sink.close(code=code, message=(msg.extra or "").encode() if isinstance(msg.extra, str) else b"")
            return


def _socket(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock

