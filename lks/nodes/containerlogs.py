"""Container logs as containerd's CRI plugin writes them (`/var/log/pods/<ns>_<pod>_<uid>/<c>/<n>.log`):
one entry per line of output, `<RFC3339Nano> <stdout|stderr> <F|P> <text>`, `P` marking a piece of
a line longer than 16 KiB (its last piece is `F`). The process runtime (`lks.nodes.process`)
writes one file per container instance through `Writer`; `read` is kubelet's side of
`/containerLogs` (`kubectl logs`): `sinceTime`/`sinceSeconds`, `tailLines`, `timestamps`,
`limitBytes` and `follow`, which `lks.nodes.kubelets` serves to the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from lks.nodes.streams import LogOptions

MAX_LINE = 16 * 1024  # containerd's maximum entry: longer lines are split into P entries
_CHUNK = 64 * 1024


def timestamp(ts: float) -> str:
    """RFC 3339 with nanoseconds, as containerd stamps each entry."""
    second = int(ts)
    nanos = int(round((ts - second) * 1e9))
    if nanos >= 1_000_000_000:
        second, nanos = second + 1, nanos - 1_000_000_000
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def parse_timestamp(text: str) -> float | None:
    try:
        head, _, frac = text.rstrip("Z").partition(".")
        base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
        return base + (int(frac.ljust(9, "0")[:9]) / 1e9 if frac else 0.0)
    except ValueError:
        return None


class Writer:
    """Writes one container instance's output; `changed` wakes followers."""

    def __init__(self, path: Path, *, now: Callable[[], float]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._now = now
        self._file = open(path, "ab")  # noqa: SIM115 - open while the container runs
        self.changed = asyncio.Event()
        self.closed = False
        self._rest: dict[str, bytes] = {}

    def feed(self, stream: str, data: bytes) -> None:
        """Output of `stream` (stdout | stderr); complete lines are written at once."""
        data = self._rest.pop(stream, b"") + data
        lines = data.split(b"\n")
        rest = lines.pop()
        out = []
        stamp = timestamp(self._now()).encode()
        for line in lines:
            out.extend(self._entries(stamp, stream, line))
        while len(rest) >= MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, stream.encode(), rest[:MAX_LINE]))
            rest = rest[MAX_LINE:]
        if rest:
            self._rest[stream] = rest
        self._write(out)

    def _entries(self, stamp: bytes, stream: str, line: bytes) -> list[bytes]:
        out = []
        while len(line) > MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, stream.encode(), line[:MAX_LINE]))
            line = line[MAX_LINE:]
        out.append(b"%s %s F %s\n" % (stamp, stream.encode(), line))
        return out

    def _write(self, entries: list[bytes]) -> None:
        if entries and not self.closed:
            self._file.write(b"".join(entries))
            self._file.flush()
            self.changed.set()

    def close(self) -> None:
        """The container exited: what is left of an unterminated line is written as a full one."""
        if self.closed:
            return
        stamp = timestamp(self._now()).encode()
        out = []
        for stream, rest in self._rest.items():
            out.extend(self._entries(stamp, stream, rest))
        self._rest.clear()
        self._write(out)
        self.closed = True
        self._file.close()
        self.changed.set()


def _entry(line: bytes) -> tuple[bytes, float | None, bytes, bool] | None:
    """(timestamp text, time, text, full) of one file line, None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, _stream, tag = parts[0], parts[1], parts[2]
    text = parts[3] if len(parts) == 4 else b""
    return stamp, parse_timestamp(stamp.decode(errors="replace")), text, tag != b"P"


class _Render:
    """Turns entries into what kubectl shows, with `timestamps` and `limitBytes`."""

    def __init__(self, opts: LogOptions, since: float | None):
        self.opts = opts
        self.since = since
        self.left = opts.limit_bytes

    def render(self, lines: list[bytes]) -> bytes:
        out = []
        for line in lines:
            e = _entry(line)
            if e is None:
                continue
            stamp, ts, text, full = e
            if self.since is not None and ts is not None and ts < self.since:
                continue
            if self.opts.timestamps:
                text = stamp + b" " + text
            out.append(text + b"\n" if full else text)
        data = b"".join(out)
        if self.left is not None:
            data, self.left = data[:self.left], self.left - min(len(data), self.left)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


def _tail(lines: list[bytes], n: int) -> list[bytes]:
    """The last `n` log lines (a line of several P entries counts once)."""
    if n <= 0:
        return []
    count, i = 0, len(lines)
    while i > 0:
        e = _entry(lines[i - 1])
        if e is not None and e[3]:
            if count == n:
                break
            count += 1
        i -= 1
    return lines[i:]


async def read(path: Path, opts: LogOptions, *, now: float, live: Writer | None = None) -> AsyncIterator[bytes]:
    """The log at `path` as kubectl shows it; with `opts.follow` and the `live` writer of a
    running container, new output as it comes, until the container exits."""
    since = opts.since_time
    if opts.since_seconds is not None:
        since = max(since or 0.0, now - opts.since_seconds)
    render = _Render(opts, since)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with f:
        data = f.read()
        lines = data.split(b"\n")
        rest = lines.pop()
        if opts.tail_lines is not None:
            lines = _tail(lines, opts.tail_lines)
        chunk = render.render(lines)
        if chunk:
            yield chunk
        if not opts.follow or live is None:
            return
        while not render.done:
            live.changed.clear()
            more = f.read(_CHUNK)
            if more:
                lines = (rest + more).split(b"\n")
                rest = lines.pop()
                chunk = render.render(lines)
                if chunk:
                    yield chunk
                continue
            if live.closed:
                return
            await live.changed.wait()


# -- a container's files, one per instance (0.log, 1.log ...) ---------------------------------


def next_number(d: Path) -> int:
    """The number of a container's next instance's file (after a restart of the service too)."""
    try:
        numbers = [int(p.stem) for p in d.glob("*.log") if p.stem.isdigit()]
    except OSError:
        return 0
    return max(numbers) + 1 if numbers else 0


def drop_old(d: Path, current: int) -> None:
    """Keep the current and the previous instance's files only, as kubelet does."""
    for p in d.glob("*.log"):
        if p.stem.isdigit() and int(p.stem) < current - 1:
            with contextlib.suppress(OSError):
                p.unlink()


def previous(d: Path, current: int | None) -> Path | None:
    """The previous instance's file: the last one before `current` (None: before the newest)."""
    numbers = sorted(int(p.stem) for p in d.glob("*.log") if p.stem.isdigit())
    if current is not None:
        numbers = [n for n in numbers if n < current]
    elif numbers:
        numbers = numbers[:-1]
    return d / f"{numbers[-1]}.log" if numbers else None
