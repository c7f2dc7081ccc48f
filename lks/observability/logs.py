"""Control-plane logs of the hosted clusters, as AKS's diagnostic categories, one folder per
cluster: `$LKS_HOME/clusters/<id>/logs/kube-apiserver.log` (one klog httplog line per request),
`kube-scheduler.log` and `kube-controller-manager.log` (the records of the scheduler's and the
controllers' Python loggers, in klog's format), each rotated by size as the audit log is
(`lks.kube.audit.sink`, whose batched writer they share). The audit log itself stays where
`lks.kube.audit` writes it (`clusters/<id>/audit.log`): `PATHS` names it `kube-audit`.

Controllers and the scheduler are shared code for every cluster, so their records are routed by
a context variable: `ControllerManager.start` runs inside `serving(cluster_id)`, and the tasks it
starts inherit it. One handler on their loggers writes to the process's `Logs` (the HTTP layer
makes it with `$LKS_HOME`); lines logged before it exists (clusters start first) wait for it in
a small buffer. Lines upstream writes at klog's -v=2 (a pod bound, a controller started) go
to loggers under `lks.controlplane`, which do not propagate to the service's own stderr.
`lks aks logs` reads the files through the management endpoint (`lks.arm.logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lks.kube.audit.sink import Sink

if TYPE_CHECKING:
    from aiohttp import web

APISERVER, SCHEDULER, CONTROLLER_MANAGER, AUDIT = (
    "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kube-audit")
COMPONENTS = (APISERVER, SCHEDULER, CONTROLLER_MANAGER, AUDIT)
MAX_BYTES = 50 * 1024 * 1024
BACKUPS = 5
PID = os.getpid()
_LEVELS = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E", logging.CRITICAL: "F"}
# the loggers whose records are a cluster's (the verbose ones do not propagate: named here too)
_ROUTED = ("lks.controllers", "lks.controlplane.kube-scheduler", "lks.controlplane.kube-controller-manager")

_CLUSTER: contextvars.ContextVar[str | None] = contextvars.ContextVar("lks_controlplane_cluster", default=None)
_PENDING_LINES = 5_000  # lines kept for the `Logs` to come, at most

scheduler_log = logging.getLogger("lks.controlplane.kube-scheduler")
controller_manager_log = logging.getLogger("lks.controlplane.kube-controller-manager")
for _verbose in (scheduler_log, controller_manager_log):  # klog -v=2: in the cluster's file only
    _verbose.setLevel(logging.INFO)
    _verbose.propagate = False


def path(home: Path, cluster_id: str, component: str) -> Path:
    """Where a component's current log file is (rotated ones add `.1` ... `.5`)."""
    folder = home / "clusters" / cluster_id
    return folder / "audit.log" if component == AUDIT else folder / "logs" / f"{component}.log"


@contextlib.contextmanager
def serving(cluster_id: str) -> Iterator[None]:
    """Records logged in here, and in tasks started here, are the cluster's."""
    token = _CLUSTER.set(cluster_id)
    try:
        yield
    finally:
        _CLUSTER.reset(token)


