"""Taking a request's connection over for a streaming protocol, in aiohttp: the plain HTTP
upgrade to `SPDY/3.1` (answered `101 Switching Protocols`, then the raw connection is ours)
and the WebSocket tunnel kubectl's port-forward uses (`SPDY/3.1+portforward.k8s.io`: SPDY bytes
carried in binary WebSocket messages). Both end up as a `spdy.Pipe` for `spdy.Session`.

aiohttp only switches its parser off for WebSocket upgrades, so the SPDY upgrade installs its
own payload parser on the connection before answering 101 (the client sends nothing before it
reads the 101).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from lks.kube import errors
from lks.kube.streaming import spdy

SPDY = "SPDY/3.1"
TUNNEL_PREFIX = "SPDY/3.1+"  # client-go's constants.WebsocketsSPDYTunnelingPrefix
PROTOCOL_HEADER = "X-Stream-Protocol-Version"


def wants_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").strip().lower() == "websocket"


def wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").strip().lower().startswith("spdy/")


def client_protocols(request: web.Request) -> list[str]:
    """`X-Stream-Protocol-Version` values in the client's order (repeated or comma-separated)."""
    out = []
    for value in request.headers.getall(PROTOCOL_HEADER, []):
        out += [p.strip() for p in value.split(",") if p.strip()]
    return out


def negotiate(request: web.Request, supported: list[str]) -> str:
    """httpstream.Handshake: the first client protocol we support; no header at all means the
    oldest protocol (the caller passes it last)."""
    wanted = client_protocols(request)
    if not wanted:
        return supported[-1]
    for proto in wanted:
        if proto in supported:
            return proto
    raise errors.APIError(
        403, "Forbidden",
        f"unable to upgrade: unable to negotiate protocol: client supports {_golist(wanted)}, "
        f"server accepts {_golist(supported)}")


def _golist(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


class _Feed:
    """The payload parser aiohttp feeds an upgraded connection's bytes to."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class RawPipe(spdy.Pipe):
    """The connection of a request we answered with 101."""

    def __init__(self, request: web.Request, feed: _Feed):
        self._protocol = request.protocol
        self._transport = request.transport
        self._feed = feed
        self._eof = False

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self._feed.queue.get()
        if not data:
            self._eof = True
        return data

    async def write(self, data: bytes) -> None:
        t = self._transport
        if t is None or t.is_closing():
            raise ConnectionResetError("connection closed")
        t.write(data)
        if t.get_write_buffer_size() > 256 * 1024:
            await self._protocol._drain_helper()  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._feed.feed_eof()


async def spdy_upgrade(request: web.Request, protocol: str) -> tuple[web.StreamResponse, RawPipe]:
    """Answer 101 with the negotiated `protocol` and return the raw connection."""
    feed = _Feed()
    request.protocol.set_parser(feed)  # type: ignore[union-attr, arg-type]
    request.protocol.keep_alive(False)  # type: ignore[union-attr]
    resp = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": SPDY, PROTOCOL_HEADER: protocol})
    resp.force_close()
    await resp.prepare(request)
    return resp, RawPipe(request, feed)


class TunnelPipe(spdy.Pipe):
    """SPDY bytes inside binary WebSocket messages (client-go's TunnelingConnection)."""

    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type == WSMsgType.TEXT:
                continue
            return b""  # CLOSE, CLOSING, CLOSED, ERROR

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()
