"""The `Process` workload runtime: each container of a pod on a node of a `workloadRuntime:
Process` pool runs its `command` + `args` as a real process on the host, driven by the pod
workers (`lks.nodes.pods`) through the `Runtime` interface of `lks.nodes.runtime`.

What a container gets, and where it differs from a container on AKS:

- The image is not pulled: it is reported as given, normalized the way containerd reports it
  (`busybox` → `docker.io/library/busybox:latest`, with a stable made-up `imageID`), and the
  command runs from the host's filesystem. The common public images' configuration
  (`lks.nodes.images`: ENTRYPOINT, CMD, WORKDIR, ENV, their programs found on the host) applies
  Kubernetes' `command`/`args` rules; a container of another image without `command` cannot
  start (its entrypoint is unknown): it waits with `CreateContainerError` and a Warning event.
  A command that is not found ends the container at once with exit code 128, `StartError`.
- The process runs in a session (process group) of its own, so stopping a container signals
  its whole tree: `preStop`, SIGTERM, the grace period, then SIGKILL, as kubelet. When the
  container's main process exits, what is left of its group is killed (a container ends with
  its init process). No process outlives the service: the node agents stop theirs on shutdown
  (SIGTERM, 2 s, SIGKILL); if the service is killed, each container's main process dies with
  it (`PR_SET_PDEATHSIG`) and what it forked is killed when the service starts again
  (`lks.nodes.children.sweep`). After a restart the pods of Process nodes start their
  containers again (restartCount + 1, lastState `Unknown`, exit code 255), as after a reboot.
  Processes are forked off the event loop (`lks.nodes.children`).
- Environment: as kubelet builds it (`lks.nodes.podenv`); `KUBERNETES_SERVICE_HOST`/`PORT` and
  the service account token reach the cluster's API for real (`lks.nodes.apiaccess`).
- Isolation, when the service runs as root: a UTS namespace (hostname = pod name) and a mount
  namespace in which the pod's volumes (`lks.nodes.podvolumes`, files under the cluster's data
  directory) are bind-mounted at their `mountPath` (`lks.nodes.namespaces`). Processes share
  the host's network, PID and IPC namespaces, users and filesystem (no cgroup limits, no
  seccomp, no user namespace). Without root there are no namespaces: the hostname is the
  host's (`HOSTNAME` is still the pod name), nothing is mounted, each mounted volume's
  directory is given as `LKS_VOLUME_<VOLUME NAME>` (upper case, `-` as `_`), and a missing
  `workingDir` fails the container (`CreateContainerError`).
- Network: processes share the host's network namespace, so a server listening on port 8080
  listens on the host's 8080 and two pods cannot use the same port; the pod still gets an IP
  from the node's pod CIDR for Services and Endpoints, which nothing routes. Port-forward and
  probes go to 127.0.0.1.
- Output goes to per-container log files in the CRI format (`lks.nodes.containerlogs`; the
  current and the previous instance's, not rotated by size); `lks.nodes.kubelets` serves them,
  exec, attach (`stdin`, `tty`) and port-forward to the API server. The files go when the pod
  is deleted.
- Probes (exec, httpGet, tcpSocket) run on the cluster's clock (`lks.nodes.probes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pty
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lks.controllers.events import NORMAL, WARNING
from lks.kube.cluster import Cluster
from lks.nodes import apiaccess, children, containerlogs, images, namespaces, podenv, podvolumes, probes
from lks.nodes import runtime as runtimes
from lks.nodes.runtime import Container, CreateError, Sandbox

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Notify = Callable[[str, str, list[tuple[str, str, str]]], None]  # (namespace, name, events)

STOP_NODE_GRACE = 2.0  # seconds the processes of a stopping node get between SIGTERM and SIGKILL
NOT_FOUND = 128  # what containerd reports for a container whose command could not be run
RESTARTED = 255  # ... and for one that was running when the node went away


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


@dataclass(eq=False)
class Instance:
    """One container instance's process and what serves it (logs, attach, probes)."""

    pod: _Pod
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
class _Pod:
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


