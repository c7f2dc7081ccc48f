"""SPDY/3.1 as Kubernetes streaming speaks it (moby/spdystream on the client side): frames,
the zlib-compressed name/value header blocks, and a server-side `Session` that accepts the
streams a client opens (each one announced by SYN_STREAM and answered with SYN_REPLY).

kubectl uses SPDY for `exec`/`attach` when a WebSocket upgrade fails, and for `port-forward`
either over a plain `Upgrade: SPDY/3.1` connection or tunneled inside binary WebSocket
messages; `lks.kube.streaming.upgrade` supplies both byte pipes. Flow control is not enforced
by spdystream, so WINDOW_UPDATE frames are read and ignored, and none are sent.
`lks.kube.streaming.remotecommand` and `.portforward` use the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

_MAX_DATA = 32 * 1024  # bytes per DATA frame we send

# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1):
# length-prefixed header words, then a run of common values.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url public "
    "set-cookie keep-alive origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    out = bytearray()
    for word in _WORDS.split(" "):
        w = word.replace("_", " ")  # "200_OK" stands for "200 OK"
        out += struct.pack(">I", len(w)) + w.encode()
    return bytes(out) + _TAIL.encode()


DICTIONARY = _dictionary()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass(slots=True)
class Frame:
    type: int  # 0 for DATA
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""  # DATA payload
    headers: Headers = field(default_factory=dict)
    associated: int = 0
    priority: int = 0
    status: int = 0  # RST_STREAM and GOAWAY
    ping_id: int = 0
    delta: int = 0  # WINDOW_UPDATE
    settings: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)


class HeaderCodec:
    """One direction's zlib context: SPDY compresses every header block of a session with a
    single stream, flushed (Z_SYNC_FLUSH) after each block."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                   zdict=DICTIONARY)
        self._d = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Headers) -> bytes:
        raw = bytearray(struct.pack(">I", len(headers)))
        for name, values in headers.items():
            n = name.lower().encode()
            v = b"\x00".join(x.encode() for x in values)
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._z.compress(bytes(raw)) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> Headers:
        if not block:
            return {}
        try:
            raw = self._d.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"header block: {err}") from None
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            pos, out = 4, {}
            for _ in range(count):
                (ln,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + ln].decode()
                pos += 4 + ln
                (lv,) = struct.unpack_from(">I", raw, pos)
                value = raw[pos + 4:pos + 4 + lv].decode()
                pos += 4 + lv
                out.setdefault(name.lower(), []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as err:
            raise ProtocolError(f"header block: {err}") from None
        return out


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def encode(frame: Frame, codec: HeaderCodec) -> bytes:
    """One frame on the wire; header blocks go through `codec` (this direction's context)."""
    t = frame.type
    if t == 0:
        return struct.pack(">II", frame.stream_id & 0x7FFFFFFF, (frame.flags << 24) | len(frame.data)) + frame.data
    if t == SYN_STREAM:
        body = struct.pack(">IIBB", frame.stream_id, frame.associated, (frame.priority & 7) << 5, 0)
        return _control(t, frame.flags, body + codec.encode(frame.headers))
    if t in (SYN_REPLY, HEADERS):
        return _control(t, frame.flags, struct.pack(">I", frame.stream_id) + codec.encode(frame.headers))
    if t == RST_STREAM:
        return _control(t, 0, struct.pack(">II", frame.stream_id, frame.status))
    if t == SETTINGS:
        body = struct.pack(">I", len(frame.settings)) + b"".join(
            struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.settings)
        return _control(t, frame.flags, body)
    if t == PING:
        return _control(t, 0, struct.pack(">I", frame.ping_id))
    if t == GOAWAY:
        return _control(t, 0, struct.pack(">II", frame.stream_id, frame.status))
    if t == WINDOW_UPDATE:
        return _control(t, 0, struct.pack(">II", frame.stream_id, frame.delta))
    raise ValueError(f"unknown frame type {t}")


class Decoder:
    """Cuts a byte stream into frames (`feed` returns the complete ones)."""

    def __init__(self, codec: HeaderCodec):
        self._buf = bytearray()
        self._codec = codec

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = flags_len >> 24
            if word & 0x80000000:
                version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frame = self._control(ftype, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Frame(0, flags, word & 0x7FFFFFFF, payload))
        return frames

    def _control(self, ftype: int, flags: int, p: bytes) -> Frame | None:
        try:
            if ftype == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, associated=assoc & 0x7FFFFFFF, priority=prio >> 5,
                             headers=self._codec.decode(p[10:]))
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, headers=self._codec.decode(p[4:]))
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from(">II", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
            if ftype == SETTINGS:
                (n,) = struct.unpack_from(">I", p, 0)
                entries = []
                for i in range(n):
                    fid, value = struct.unpack_from(">II", p, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, value))
                return Frame(ftype, flags, settings=entries)
            if ftype == PING:
                return Frame(ftype, flags, ping_id=struct.unpack_from(">I", p, 0)[0])
            if ftype == GOAWAY:
                sid, status = struct.unpack_from(">II", p, 0) if len(p) >= 8 else (*struct.unpack_from(">I", p, 0), 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, delta=delta & 0x7FFFFFFF)
        except struct.error as err:
            raise ProtocolError(f"short control frame {ftype}: {err}") from None
        return None  # unknown control frames are ignored, as the spec asks


