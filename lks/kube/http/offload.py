"""Decoding too heavy for the event loop, done in a worker process: large YAML bodies.

PyYAML builds a Python object for every node, so a 3 MiB YAML body of tiny nodes (`[1,1,1,…]`)
costs ~12 s of CPU and ~550 MiB at its peak, however safe its aliases. On the event loop that
would stall every hosted cluster of the process for as long. `negotiation` sends YAML bodies
past `OFF_LOOP_BYTES` here instead: a worker process, spawned for the body and gone after it,
decodes one body at a time (memory stays bounded to one body's worth and goes back to the system;
no process waits while idle), and the loop serves on meanwhile. JSON and protobuf bodies decode
in linear time and stay on the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from lks.kube import errors

OFF_LOOP_BYTES = 128 * 1024  # below this, a body decodes on the loop in well under 1 s

_SPAWN = multiprocessing.get_context("spawn")  # not forked: the service's threads and loop stay out of it
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _call(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """In the worker: `fn(*args)`, or the APIError it raised as plain values (pickles safely)."""
    try:
        return True, fn(*args)
    except errors.APIError as err:
        return False, (err.code, err.reason, err.message, err.details, err.headers)


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` (a module-level function) in a worker process; its APIError raised here. A
    worker that dies (killed for its memory) is a 500, and the next body gets a new one."""
    loop = asyncio.get_running_loop()
    async with _turns.setdefault(loop, asyncio.Lock()):  # one body at a time
        pool = ProcessPoolExecutor(max_workers=1, mp_context=_SPAWN)
        try:
            ok, value = await loop.run_in_executor(pool, _call, fn, args)
        except BrokenProcessPool as err:
            raise errors.internal("the request body could not be decoded: its decoder stopped") from err
        finally:
            pool.shutdown(wait=False)
    if ok:
        return value
    code, reason, message, details, headers = value
    raise errors.APIError(code, reason, message, details=details, headers=headers)
