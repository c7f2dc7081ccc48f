"""Small helpers for the service's own asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task | None) -> None:
    """Cancel `task` (if any) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
