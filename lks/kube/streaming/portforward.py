"""`pods/portforward`: kubectl's port-forward protocol (`portforward.k8s.io`) over SPDY/3.1,
reached either by a plain `Upgrade: SPDY/3.1` request or by a WebSocket whose subprotocol is
`SPDY/3.1+portforward.k8s.io` (kubectl 1.37's default: the SPDY session tunneled in binary
messages, see `lks.kube.streaming.upgrade`).

For every local connection kubectl opens two streams with the same `requestID` and `port`
headers: an `error` stream (it only reads it) and a `data` stream. The data stream is joined to
`Kubelet.port_forward(pod, port)`; a failure is written to the error stream, worded as the
kubelet does, and closing the error stream tells kubectl the connection is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from lks.kube import errors
from lks.kube.streaming import channels, spdy, target, upgrade

if TYPE_CHECKING:
    from lks.kube.registry import Registry
    from lks.nodes import streams

Obj = dict[str, Any]

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = upgrade.TUNNEL_PREFIX + PROTOCOL
_READ = 32 * 1024
# The older WebSocket port-forward (the `kubernetes` Python client's): `ports` in the query, and
# per port two channels, data (2i) and error (2i+1), each opened by the port as 2 bytes LE.
_CHANNEL_PROTOCOLS = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"]


def parse_ports(q: Any) -> list[int]:
    """The optional `ports` query (repeated or comma-separated), checked as the kubelet does."""
    ports = []
    for value in q.getall("ports", []):
        for raw in value.split(","):
            raw = raw.strip()
            if not raw:
                continue
            try:
                port = int(raw)
            except ValueError:
                raise errors.bad_request(f'unable to parse "{raw}" as a port: strconv.ParseUint: parsing '
                                         f'"{raw}": invalid syntax') from None
            if not 0 < port < 65536:
                raise errors.bad_request(f"port {port} must be > 0")
            ports.append(port)
    return ports


async def serve(request: web.Request, reg: Registry, ns: str, name: str) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    parse_ports(request.query)
    pod = await reg.get(ns, name)
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    kubelet = await target.kubelet_for(reg, pod, f"portForward/{ns}/{name}")
    if upgrade.wants_websocket(request):
        ws = web.WebSocketResponse(protocols=[TUNNEL_PROTOCOL, *_CHANNEL_PROTOCOLS], autoping=True, max_msg_size=0)
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise errors.bad_request("unable to upgrade: the request is not a valid WebSocket upgrade")
        if ready.protocol == TUNNEL_PROTOCOL:
            await ws.prepare(request)
            await Forwarder(kubelet, pod).run(upgrade.TunnelPipe(ws))
            return ws
        ports = parse_ports(request.query)
        if not ports:
            return web.Response(status=400, text='query parameter "port" is required', content_type="text/plain")
        await ws.prepare(request)
        await _forward_channels(ws, channels.parse(ready.protocol), kubelet, pod, ports)
        return ws
    if not upgrade.wants_spdy(request):
        raise errors.bad_request("Upgrade request required")
    upgrade.negotiate(request, [PROTOCOL])
    resp, pipe = await upgrade.spdy_upgrade(request, PROTOCOL)
    await Forwarder(kubelet, pod).run(pipe)
    return resp


class Forwarder:
    """One port-forward session: pairs streams by request id and joins each pair to the pod."""

    def __init__(self, kubelet: streams.Kubelet, pod: Obj):
        self.kubelet = kubelet
        self.pod = pod
        self._pending: dict[str, dict[str, spdy.Stream]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def run(self, pipe: spdy.Pipe) -> None:
        session = spdy.Session(pipe, self._on_stream)
        try:
            await session.run()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await session.close()

    def _on_stream(self, stream: spdy.Stream) -> None:
        kind = stream.header("streamType")
        request_id = stream.header("requestID") or stream.header("port")
        if kind not in ("error", "data"):
            task = asyncio.create_task(stream.reset(spdy.PROTOCOL_ERROR))
        else:
            pair = self._pending.setdefault(request_id, {})
            pair[kind] = stream
            if len(pair) < 2:
                return
            del self._pending[request_id]
            task = asyncio.create_task(self._forward(pair["error"], pair["data"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, error: spdy.Stream, data: spdy.Stream) -> None:
        streams = target.node_streams()
        raw = data.header("port")
        meta = self.pod.get("metadata") or {}
        pod_name = f"{meta.get('name')}_{meta.get('namespace')}"
        try:
            try:
                port = int(raw)
                if not 0 < port < 65536:
                    raise ValueError(raw)
            except ValueError:
                await error.write(f'invalid port header "{raw}"'.encode())
                return
            try:
                conn = self.kubelet.port_forward(self.pod, port)
                reader, writer = await conn if inspect.isawaitable(conn) else conn
            except (streams.StreamError, OSError) as err:
                why = err.message if isinstance(err, streams.StreamError) else str(err)
                if not why.startswith("error forwarding port"):  # the kubelet's wording, if the node's lacks it
                    why = f"error forwarding port {port} to pod {pod_name}, uid {meta.get('uid')}: {why}"
                await error.write(why.encode())
                return
            await _join(data, reader, writer)
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                await data.close()
                await error.close()


async def _join(stream: spdy.Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy both ways until the pod's side ends (the client's half-close ends our writes to it)."""

    async def upstream() -> None:
        while chunk := await stream.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def downstream() -> None:
        while chunk := await reader.read(_READ):
            await stream.write(chunk)

    up = asyncio.create_task(upstream())
    try:
        with contextlib.suppress(ConnectionError, OSError):
            await downstream()
    finally:
        up.cancel()
        with contextlib.suppress(BaseException):
            await up
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _forward_channels(ws: web.WebSocketResponse, proto: channels.Protocol, kubelet: streams.Kubelet,
                            pod: Obj, ports: list[int]) -> None:
    """One connection per port for the life of the WebSocket; it closes once all have ended."""
    streams = target.node_streams()
    lock = asyncio.Lock()
    inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]

    async def send(channel: int, data: bytes) -> None:
        message = channels.encode(proto, channel, data)
        async with lock:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

    async def one(i: int, port: int) -> None:
        try:
            conn = kubelet.port_forward(pod, port)
            reader, writer = await conn if inspect.isawaitable(conn) else conn
        except (streams.StreamError, OSError) as err:
            await send(2 * i + 1, (err.message if isinstance(err, streams.StreamError) else str(err)).encode())
            return

        async def upstream() -> None:
            while data := await inboxes[i].get():
                writer.write(data)
                await writer.drain()

        up = asyncio.create_task(upstream())
        try:
            while data := await reader.read(_READ):
                await send(2 * i, data)
        finally:
            up.cancel()
            writer.close()

    async def read() -> None:
        async for msg in ws:
            decoded = channels.decode(proto, msg.data) if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) else None
            if decoded is not None and decoded[0] % 2 == 0 and decoded[0] // 2 < len(ports) and decoded[1]:
                inboxes[decoded[0] // 2].put_nowait(decoded[1])
        for q in inboxes:
            q.put_nowait(b"")

    for i, port in enumerate(ports):
        prefix = port.to_bytes(2, "little")
        await send(2 * i, prefix)
        await send(2 * i + 1, prefix)
    reader_task = asyncio.create_task(read())
    workers = asyncio.gather(*(one(i, p) for i, p in enumerate(ports)), return_exceptions=True)
    try:
        await asyncio.wait([reader_task, workers], return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader_task.cancel()
        workers.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(reader_task, workers, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
