"""Decoding too heavy for the event loop, done in a worker process: large YAML bodies.

PyYAML builds a Python object for every node, so a 3 MiB YAML body of tiny nodes (`[1,1,1,…]`)
costs ~12 s of CPU and ~550 MiB at its peak, however safe its aliases. On the event loop that
would stall every hosted cluster of the process for as long. `negotiation` sends YAML bodies
past `OFF_LOOP_BYTES` here instead: one worker process decodes one body at a time (memory stays
bounded to one body's worth) and is replaced after each, so what it grew goes back to the system;
the loop serves on meanwhile. JSON and protobuf bodies decode in linear time and stay on the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from lks.kube import errors

OFF_LOOP_BYTES = 128 * 1024  # below this, a body decodes on the loop in well under 1 s

_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:  # spawned, not forked: the service's threads and loop stay out of it
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                    max_tasks_per_child=1)
    return _pool


def _call(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """In the worker: `fn(*args)`, or the APIError it raised as plain values (pickles safely)."""
    try:
        return True, fn(*args)
    except errors.APIError as err:
        return False, (err.code, err.reason, err.message, err.details, err.headers)


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` (a module-level function) in the worker process; its APIError raised here."""
    ok, value = await asyncio.get_running_loop().run_in_executor(_executor(), _call, fn, args)
    if ok:
        return value
    code, reason, message, details, headers = value
    raise errors.APIError(code, reason, message, details=details, headers=headers)
