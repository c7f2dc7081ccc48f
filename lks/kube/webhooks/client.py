"""The HTTPS client admission webhooks are called with: HTTP/1.1 POSTs over asyncio streams, so
a webhook that hangs, crawls or answers garbage costs the event loop nothing but a timer.

Each call runs under its webhook's `timeoutSeconds`; keep-alive connections are pooled per
configuration and endpoint (a webhook is called on every matching write, a handshake each time
would be most of the cost); TLS contexts are built once per `caBundle` (none: the system roots).
A `Target` either dials its host (`clientConfig.url`) or is handed a connection by the node
agent of the pod behind a Service (`lks.kube.webhooks.hooks` resolves it) and starts TLS on it.

Failures are `CallError`s worded as Go's HTTP client words them (`Post "https://...": dial tcp
...: connect: connection refused`), for `review.calling_error` to turn into upstream's message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

MAX_RESPONSE = 16 * 1024 * 1024  # a webhook's answer is small; more than this is garbage
_IDLE_SECONDS = 30.0  # an idle keep-alive connection older than this is closed, not reused
_IDLE_PER_KEY = 8


class CallError(Exception):
    """The webhook could not be called or did not answer HTTP: its failurePolicy decides."""


class _Broken(Exception):
    """The connection broke before an answer began (a pooled one the server had closed)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # as messages show it, with `?timeout=`: https://host:port/path?timeout=10s
    host: str  # TLS server name and Host header
    port: int
    path: str  # request target, query included
    ca_bundle: str  # base64 PEM bundle ("" for the system roots)
    connect: Callable[[], Awaitable[Streams]] | None = None  # a Service's pod; None: dial host:port
    endpoint: str = ""  # what the pool keys connections by besides host:port (the pod)
    local: Callable[[bytes], Awaitable[tuple[int, bytes]]] | None = None  # served in process (webhooks.local)


class Client:
    """One per cluster: pooled connections and cached TLS contexts."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, ...], list[tuple[float, Streams]]] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    def context(self, ca_bundle: str) -> ssl.SSLContext:
        ctx = self._contexts.get(ca_bundle)
        if ctx is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle, validate=True).decode()
                    ctx = ssl.create_default_context(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as err:
                    raise CallError(f"unable to load root certificates: {err}") from None
            else:
                ctx = ssl.create_default_context()
            if len(self._contexts) > 256:  # configurations come and go: keep the cache bounded
                self._contexts.clear()
            self._contexts[ca_bundle] = ctx
        return ctx

    async def post(self, pool: str, target: Target, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST `body` as JSON; (status code, response body). Raises CallError."""
        try:
            async with asyncio.timeout(timeout):
                if target.local is not None:
                    return await target.local(body)
                return await self._post(pool, target, body)
        except TimeoutError:
            raise CallError(f'Post "{target.url}": context deadline exceeded') from None

    async def _post(self, pool: str, target: Target, body: bytes) -> tuple[int, bytes]:
        key = (pool, target.host, str(target.port), target.endpoint, target.ca_bundle)
        while True:
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = await self._open(target)
            try:
                status, data, keep = await _exchange(conn, target, body)
            except _Broken as err:
                _close(conn)
                if reused:
                    continue  # the server closed a pooled connection: dial again
                raise CallError(f'Post "{target.url}": {err}') from None
            except CallError:
                _close(conn)
                raise
            except BaseException:  # timed out or cancelled mid-answer: the stream is unusable
                _close(conn)
                raise
            if keep:
                self._give(key, conn)
            else:
                _close(conn)
            return status, data

    def _take(self, key: tuple[str, ...]) -> Streams | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < _IDLE_SECONDS and not conn[0].at_eof() and not conn[1].is_closing():
                return conn
            _close(conn)
        return None

    def _give(self, key: tuple[str, ...], conn: Streams) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= _IDLE_PER_KEY:
            _close(conn)
        else:
            idle.append((time.monotonic(), conn))

    async def _open(self, target: Target) -> Streams:
        ctx = self.context(target.ca_bundle)
        address = f"{target.host}:{target.port}" if ":" not in target.host else f"[{target.host}]:{target.port}"
        try:
            if target.connect is None:
                return await asyncio.open_connection(target.host, target.port, ssl=ctx, server_hostname=target.host)
            reader, writer = await target.connect()
            await writer.start_tls(ctx, server_hostname=target.host)
            return reader, writer
        except ssl.SSLCertVerificationError as err:
            raise CallError(f'Post "{target.url}": tls: failed to verify certificate: {_x509(err, target.host)}') from None
        except socket.gaierror:
            raise CallError(f'Post "{target.url}": dial tcp: lookup {target.host}: no such host') from None
        except ssl.SSLError as err:
            raise CallError(f'Post "{target.url}": remote error: tls: {err.reason or err}') from None
        except (OSError, asyncio.IncompleteReadError) as err:
            raise CallError(f'Post "{target.url}": dial tcp {address}: connect: {_errno_text(err)}') from None

    def close(self) -> None:
        for idle in self._idle.values():
            for _, conn in idle:
                _close(conn)
        self._idle.clear()


async def _exchange(conn: Streams, target: Target, body: bytes) -> tuple[int, bytes, bool]:
    reader, writer = conn
    head = (f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            "User-Agent: kube-apiserver-admission\r\nAccept: application/json, */*\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        line = await reader.readline()
    except (OSError, asyncio.IncompleteReadError) as err:
        raise _Broken(_errno_text(err)) from None
    if not line:
        raise _Broken("EOF")
    try:
        return await _answer(reader, line)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
        raise CallError(f'Post "{target.url}": {_errno_text(err)}') from None


async def _answer(reader: asyncio.StreamReader, line: bytes) -> tuple[int, bytes, bool]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        shown = line.rstrip(b"\r\n").decode(errors="replace")
        raise CallError(f'net/http: HTTP/1.x transport connection broken: malformed HTTP response "{shown}"')
    version, status = parts[0], int(parts[1])
    headers: dict[bytes, bytes] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > MAX_RESPONSE:
                raise ValueError("response body too large")
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        return status, b"".join(chunks), keep
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        if length > MAX_RESPONSE:
            raise ValueError("response body too large")
        return status, await reader.readexactly(length), keep
    data = await reader.read(MAX_RESPONSE + 1)  # until the server closes
    if len(data) > MAX_RESPONSE:
        raise ValueError("response body too large")
    return status, data, False


def _errno_text(err: BaseException) -> str:
    """Go's wording of a socket error: `connection refused`, `EOF`."""
    if isinstance(err, asyncio.IncompleteReadError):
        return "unexpected EOF"
    if isinstance(err, ConnectionResetError):
        return "read: connection reset by peer"
    if isinstance(err, OSError) and err.errno:
        text = os.strerror(err.errno)
        return text[:1].lower() + text[1:] if err.errno != errno.ECONNREFUSED else "connection refused"
    return str(err) or type(err).__name__


def _x509(err: ssl.SSLCertVerificationError, host: str) -> str:
    if err.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return f"x509: certificate is not valid for {host}"
    if err.verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return "x509: certificate has expired or is not yet valid"
    return "x509: certificate signed by unknown authority"


def _close(conn: Streams) -> None:
    with contextlib.suppress(Exception):
        conn[1].close()
