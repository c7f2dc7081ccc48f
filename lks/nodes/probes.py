"""Kubelet's prober for the process runtime (`lks.nodes.process`): startup, liveness and
readiness probes (`exec`, `httpGet`, `tcpSocket`; `grpc` is checked as a TCP connection) with
`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `successThreshold` and
`failureThreshold`, every wait on the cluster's clock (`lks.clock`).

As upstream: liveness and readiness wait until the startup probe has succeeded; every failed
probe records an `Unhealthy` event (`Liveness probe failed: ...`); a liveness (or startup)
probe failing `failureThreshold` times in a row kills the container (`Killing`, "failed liveness
probe, will be restarted") and the pod worker restarts it per `restartPolicy`; readiness flips
the container's `ready`, which `lks.nodes.podstatus` turns into the Ready conditions. Probes without
a `host` go to the pod's IP from inside its network namespace (to 127.0.0.1 for a pod on the
host's network, `lks.nodes.process`); an exec probe runs in the container's
namespaces. `run_handler` also runs `preStop` hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lks.clock import Clock
from lks.controllers.events import WARNING

if TYPE_CHECKING:
    from lks.nodes.instances import Instance
    from lks.nodes.process import ProcessRuntime

Obj = dict[str, Any]
T = TypeVar("T")

_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE
USER_AGENT = "kube-probe/1.36"


class _Timeout(Exception):
    pass


async def _within(clock: Clock, seconds: float, aw: Awaitable[T]) -> T:
    """`aw`, or `_Timeout` after `seconds` of the clock."""
    task = asyncio.ensure_future(aw)
    sleep = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait([task, sleep], return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleep.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise _Timeout


def _port(inst: Instance, port: Any) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in inst.spec.get("ports") or ():
        if p.get("name") == port:
            return int(p.get("containerPort") or 0)
    return 0


async def run_handler(runtime: ProcessRuntime, inst: Instance, handler: Obj, *, timeout: float) -> tuple[bool, str]:
    """Run a probe or lifecycle handler: (succeeded, message)."""
    clock = runtime.clock
    if "exec" in handler:
        command = list((handler["exec"] or {}).get("command") or [])
        try:
            return await _exec(runtime, inst, command, timeout)
        except _Timeout:
            return False, f"command {' '.join(command)!r} timed out"
    if "httpGet" in handler:
        get = handler["httpGet"] or {}
        host = get.get("host") or runtime.probe_host(inst)
        port = _port(inst, get.get("port"))
        scheme = (get.get("scheme") or "HTTP").lower()
        path = get.get("path") or "/"
        url = f"{scheme}://{host}:{port}{path}"
        try:
            connect = functools.partial(runtime.open_connection, inst.pod.uid, host, port)
            code = await _within(clock, timeout, _http_get(connect, host, port, path, scheme == "https",
                                                           get.get("httpHeaders") or []))
        except _Timeout:
            return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        except OSError as err:
            return False, f'Get "{url}": dial tcp {host}:{port}: connect: {_reason(err)}'
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"
    if "tcpSocket" in handler or "grpc" in handler:
        sock = handler.get("tcpSocket") or handler.get("grpc") or {}
        host = sock.get("host") or runtime.probe_host(inst)
        port = _port(inst, sock.get("port"))
        try:
            _, writer = await _within(clock, timeout, runtime.open_connection(inst.pod.uid, host, port))
        except _Timeout:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        except OSError as err:
            return False, f"dial tcp {host}:{port}: connect: {_reason(err)}"
        writer.close()
        return True, ""
    return False, "unknown probe handler"


def _reason(err: OSError) -> str:
    return "connection refused" if isinstance(err, ConnectionRefusedError) else (err.strerror or str(err)).lower()


async def _exec(runtime: ProcessRuntime, inst: Instance, command: list[str], timeout: float) -> tuple[bool, str]:
    if not inst.running:
        return False, "container is not running"
    argv, cwd = runtime.command(inst, command)
    try:
        proc = await runtime.spawn(argv, env=inst.env, cwd=cwd, tty=False, io={
            "stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT})
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"exec: {command[0] if command else ''!r}: {getattr(err, 'strerror', None) or err}"

    async def run() -> bytes:
        assert proc.stdout is not None
        out = await proc.stdout.read()
        await proc.wait()
        return out

    try:
        out = await _within(runtime.clock, timeout, run())
    except _Timeout:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode == 0, out.decode(errors="replace").strip()


async def _http_get(connect: Callable[..., Awaitable[Any]], host: str, port: int, path: str, tls: bool,
                    headers: list[Obj]) -> int:
    reader, writer = await connect(ssl=_INSECURE if tls else None)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", f"User-Agent: {USER_AGENT}", "Accept: */*",
                 "Connection: close"]
        lines += [f"{h.get('name')}: {h.get('value')}" for h in headers if h.get("name")]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        parts = status.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError("malformed HTTP response")
        return int(parts[1])
    finally:
        writer.close()


class Prober:
    """The probes of one container instance, as one task."""

    def __init__(self, runtime: ProcessRuntime, inst: Instance):
        self.runtime = runtime
        self.inst = inst
        self.clock = runtime.clock

    async def run(self) -> None:
        spec = self.inst.spec
        if "startupProbe" in spec and not await self._worker(spec["startupProbe"], "startup"):
            return
        async with asyncio.TaskGroup() as tg:
            for kind in ("liveness", "readiness"):
                probe = spec.get(f"{kind}Probe")
                if probe:
                    tg.create_task(self._worker(probe, kind))

    async def _worker(self, probe: Obj, kind: str) -> bool:
        inst, c = self.inst, self.inst.container
        period = float(probe.get("periodSeconds") or 10)
        timeout = float(probe.get("timeoutSeconds") or 1)
        need_success = int(probe.get("successThreshold") or 1)
        need_failure = int(probe.get("failureThreshold") or 3)
        delay = c.started + float(probe.get("initialDelaySeconds") or 0) - self.clock.now()
        if delay > 0:
            await self.clock.sleep(delay)
        successes = failures = 0
        title = kind.capitalize()
        while inst.running and not c.stopping:
            ok, message = await run_handler(self.runtime, inst, probe, timeout=timeout)
            if not inst.running or c.stopping:
                return False
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                self.runtime.probe_event(inst, WARNING, "Unhealthy", f"{title} probe failed: {message}")
            if kind == "startup":
                if successes >= 1:
                    c.started_ok = True
                    self.runtime.probe_changed(inst)
                    return True
                if failures >= need_failure:
                    self.runtime.restart_unhealthy(inst, "startup")
                    return False
            elif kind == "liveness":
                if failures >= need_failure:
                    self.runtime.restart_unhealthy(inst, "liveness")
                    return False
            else:
                if successes >= need_success and c.ready is not True:
                    c.ready = True
                    self.runtime.probe_changed(inst)
                elif failures >= need_failure and c.ready is not False:
                    c.ready = False
                    self.runtime.probe_changed(inst)
            await self.clock.sleep(period)
        return False
