"""Running `nft` inside a network namespace: `nft -f -` in a child entered into the namespace
with `nsenter` (forked off the event loop's thread), the rules on its stdin, so each batch is
one netlink transaction: it all applies or nothing does."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from lks.net import netns


class NftError(RuntimeError):
    pass


def available() -> str | None:
    """Why the proxy cannot program nftables here (None: it can)."""
    if shutil.which("nft") is None:
        return "nft (nftables) is not installed: `make net` installs it"
    if shutil.which("nsenter") is None:
        return "nsenter (util-linux) is not installed"
    return None


def _run(namespace: str, script: str, args: tuple[str, ...]) -> str:
    argv = ["nsenter", f"--net={netns.path(namespace)}", "nft", *args]
    done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise NftError(done.stderr.strip() or f"nft exited with {done.returncode}")
    return done.stdout


async def apply(namespace: str, script: str) -> None:
    """Apply `script` (nft commands) in `namespace` as one transaction."""
    await asyncio.to_thread(_run, namespace, script, ("-f", "-"))


async def list_table(namespace: str, table: str) -> str:
    """`nft list table <table>` in `namespace` (for tests and diagnosis)."""
    return await asyncio.to_thread(_run, namespace, "", ("list", "table", *table.split()))
