"""What the process runtime (`lks.nodes.process`) does in a container's process between fork
and exec: it dies with the service (`PR_SET_PDEATHSIG`), takes its TTY, and, when the service
runs as root, gets its own UTS namespace (hostname = pod name) and mount namespace, in which the
pod's volume directories are bind-mounted at their `mountPath` (read-only ones remounted
read-only) and `workingDir` is created if missing; with a pod network (`lks.net.podnet`) it
joins its pod's network namespace first.

A mount point that does not exist is never created on the host: its nearest existing ancestor
is covered, inside the namespace only, by a tmpfs that holds bind mounts of everything the
ancestor had (plus the new directory), so the host's directories stay as they were. Mounts
are private (`mount --make-rprivate /`) so nothing propagates back.

Without root (or where `unshare` is refused) the caller falls back to running the process
without namespaces; see `lks.nodes.process` for what changes then.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import termios
from dataclasses import dataclass, field

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x00020000, 0x04000000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1


def available() -> bool:
    """Whether containers can get namespaces here (root, on Linux)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), None), f"mount {src} on {dst}")


@dataclass
class Setup:
    """The child-side setup, as a `preexec_fn`. `mounts` are (host path, mount path, read-only);
    `stage` an empty directory of the pod's own for the tmpfs mount points."""

    hostname: str | None = None
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)
    stage: str = ""
    workdir: str | None = None
    tty: bool = False
    namespaces: bool = False
    netns: str | None = None  # the path of the pod's network namespace, to join
    _covered: list[str] = field(default_factory=list)

    def __call__(self) -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if self.tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if self.netns:
            fd = os.open(self.netns, os.O_RDONLY)
            _check(_libc.setns(fd, CLONE_NEWNET), "setns")
            os.close(fd)
        if self.namespaces:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
            if self.hostname:
                name = self.hostname.encode()
                _check(_libc.sethostname(name, len(name)), "sethostname")
            _mount("none", "/", None, MS_REC | MS_PRIVATE)
            for src, dst, read_only in self.mounts:
                self._ensure(dst, directory=os.path.isdir(src))
                _mount(src, dst, None, MS_BIND | MS_REC)
                if read_only:
                    _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
            if self.workdir and not os.path.exists(self.workdir):
                self._ensure(self.workdir, directory=True)
        if self.workdir:
            os.chdir(self.workdir)

    def _ensure(self, path: str, *, directory: bool) -> None:
        """Make `path` exist inside the namespace without touching the host."""
        if os.path.lexists(path):
            return
        parts = os.path.normpath(path).split("/")[1:]
        ancestor = "/"
        for part in parts[:-1]:
            nxt = os.path.join(ancestor, part)
            if not os.path.isdir(nxt):
                break
            ancestor = nxt
        if ancestor not in self._covered:  # only our tmpfs (and what we made in it) is ours to write
            self._cover(ancestor)
        for part in parts[len(ancestor.strip("/").split("/")) if ancestor != "/" else 0:-1]:
            ancestor = os.path.join(ancestor, part)
            os.makedirs(ancestor, exist_ok=True)
            self._covered.append(ancestor)
        if directory:
            os.mkdir(path)
            self._covered.append(path)
        else:
            open(path, "a").close()  # noqa: SIM115

    def _cover(self, ancestor: str) -> None:
        """Put a writable tmpfs over `ancestor` that shows what it held (bind mounts)."""
        stage = os.path.join(self.stage, str(len(self._covered)))
        os.makedirs(stage, exist_ok=True)
        _mount("tmpfs", stage, "tmpfs", 0)
        for entry in os.scandir(ancestor):
            target = os.path.join(stage, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
                continue
            if entry.is_dir():
                os.mkdir(target)
            else:
                open(target, "a").close()  # noqa: SIM115
            _mount(entry.path, target, None, MS_BIND | MS_REC)
        if ancestor == "/":  # a mount over / is not seen from the old root: the tmpfs becomes the root
            os.chdir(stage)
            os.chroot(".")
            os.chdir("/")
        else:
            _mount(stage, ancestor, None, MS_BIND | MS_REC)
        self._covered.append(ancestor)
