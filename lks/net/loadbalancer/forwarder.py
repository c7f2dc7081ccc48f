"""The load balancers' data path: for each frontend IP and port a listener on the host, as a
separate load balancer in front of the nodes would be. A TCP connection is handed to a `Connect`
that opens the way into the cluster (`lks.net.loadbalancer.balancer` picks the Service's
ClusterIP or one of its ready endpoints inside the cluster's network namespace) and copied both
ways; UDP datagrams go by flow (the client's address), each flow with an upstream socket of its
own from `OpenDatagram`, whose replies go back to that client, until it has been idle for
`UDP_IDLE` seconds (as a load balancer's UDP flow times out). Any 127.x address is bindable
without adding it, so nothing is configured on the host: closing the listeners leaves nothing
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from lks.net import relay

log = logging.getLogger("lks.net.loadbalancer")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# (frontend port, client address) -> upstream (None: nowhere to go, or the client may not come in)
Connect = Callable[[int, str], Awaitable[Streams | None]]
OpenDatagram = Callable[[int, str], Awaitable[socket.socket | None]]  # the same, a connected UDP socket
UDP_IDLE = 240.0  # seconds a UDP flow lives without traffic (Azure's load balancer: 4 minutes)
Where = tuple[str, str, int]  # (ip, protocol, port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


class Listeners:
    """The host listeners of one cluster's frontends, by Service uid then (ip, port)."""

    def __init__(self) -> None:
        self._servers: dict[str, dict[Where, Any]] = {}  # asyncio servers (TCP), `_Datagrams` (UDP)
        self._connections: set[asyncio.Task[Any]] = set()

    def serving(self, uid: str) -> list[Where]:
        return sorted(self._servers.get(uid, {}))

    async def ensure(self, uid: str, ip: str, ports: list[tuple[str, int]], connect: Connect,
                     open_datagram: OpenDatagram | None = None) -> None:
        """Listen on `ip` at each of `ports` ((protocol, port): TCP, and UDP with
        `open_datagram`) for the Service `uid`, and nowhere else; an address that cannot be
        bound raises OSError with the other listeners kept as they were."""
        current = self._servers.setdefault(uid, {})
        wanted = {(ip, protocol, port) for protocol, port in ports
                  if protocol == "TCP" or (protocol == "UDP" and open_datagram is not None)}
        for where in [w for w in current if w not in wanted]:
            current.pop(where).close()
        loop = asyncio.get_running_loop()
        for where in sorted(wanted - current.keys()):
            _, protocol, port = where
            try:
                if protocol == "TCP":
                    current[where] = await asyncio.start_server(
                        lambda r, w, port=port: self._handle(r, w, port, connect), host=ip, port=port,
                        reuse_address=True)
                else:
                    assert open_datagram is not None
                    flows = _Datagrams(port, open_datagram, self._connections)
                    await loop.create_datagram_endpoint(lambda flows=flows: flows, local_addr=(ip, port))
                    current[where] = flows
            except OSError as err:  # worded as Go's net.Listen, as a cloud provider's error reads
                why = os.strerror(err.errno) if err.errno else str(err)  # (asyncio's own words wrap it)
                raise OSError(err.errno, f"listen {protocol.lower()} {ip}:{port}: bind: {why.lower()}") from err
            log.info("load balancer frontend %s %s:%d listening", protocol, ip, port)

    def drop(self, uid: str) -> None:
        for server in self._servers.pop(uid, {}).values():
            server.close()

    async def close(self) -> None:
        for uid in list(self._servers):
            self.drop(uid)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int,
                      connect: Connect) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)  # so that `close` ends the connections still open
        try:
            upstream = None
            try:
                upstream = await connect(port, (writer.get_extra_info("peername") or ("",))[0])
            except OSError as err:
                log.debug("load balancer port %d: no upstream: %s", port, err)
            if upstream is None:
                return  # as a load balancer without a healthy backend: the connection is reset
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(relay.pipe(reader, up_writer), relay.pipe(up_reader, writer))
            finally:
                await _close(up_writer)
        finally:
            await _close(writer)
            self._connections.discard(task)


class _Datagrams(asyncio.DatagramProtocol):
    """One UDP frontend: a flow per client address, each with its upstream socket."""

    def __init__(self, port: int, open_datagram: OpenDatagram, tasks: set[asyncio.Task[Any]]):
        self.port = port
        self.open_datagram = open_datagram
        self.tasks = tasks  # the listeners' own, so that closing them ends the opening ones
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, _Flow] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = _Flow(self, addr)
            task = asyncio.get_running_loop().create_task(flow.open())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        flow.send(data)

    def close(self) -> None:
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()


class _Flow(asyncio.DatagramProtocol):
    """One client's datagrams to its upstream and the replies back."""

    def __init__(self, frontend: _Datagrams, client: Any):
        self.frontend = frontend
        self.client = client
        self.pending: list[bytes] | None = []  # until the upstream is open
        self.upstream: asyncio.DatagramTransport | None = None
        self._idle: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        try:
            sock = await self.frontend.open_datagram(self.frontend.port, self.client[0])
        except OSError as err:
            log.debug("load balancer UDP port %d: no upstream: %s", self.frontend.port, err)
            sock = None
        if sock is None or self.pending is None:
            if sock is not None:
                sock.close()
            self.close()
            return
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)
        self.upstream = transport  # type: ignore[assignment]
        for data in self.pending:
            self.upstream.sendto(data)
        self.pending = []
        self._touch()

    def send(self, data: bytes) -> None:
        if self.upstream is not None:
            self.upstream.sendto(data)
            self._touch()
        elif self.pending is not None:
            self.pending.append(data)

    def datagram_received(self, data: bytes, _addr: Any) -> None:
        if self.frontend.transport is not None:
            self.frontend.transport.sendto(data, self.client)
        self._touch()

    def error_received(self, exc: Exception) -> None:
        log.debug("load balancer UDP port %d: %s", self.frontend.port, exc)

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(UDP_IDLE, self.close)

    def close(self) -> None:
        self.pending = None
        if self._idle is not None:
            self._idle.cancel()
        if self.upstream is not None:
            self.upstream.close()
        if self.frontend.flows.get(self.client) is self:
            del self.frontend.flows[self.client]
