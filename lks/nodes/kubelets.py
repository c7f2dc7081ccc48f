"""The streaming side of the node agents (kubelet's `/containerLogs`, `/exec`, `/attach`,
`/portForward`): the `lks.nodes.streams.Kubelet` that each agent registers for its node, and
that the API server's `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` proxy to.

Simulated nodes run no processes: their logs are empty, and exec, attach and port-forward are
refused. Process nodes (`lks.nodes.process`) serve the containers' CRI log files
(`lks.nodes.containerlogs`), run exec'd commands in the container's context (its environment,
working directory and namespaces, through `nsenter`), attach to the container's own stdin and
output, and forward ports to 127.0.0.1 in the pod's network namespace (the host's for pods
without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from lks.nodes import children, containerlogs, instances, process
from lks.nodes.streams import LogOptions, StreamError

Obj = dict[str, Any]

TTY_SIZE_WAIT = 0.25  # seconds an exec on a TTY waits for the client's terminal size before it starts
_SIMULATED = "the node runs the simulated runtime, which runs no processes"


def _set_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class SimulatedKubelet:
    """A simulated node's kubelet: empty logs, no streams."""

    async def logs(self, pod: Obj, opts: LogOptions) -> AsyncIterator[bytes]:
        return
        yield b""  # an async generator that yields nothing

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool, tty: bool) -> Any:
        raise StreamError(400, "BadRequest", f"cannot exec in container {container!r}: {_SIMULATED}")

    async def attach(self, pod: Obj, container: str, *, stdin: bool, tty: bool) -> Any:
        raise StreamError(400, "BadRequest", f"cannot attach to container {container!r}: {_SIMULATED}")

    async def port_forward(self, pod: Obj, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise StreamError(400, "BadRequest", f"cannot forward port {port}: {_SIMULATED}")


class ExecSession:
    """A command exec'd in a container, without a TTY: stdout and stderr apart."""

    def __init__(self, proc: children.ChildProcess):
        self._proc = proc
        self.stdout: asyncio.StreamReader | None = proc.stdout
        self.stderr: asyncio.StreamReader | None = proc.stderr

    async def write_stdin(self, data: bytes) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        pass  # no terminal

    async def wait(self) -> int:
        return instances.exit_code(await self._proc.wait())

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()


class TTYExecSession:
    """A command exec'd on a pty (its output is the terminal's, no stderr). It starts once the
    client has sent its terminal size (kubectl does at once), or after `TTY_SIZE_WAIT`, so that
    the command sees the right size from the start."""

    def __init__(self, spawn: Callable[[int], Awaitable[children.ChildProcess]], *, master: int, slave: int,
                 stdout: asyncio.StreamReader, transport: Any):
        self._spawn = spawn
        self._master: int | None = master
        self._slave = slave
        self._transport = transport
        self.stdout: asyncio.StreamReader | None = stdout
        self.stderr: asyncio.StreamReader | None = None
        self._sized = asyncio.Event()
        self._proc: children.ChildProcess | None = None
        self._failed = 0
        self._task = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._sized.wait(), TTY_SIZE_WAIT)
        try:
            self._proc = await self._spawn(self._slave)
        except (OSError, subprocess.SubprocessError) as err:  # as a runtime's exec failure reads on the terminal
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            with contextlib.suppress(OSError):
                os.write(self._slave, f"exec failed: {why}\r\n".encode())
            self._failed = 126 if isinstance(err, PermissionError) else 127
        finally:
            os.close(self._slave)

    async def write_stdin(self, data: bytes) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                await asyncio.get_running_loop().run_in_executor(None, os.write, self._master, data)

    async def close_stdin(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # ^D: end of input on a terminal

    def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                _set_size(self._master, width, height)
        self._sized.set()

    async def wait(self) -> int:
        await asyncio.shield(self._task)
        if self._proc is None:
            code = self._failed
        else:
            code = instances.exit_code(await self._proc.wait())
        await asyncio.sleep(0.05)  # let the last output through the pty before it closes
        self._release()
        return code

    async def close(self) -> None:
        if not self._task.done():
            self._sized.set()
            with contextlib.suppress(Exception):
                await self._task
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()
        self._release()

    def _release(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None


class AttachSession:
    """Attached to a running container: its output from now on, and its stdin."""

    def __init__(self, inst: instances.Instance, *, stdin: bool):
        self._inst = inst
        self._stdin = stdin
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        tty = inst.master is not None
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()

    def feed(self, stream: str, data: bytes) -> None:
        reader = self.stderr if stream == "stderr" and self.stderr is not None else self.stdout
        if reader is not None:
            reader.feed_data(data)

    def eof(self) -> None:
        for reader in (self.stdout, self.stderr):
            if reader is not None:
                reader.feed_eof()

    async def write_stdin(self, data: bytes) -> None:
        inst = self._inst
        if not self._stdin or not inst.running:
            return
        if inst.master is not None:
            with contextlib.suppress(OSError):
                os.write(inst.master, data)
        elif inst.proc is not None and inst.proc.stdin is not None:
            inst.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await inst.proc.stdin.drain()

    async def close_stdin(self) -> None:
        """`stdinOnce`: the container's stdin closes when the first attach ends."""
        inst = self._inst
        if inst.spec.get("stdinOnce") and inst.proc is not None and inst.proc.stdin is not None:
            inst.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._inst.master is not None:
            with contextlib.suppress(OSError):
                _set_size(self._inst.master, width, height)

    async def wait(self) -> int:
        await self._inst.done.wait()
        return self._inst.container.exit_code

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self._inst.attached.remove(self)
        self.eof()


class ProcessKubelet:
    """A Process node's kubelet."""

    def __init__(self, runtime: process.ProcessRuntime, node: str):
        self.runtime = runtime
        self.node = node

    def _instance(self, pod: Obj, container: str) -> instances.Instance:
        st = self.runtime.find(pod["metadata"]["uid"])
        inst = st.current(container) if st is not None else None
        if inst is None or not inst.running:
            raise StreamError(400, "BadRequest", f'container "{container}" in pod "{pod["metadata"]["name"]}" is '
                                                 "not running")
        return inst

    async def logs(self, pod: Obj, opts: LogOptions) -> AsyncIterator[bytes]:
        meta = pod["metadata"]
        d = self.runtime.pod_dir(meta["uid"]) / "logs" / opts.container
        st = self.runtime.find(meta["uid"])
        cur = st.current(opts.container) if st is not None else None
        if opts.previous:
            path = containerlogs.previous(d, cur.number if cur is not None else None)
            if path is None:
                raise StreamError(400, "BadRequest", f'previous terminated container "{opts.container}" in pod '
                                                     f'"{meta["name"]}" not found')
            live = None
        else:
            if cur is not None:
                path, live = cur.log.path, cur.log
            else:
                numbers = sorted(int(p.stem) for p in d.glob("*.log") if p.stem.isdigit())
                if not numbers:
                    return
                path, live = d / f"{numbers[-1]}.log", None
        async for chunk in containerlogs.read(path, opts, now=self.runtime.clock.now(), live=live):
            yield chunk

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> ExecSession | TTYExecSession:
        inst = self._instance(pod, container)
        argv, cwd = self.runtime.command(inst, command)
        loop = asyncio.get_running_loop()
        if tty:
            master, slave = pty.openpty()
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(lambda: _PtyProtocol(reader),
                                                        os.fdopen(os.dup(master), "rb", buffering=0))

            def spawn(fd: int) -> Awaitable[children.ChildProcess]:
                return self.runtime.spawn(argv, env=inst.env, cwd=cwd, tty=True,
                                          io={"stdin": fd, "stdout": fd, "stderr": fd})

            return TTYExecSession(spawn, master=master, slave=slave, stdout=reader, transport=transport)
        try:
            proc = await self.runtime.spawn(argv, env=inst.env, cwd=cwd, tty=False, io={
                "stdin": subprocess.PIPE if stdin else subprocess.DEVNULL,
                "stdout": subprocess.PIPE, "stderr": subprocess.PIPE})
        except (OSError, subprocess.SubprocessError) as err:
            raise _exec_failed(command, err) from None
        return ExecSession(proc)

    async def attach(self, pod: Obj, container: str, *, stdin: bool, tty: bool) -> AttachSession:
        inst = self._instance(pod, container)
        session = AttachSession(inst, stdin=stdin and bool(inst.spec.get("stdin")))
        inst.attached.append(session)
        return session

    async def port_forward(self, pod: Obj, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await self.runtime.open_connection(pod["metadata"].get("uid") or "", "127.0.0.1", port)
        except OSError as err:
            raise StreamError(500, "InternalError", f"error forwarding port {port} to pod "
                                                    f"{pod['metadata'].get('uid')}: failed to connect to "
                                                    f"localhost:{port}: {err.strerror or err}") from None


class _PtyProtocol(asyncio.StreamReaderProtocol):
    """A pty's master reads EIO once the other side has closed: that is the end of output."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(None if isinstance(exc, OSError) else exc)


def _exec_failed(command: list[str], err: Exception) -> StreamError:
    why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return StreamError(500, "InternalError", f"command '{' '.join(command)}' failed: exec: "
                                             f"{command[0] if command else ''!r}: {why}")
