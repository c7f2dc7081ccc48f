"""Starting a container of the Process runtime (`lks.nodes.process`): its argv, environment and
working directory (`lks.nodes.images` for what the image would give, `lks.nodes.podenv` for
kubelet's variables), its volumes (`lks.nodes.podvolumes`), its process forked in a session of
its own (`lks.nodes.children`, set up by `lks.nodes.namespaces`), its probes
(`lks.nodes.probes`), and the watch that logs its output and records its exit.
`lks.nodes.termination` stops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pty
import secrets
import signal
import subprocess
from typing import TYPE_CHECKING, Any

from lks.controllers.events import WARNING
from lks.net import dnsconfig, podnet
from lks.nodes import children, containerlogs, images, namespaces, podenv, podvolumes, probes
from lks.nodes import runtime as runtimes
from lks.nodes.instances import NOT_FOUND, Instance, PodProcesses, exit_code
from lks.nodes.runtime import Container, CreateError, Sandbox

if TYPE_CHECKING:
    from lks.nodes.process import ProcessRuntime

log = logging.getLogger("lks.nodes.process")

Obj = dict[str, Any]


class Launcher:
    """The Process runtime's `start_container` and what it needs (a mixin of `ProcessRuntime`)."""

    async def start_container(self: ProcessRuntime, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool,
                              restart: bool) -> Container:
        st = self._pod(sandbox, pod)
        name = spec["name"]
        image = runtimes.normalize_image(spec.get("image") or "")
        self._images.setdefault(sandbox.node, set()).add(image)
        config = images.lookup(image)
        argv = images.argv(config, spec.get("command") or [], spec.get("args") or [])
        if not argv:
            raise CreateError("CreateContainerError",
                              f'the Process runtime needs a command: container "{name}" has none, and its image '
                              f'{spec.get("image") or ""!r} is not pulled, so its entrypoint is unknown')
        host_ip = self._host_ip(pod)
        if st.volumes is None:
            st.volumes = await podvolumes.materialize(
                self.cluster, pod, st.dir / "volumes", pod_ip=sandbox.ip, host_ip=host_ip,
                token=self.tokens.token, allocatable=None)
            self.tokens.keep_fresh(pod, st.volumes)
        env = await podenv.build(self.cluster, pod, spec, pod_ip=sandbox.ip, host_ip=host_ip,
                                 api=self.api.endpoint)
        # $(VAR) sees the container's variables only, as kubelet's expansion; the image's come after
        argv = [podenv.expand(a, env) for a in argv]
        try:
            argv = images.host_argv(config, argv, image_ref=spec.get("image") or "")
        except images.Unavailable as err:
            raise CreateError("CreateContainerError", str(err)) from None
        env = images.environment(config, env)
        mounts = self._mounts(st, spec)
        netns = await self._pod_network(st, sandbox, pod)
        if netns is not None and self.namespaces:
            mounts += self._dns_files(st, sandbox, pod)
        workdir = spec.get("workingDir") or None
        namespaced = self.namespaces
        if workdir is None and config is not None and config.workdir and (namespaced or os.path.isdir(config.workdir)):
            workdir = config.workdir  # without a mount namespace an image's WORKDIR the host lacks is skipped
        if not namespaced:
            for m in spec.get("volumeMounts") or ():
                path = st.volumes.get(m.get("name", ""))
                if path is not None:
                    env[f"LKS_VOLUME_{m['name'].upper().replace('-', '_')}"] = str(path)
            if workdir and not os.path.isdir(workdir):
                raise CreateError("CreateContainerError", f"workingDir {workdir} does not exist on the host "
                                  "(the Process runtime runs without a mount namespace here)")
        instances = st.instances.setdefault(name, [])
        number = instances[-1].number + 1 if instances else containerlogs.next_number(st.dir / "logs" / name)
        now = self.clock.now()
        c = Container(name=name, id=secrets.token_hex(32), image=image, image_id=runtimes.image_id(image),
                      created=now, started=now)
        writer = containerlogs.Writer(st.dir / "logs" / name / f"{number}.log", now=self.clock.now)
        containerlogs.drop_old(st.dir / "logs" / name, number)
        inst = Instance(st, spec, c, number, env, workdir, namespaced, writer)
        instances.append(inst)
        del instances[:-2]  # kubelet keeps the current and the previous instance
        setup = namespaces.Setup(hostname=pod["metadata"]["name"], mounts=mounts, stage=str(st.dir / "stage"),
                                 workdir=workdir, tty=bool(spec.get("tty")), namespaces=namespaced,
                                 netns=netns)
        try:
            await self._spawn(inst, argv, setup)
        except OSError as err:
            c.exits, c.exit_code, c.reason = now, NOT_FOUND, "StartError"
            c.message = (f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                         f"runc create failed: unable to start container process: exec: {argv[0]!r}: {_why(err)}")
            writer.close()
            inst.done.set()
            self.notify(st.namespace, st.name, [(WARNING, "Failed", f"Error: {c.message}")])
            return c
        self._by_id[c.id] = inst
        pids = st.dir / "pids"
        pids.mkdir(exist_ok=True)
        (pids / name).write_text(str(inst.pid))
        if any(k in spec for k in ("livenessProbe", "readinessProbe", "startupProbe")):
            prober = probes.Prober(self, inst)
            c.started_ok = False if "startupProbe" in spec else None
            c.ready = False if "readinessProbe" in spec else None
            inst.tasks.append(asyncio.create_task(prober.run(), name=f"probes {st.name}/{name}"))
        return c

    async def _pod_network(self: ProcessRuntime, st: PodProcesses, sandbox: Sandbox, pod: Obj) -> str | None:
        """The path of the pod's network namespace, made with its first container (None: the
        pod shares the host's network)."""
        ipam = self._ipam.get(sandbox.node)
        if not self.network or sandbox.host_network or ipam is None:
            return None
        known = self.net.pod_netns(sandbox.uid)
        try:
            name = await self.net.add_pod(uid=sandbox.uid, node=sandbox.node, cidr=str(ipam.network), ip=sandbox.ip)
            if name != known and self.api.port:  # the cluster's API on the pod's own 127.0.0.1
                sock = await self.net.listen(sandbox.uid, "127.0.0.1", self.api.port)
                if sock is not None:
                    await self.api.serve_in(sandbox.uid, sock)
                await self._relay_endpoint(sandbox.uid)
            await self.cluster_dns()
        except (OSError, IndexError) as err:  # NetlinkError is an OSError
            raise CreateError("CreateContainerError", f"failed to set up the pod's network: {err}") from None
        return podnet.netns.path(name)

    async def _relay_endpoint(self: ProcessRuntime, uid: str) -> None:
        """The cluster's public endpoint (a kubeconfig's server, on the host's loopback) on the
        pod's own loopback too, as an AKS cluster's FQDN is reachable from its pods."""
        host, port = self.cluster.api_endpoint
        if not port or port == self.api.port or host not in ("127.0.0.1", "0.0.0.0", "::", "", "localhost"):
            return
        sock = await self.net.listen(uid, "127.0.0.1", port)
        if sock is not None:
            await self.relays.add(uid, sock, ("127.0.0.1", port))

    def _dns_files(self: ProcessRuntime, st: PodProcesses, sandbox: Sandbox, pod: Obj) -> list[tuple[str, str, bool]]:
        """kubelet's /etc/resolv.conf and /etc/hosts for the pod, as bind mounts."""
        etc = st.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        resolv, hosts = etc / "resolv.conf", etc / "hosts"
        resolv.write_text(dnsconfig.resolv_conf(pod, dns_service_ip=self.cluster.dns_service_ip))
        hosts.write_text(dnsconfig.hosts(pod, pod_ip=sandbox.ip))
        return [(str(resolv), "/etc/resolv.conf", False), (str(hosts), "/etc/hosts", False)]

    def _host_ip(self: ProcessRuntime, pod: Obj) -> str:
        return self._host_ips.get(pod["metadata"]["uid"]) or (pod.get("status") or {}).get("hostIP") or ""

    def _mounts(self: ProcessRuntime, st: PodProcesses, spec: Obj) -> list[tuple[str, str, bool]]:
        out = []
        for m in spec.get("volumeMounts") or ():
            path = (st.volumes or {}).get(m.get("name", ""))
            if path is None or not m.get("mountPath"):
                continue
            sub = m.get("subPath") or ""
            if sub:
                path = path / sub
                if not path.exists():
                    path.mkdir(parents=True, exist_ok=True)
            out.append((str(path), m["mountPath"], bool(m.get("readOnly"))))
        return out

    async def _spawn(self: ProcessRuntime, inst: Instance, argv: list[str], setup: namespaces.Setup) -> None:
        spec = inst.spec
        tty = bool(spec.get("tty"))
        slave = None
        if tty:
            inst.master, slave = pty.openpty()
            io: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            io = {"stdin": subprocess.PIPE if spec.get("stdin") else subprocess.DEVNULL,
                  "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        try:
            try:
                inst.proc = await self._spawner.popen(argv, env=inst.env, setup=setup, io=io)
            except subprocess.SubprocessError:
                if not setup.namespaces:
                    raise OSError("the container's process could not be set up") from None
                log.warning("containers get no namespaces here (unshare or mount failed); see lks.nodes.process")
                self.namespaces = inst.namespaced = setup.namespaces = False
                inst.proc = await self._spawner.popen(argv, env=inst.env, setup=setup, io=io)
        except BaseException:
            if inst.master is not None:
                os.close(inst.master)
                inst.master = None
            raise
        finally:
            if slave is not None:
                os.close(slave)
        inst.tasks.append(asyncio.create_task(self._watch(inst), name=f"container {inst.container.name}"))

    async def spawn(self: ProcessRuntime, argv: list[str], *, env: dict[str, str], cwd: str | None, tty: bool,
                    io: dict[str, Any]) -> children.ChildProcess:
        """A process in its own session (exec'd commands, exec probes and hooks): dies with the
        service, and with `tty` takes the terminal on its standard input as its controlling one."""
        return await self._spawner.popen(argv, env=env, setup=namespaces.Setup(tty=tty), io=io, cwd=cwd)

    async def _pump(self: ProcessRuntime, inst: Instance, reader: asyncio.StreamReader, stream: str) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except OSError:  # a pty whose other side has closed (EIO)
                data = b""
            if not data:
                return
            inst.log.feed(stream, data)
            for session in list(inst.attached):
                session.feed(stream, data)

    async def _watch(self: ProcessRuntime, inst: Instance) -> None:
        """Log the container's output until its process exits; then record the exit."""
        proc = inst.proc
        assert proc is not None
        loop = asyncio.get_running_loop()
        pumps = []
        if inst.master is not None:
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                        os.fdopen(os.dup(inst.master), "rb", buffering=0))
            pumps.append(asyncio.ensure_future(self._pump(inst, reader, "stdout")))
        else:
            transport = None
            assert proc.stdout is not None and proc.stderr is not None
            pumps += [asyncio.ensure_future(self._pump(inst, proc.stdout, "stdout")),
                      asyncio.ensure_future(self._pump(inst, proc.stderr, "stderr"))]
        try:
            code = await proc.wait()
            inst.signal(signal.SIGKILL)  # what the container's init leaves behind goes with it
            _, pending = await asyncio.wait(pumps, timeout=1.0)
            for p in pending:
                p.cancel()
        finally:
            if transport is not None:
                transport.close()
            if inst.master is not None:
                os.close(inst.master)
                inst.master = None
            if proc.stdin is not None:
                proc.stdin.close()
        c = inst.container
        inst.log.close()
        c.exits, c.exit_code = self.clock.now(), exit_code(code)
        inst.done.set()
        for session in list(inst.attached):
            session.eof()
        for task in inst.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if inst.stopper is not None and inst.stopper is not asyncio.current_task():
            inst.stopper.cancel()
        self._by_id.pop(c.id, None)
        self.notify(inst.pod.namespace, inst.pod.name, [])



def _why(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "executable file not found in $PATH: unknown"
    if isinstance(err, PermissionError):
        return "permission denied: unknown"
    return f"{err.strerror or err}: unknown"

