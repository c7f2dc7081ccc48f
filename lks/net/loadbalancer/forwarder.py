"""The load balancers' data path: for each frontend IP and TCP port a listener on the host, as a
separate load balancer in front of the nodes would be, whose connections are each handed to a
`Connect` that opens the way into the cluster (`lks.net.loadbalancer.balancer` picks the
Service's ClusterIP or one of its ready endpoints inside the cluster's network namespace) and
copied both ways. Any 127.x address is bindable without adding it, so nothing is configured on
the host: closing the listeners leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("lks.net.loadbalancer")

BUFFER = 65536
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[int], Awaitable[Streams | None]]  # frontend port -> upstream (None: nowhere to go)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


class Listeners:
    """The host listeners of one cluster's frontends, by Service uid then (ip, port)."""

    def __init__(self) -> None:
        self._servers: dict[str, dict[tuple[str, int], asyncio.AbstractServer]] = {}
        self._connections: set[asyncio.Task[None]] = set()

    def serving(self, uid: str) -> list[tuple[str, int]]:
        return sorted(self._servers.get(uid, {}))

    async def ensure(self, uid: str, ip: str, ports: list[int], connect: Connect) -> None:
        """Listen on `ip` at each of `ports` for the Service `uid` (and nowhere else); an address
        that cannot be bound raises OSError with the other listeners kept as they were."""
        current = self._servers.setdefault(uid, {})
        wanted = {(ip, port) for port in ports}
        for where in [w for w in current if w not in wanted]:
            current.pop(where).close()
        for where in sorted(wanted - current.keys()):
            port = where[1]
            current[where] = await asyncio.start_server(
                lambda r, w, port=port: self._handle(r, w, port, connect), host=ip, port=port, reuse_address=True)
            log.info("load balancer frontend %s:%d listening", ip, port)

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
                upstream = await connect(port)
            except OSError as err:
                log.debug("load balancer port %d: no upstream: %s", port, err)
            if upstream is None:
                return  # as a load balancer without a healthy backend: the connection is reset
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                await _close(up_writer)
        finally:
            await _close(writer)
            self._connections.discard(task)
