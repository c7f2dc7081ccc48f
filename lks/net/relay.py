"""TCP relays from inside pods' network namespaces to an address of the host: what makes the
cluster's public API endpoint (`https://127.0.0.1:<port>/clusters/<id>`, the server of every
kubeconfig lks hands out) reachable from a pod with a network namespace of its own, as an AKS
cluster's FQDN is from its pods. A relay listens on the pod's own 127.0.0.1 at the same port
and copies bytes both ways to the host's; TLS passes through untouched. The process runtime
(`lks.nodes.process`) adds one per pod, with the listening socket `lks.net.podnet` made there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

BUFFER = 65536


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction of a relayed connection, passing its end (EOF) on."""
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class Relays:
    """One relay per pod (by uid), all to the same `target` (host, port)."""

    def __init__(self) -> None:
        self._servers: dict[str, asyncio.AbstractServer] = {}

    async def add(self, uid: str, sock: socket.socket, target: tuple[str, int]) -> None:
        self.drop(uid)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                for w in (writer, up_writer):
                    w.close()
                    with contextlib.suppress(ConnectionError, OSError):
                        await w.wait_closed()

        self._servers[uid] = await asyncio.start_server(handle, sock=sock)

    def drop(self, uid: str) -> None:
        server = self._servers.pop(uid, None)
        if server is not None:
            server.close()

    def close(self) -> None:
        for uid in list(self._servers):
            self.drop(uid)
