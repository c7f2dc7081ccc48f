"""The garbage collector: deletes objects whose owners are gone, and carries out the
Foreground and Orphan deletion of owners (upstream's `pkg/controller/garbagecollector`).

It keeps an index of every object's uid and `ownerReferences`, fed by the cluster's one store
watch, and works through a queue of two kinds of items:

- `("dependent", key)`: an object some of whose owners may be gone. When none of its owners
  exists any more (checked against the store, by uid), it is deleted; when some do, the
  references to the vanished ones are removed.
- `("owner", key)`: an object being deleted with the `orphan` finalizer (its dependents lose
  their reference to it) or the `foregroundDeletion` finalizer (its dependents are deleted,
  and the finalizer goes once no dependent with `blockOwnerDeletion` is left).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from lks import store
from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.cluster import ROOT, Cluster

log = logging.getLogger(__name__)

Item = tuple[str, str]  # ("dependent" | "owner", store key)


@dataclass(slots=True)
class _Node:
    uid: str
    owners: list[dict[str, Any]]
    deleting: bool
    finalizers: tuple[str, ...]
    dependents: set[str] = field(default_factory=set)  # keys of objects that name this uid


class GarbageCollector(Controller[Item]):
    """Its informer is the cluster feed itself (every type at once), so it extends `start` and
    `stop` with its listener instead of making informers."""

    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="garbagecollector")
        self.nodes: dict[str, _Node] = {}  # key -> node
        self.by_uid: dict[str, str] = {}  # uid -> key
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent keys
        self._pending: list[tuple[store.Event, dict | None]] | None = []
        self._revision = 0

    async def start(self) -> None:
        self.cluster.feed.listeners.append(self._on_event)
        listed = await self.cluster.store.list(ROOT)
        for kv in listed.items:
            self._index(kv.key, kv.value)
        self._revision = listed.revision
        pending, self._pending = self._pending or [], None
        for ev, obj in pending:
            self._on_event(ev, obj)
        await super().start()

    def prime(self) -> None:
        for key, node in self.nodes.items():
            self._consider(key, node)

    async def stop(self) -> None:
        if self._on_event in self.cluster.feed.listeners:
            self.cluster.feed.listeners.remove(self._on_event)
        await super().stop()

    # -- the index ---------------------------------------------------------------------

    def _on_event(self, ev: store.Event, obj: dict | None = None) -> None:
        if self._pending is not None:
            self._pending.append((ev, obj))
            return
        if ev.revision <= self._revision:
            return
        key = ev.kv.key
        if ev.type == "DELETE":
            node = self._unindex(key)
            if node is not None:
                for dep in self.dependents.get(node.uid, ()):
                    self.queue.add(("dependent", dep))
                for ref in node.owners:
                    owner_key = self.by_uid.get(ref.get("uid", ""))
                    if owner_key is not None and self.nodes[owner_key].deleting:
                        self.queue.add(("owner", owner_key))
        else:
            node = self._index(key, ev.kv.value, obj)
            if node is not None:
                self._consider(key, node)

    def _index(self, key: str, value: bytes, obj: dict | None = None) -> _Node | None:
        """Index the object's ownership; None when there is nothing (new) to consider."""
        try:
            meta = (obj if obj is not None else orjson.loads(value)).get("metadata") or {}
        except orjson.JSONDecodeError:
            meta = {}
        uid = meta.get("uid")
        owners, deleting = meta.get("ownerReferences") or [], "deletionTimestamp" in meta
        finalizers = tuple(meta.get("finalizers") or ())
        old = self.nodes.get(key)
        if (old is not None and uid and old.uid == uid and old.deleting == deleting and old.owners == owners
                and old.finalizers == finalizers):
            return None  # a write that changed nothing the collector follows (most of them: status)
        self._unindex(key)
        if not uid:
            return None
        node = _Node(uid, list(owners), deleting, finalizers)
        self.nodes[key] = node
        self.by_uid[uid] = key
        for ref in node.owners:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(key)
        return node

    def _unindex(self, key: str) -> _Node | None:
        node = self.nodes.pop(key, None)
        if node is None:
            return None
        if self.by_uid.get(node.uid) == key:
            del self.by_uid[node.uid]
        for ref in node.owners:
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self.dependents[ref.get("uid", "")]
        return node

    def _consider(self, key: str, node: _Node) -> None:
        """Queue what this object's state asks for."""
        if node.deleting and (deletion.ORPHAN in node.finalizers or deletion.FOREGROUND in node.finalizers):
            self.queue.add(("owner", key))
        for ref in node.owners:
            owner = self.by_uid.get(ref.get("uid", ""))
            if owner is None or self.nodes[owner].deleting:
                self.queue.add(("dependent", key))
                break

    # -- the work ------------------------------------------------------------------------

    async def sync(self, item: Item) -> None:
        kind, key = item
        if kind == "owner":
            await self._process_owner(key)
        else:
            await self._process_dependent(key)

    def _locate(self, key: str) -> tuple[Any, str | None, str] | None:
        reg = self.cluster.registry_for_key(key)
        if reg is None:
            return None
        rest = key[len(reg.prefix):]
        ns, _, name = rest.rpartition("/")
        return reg, (ns or None), name

    async def _owner_state(self, ref: dict[str, Any], namespace: str | None) -> str:
        """`absent`, `deleting-foreground` or `present` for one owner reference, read live."""
        api_version = ref.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        rt = self.cluster.catalog.by_kind(group, version, ref.get("kind", ""))
        if rt is None:
            return "present"  # an unknown kind cannot be checked; never delete on a guess
        reg = self.cluster.registry(rt.group, rt.version, rt.resource)
        kv = await self.cluster.store.get(reg.key(namespace if rt.namespaced else None, ref.get("name", "")))
        if kv is None:
            return "absent"
        meta = orjson.loads(kv.value)["metadata"]
        if meta.get("uid") != ref.get("uid"):
            return "absent"
        if "deletionTimestamp" in meta and deletion.FOREGROUND in (meta.get("finalizers") or ()):
            return "deleting-foreground"
        return "present"

    async def _process_dependent(self, key: str) -> None:
        node = self.nodes.get(key)
        where = self._locate(key)
        if node is None or where is None or not node.owners:
            return
        reg, ns, name = where
        states = {ref.get("uid"): await self._owner_state(ref, ns) for ref in node.owners}
        if "present" in states.values():
            dangling = {uid for uid, s in states.items() if s == "absent"}
            if dangling:
                await self._patch_owner_refs(reg, ns, name, node.uid, dangling)
            return
        policy = "Foreground" if "deleting-foreground" in states.values() else "Background"
        if node.deleting:
            return
        try:
            await reg.delete(ns, name, deletion.DeleteOptions(propagation_policy=policy,
                                                              preconditions={"uid": node.uid}))
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise

    async def _process_owner(self, key: str) -> None:
        node = self.nodes.get(key)
        where = self._locate(key)
        if node is None or where is None or not node.deleting:
            return
        reg, ns, name = where
        deps = list(self.dependents.get(node.uid, ()))
        if deletion.ORPHAN in node.finalizers:
            for dep in deps:
                dep_where = self._locate(dep)
                if dep_where is not None:
                    await self._patch_owner_refs(dep_where[0], dep_where[1], dep_where[2],
                                                 self.nodes[dep].uid if dep in self.nodes else None, {node.uid})
            await self._remove_finalizer(reg, ns, name, deletion.ORPHAN)
            return
        if deletion.FOREGROUND in node.finalizers:
            blocking = [d for d in deps if d in self.nodes and any(
                r.get("uid") == node.uid and r.get("blockOwnerDeletion") for r in self.nodes[d].owners)]
            for dep in deps:
                dep_node = self.nodes.get(dep)
                if dep_node is not None and not dep_node.deleting:
                    self.queue.add(("dependent", dep))
            if not blocking:
                await self._remove_finalizer(reg, ns, name, deletion.FOREGROUND)
            else:
                self.queue.add_after(("owner", key), 0.5)

    async def _patch_owner_refs(self, reg: Any, ns: str | None, name: str, uid: str | None, drop: set[str]) -> None:
        def without(current: dict[str, Any]) -> dict[str, Any]:
            meta = current["metadata"]
            if uid is not None and meta.get("uid") != uid:
                raise errors.conflict(reg.rt.resource, reg.rt.group, name, "the object has been replaced")
            refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in drop]
            if refs:
                meta["ownerReferences"] = refs
            else:
                meta.pop("ownerReferences", None)
            return current

        try:
            await reg.patch(ns, name, without)
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise

    async def _remove_finalizer(self, reg: Any, ns: str | None, name: str, finalizer: str) -> None:
        def without(current: dict[str, Any]) -> dict[str, Any]:
            meta = current["metadata"]
            rest = [f for f in meta.get("finalizers") or [] if f != finalizer]
            if rest:
                meta["finalizers"] = rest
            else:
                meta.pop("finalizers", None)
            return current

        try:
            await reg.patch(ns, name, without)
        except errors.APIError as err:
            if err.code != 404:
                raise

