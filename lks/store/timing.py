"""How long the store takes, per operation and resource: a `Backend` wrapper that times every
call into a `Histogram` (upstream's `etcd_request_duration_seconds{operation,type}`). The type is
the key's storage prefix (`/registry/pods/`, `/registry/<group>/<resource>/`);
`lks.observability.exposition` names it as upstream does (`pods`, `deployments.apps`). Calls it
does not time (watch, compaction, start/stop) pass straight through.
"""

from __future__ import annotations

import time
from typing import Any

from lks.observability.histogram import REQUEST_BUCKETS, Histogram
from lks.store.types import Backend, KeyValue, ListResult


def prefix_of(key: str) -> str:
    """The storage prefix a key (or a list's prefix) falls under: two segments, or three when
    the second is an API group (it has a dot)."""
    parts = key.split("/", 4)  # "", "registry", seg, seg2, rest
    if len(parts) < 4:
        return key
    if "." in parts[2] and len(parts) >= 5:
        return f"/{parts[1]}/{parts[2]}/{parts[3]}/"
    return f"/{parts[1]}/{parts[2]}/"


class Timed:
    """`backend`, with `timings[(operation, prefix)]` filled as it is used."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.timings: dict[tuple[str, str], Histogram] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _observe(self, operation: str, key: str, started: float) -> None:
        labels = (operation, prefix_of(key))
        hist = self.timings.get(labels)
        if hist is None:
            hist = self.timings[labels] = Histogram(REQUEST_BUCKETS)
        hist.observe(time.perf_counter() - started)

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        started = time.perf_counter()
        try:
            return await self.backend.get(key, revision=revision)
        finally:
            self._observe("get", key, started)

    async def list(self, prefix: str, *, revision: int | None = None, start: str | None = None,
                   limit: int | None = None) -> ListResult:
        started = time.perf_counter()
        try:
            return await self.backend.list(prefix, revision=revision, start=start, limit=limit)
        finally:
            self._observe("list", prefix, started)

    async def count(self, prefix: str) -> int:
        started = time.perf_counter()
        try:
            return await self.backend.count(prefix)
        finally:
            self._observe("count", prefix, started)

    async def create(self, key: str, value: bytes) -> int:
        started = time.perf_counter()
        try:
            return await self.backend.create(key, value)
        finally:
            self._observe("create", key, started)

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        started = time.perf_counter()
        try:
            return await self.backend.update(key, value, mod_revision=mod_revision)
        finally:
            self._observe("update", key, started)

    async def delete(self, key: str, *, mod_revision: int | None = None) -> tuple[int, KeyValue]:
        started = time.perf_counter()
        try:
            return await self.backend.delete(key, mod_revision=mod_revision)
        finally:
            self._observe("delete", key, started)
