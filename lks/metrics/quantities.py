"""The quantities and durations of `metrics.k8s.io` objects, as metrics-server writes them:
cpu as `resource.NewScaledQuantity(nanocores, -9)` and memory in bytes as a BinarySI quantity,
both in their canonical form (`1234567n`, `250m`, `65536Ki`, `64Mi`), the window as a Go
duration. `lks.metrics.api` builds objects with them, `lks.metrics.podlist` the bytes of lists.
"""

from __future__ import annotations

import functools

from lks.clock import go_duration

_DECIMAL = ((10**9, ""), (10**6, "m"), (10**3, "u"))
_BINARY = ((2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki"))


@functools.lru_cache(maxsize=32768)  # a pod's figures stay while its usage does: Tables ask again
def cpu_quantity(cores: float) -> str:
    """Cores as metrics-server's nanocore quantity, canonical: `1234567n`, `250m`, `2`."""
    n = max(round(cores * 1e9), 0)
    if n == 0:
        return "0"
    for size, suffix in _DECIMAL:
        if n % size == 0:
            return f"{n // size}{suffix}"
    return f"{n}n"


@functools.lru_cache(maxsize=32768)
def memory_quantity(size: int) -> str:
    """Bytes as a canonical BinarySI quantity: `65536Ki`, `64Mi`, or plain bytes."""
    size = max(int(size), 0)
    if size == 0:
        return "0"
    for unit, suffix in _BINARY:
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def nanoseconds(seconds: float) -> int:
    """A window in whole milliseconds, as nanoseconds (metrics-server's windows are ms-precise)."""
    return round(seconds * 1000) * 1_000_000


@functools.lru_cache(maxsize=1024)
def window(seconds: float) -> str:
    """A window as a Go duration: `15s`, `1.234s`."""
    return go_duration(nanoseconds(seconds))
