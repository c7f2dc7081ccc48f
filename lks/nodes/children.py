"""The processes of the process runtime (`lks.nodes.process`): forked on a few spawner threads
so that the event loop never waits while a child sets itself up (namespaces, mounts) between
fork and exec, and watched through a pidfd, so no thread waits for an exit either. Also what is
left of a process group from before a restart of the service (`sweep`).

The loop's own subprocess support is not used for them: uvloop (which `lks up` runs on) calls a
`preexec_fn` before the child has its new session and standard descriptors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPAWNERS = 4  # threads that fork processes
CONTAINER_UMASK = 0o022  # a container runtime's; the service itself runs with 077 (`lks.homedir`)


class Spawner:
    """Forks and execs on its own threads. They live as long as the spawner: a child set up with
    `PR_SET_PDEATHSIG` is tied to the thread that forked it, not to the process."""

    def __init__(self, *, threads: int = SPAWNERS):
        self._threads = threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def popen(self, argv: list[str], *, env: dict[str, str], setup: Callable[[], None],
                    io: dict[str, Any], cwd: str | None = None) -> ChildProcess:
        """`argv` in a new session, `setup` run in the child before exec; `io` holds the
        `stdin`/`stdout`/`stderr` arguments of `subprocess.Popen`."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self._threads,
                                                               thread_name_prefix="lks-spawn")
        loop = asyncio.get_running_loop()

        def child_setup() -> None:
            os.umask(CONTAINER_UMASK)
            setup()

        popen = await loop.run_in_executor(self._pool, functools.partial(
            subprocess.Popen, argv, env=env, cwd=cwd, preexec_fn=child_setup, start_new_session=True, **io))
        return await ChildProcess.wrap(popen)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class ChildProcess:
    """A process spawned off the loop: its pipes as streams, its exit through a pidfd."""

    def __init__(self, popen: subprocess.Popen[bytes]):
        self._popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @classmethod
    async def wrap(cls, popen: subprocess.Popen[bytes]) -> ChildProcess:
        self = cls(popen)
        loop = asyncio.get_running_loop()
        for name in ("stdout", "stderr"):
            pipe = getattr(popen, name)
            if pipe is not None:
                reader = asyncio.StreamReader()
                await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r), pipe)
                setattr(self, name, reader)
        if popen.stdin is not None:
            transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, popen.stdin)
            self.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        try:
            fd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # before Linux 5.3: a thread waits
            fut = loop.run_in_executor(None, popen.wait)
            fut.add_done_callback(lambda f: self._exit(f.result()))
            return self

        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._exit(popen.wait())

        loop.add_reader(fd, ready)
        return self

    def _exit(self, code: int) -> None:
        self.returncode = code
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


def sweep(pid_file: Path, mark: str) -> None:
    """Kill what is left of a process group recorded in `pid_file` before the service restarted
    (its leader died with the service; what it forked may not have): the processes of that
    group whose environment holds `mark` (`NAME=value`), so a reused id is left alone."""
    try:
        pgid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    want = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            if want in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError):
            continue
