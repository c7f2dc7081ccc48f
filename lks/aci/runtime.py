"""Container groups as local processes: each container's command runs as a real process (forked
by `lks.nodes.children.Spawner`, its output written as containerd writes logs by
`lks.nodes.containerlogs.Writer`, its mounts and network namespace entered by
`lks.nodes.namespaces.Setup`), restarted by the group's restart policy. As root a group gets a
network namespace of its own from a `lks.net.podnet.PodNetwork` (the ACI "VNet": one bridge per
subnet), and a Public group's ports are served on a loopback address of the host, relayed into
its namespace, as ACI's public IP is. Without root the processes share the host's network.

The runtime knows nothing of ARM: `lks.aci.groups` turns a group's document into a `GroupSpec`
and reads the states back; the virtual node can hand it specs made from pods the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lks.clock import iso8601
from lks.net import netns, podnet, relay
from lks.nodes import children, containerlogs, namespaces

log = logging.getLogger("lks.aci")

STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL when a group stops
MAX_BACKOFF = 10.0  # the longest wait before a container restarts


@dataclass(slots=True)
class ContainerSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)  # (host path, mount path, read-only)


@dataclass(slots=True)
class GroupSpec:
    key: str  # unique among the runtime's groups (a file and namespace name)
    name: str  # the hostname of its containers
    containers: list[ContainerSpec]
    restart_policy: str = "Always"
    subnet: tuple[str, str] | None = None  # (bridge name, CIDR) of the group's own namespace
    ip: str | None = None  # its address there
    public: tuple[str, list[int]] | None = None  # (host address, TCP ports) relayed into it


@dataclass(slots=True)
class ContainerState:
    spec: ContainerSpec
    restart_count: int = 0
    current: dict[str, Any] = field(default_factory=lambda: {"state": "Waiting", "detailStatus": ""})
    previous: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    proc: children.ChildProcess | None = None
    writer: containerlogs.Writer | None = None
    log_dir: Path | None = None


class Group:
    """One running group: its containers' states, what it is serving."""

    def __init__(self, spec: GroupSpec, directory: Path):
        self.spec = spec
        self.dir = directory
        self.containers = {c.name: ContainerState(c) for c in spec.containers}
        self.netns: str | None = None  # the path of its network namespace
        self.tasks: list[asyncio.Task[None]] = []
        self.servers: list[asyncio.AbstractServer] = []
        self.stopping = False
        self.changed = asyncio.Event()
        self.etc_hosts: str | None = None  # the group's /etc/hosts, mounted in its containers

    @property
    def state(self) -> str:
        """ACI's group state: Running while a container runs, else Succeeded or Failed."""
        states = [c.current for c in self.containers.values()]
        if any(s["state"] in ("Running", "Waiting") for s in states):
            return "Running"
        return "Succeeded" if all(s.get("exitCode") == 0 for s in states) else "Failed"


def _event(c: ContainerState, name: str, message: str, kind: str = "Normal") -> None:
    now = iso8601(time.time())
    for e in c.events:
        if e["name"] == name and e["message"] == message:
            e["count"] += 1
            e["lastTimestamp"] = now
            return
    c.events.append({"count": 1, "firstTimestamp": now, "lastTimestamp": now, "name": name, "message": message,
                     "type": kind})