class Pipe:
    """A byte pipe a session runs over: an upgraded HTTP connection or a WebSocket tunnel."""

    async def read(self) -> bytes:  # b"" at EOF
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class Stream:
    """One client-opened stream: its headers, what the client sends (until FIN), our writes."""

    def __init__(self, session: Session, stream_id: int, headers: Headers, fin: bool):
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        if fin:
            self._end()

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def _feed(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self._incoming.put_nowait(data)

    def _end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(b"")

    async def read(self) -> bytes:
        """The next chunk the client sent; b"" once it half-closed the stream (or reset it)."""
        data = await self._incoming.get()
        if not data:
            self._incoming.put_nowait(b"")  # later reads see EOF too
        return data

    async def write(self, data: bytes) -> None:
        if self.local_closed:
            return
        for i in range(0, len(data), _MAX_DATA):
            await self.session.send(Frame(0, 0, self.id, data[i:i + _MAX_DATA]))

    async def close(self) -> None:
        """Half-close: we send nothing more (a DATA frame with FIN)."""
        if not self.local_closed:
            self.local_closed = True
            with contextlib.suppress(ConnectionError):
                await self.session.send(Frame(0, FLAG_FIN, self.id))

    async def reset(self, status: int = CANCEL) -> None:
        self.local_closed = True
        self._end()
        with contextlib.suppress(ConnectionError):
            await self.session.send(Frame(RST_STREAM, stream_id=self.id, status=status))


class Session:
    """The server end of a SPDY session. Every stream a client opens is accepted (SYN_REPLY) and
    handed to `on_stream`; pings are echoed; GOAWAY or EOF ends `run`."""

    def __init__(self, pipe: Pipe, on_stream: Callable[[Stream], Awaitable[None] | None]):
        self.pipe = pipe
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._out = HeaderCodec()
        self._decoder = Decoder(HeaderCodec())
        self._lock = asyncio.Lock()
        self._last_id = 0
        self.closed = False

    async def send(self, frame: Frame) -> None:
        if self.closed:
            raise ConnectionResetError("SPDY session closed")
        async with self._lock:  # header blocks must reach the wire in compression order
            await self.pipe.write(encode(frame, self._out))

    async def run(self) -> None:
        """Read frames until the client goes away."""
        try:
            while True:
                data = await self.pipe.read()
                if not data:
                    break
                for frame in self._decoder.feed(data):
                    if not await self._handle(frame):
                        return
        except (ConnectionError, ProtocolError):
            pass
        finally:
            for stream in self.streams.values():
                stream._end()

    async def _handle(self, f: Frame) -> bool:
        if f.type == 0:
            stream = self.streams.get(f.stream_id)
            if stream is not None:
                stream._feed(f.data)
                if f.flags & FLAG_FIN:
                    stream._end()
        elif f.type == SYN_STREAM:
            if f.stream_id in self.streams or f.stream_id % 2 == 0 or f.stream_id <= self._last_id:
                await self.send(Frame(RST_STREAM, stream_id=f.stream_id, status=PROTOCOL_ERROR))
                return True
            self._last_id = f.stream_id
            stream = Stream(self, f.stream_id, f.headers, bool(f.flags & FLAG_FIN))
            self.streams[f.stream_id] = stream
            await self.send(Frame(SYN_REPLY, stream_id=f.stream_id))
            result = self.on_stream(stream)
            if asyncio.iscoroutine(result):
                await result
        elif f.type == RST_STREAM:
            stream = self.streams.get(f.stream_id)
            if stream is not None:
                stream.local_closed = True
                stream._end()
        elif f.type == PING:
            if f.ping_id % 2 == 1:  # client pings are odd; ours would be even
                await self.send(Frame(PING, ping_id=f.ping_id))
        elif f.type == GOAWAY:
            return False
        return True  # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do

    async def close(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(ConnectionError):
            await self.send(Frame(GOAWAY, stream_id=self._last_id, status=0))
        self.closed = True
        with contextlib.suppress(ConnectionError):
            await self.pipe.close()
