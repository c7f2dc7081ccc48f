"""Kubelet's streaming side as an interface: what the API server's `pods/log`, `pods/exec`,
`pods/attach` and `pods/portforward` ask of the node a pod runs on.

The API server validates the request against the Pod (container names, pod phase, container
states) and then proxies to the node's `Kubelet`, found by `lookup(cluster id, node name)`.
Node agents register theirs on start and unregister on stop. Today every agent lives in the
service's process; the interface is small and byte-oriented so that a `Kubelet` can later be a
client of an agent on another host.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

Obj = dict[str, Any]


@dataclass(slots=True)
class LogOptions:
    """`PodLogOptions`, already validated; `since_time` in epoch seconds."""

    container: str
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


class StreamError(Exception):
    """The node refuses or cannot serve a stream; the API answers with this Status."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class Session(Protocol):
    """A process an exec or attach talks to. `stderr` is None with a TTY (merged into stdout)."""

    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (exec: the command's; attach: the container's, when it ends)."""
        ...

    async def close(self) -> None:
        """The client went away: an exec'd process is killed, an attach detaches."""
        ...


class Kubelet(Protocol):
    async def logs(self, pod: Obj, opts: LogOptions) -> AsyncIterator[bytes]:
        """The container's log (what kubelet's /containerLogs serves), in chunks; with
        `follow`, until the container ends or the caller stops iterating."""
        ...

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool, tty: bool) -> Session: ...

    async def attach(self, pod: Obj, container: str, *, stdin: bool, tty: bool) -> Session: ...

    async def port_forward(self, pod: Obj, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to `port` in the pod's network namespace."""
        ...


_kubelets: dict[tuple[str, str], Kubelet] = {}


def register(cluster_id: str, node: str, kubelet: Kubelet) -> None:
    _kubelets[(cluster_id, node)] = kubelet


def unregister(cluster_id: str, node: str, kubelet: Kubelet | None = None) -> None:
    """Forget the node's kubelet (only `kubelet`, when given: a newer agent may have replaced it)."""
    if kubelet is None or _kubelets.get((cluster_id, node)) is kubelet:
        _kubelets.pop((cluster_id, node), None)


def lookup(cluster_id: str, node: str) -> Kubelet | None:
    return _kubelets.get((cluster_id, node))
