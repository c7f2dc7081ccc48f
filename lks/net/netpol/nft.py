"""Running `nft` in a cluster's network namespace: a child process entered into it (`nsenter`,
as lks starts containers), fed an `nft -f` transaction on stdin, so the kernel applies all of
it or none."""

from __future__ import annotations

import asyncio
import functools
import shutil

from lks.net import netns


class NftError(RuntimeError):
    pass


@functools.cache
def binary() -> str | None:
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if shutil.which(p)), None)


async def apply(namespace: str, script: str) -> None:
    """Apply `script` in network namespace `namespace` (a name under /run/netns)."""
    nft = binary()
    if nft is None:
        raise NftError("nft is not installed (make net installs nftables)")
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns.path(namespace)}", "--", nft, "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise NftError(err.decode(errors="replace").strip() or f"nft exited with {proc.returncode}")


async def listed(namespace: str, table: str) -> str:
    """`nft list table inet <table>` in the namespace ('' when there is none): for tests and tools."""
    nft = binary()
    if nft is None:
        return ""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns.path(namespace)}", "--", nft, "list", "table", "inet", table,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode() if proc.returncode == 0 else ""