class Logs:
    """The control-plane log files of the clusters one process serves (`home` None: off); the
    latest made receives the controllers' and the scheduler's records."""

    def __init__(self, home: Path | None):
        self.home = home
        self._sinks: dict[tuple[str, str], Sink] = {}
        _reopen()
        _HANDLER.logs = self
        pending, _HANDLER.pending = _HANDLER.pending, None  # from now on, lines go straight to the files
        if pending and home is not None:
            try:
                asyncio.get_running_loop()  # the sinks batch on the loop
            except RuntimeError:
                return
            for cluster_id, component, line in pending:
                if (sink := self.sink(cluster_id, component)) is not None:
                    sink.write(line)

    def sink(self, cluster_id: str, component: str) -> Sink | None:
        if self.home is None:
            return None
        key = (cluster_id, component)
        found = self._sinks.get(key)
        if found is None:
            found = self._sinks[key] = Sink(path(self.home, cluster_id, component), max_bytes=MAX_BYTES,
                                            backups=BACKUPS)
        return found

    def request(self, cluster_id: str, request: web.Request, response: web.StreamResponse | None, verb: str,
                latency: float) -> None:
        """One kube-apiserver request, as upstream's httplog writes it."""
        sink = self.sink(cluster_id, APISERVER)
        if sink is None:
            return
        uri = request.raw_path.removeprefix(f"/clusters/{cluster_id}")  # as sent, as upstream's RequestURI
        peer = request.transport.get_extra_info("peername") if request.transport else None
        src = f"{peer[0]}:{peer[1]}" if peer else ""
        audit_id = response.headers.get("Audit-Id", "") if response is not None else ""
        status = response.status if response is not None else 0
        message = (f'"HTTP" verb="{verb}" URI={_quote(uri)} latency="{go_duration(latency)}" '
                   f'userAgent={_quote(request.headers.get("User-Agent", ""))} audit-ID="{audit_id}" '
                   f'srcIP="{src}" resp={status}')
        sink.write(klog_line("I", time.time(), "httplog.go", 134, message))

    async def close(self) -> None:
        """The service stops: the files get what is queued, and followed logs end (`closing`)."""
        closing().set()
        if _HANDLER.logs is self:
            _HANDLER.logs = None
        for sink in self._sinks.values():
            with contextlib.suppress(RuntimeError, OSError):
                await sink.drain()


_closing: asyncio.Event | None = None


def closing() -> asyncio.Event:
    """Set once the service stops serving: readers following a log end their answers then
    (the HTTP layer's shutdown waits for every answer to end)."""
    global _closing
    if _closing is None:
        _closing = asyncio.Event()
    return _closing


def _reopen() -> None:
    global _closing
    _closing = None


class _Handler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.logs: Logs | None = None
        self.pending: list[tuple[str, str, bytes]] | None = []  # before the first `Logs`

    def emit(self, record: logging.LogRecord) -> None:
        cluster_id = _CLUSTER.get()
        if cluster_id is None:
            return
        try:
            asyncio.get_running_loop()  # the sinks batch on the loop; records of other threads are not a cluster's
        except RuntimeError:
            return
        component = SCHEDULER if ".scheduler" in record.name or record.name.endswith(SCHEDULER) \
            else CONTROLLER_MANAGER
        sink = self.logs.sink(cluster_id, component) if self.logs is not None else None
        if sink is None and (self.pending is None or len(self.pending) >= _PENDING_LINES):
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logger's bug, not a reason to fail the caller
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)  # type: ignore[union-attr]
        source = record.filename.removesuffix(".py") + ".go" if record.name.startswith("lks.controlplane") \
            else record.filename
        line = klog_line(_LEVELS.get(record.levelno, "I"), record.created, source, record.lineno, message)
        if sink is not None:
            sink.write(line)
        elif self.pending is not None:
            self.pending.append((cluster_id, component, line))

    @staticmethod
    def formatException(exc_info) -> str:  # noqa: N802 (logging's name)
        return logging.Formatter().formatException(exc_info)


_HANDLER = _Handler()
for _name in _ROUTED:
    logging.getLogger(_name).addHandler(_HANDLER)


_second: list = [-1, ""]  # the last second klog_line formatted, and its text (one per second, not per line)


def klog_line(level: str, when: float, source: str, line: int, message: str) -> bytes:
    """`I1208 01:23:45.678901 1234567 file.go:123] message`, klog's header."""
    whole = int(when)
    if whole != _second[0]:
        t = time.gmtime(whole)
        _second[:] = [whole, f"{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"]
    micros = int((when - whole) * 1_000_000)
    return f"{level}{_second[1]}.{micros:06d} {PID:7d} {source}:{line}] {message}\n".encode()


def infos(message: str, **values: object) -> str:
    """klog's structured `InfoS` message: `"msg" key="value" ...`."""
    return " ".join([_quote(message), *(f"{k}={_quote(str(v))}" for k, v in values.items())])


def go_duration(seconds: float) -> str:
    """A duration as Go's `time.Duration.String` writes it (`1.5s`, `3.2ms`, `840µs`)."""
    if seconds >= 1:
        return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6f}".rstrip("0").rstrip(".") + "ms"
    return f"{seconds * 1e6:.3f}".rstrip("0").rstrip(".") + "µs"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
