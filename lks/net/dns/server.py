"""The DNS server: UDP and TCP listeners on given (address, port) pairs, each query answered by
the cluster's zone (`zone.py`) or forwarded (`forward.py`).

Answers from the zone are built and sent synchronously in the datagram callback (no task per
query); only forwarded queries wait on the network. Zone answers are kept by the query's bytes
(all but its id) until the records change (AKS's Corefile has `cache 30`; ours is never stale):
a repeated query costs a dict lookup instead of parsing and rendering. UDP answers larger than the client's buffer
(512 bytes, or its EDNS size) are truncated with TC set, so the client retries over TCP.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from lks import tasks
from lks.net.dns import forward, zone

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000  # answers kept; all dropped when full


class Server:
    def __init__(self, zone_: zone.Zone, forwarder: forward.Forwarder | None = None):
        self.zone = zone_
        self.forwarder = forwarder
        self.listeners: list[Listener] = []
        self._pending: set[asyncio.Task[Any]] = set()  # forwarded queries in flight
        self._answers: dict[tuple[bool, bytes], bytes] = {}  # (tcp, query but its id) -> reply but its id
        self._generation = -1  # of the records the cached answers came from

    async def listen(self, address: str, port: int = 53, *,
                     sockets: tuple[socket.socket, socket.socket] | None = None) -> Listener:
        """Serve on `address`:`port` over UDP and TCP (port 0: a free one, the same for both).
        `sockets`: a (UDP, TCP) pair to serve on instead of new ones, e.g. made inside a pod
        network's namespace, where `address` lives; bound here unless already bound."""
        loop = asyncio.get_running_loop()
        if sockets is not None:
            udp_sock, tcp_sock = sockets
            for sock in sockets:
                sock.setblocking(False)
                if sock.getsockname()[1] == 0:
                    if sock.type == socket.SOCK_STREAM:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((address, port))
            transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp_sock)
            tcp = await asyncio.start_server(self._stream, sock=tcp_sock)
            listener = Listener(address, udp_sock.getsockname()[1], transport, tcp)
            self.listeners.append(listener)
            return listener
        for _ in range(10):  # port 0: the UDP port picked may be taken for TCP
            transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(address, port))
            bound = transport.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(self._stream, address, bound, reuse_address=True)
            except OSError:
                transport.close()
                if port:
                    raise
                continue
            listener = Listener(address, bound, transport, tcp)
            self.listeners.append(listener)
            return listener
        raise OSError(f"no free port on {address} for both UDP and TCP")

    async def close(self) -> None:
        for listener in self.listeners:
            await listener.close()
        self.listeners.clear()
        for task in list(self._pending):
            await tasks.cancel(task)

    def answer(self, wire: bytes, *, tcp: bool) -> bytes | Callable[[], Awaitable[bytes]] | None:
        """The reply's wire form; or, when it needs upstream, a coroutine function making it;
        None: no reply at all."""
        records = self.zone.records
        if self._generation != records.generation:
            self._answers.clear()
            self._generation = records.generation
        key = (tcp, wire[2:])
        cached = self._answers.get(key)
        if cached is not None:
            return wire[:2] + cached
        reply, ours = self._answer(wire, tcp=tcp)
        if ours and isinstance(reply, bytes) and records.synced:
            if len(self._answers) >= CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = reply[2:]
        return reply

    def _answer(self, wire: bytes, *, tcp: bool) -> tuple[bytes | Callable[[], Awaitable[bytes]] | None, bool]:
        """The reply, and whether it is the zone's alone (so it may be cached)."""
        try:
            request = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _format_error(wire), False
        if request.flags & dns.flags.QR:
            return None, False
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            # what miekg/dns (CoreDNS's server) refuses before any plugin sees it
            rcode = dns.rcode.NOTIMP if request.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR
            response = dns.message.make_response(request)
            response.set_rcode(rcode)
            return encode(response, request, tcp=tcp), False
        response = self.zone.answer(request)
        upstream = self.forwarder is not None and bool(self.forwarder.upstreams)
        if response is None:
            if not upstream:
                return encode(_servfail(request), request, tcp=tcp), False
            return (lambda: self._forward(request, tcp=tcp)), False
        target = _external_target(response)
        if target is not None and upstream:
            return (lambda: self._complete(request, response, target, tcp=tcp)), False
        return encode(response, request, tcp=tcp), True

    async def _forward(self, request: dns.message.Message, *, tcp: bool) -> bytes:
        assert self.forwarder is not None
        response = await self.forwarder.resolve(request, tcp=tcp)
        response.id = request.id
        return encode(response, request, tcp=tcp)

    async def _complete(self, request: dns.message.Message, response: dns.message.Message,
                        target: dns.name.Name, *, tcp: bool) -> bytes:
        """An ExternalName's CNAME followed by the upstream's answer for its target (as
        CoreDNS's upstream lookup adds it)."""
        assert self.forwarder is not None
        question = request.question[0]
        lookup = dns.message.make_query(target, question.rdtype)
        upstream = await self.forwarder.resolve(lookup, tcp=tcp)
        response.answer.extend(upstream.answer)
        return encode(response, request, tcp=tcp)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = await reader.readexactly(size)
                reply = self.answer(wire, tcp=True)
                if callable(reply):
                    reply = await reply()
                if reply is None:
                    continue
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class Listener:
    """One (address, port) served over UDP and TCP."""

    def __init__(self, address: str, port: int, udp: asyncio.DatagramTransport, tcp: asyncio.Server):
        self.address, self.port = address, port
        self._udp, self._tcp = udp, tcp

    async def close(self) -> None:
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server: Server):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = self.server.answer(data, tcp=False)
        if callable(reply):
            self.server._spawn(self._later(reply, addr))
        elif reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def _later(self, make: Callable[[], Awaitable[bytes]], addr: Any) -> None:
        reply = await make()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