class Runtime:
    def __init__(self, *, data_dir: Path, network: bool = True, now: Callable[[], float] = time.time,
                 on_end: Callable[[str], None] | None = None):
        """`on_end(key)`: a group's last container has exited for good (the restart policy let it)."""
        self.data_dir = data_dir
        self.on_end = on_end
        self.want_network = network
        self.now = now
        self.net: podnet.PodNetwork | None = None
        self._net_lock = asyncio.Lock()
        self.namespaces = namespaces.available()
        self._spawner = children.Spawner()
        self.groups: dict[str, Group] = {}

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._sweep()
        if self.want_network and namespaces.available() and netns.supported():
            # the network is made for the first group that needs one (a service with no groups
            # has no namespace); what a killed service left goes now
            await netns.run(lambda: [netns.remove(n) for n in podnet.leftovers(self.data_dir / "net")])

    async def _attach(self, g: Group, node: str, cidr: str, ip: str) -> None:
        """Wire the group into the network, made on first use (nothing where namespaces cannot be
        made); under the lock, so the last group leaving meanwhile does not close it under us."""
        async with self._net_lock:
            if self.net is None and self.want_network and namespaces.available():
                net = podnet.PodNetwork(data_dir=self.data_dir / "net")
                if await net.start():
                    self.net = net
            if self.net is not None:
                g.netns = netns.path(await self.net.add_pod(uid=g.spec.key, node=node, cidr=cidr, ip=ip))

    async def _drop_network(self) -> None:
        """The last group on the network is gone: so is the network."""
        async with self._net_lock:
            if self.net is not None and not any(g.netns is not None for g in self.groups.values()):
                net, self.net = self.net, None
                await net.close()

    def _sweep(self) -> None:
        """Kill what a service killed with -9 left: a container's processes died with it (their
        parent-death signal), not what they forked; each container's session is recorded."""
        for pid_file in (self.data_dir / "groups").glob("*/pids/*"):
            with contextlib.suppress(OSError):
                name = (pid_file.parent.parent / "name").read_text()
                children.sweep(pid_file, f"HOSTNAME={name}")
            with contextlib.suppress(OSError):
                pid_file.unlink()

    async def close(self) -> None:
        for key in list(self.groups):
            await self.stop(key, grace=0)
        if self.net is not None:
            await self.net.close()
        self._spawner.close()

    # -- groups ----------------------------------------------------------------------------

    async def run(self, spec: GroupSpec) -> Group:
        """Start the group's containers (after stopping what runs under its key)."""
        await self.stop(spec.key, grace=0)
        g = Group(spec, self.data_dir / "groups" / spec.key)
        self.groups[spec.key] = g
        (g.dir / "pids").mkdir(parents=True, exist_ok=True)
        (g.dir / "name").write_text(spec.name)
        if spec.subnet is not None and spec.ip is not None:
            await self._attach(g, spec.subnet[0], spec.subnet[1], spec.ip)
        if spec.public is not None and g.netns is not None:
            host, ports = spec.public
            for port in ports:
                g.servers.append(await asyncio.start_server(
                    lambda r, w, p=port: self._relay(g, p, r, w), host, port, reuse_address=True))
        if g.netns is not None and self.namespaces:
            g.etc_hosts = self._hosts(g)
        for c in g.containers.values():
            c.log_dir = g.dir / "logs" / c.spec.name
            g.tasks.append(asyncio.create_task(self._keep(g, c), name=f"aci {spec.key}/{c.spec.name}"))
        return g

    def _hosts(self, g: Group) -> str:
        """The group's /etc/hosts: its name resolves to its address without a DNS server (a
        program that looks its own name up, as `http.server` does, would wait for one)."""
        etc = g.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                   f"{g.spec.ip}\t{g.spec.name}\n")
        return str(etc / "hosts")

    async def stop(self, key: str, *, grace: float = STOP_GRACE) -> None:
        """Kill the group's processes (TERM, then KILL after `grace`) and free what it holds."""
        g = self.groups.pop(key, None)
        if g is None:
            return
        g.stopping = True
        for s in g.servers:
            s.close()
        procs = [c.proc for c in g.containers.values() if c.proc is not None and c.proc.returncode is None]
        for p in procs:
            _kill(p.pid, signal.SIGTERM)
        if procs and grace:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=grace)
        for p in procs:
            _kill(p.pid, signal.SIGKILL)
        for p in procs:
            await p.wait()
        for t in g.tasks:
            t.cancel()
        for t in g.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for c in g.containers.values():
            if c.current["state"] != "Terminated":
                c.current = {"state": "Terminated", "startTime": c.current.get("startTime"),
                             "finishTime": iso8601(self.now()), "exitCode": 137, "detailStatus": "Killed"}
            if c.writer is not None:
                c.writer.close()
        if self.net is not None and g.netns is not None:
            self.net.remove_pod(key)
            await self._drop_network()
        g.changed.set()

    def get(self, key: str) -> Group | None:
        return self.groups.get(key)

    def pids(self, key: str) -> list[int]:
        g = self.groups.get(key)
        return [c.proc.pid for c in g.containers.values() if c.proc is not None and c.proc.returncode is None] \
            if g else []

    # -- one container's life ------------------------------------------------------------------

    async def _keep(self, g: Group, c: ContainerState) -> None:
        """Run the container, again and again as the restart policy says."""
        failures = 0
        while not g.stopping:
            code = await self._once(g, c)
            if g.stopping:
                return
            policy = g.spec.restart_policy
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                if g.state != "Running" and self.on_end is not None:
                    self.on_end(g.spec.key)
                return
            failures = failures + 1 if code != 0 else 0
            c.previous = dict(c.current)
            c.restart_count += 1
            c.current = {"state": "Waiting", "detailStatus": "CrashLoopBackOff" if code else ""}
            g.changed.set()
            await asyncio.sleep(min(MAX_BACKOFF, 0.1 * 2 ** min(failures, 7)) if failures else 0.05)

    async def _once(self, g: Group, c: ContainerState) -> int:
        spec = c.spec
        assert c.log_dir is not None
        number = containerlogs.next_number(c.log_dir)
        c.writer = containerlogs.Writer(c.log_dir / f"{number}.log", now=self.now)
        containerlogs.drop_old(c.log_dir, number)
        setup = namespaces.Setup(hostname=g.spec.name, mounts=_mounts(g, spec), stage=str(g.dir / "stage"),
                                 namespaces=self.namespaces, netns=g.netns)
        io = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        started = iso8601(self.now())
        try:
            # HOSTNAME marks its processes for the sweep after a kill -9
            c.proc = await self._popen(spec.argv, {**spec.env, "HOSTNAME": g.spec.name}, setup, io)
            (g.dir / "pids" / spec.name).write_text(str(c.proc.pid))
        except OSError as err:
            c.writer.close()
            c.current = {"state": "Terminated", "startTime": started, "finishTime": started, "exitCode": 127,
                         "detailStatus": f"ContainerCannotRun: {spec.argv[0]}: {err.strerror or err}"}
            _event(c, "Failed", f"Error: failed to start container \"{spec.name}\": {err.strerror or err}", "Warning")
            g.changed.set()
            return 127
        _event(c, "Started", f"Started container {spec.name}")
        c.current = {"state": "Running", "startTime": started, "detailStatus": ""}
        g.changed.set()
        proc, writer = c.proc, c.writer
        pumps = [asyncio.ensure_future(_pump(proc.stdout, writer, "stdout")),
                 asyncio.ensure_future(_pump(proc.stderr, writer, "stderr"))]
        try:
            code = await proc.wait()
        finally:
            _kill(proc.pid, signal.SIGKILL)  # what it forked goes with it
            _, pending = await asyncio.wait(pumps, timeout=1.0)
            for p in pending:
                p.cancel()
            writer.close()
        exit_code = 128 - code if code < 0 else code
        c.current = {"state": "Terminated", "startTime": started, "finishTime": iso8601(self.now()),
                     "exitCode": exit_code, "detailStatus": "Completed" if exit_code == 0 else "Error"}
        if not g.stopping:
            _event(c, "Killing" if exit_code else "Completed", f"Container {spec.name} exited with code {exit_code}",
                   "Normal" if exit_code == 0 else "Warning")
        g.changed.set()
        return exit_code

    async def _popen(self, argv: list[str], env: dict[str, str], setup: namespaces.Setup,
                     io: dict[str, Any], cwd: str | None = None) -> children.ChildProcess:
        try:
            return await self._spawner.popen(argv, env=env, setup=setup, io=io, cwd=cwd)
        except subprocess.SubprocessError:
            if not setup.namespaces:
                raise OSError("the container's process could not be set up") from None
            log.warning("container groups get no mount namespaces here (unshare or mount failed)")
            self.namespaces = setup.namespaces = False
            return await self._spawner.popen(argv, env=env, setup=setup, io=io, cwd=cwd)

    # -- streams ---------------------------------------------------------------------------------

    def log_path(self, key: str, container: str) -> Path | None:
        """The current instance's log file of a container (of a stopped group too)."""
        d = self.data_dir / "groups" / key / "logs" / container
        n = containerlogs.next_number(d) - 1
        return d / f"{n}.log" if n >= 0 else None

    def live_writer(self, key: str, container: str) -> containerlogs.Writer | None:
        g = self.groups.get(key)
        c = g.containers.get(container) if g else None
        return c.writer if c is not None else None

    async def exec(self, key: str, container: str, argv: list[str]) -> tuple[children.ChildProcess, int]:
        """`argv` in the container's namespaces on a new terminal: the process and the
        terminal's master side (the caller closes it)."""
        g = self.groups[key]
        c = g.containers[container]
        master, slave = pty.openpty()
        setup = namespaces.Setup(hostname=g.spec.name, mounts=_mounts(g, c.spec), stage=str(g.dir / "stage-exec"),
                                 namespaces=self.namespaces, netns=g.netns, tty=True)
        try:
            proc = await self._popen(argv, dict(c.spec.env), setup, {"stdin": slave, "stdout": slave,
                                                                     "stderr": slave})
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return proc, master

    async def _relay(self, g: Group, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection to the group's public address, passed on into its namespace."""
        try:
            assert self.net is not None and g.spec.ip is not None
            up_r, up_w = await self.net.open_connection(g.spec.key, g.spec.ip, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(relay.pipe(reader, up_w), relay.pipe(up_r, writer), return_exceptions=True)
        for w in (up_w, writer):
            w.close()


def _mounts(g: Group, spec: ContainerSpec) -> list[tuple[str, str, bool]]:
    return [*spec.mounts, (g.etc_hosts, "/etc/hosts", False)] if g.etc_hosts else spec.mounts


async def _pump(reader: asyncio.StreamReader | None, writer: containerlogs.Writer, stream: str) -> None:
    if reader is None:
        return
    while data := await reader.read(65536):
        writer.feed(stream, data)


def _kill(pid: int, sig: int) -> None:
    """The process's whole session (it leads its own group): what it forked goes too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
