"""An index of one type's objects by the uid of their controller, and of the orphans (adoption
candidates) by namespace, so that a controller finds its dependents without scanning every
cached object (upstream gets the same from an informer indexer on controller uid).

An informer's handler keeps it (`observe`, or `update`), `seed` indexes a just-started
cache before the first sync, and a controller's own creations are added at once (`add`) so
that the next sync sees them before their events arrive. The index may trail the cache or
run ahead of it: readers resolve keys through the cache (`owned`, `orphans`) and skip keys
that are gone or have changed owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lks.controllers import replicaset_util as rsutil

Obj = dict[str, Any]


class OwnerIndex:
    def __init__(self) -> None:
        self._owned: dict[str, set[str]] = {}
        self._orphans: dict[str, set[str]] = {}  # namespace -> keys
        self._where: dict[str, tuple[str | None, str]] = {}  # key -> (controller uid, namespace)

    def seed(self, objects: dict[str, Obj]) -> None:
        """Index what a just-started informer's cache holds (store key -> object), before the
        first sync: its events reach the handler only later, and a sync that saw no pods
        would create them again."""
        for key, obj in list(objects.items()):
            self.update(key, obj)

    def observe(self, key: str, obj: Obj, *, deleted: bool) -> None:
        """An informer event for `key`."""
        self.update(key, None if deleted else obj)

    def update(self, key: str, obj: Obj | None) -> str | None:
        """Index `obj` under `key` (None removes the key); returns the controller uid the key
        was indexed under before, if any."""
        uid, ns = None, ""
        if obj is not None:
            ref = rsutil.controller_of(obj)
            uid = (ref.get("uid") or None) if ref is not None else None
            ns = obj["metadata"].get("namespace") or ""
            old = self._where.get(key)
            if old is not None and old[0] == uid and (uid or old[1] == ns):
                return uid  # the usual update: same owner, nothing moves
        old = self._where.pop(key, None)
        if old is not None:
            table, slot = (self._owned, old[0]) if old[0] else (self._orphans, old[1])
            bucket = table.get(slot)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del table[slot]
        if obj is not None:
            self._put(key, uid, ns)
        return old[0] if old is not None else None

    def add(self, owner_uid: str, key: str) -> None:
        """A dependent the controller just created, before its informer event."""
        self.update(key, None)
        self._put(key, owner_uid, "")

    def _put(self, key: str, uid: str | None, ns: str) -> None:
        self._where[key] = (uid, ns)
        if uid:
            self._owned.setdefault(uid, set()).add(key)
        else:
            self._orphans.setdefault(ns, set()).add(key)

    def forget(self, key: str) -> None:
        """Drop a key the cache no longer has (its DELETED event was lost in a re-list)."""
        self.update(key, None)

    def owned_by(self, uid: str) -> set[str]:
        return self._owned.get(uid) or set()

    def orphans_in(self, namespace: str) -> set[str]:
        return self._orphans.get(namespace) or set()

    def owned(self, owner_uid: str, objects: dict[str, Obj]) -> list[Obj]:
        """The cached objects `owner_uid` controls."""
        return self.resolve(self.owned_by(owner_uid), objects, owner_uid)

    def orphans(self, namespace: str, objects: dict[str, Obj]) -> list[Obj]:
        """The cached objects of `namespace` without a controller."""
        return self.resolve(self.orphans_in(namespace), objects, None)

    @staticmethod
    def resolve(keys: Iterable[str], objects: dict[str, Obj], owner_uid: str | None) -> list[Obj]:
        out = []
        for key in list(keys):
            obj = objects.get(key)
            if obj is None:
                continue
            ref = rsutil.controller_of(obj)
            if ((ref.get("uid") or None) if ref else None) == owner_uid:
                out.append(obj)
        return out
