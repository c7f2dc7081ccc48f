"""The in-memory backend: reference semantics of `Backend`, for unit tests.

Everything lives in dicts and lists guarded by nothing but the event loop: each key keeps its
versions (tombstones included) so reads at old revisions work, and a history log of events
serves watches from past revisions until `compact` trims both. Live events go through the same
`broadcaster` the sqlite backend uses. Registers the `memory://` scheme.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator

from lks import store
from lks.store import broadcaster
from lks.store.types import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyValue,
    ListResult,
    NotFound,
    RevisionConflict,
    StoreError,
)


class MemoryBackend:
    def __init__(self, url: str = "memory://", *, watch_queue_limit: int = broadcaster.DEFAULT_QUEUE_LIMIT):
        self.url = url
        self._rev = 0
        self._compact_rev = 0
        # key -> [(revision, value or None for a tombstone)], oldest first
        self._versions: dict[str, list[tuple[int, KeyValue | None]]] = {}
        self._keys: list[str] = []  # sorted keys of _versions, for prefix ranges
        self._history: list[Event] = []  # every event with revision >= _compact_rev
        self._broadcaster = broadcaster.Broadcaster(queue_limit=watch_queue_limit)
        self._closed = False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._closed = True
        self._broadcaster.close()

    async def drop(self) -> None:
        await self.close()
        self._versions.clear()
        self._keys.clear()
        self._history.clear()

    async def current_revision(self) -> int:
        return self._rev

    async def compact_revision(self) -> int:
        return self._compact_rev

    # -- reads

    def _check_revision(self, revision: int | None) -> int:
        if revision is None or revision == 0:
            return self._rev
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision < self._compact_rev:
            raise Compacted(revision, self._compact_rev)
        return revision

    def _at(self, key: str, revision: int) -> KeyValue | None:
        versions = self._versions.get(key)
        if not versions:
            return None
        i = bisect.bisect_right(versions, revision, key=lambda v: v[0])
        return versions[i - 1][1] if i else None

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        return self._at(key, self._check_revision(revision))

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start: str | None = None,
        limit: int | None = None,
    ) -> ListResult:
        rev = self._check_revision(revision)
        items: list[KeyValue] = []
        more = False
        i = bisect.bisect_left(self._keys, max(prefix, start or ""))
        for key in self._keys[i:]:
            if not key.startswith(prefix):
                break
            kv = self._at(key, rev)
            if kv is None:
                continue
            if limit is not None and len(items) >= limit:
                more = True
                break
            items.append(kv)
        return ListResult(items=items, revision=rev, more=more)

    async def count(self, prefix: str) -> int:
        i = bisect.bisect_left(self._keys, prefix)
        n = 0
        for key in self._keys[i:]:
            if not key.startswith(prefix):
                break
            n += self._versions[key][-1][1] is not None
        return n

    # -- writes

    def _latest(self, key: str) -> KeyValue | None:
        versions = self._versions.get(key)
        return versions[-1][1] if versions else None

    def _append(self, event: Event, stored: KeyValue | None) -> int:
        key = event.kv.key
        if key not in self._versions:
            bisect.insort(self._keys, key)
            self._versions[key] = []
        self._versions[key].append((event.revision, stored))
        self._history.append(event)
        self._broadcaster.publish([event])
        return event.revision

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def create(self, key: str, value: bytes) -> int:
        self._check_open()
        if self._latest(key) is not None:
            raise KeyExists(key)
        self._rev += 1
        kv = KeyValue(key, bytes(value), self._rev, self._rev)
        return self._append(Event("PUT", kv), kv)

    def _expect(self, key: str, mod_revision: int | None) -> KeyValue:
        current = self._latest(key)
        if current is None:
            raise NotFound(key)
        if mod_revision is not None and current.mod_revision != mod_revision:
            raise RevisionConflict(key, current)
        return current

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        self._check_open()
        prev = self._expect(key, mod_revision)
        self._rev += 1
        kv = KeyValue(key, bytes(value), prev.create_revision, self._rev)
        return self._append(Event("PUT", kv, prev), kv)

    async def delete(self, key: str, *, mod_revision: int | None = None) -> tuple[int, KeyValue]:
        self._check_open()
        prev = self._expect(key, mod_revision)
        self._rev += 1
        kv = KeyValue(key, prev.value, prev.create_revision, self._rev)
        return self._append(Event("DELETE", kv, prev), None), prev

    # -- watch and compaction

    async def _replay(self, prefix: str, revision: int) -> list[Event]:
        if revision < self._compact_rev:
            raise Compacted(revision, self._compact_rev)
        i = bisect.bisect_left(self._history, revision, key=lambda e: e.revision)
        page: list[Event] = []
        for event in self._history[i:]:
            if event.kv.key.startswith(prefix):
                page.append(event)
                if len(page) == broadcaster.REPLAY_PAGE:
                    break
        return page

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        return broadcaster.stream(
            self._broadcaster,
            prefix,
            start_revision=start_revision,
            replay=lambda rev: self._replay(prefix, rev),
            compact_revision=self.compact_revision,
        )

    async def compact(self, revision: int) -> None:
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision <= self._compact_rev:
            return
        self._compact_rev = revision
        i = bisect.bisect_left(self._history, revision, key=lambda e: e.revision)
        del self._history[:i]
        for key in list(self._versions):
            versions = self._versions[key]
            # Keep what reads at >= revision and the events from it need: the version live at
            # `revision` (unless a tombstone) and everything after it.
            i = bisect.bisect_right(versions, revision - 1, key=lambda v: v[0])
            keep = versions[i - 1 :] if i else versions
            if keep and keep[0][0] < revision and keep[0][1] is None:
                keep = keep[1:]
            if keep:
                self._versions[key] = keep
            else:
                del self._versions[key]
                del self._keys[bisect.bisect_left(self._keys, key)]


store.register("memory", MemoryBackend)
