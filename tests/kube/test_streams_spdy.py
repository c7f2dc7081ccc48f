"""SPDY/3.1 (`lks.kube.streaming.spdy`): frames and header blocks round-trip, and the two
upgrade paths kubectl uses — exec over `Upgrade: SPDY/3.1`, port-forward over the same and
tunneled in a WebSocket — against a fake kubelet and a local echo server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import WSMsgType

from lks.kube.streaming import spdy
from lks.nodes import streams

from .conftest import TOKEN
from .fakekubelet import FakeKubelet
from .test_streams import BASE, NODE, make_pod

Frame = spdy.Frame


@pytest.mark.parametrize("frame", [
    pytest.param(Frame(0, spdy.FLAG_FIN, 7, b"payload"), id="data"),
    pytest.param(Frame(spdy.SYN_STREAM, 0, 1, headers={"streamtype": ["error"], "port": ["80"]}, priority=2),
                 id="syn-stream"),
    pytest.param(Frame(spdy.SYN_REPLY, spdy.FLAG_FIN, 3, headers={}), id="syn-reply"),
    pytest.param(Frame(spdy.RST_STREAM, 0, 5, status=spdy.CANCEL), id="rst"),
    pytest.param(Frame(spdy.SETTINGS, 0, settings=[(0, 7, 65536)]), id="settings"),
    pytest.param(Frame(spdy.PING, 0, ping_id=9), id="ping"),
    pytest.param(Frame(spdy.GOAWAY, 0, 11, status=0), id="goaway"),
    pytest.param(Frame(spdy.WINDOW_UPDATE, 0, 1, delta=1000), id="window-update"),
])
def test_frames_round_trip(frame: Frame):
    out, dec = spdy.HeaderCodec(), spdy.Decoder(spdy.HeaderCodec())
    wire = spdy.encode(frame, out) + spdy.encode(frame, out)  # twice: the zlib context carries over
    got = dec.feed(wire[:5]) + dec.feed(wire[5:])
    assert got == [frame, frame]


def test_header_blocks_use_the_spdy3_dictionary():
    block = spdy.HeaderCodec().encode({"content-type": ["text/plain"]})
    assert block[:2] == b"\x78\xbb"  # zlib header with FDICT set
    assert len(spdy.DICTIONARY) == 1423


class Client:
    """The client end of a SPDY session over asyncio streams or a WebSocket."""

    def __init__(self, read, write, close=None):
        self._read, self._write, self._close = read, write, close
        self.out, self.dec = spdy.HeaderCodec(), spdy.Decoder(spdy.HeaderCodec())
        self.next_id = 1
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.data: dict[int, bytearray] = {}
        self.fin: dict[int, asyncio.Event] = {}
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while chunk := await self._read():
            for f in self.dec.feed(chunk):
                if f.type == 0:
                    self.data.setdefault(f.stream_id, bytearray()).extend(f.data)
                    if f.flags & spdy.FLAG_FIN:
                        self.fin.setdefault(f.stream_id, asyncio.Event()).set()
                else:
                    await self.frames.put(f)

    async def send(self, frame: Frame) -> None:
        await self._write(spdy.encode(frame, self.out))

    async def open(self, **headers: str) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        await self.send(Frame(spdy.SYN_STREAM, 0, sid, headers={k.lower(): [v] for k, v in headers.items()}))
        reply = await asyncio.wait_for(self.frames.get(), 5)
        assert (reply.type, reply.stream_id) == (spdy.SYN_REPLY, sid)
        return sid

    async def close(self) -> None:
        if self._close is not None:
            await self._close()
        await asyncio.gather(self.task, return_exceptions=True)

    async def finished(self, sid: int) -> bytes:
        await asyncio.wait_for(self.fin.setdefault(sid, asyncio.Event()).wait(), 5)
        return bytes(self.data.get(sid, b""))


async def raw_upgrade(client, path: str, protocol: str, query: str) -> tuple[Client, bytes]:
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write((f"POST {path}?{query} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n"
                  "Content-Length: 0\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def close() -> None:
        writer.close()
        await writer.wait_closed()

    return Client(lambda: reader.read(65536), write, close), head


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data.upper())
            await w.drain()
        w.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
def kubelet(cluster, echo_port) -> Iterator[FakeKubelet]:
    k = FakeKubelet(forward_to=echo_port)
    streams.register(cluster.id, NODE, k)
    yield k
    streams.unregister(cluster.id, NODE)


async def test_exec_over_spdy(cluster, client, kubelet):
    await make_pod(cluster, "p")
    c, head = await raw_upgrade(client, f"{BASE}/p/exec", "v4.channel.k8s.io, v3.channel.k8s.io",
                                "command=cat&stdin=true&stdout=true&stderr=true")
    assert head.startswith(b"HTTP/1.1 101")
    assert b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
    err = await c.open(streamType="error")
    stdin = await c.open(streamType="stdin")
    stdout = await c.open(streamType="stdout")
    stderr = await c.open(streamType="stderr")
    await c.send(Frame(0, 0, stdin, b"hello "))
    await c.send(Frame(0, spdy.FLAG_FIN, stdin, b"spdy"))
    assert await c.finished(stdout) == b"hello spdy"
    assert await c.finished(stderr) == b""
    assert json.loads(await c.finished(err)) == {"metadata": {}, "status": "Success"}
    await c.close()


async def test_exec_over_spdy_exit_code(cluster, client, kubelet):
    await make_pod(cluster, "p")
    c, _ = await raw_upgrade(client, f"{BASE}/p/exec", "v4.channel.k8s.io",
                             "command=exit&command=2&stdout=true")
    err = await c.open(streamType="error")
    await c.open(streamType="stdout")
    status = json.loads(await c.finished(err))
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"][0]["message"] == "2"
    await c.close()


async def test_spdy_protocol_must_be_negotiated(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.post(f"{BASE}/p/portforward", headers={
        "Authorization": f"Bearer {TOKEN}", "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
        "X-Stream-Protocol-Version": "nope"})
    assert resp.status == 403
    assert "unable to negotiate protocol" in (await resp.json())["message"]


async def forward(c: Client, port: int, request_id: int, payload: bytes) -> tuple[bytes, bytes]:
    err = await c.open(streamType="error", port=str(port), requestID=str(request_id))
    await c.send(Frame(0, spdy.FLAG_FIN, err))  # kubectl never writes to the error stream
    data = await c.open(streamType="data", port=str(port), requestID=str(request_id))
    await c.send(Frame(0, spdy.FLAG_FIN, data, payload))
    return await c.finished(data), await c.finished(err)


async def test_port_forward_over_spdy(cluster, client, kubelet):
    await make_pod(cluster, "p")
    c, head = await raw_upgrade(client, f"{BASE}/p/portforward", "portforward.k8s.io", "")
    assert b"X-Stream-Protocol-Version: portforward.k8s.io" in head
    assert await forward(c, 8000, 0, b"hello") == (b"HELLO", b"")
    assert await forward(c, 8000, 1, b"again") == (b"AGAIN", b"")
    await c.send(Frame(spdy.PING, ping_id=1))
    assert (await asyncio.wait_for(c.frames.get(), 5)).ping_id == 1
    assert kubelet.forwarded == [8000, 8000]
    await c.close()


async def test_port_forward_error_goes_to_the_error_stream(cluster, client, kubelet):
    await make_pod(cluster, "p")
    c, _ = await raw_upgrade(client, f"{BASE}/p/portforward", "portforward.k8s.io", "")
    data, err = await forward(c, 1, 0, b"x")
    assert data == b""
    assert err.startswith(b"error forwarding port 1 to pod p_default, uid ")
    assert err.endswith(b"dial tcp4 127.0.0.1:1: connect: connection refused")
    await c.close()


async def test_port_forward_tunneled_in_websocket(cluster, client, kubelet):
    await make_pod(cluster, "p")
    ws = await client.ws_connect(f"{BASE}/p/portforward", protocols=["SPDY/3.1+portforward.k8s.io"],
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert ws.protocol == "SPDY/3.1+portforward.k8s.io"

    async def read() -> bytes:
        msg = await ws.receive()
        return msg.data if msg.type == WSMsgType.BINARY else b""

    c = Client(read, ws.send_bytes)
    assert await forward(c, 8000, 0, b"tunnel") == (b"TUNNEL", b"")
    await ws.close()


async def test_port_forward_over_websocket_channels(cluster, client, kubelet, echo_port):
    """The `kubernetes` Python client's protocol: `ports` in the query, channels 2i and 2i+1."""
    await make_pod(cluster, "p")
    ws = await client.ws_connect(f"{BASE}/p/portforward", params={"ports": "8000,1"},
                                 protocols=["v4.channel.k8s.io"], headers={"Authorization": f"Bearer {TOKEN}"})
    assert ws.protocol == "v4.channel.k8s.io"
    first = [(await ws.receive()).data for _ in range(4)]
    assert sorted(first) == sorted([b"\x00\x40\x1f", b"\x01\x40\x1f", b"\x02\x01\x00", b"\x03\x01\x00"])
    await ws.send_bytes(b"\x00ping")
    got: dict[int, bytes] = {}
    while got.get(0) != b"PING" or 3 not in got:
        msg = await asyncio.wait_for(ws.receive(), 5)
        got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    assert b"connection refused" in got[3]
    await ws.close()


async def test_port_forward_over_websocket_needs_ports(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/portforward", headers={
        "Authorization": f"Bearer {TOKEN}", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "v4.channel.k8s.io"})
    assert resp.status == 400
    assert await resp.text() == 'query parameter "port" is required'