class ProcessRuntime(runtimes.SimulatedRuntime):
    """Sandboxes (pod IPs) as the simulated runtime has them, containers as host processes."""

    def __init__(self, *, cluster: Cluster, data_dir: Path | None = None, tls: ssl.SSLContext | None = None,
                 notify: Notify | None = None):
        super().__init__(clock=cluster.clock)
        self.cluster = cluster
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"lks-{cluster.id}-"))
        self.notify: Notify = notify or (lambda _ns, _name, _events: None)
        self.api = apiaccess.APIAccess(cluster, tls=tls)
        self.namespaces = namespaces.available()
        self._pods: dict[str, _Pod] = {}  # by uid
        self._by_id: dict[str, Instance] = {}  # by container id
        self._spawner = children.Spawner()
        self._host_ips: dict[str, str] = {}  # pod uid -> its node's IP
        self.started = False

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.api.start()
        self.started = True

    async def close(self) -> None:
        for node in {p.node for p in self._pods.values()}:
            await self.stop_node(node)
        await self.api.stop()
        self.started = False
        self._spawner.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- pods ----------------------------------------------------------------------------

    def pod_dir(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid

    def _pod(self, sandbox: Sandbox, pod: Obj) -> _Pod:
        st = self._pods.get(sandbox.uid)
        if st is None or st.sandbox is not sandbox:
            meta = pod["metadata"]
            old = st
            grace = pod["spec"].get("terminationGracePeriodSeconds")
            st = self._pods[sandbox.uid] = _Pod(sandbox.uid, meta["namespace"], meta["name"], sandbox.node,
                                               self.pod_dir(sandbox.uid), sandbox,
                                               float(grace) if grace is not None else 30.0)
            if old is not None:
                st.instances = old.instances
        return st

    def find(self, uid: str) -> _Pod | None:
        return self._pods.get(uid)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        st = self._pods.get(sandbox.uid)
        if st is not None:
            await self._kill_pod(st)
        await super().remove_sandbox(sandbox)

    def purge(self, uid: str) -> None:
        """The pod is gone from the API: its processes (if any), logs and volumes go."""
        st = self._pods.pop(uid, None)
        self._host_ips.pop(uid, None)
        if st is not None:
            for inst in _all(st):
                inst.signal(signal.SIGKILL)
                self._by_id.pop(inst.container.id, None)
        self.api.forget(uid)
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    async def _kill_pod(self, st: _Pod) -> None:
        live = [i for i in _all(st) if i.running]
        for inst in live:
            inst.signal(signal.SIGKILL)
        for inst in live:
            await inst.done.wait()

    def forget_node(self, node: str) -> None:
        for uid, st in list(self._pods.items()):
            if st.node == node:
                for inst in _all(st):
                    inst.signal(signal.SIGKILL)
                    for task in inst.tasks:
                        task.cancel()
                    self._by_id.pop(inst.container.id, None)
                del self._pods[uid]
                self._host_ips.pop(uid, None)
        super().forget_node(node)

    async def stop_node(self, node: str, *, grace: float = STOP_NODE_GRACE) -> None:
        """The node's agent stops (the service shuts down): SIGTERM, then SIGKILL after `grace`
        seconds (real ones), and wait until every process has gone."""
        live = [i for st in self._pods.values() if st.node == node for i in _all(st) if i.running]
        for inst in live:
            inst.signal(signal.SIGTERM)
        if live:
            waits = [asyncio.ensure_future(i.done.wait()) for i in live]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for w in pending:
                w.cancel()
            for inst in live:
                if not inst.done.is_set():
                    inst.signal(signal.SIGKILL)
            for inst in live:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(inst.done.wait(), 5.0)

    # -- containers ----------------------------------------------------------------------

    def adopt_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool, container_id: str,
                        image: str, image_id: str, started: float) -> Container:
        """A container the stored status shows running: its process went with the service,
        so it counts as exited (and restarts, as after a node reboot)."""
        now = self.clock.now()
        children.sweep(self.pod_dir(sandbox.uid) / "pids" / spec["name"], f"HOSTNAME={pod['metadata']['name']}")
        return Container(name=spec["name"], id=container_id, image=image, image_id=image_id, created=started,
                         started=started, exits=now, exit_code=RESTARTED, reason="Unknown")

    def sweep(self, known: set[str]) -> None:
        """Remove the directories of pods that are gone (deleted while the service was down)."""
        root = self.data_dir / "pods"
        if root.is_dir():
            for d in root.iterdir():
                if d.name not in known:
                    shutil.rmtree(d, ignore_errors=True)

    async def start_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool,
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
                token=self._token, allocatable=None)
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
                                 workdir=workdir, tty=bool(spec.get("tty")), namespaces=namespaced)
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

    def _host_ip(self, pod: Obj) -> str:
        return self._host_ips.get(pod["metadata"]["uid"]) or (pod.get("status") or {}).get("hostIP") or ""

    async def run_sandbox(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox:
        sandbox = await super().run_sandbox(pod, node=node, pod_cidr=pod_cidr, host_ip=host_ip)
        self._host_ips[sandbox.uid] = host_ip
        return sandbox

    def adopt(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox | None:
        sandbox = super().adopt(pod, node=node, pod_cidr=pod_cidr, host_ip=host_ip)
        if sandbox is not None:
            self._host_ips[sandbox.uid] = host_ip
        return sandbox

    async def _token(self, pod: Obj, source: Obj) -> str:
        return self.api.token(pod, audience=source.get("audience"))

    def _mounts(self, st: _Pod, spec: Obj) -> list[tuple[str, str, bool]]:
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

    async def _spawn(self, inst: Instance, argv: list[str], setup: namespaces.Setup) -> None:
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

    async def spawn(self, argv: list[str], *, env: dict[str, str], cwd: str | None, tty: bool,
                    io: dict[str, Any]) -> children.ChildProcess:
        """A process in its own session (exec'd commands, exec probes and hooks): dies with the
        service, and with `tty` takes the terminal on its standard input as its controlling one."""
        return await self._spawner.popen(argv, env=env, setup=namespaces.Setup(tty=tty), io=io, cwd=cwd)

    async def _pump(self, inst: Instance, reader: asyncio.StreamReader, stream: str) -> None:
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

    async def _watch(self, inst: Instance) -> None:
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

    # -- stopping ------------------------------------------------------------------------

    async def stop_containers(self, sandbox: Sandbox, pod: Obj, containers: list[Container], *,
                              grace: float) -> None:
        now = self.clock.now()
        for c in containers:
            inst = self._by_id.get(c.id)
            if inst is None or not inst.running:
                if not c.exited(now) and inst is None:  # nothing runs it any more
                    c.exits, c.exit_code = now, runtimes.KILLED
                continue
            if c.stopping:
                if inst.deadline is not None and now + grace < inst.deadline:
                    self.kill(inst, grace=grace)
                continue
            c.stopping = True
            self.kill(inst, grace=grace)

    def kill(self, inst: Instance, *, grace: float) -> None:
        """Stop one container (preStop, SIGTERM, SIGKILL after `grace`), in the background."""
        inst.container.stopping = True
        inst.deadline = self.clock.now() + grace
        if inst.stopper is not None:
            inst.stopper.cancel()
        inst.stopper = asyncio.create_task(self._stop(inst, grace), name=f"stop {inst.container.name}")

    async def _stop(self, inst: Instance, grace: float) -> None:
        if not inst.termed:
            inst.termed = True
            hook = ((inst.spec.get("lifecycle") or {}).get("preStop"))
            if hook:
                await self._pre_stop(inst, hook, grace)
            inst.signal(signal.SIGTERM)
        assert inst.deadline is not None
        left = inst.deadline - self.clock.now()
        if left > 0:
            sleep = asyncio.ensure_future(self.clock.sleep(left))
            done = asyncio.ensure_future(inst.done.wait())
            try:
                await asyncio.wait([sleep, done], return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleep.cancel()
                done.cancel()
        if not inst.done.is_set():
            inst.signal(signal.SIGKILL)

    async def _pre_stop(self, inst: Instance, hook: Obj, grace: float) -> None:
        ok, message = await probes.run_handler(self, inst, hook, timeout=grace)
        if not ok:
            kind = "Exec" if "exec" in hook else "HTTP"
            self.notify(inst.pod.namespace, inst.pod.name, [
                (WARNING, "FailedPreStopHook", f"{kind} lifecycle hook ({_hook_text(hook)}) for Container "
                                              f'"{inst.container.name}" in Pod "{inst.pod.name}_{inst.pod.namespace}'
                                              f'({inst.pod.uid})" failed - error: {message}')])

    # -- for probes and exec -------------------------------------------------------------

    def command(self, inst: Instance, command: list[str]) -> tuple[list[str], str | None]:
        """How to run `command` in the container's context: (argv, cwd); the image's programs
        are the host's, as for the container's own command."""
        with contextlib.suppress(images.Unavailable):  # then it fails as a command not found
            command = images.host_argv(images.lookup(inst.container.image), command)
        if inst.namespaced and inst.running:
            wd = inst.workdir or "/"
            return ["nsenter", "-t", str(inst.pid), "-u", "-m", "-r", f"--wd={wd}", "--", *command], None
        return command, inst.workdir

    def probe_event(self, inst: Instance, type_: str, reason: str, message: str) -> None:
        self.notify(inst.pod.namespace, inst.pod.name, [(type_, reason, message)])

    def probe_changed(self, inst: Instance) -> None:
        self.notify(inst.pod.namespace, inst.pod.name, [])

    def restart_unhealthy(self, inst: Instance, probe: str) -> None:
        """A failed liveness (or startup) probe: the container is killed and restarted."""
        if inst.container.stopping or not inst.running:
            return
        spec_grace = (inst.spec.get(f"{probe}Probe") or {}).get("terminationGracePeriodSeconds")
        grace = float(spec_grace if spec_grace is not None else inst.pod.grace)
        self.probe_event(inst, NORMAL, "Killing", f"Container {inst.container.name} failed {probe} probe, "
                                                  "will be restarted")
        self.kill(inst, grace=grace)


def _all(st: _Pod) -> list[Instance]:
    return [i for found in st.instances.values() for i in found]


def _why(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "executable file not found in $PATH: unknown"
    if isinstance(err, PermissionError):
        return "permission denied: unknown"
    return f"{err.strerror or err}: unknown"


def _hook_text(hook: Obj) -> str:
    if "exec" in hook:
        return str((hook["exec"] or {}).get("command") or [])
    return str(hook.get("httpGet") or hook)
