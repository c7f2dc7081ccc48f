"""The records of the Process runtime (`lks.nodes.process`): one `Instance` per run of a
container (its process, log writer, attach sessions, stop state) and one `PodProcesses` per pod
(its directory, sandbox, volumes, and each container's current and previous instance), with the
exit codes containerd reports. `lks.nodes.launch` fills them, `lks.nodes.termination` ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lks.nodes import children, containerlogs
from lks.nodes.runtime import Container, Sandbox

Obj = dict[str, Any]

NOT_FOUND = 128  # what containerd reports for a container whose command could not be run
RESTARTED = 255  # ... and for one that was running when the node went away


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


@dataclass(eq=False)
class Instance:
    """One container instance's process and what serves it (logs, attach, probes)."""

    pod: PodProcesses
    spec: Obj
    container: Container
    number: int  # the instance's log file number
    env: dict[str, str]
    workdir: str | None
    namespaced: bool
    log: containerlogs.Writer
    proc: children.ChildProcess | None = None
    master: int | None = None  # the pty, for `tty: true`
    attached: list[Any] = field(default_factory=list)  # `lks.nodes.kubelets.AttachSession`s
    done: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    stopper: asyncio.Task[None] | None = None
    deadline: float | None = None  # SIGKILL is due then
    termed: bool = False  # preStop and SIGTERM done

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def signal(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    @property
    def running(self) -> bool:
        return self.proc is not None and not self.done.is_set()


@dataclass(eq=False)
class PodProcesses:
    uid: str
    namespace: str
    name: str
    node: str
    dir: Path
    sandbox: Sandbox
    grace: float = 30.0  # terminationGracePeriodSeconds
    volumes: dict[str, Path] | None = None
    instances: dict[str, list[Instance]] = field(default_factory=dict)  # by container: previous, current

    def current(self, container: str) -> Instance | None:
        found = self.instances.get(container)
        return found[-1] if found else None


def all_instances(st: PodProcesses) -> list[Instance]:
    return [i for found in st.instances.values() for i in found]
