"""Fixtures for the controller tests: a hosted cluster on the memory store with a manual clock,
and `settle` for letting informers and work queues catch up with what a test wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from support import ADMIN, CA, TOKEN, backend, clock, cluster  # noqa: F401 (fixtures, and names tests import from here)


async def _settle(check: Callable[[], object], *, tries: int = 500) -> None:
    """Let the loop run until `check()` (sync or async) holds."""
    for _ in range(tries):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.fixture
def settle() -> Callable[..., Awaitable[None]]:
    return _settle
