"""A test-only `lks.nodes.streams.Kubelet`: scripted logs, exec sessions that run a tiny
command language in-process, and port-forwards that dial a local TCP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from lks.nodes import streams


class FakeSession:
    """`cat` echoes stdin to stdout until stdin closes; `exit N` ends with N; `echo A B` prints;
    `err X` prints X on stderr; `sleep` waits until closed."""

    def __init__(self, command: list[str], tty: bool):
        self.stdout: asyncio.StreamReader = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self.command = command
        self.resizes: list[tuple[int, int]] = []
        self.closed = False
        self._stdin_closed = asyncio.Event()
        self._done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        verb = command[0] if command else "cat"
        if verb == "echo":
            self._end(0, out=(" ".join(command[1:]) + "\n").encode())
        elif verb == "exit":
            self._end(int(command[1]))
        elif verb == "err":
            self._end(1, err=(" ".join(command[1:]) + "\n").encode())

    def _end(self, code: int, out: bytes = b"", err: bytes = b"") -> None:
        if out:
            self.stdout.feed_data(out)
        if err:
            (self.stderr or self.stdout).feed_data(err)
        self.stdout.feed_eof()
        if self.stderr is not None:
            self.stderr.feed_eof()
        if not self._done.done():
            self._done.set_result(code)

    async def write_stdin(self, data: bytes) -> None:
        if self.command[:1] in (["cat"], []) and not self._done.done():
            self.stdout.feed_data(data)

    async def close_stdin(self) -> None:
        self._stdin_closed.set()
        if self.command[:1] in (["cat"], []):
            self._end(0)

    def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    async def wait(self) -> int:
        return await self._done

    async def close(self) -> None:
        self.closed = True
        self._end(137)


class FakeKubelet:
    def __init__(self, *, log_lines: list[bytes] | None = None, forward_to: int | None = None):
        self.log_lines = log_lines or []
        self.log_options: list[streams.LogOptions] = []
        self.follow_gate = asyncio.Event()  # a following log ends when set
        self.sessions: list[FakeSession] = []
        self.forward_to = forward_to
        self.forwarded: list[int] = []

    async def logs(self, pod: dict[str, Any], opts: streams.LogOptions) -> AsyncIterator[bytes]:
        self.log_options.append(opts)
        if opts.previous and pod["metadata"]["name"] == "refuse":
            raise streams.StreamError(400, "BadRequest", "no previous log")
        for line in self.log_lines:
            yield line
        if opts.follow:
            await self.follow_gate.wait()
            yield b"after follow\n"

    async def exec(self, pod: dict[str, Any], container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> FakeSession:
        if command[:1] == ["missing"]:
            raise streams.StreamError(500, "InternalError", 'exec: "missing": executable file not found in $PATH')
        s = FakeSession(command, tty)
        self.sessions.append(s)
        return s

    async def attach(self, pod: dict[str, Any], container: str, *, stdin: bool, tty: bool) -> FakeSession:
        s = FakeSession(["cat"], tty)
        self.sessions.append(s)
        return s

    async def port_forward(self, pod: dict[str, Any], port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.forwarded.append(port)
        if self.forward_to is None or port == 1:
            raise streams.StreamError(500, "InternalError", f"dial tcp4 127.0.0.1:{port}: connect: connection refused")
        return await asyncio.open_connection("127.0.0.1", self.forward_to)
