"""Network namespaces, the way `ip netns` keeps them (a bind mount under /run/netns), made and
entered on one thread of lks's own so no other thread ever runs in a foreign namespace: a
namespace is per thread on Linux, so the thread `unshare`s or `setns`es, does its work (opens a
netlink or TCP socket there, which stays in that namespace), and returns to its own namespace
before the next job. `lks.net.podnet` builds the pod network with them.

No fork, no `ip` or `nsenter` processes: a pod's sandbox costs a few system calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from pyroute2 import IPRoute

RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND, MNT_DETACH = 4096, 2

_libc = ctypes.CDLL(None, use_errno=True)
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_local = threading.local()
T = TypeVar("T")


def path(name: str) -> str:
    return os.path.join(RUN_DIR, name)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def rtnl() -> IPRoute:
    """A netlink (rtnetlink) socket of the calling thread's namespace (namespace thread only).
    pyroute2 runs its socket on an asyncio loop of its own: a plain one, kept for the thread,
    since uvloop (which `lks up` installs as the policy) cannot carry netlink."""
    loop = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = asyncio.SelectorEventLoop()
    return IPRoute(use_event_loop=loop, groups=0)


def submit(fn: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Queue `fn` for the namespace thread (one, so the jobs never race on a namespace and run
    in the order given)."""
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lks-netns")
    return _pool.submit(fn)


async def run(fn: Callable[[], T]) -> T:
    """Run `fn` on the namespace thread and wait for it."""
    return await asyncio.wrap_future(submit(fn))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """The calling thread inside namespace `name` for the block (namespace thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path(name), os.O_RDONLY)
        try:
            _check(_libc.setns(target, CLONE_NEWNET), f"setns {name}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            # a thread that cannot go back would run the next job in a pod's namespace
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os.abort()
    finally:
        os.close(own)


def create(name: str) -> None:
    """A new, empty network namespace kept as /run/netns/`name` (namespace thread only)."""
    os.makedirs(RUN_DIR, exist_ok=True)
    target = path(name)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare")
            try:
                _check(_libc.mount(b"/proc/thread-self/ns/net", target.encode(), b"none", MS_BIND, None),
                       f"mount {target}")
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    os.abort()
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
    finally:
        os.close(own)


def remove(name: str) -> bool:
    """Drop namespace `name`: it (and its interfaces) go once no process runs in it.
    False if there was none."""
    target = path(name)
    _libc.umount2(target.encode(), MNT_DETACH)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return False
    return True


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def listed(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def socket_in(name: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket of namespace `name` (namespace thread only), non-blocking for asyncio."""
    with entered(name):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


@functools.cache
def unsupported_reason() -> str | None:
    """Why this process may not make network namespaces (None: it may)."""
    if not hasattr(os, "geteuid") or not os.path.exists("/proc/thread-self/ns/net"):
        return "no network namespaces on this system"
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        os.makedirs(RUN_DIR, exist_ok=True)
    except OSError as err:
        return f"cannot create {RUN_DIR}: {err.strerror}"
    failed: list[int] = []

    def probe() -> None:  # a thread of its own, whose namespace goes with it
        if _libc.unshare(CLONE_NEWNET) != 0:
            failed.append(ctypes.get_errno())

    thread = threading.Thread(target=probe, name="lks-netns-probe")
    thread.start()
    thread.join()
    if failed:
        return f"network namespaces are refused here: {os.strerror(failed[0])}"
    return None


def listener_in(name: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` of namespace `name` (namespace thread only)."""
    with entered(name):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def supported() -> bool:
    return unsupported_reason() is None
