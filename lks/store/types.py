"""The store's vocabulary: key-values, events, errors and the `Backend` protocol.

Every persistent thing in lks (Kubernetes objects, ARM resources, operation journals) is a
revisioned document behind this one interface. Semantics follow etcd v3: one global revision
counter per store, bumped by every write; each key carries the revision that created it
(`create_revision`) and the one that last modified it (`mod_revision`). Backends live in
`lks.store.backends` and register by URL scheme; `lks.store.open_store` picks one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change, as a watch delivers it.

    `kv` is the state after the change; for a delete it is the deleted value with
    `mod_revision` set to the delete's revision. `prev` is the state before (None on create).
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool = False  # True when `limit` cut the list short


class StoreError(Exception):
    """Base of every error a backend raises."""


class KeyExists(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class NotFound(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflict(StoreError):
    """An update or delete named a `mod_revision` that is no longer the key's latest."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than the oldest one still retained."""

    def __init__(self, revision: int, compact_revision: int):
        super().__init__(f"revision {revision} has been compacted (oldest retained: {compact_revision})")
        self.revision = revision
        self.compact_revision = compact_revision


class FutureRevision(StoreError):
    def __init__(self, revision: int, current: int):
        super().__init__(f"revision {revision} is newer than the current revision {current}")
        self.revision = revision
        self.current = current


class Unavailable(StoreError):
    """The store cannot be reached (etcd down or refusing connections): try again later."""


class Timeout(StoreError):
    """The store did not answer within the request timeout (etcd stalled or overloaded)."""


class Backend(Protocol):
    """A revisioned key-value store with watch.

    Keys are `str`, values `bytes`. Prefix operations match every key that starts with the
    prefix. Reads at `revision=None` see the latest state; at a revision they see the state as
    of that revision, or raise `Compacted` when it is older than the retained history and
    `FutureRevision` when it has not happened yet.
    """

    async def start(self) -> None:
        """Open files or connections; called once before any other method."""

    async def close(self) -> None:
        """Release everything; pending watches end."""

    async def current_revision(self) -> int:
        """The revision of the latest write (0 on an empty store)."""

    async def compact_revision(self) -> int:
        """The oldest revision still readable (0 when nothing was compacted)."""

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        """The key's value, or None when it does not exist (at that revision)."""

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start: str | None = None,
        limit: int | None = None,
    ) -> ListResult:
        """Keys under `prefix` in key order, from `start` (inclusive) when given, at most
        `limit` of them; `more` says whether any remain."""

    async def count(self, prefix: str) -> int:
        """How many keys live under `prefix` now."""

    async def create(self, key: str, value: bytes) -> int:
        """Create `key`; raise `KeyExists` when it exists. Returns the new revision."""

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        """Replace `key` if its latest `mod_revision` is the one given; raise `NotFound` when
        the key does not exist and `RevisionConflict` (carrying the current value) otherwise.
        Returns the new revision."""

    async def delete(self, key: str, *, mod_revision: int | None = None) -> tuple[int, KeyValue]:
        """Delete `key` (only at `mod_revision` when given). Raises `NotFound` or
        `RevisionConflict`. Returns the delete's revision and the value deleted."""

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        """Every change under `prefix` with revision >= `start_revision`, in revision order,
        first those already in history, then live ones, without gap or duplicate. Raises
        `Compacted` (on first iteration) when `start_revision` is no longer retained. A
        watcher that falls too far behind is ended with `Compacted` too, so it re-lists."""

    async def drop(self) -> None:
        """Delete everything this store holds, for good (a deleted cluster's objects): its
        files, or its keys under the URL's prefix. Closes the store; it must not be in use."""

    async def compact(self, revision: int) -> None:
        """Forget history older than `revision`: values superseded before it and deletions
        before it. Reads and watches at `revision` or later keep working (it becomes
        `compact_revision()`, as in etcd); older ones raise `Compacted`. Latest values are kept
        whatever their age. Compacting to a revision at or below `compact_revision()` does
        nothing; beyond the current revision raises `FutureRevision`."""