def encode(response: dns.message.Message, request: dns.message.Message, *, tcp: bool) -> bytes:
    """`response` on the wire; over UDP cut to the client's buffer as miekg/dns's Truncate does:
    additional records go first, then answers from the end, and TC is set if an answer went."""
    limit = 65535 if tcp else max(512, request.payload if request.edns >= 0 else 512)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        pass
    response.additional = []
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        pass
    response.authority = []
    response.flags |= dns.flags.TC
    answers = [(rrset.name, rrset.ttl, rdata) for rrset in response.answer for rdata in rrset]
    kept: list = []
    for name, ttl, rdata in answers:  # as many answers as fit, in order
        kept.append((name, ttl, rdata))
        response.answer = _rrsets(kept)
        try:
            response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            kept.pop()
            break
    response.answer = _rrsets(kept)
    return response.to_wire(max_size=limit)


def _rrsets(records: list) -> list:
    out: dict[tuple, dns.rrset.RRset] = {}
    for name, ttl, rdata in records:
        key = (name, rdata.rdtype)
        if key not in out:
            out[key] = dns.rrset.RRset(name, rdata.rdclass, rdata.rdtype)
        out[key].add(rdata, ttl)
    return list(out.values())


def _external_target(response: dns.message.Message) -> dns.name.Name | None:
    """The target of an answer that ends in a CNAME out of the zone, to look up upstream."""
    if response.rcode() != dns.rcode.NOERROR or not response.answer or not response.question:
        return None
    last = response.answer[-1]
    if last.rdtype != dns.rdatatype.CNAME or response.question[0].rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return None
    return last[0].target


def _servfail(request: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(request)
    response.set_rcode(dns.rcode.SERVFAIL)
    return response


def _format_error(wire: bytes) -> bytes | None:
    """FORMERR for a query whose header at least parses (its id echoed); nothing otherwise."""
    if len(wire) < 12:
        return None
    (ident, flags) = struct.unpack("!HH", wire[:4])
    if flags & 0x8000:  # a response: never answer one
        return None
    return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7800) | dns.rcode.FORMERR, 0, 0, 0, 0)
