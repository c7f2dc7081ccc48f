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

It reads as upstream's metadata informers do, one per resource: a resource is followed
(monitored) only while `system:kube-controller-manager` may list and watch it. The decisions
are made per resource (`informer.may_read`, with the reflector's Forbidden line when refused),
kept, and made again whenever the RBAC policy changes (its objects pass through the same feed,
after the authorizer's index took them in). Events of a resource not followed are ignored, so
its dependents are not collected; once allowed, the resource is listed into the index again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from lks import store, tasks
from lks.controllers import informer
from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.catalog import Catalog, ResourceType
from lks.kube.cluster import ROOT, Cluster

log = logging.getLogger(__name__)

Item = tuple[str, str]  # ("dependent" | "owner", store key)
Pending = list[tuple[store.Event, dict | None]]

_METADATA = "*v1.PartialObjectMetadata"  # the type upstream's metadata informers' reflectors name
_RBAC = "rbac.authorization.k8s.io"


@dataclass(slots=True)
class _Node:
    uid: str
    owners: list[dict[str, Any]]
    deleting: bool
    finalizers: tuple[str, ...]
    monitor: _Monitor  # of its resource (found once per object, not per event)
    dependents: set[str] = field(default_factory=set)  # keys of objects that name this uid


@dataclass(slots=True)
class _Monitor:
    """One stored resource the collector may follow (upstream: a metadata informer of it)."""

    rt: ResourceType
    prefix: str  # its store keys'
    policy: bool  # an RBAC resource: its changes can change every decision
    allowed: bool | None = None  # may the reader list and watch it (None: not decided yet)
    revision: int = 0  # what the index has of it is as of this revision (its last list)
    pending: Pending | None = field(default_factory=list)  # its events while it is being listed


class GarbageCollector(Controller[Item]):
    """Its informer is the cluster feed itself (every type at once), so it extends `start` and
    `stop` with its listener instead of making informers."""

    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="garbagecollector")
        self.nodes: dict[str, _Node] = {}  # key -> node
        self.by_uid: dict[str, str] = {}  # uid -> key
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent keys
        self._monitors: dict[str, _Monitor] = {}  # storage prefix -> monitor
        self._catalog: Catalog | None = None  # the catalog the monitors were made from
        self._started = False
        self._stale = False  # the policy changed since the monitors were last decided
        self._rechecking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.nodes, self.by_uid, self.dependents = {}, {}, {}  # all listed again below
        self._monitors.clear()
        self._refresh_monitors()  # each buffers its events until listed
        self.cluster.feed.listeners.append(self._on_event)
        self._stale = False
        for monitor in list(self._monitors.values()):
            monitor.allowed = await self._may_read(monitor)
        listed = await self.cluster.store.list(ROOT)  # one list for every resource followed
        for kv in listed.items:
            monitor = self._monitor(kv.key)
            if monitor is not None and monitor.allowed:
                self._index(kv.key, kv.value, monitor)
        for monitor in list(self._monitors.values()):
            if monitor.allowed is not None:  # (one new meanwhile waits for its decision)
                self._listed(monitor, listed.revision)
        self._started = True
        if self._stale:
            self._policy_changed()
        await super().start()

    def prime(self) -> None:
        for key, node in self.nodes.items():
            self._consider(key, node)

    async def stop(self) -> None:
        self._started = False
        if self._on_event in self.cluster.feed.listeners:
            self.cluster.feed.listeners.remove(self._on_event)
        if self._rechecking is not None:
            await tasks.cancel(self._rechecking)
            self._rechecking = None
        await super().stop()

    # -- what it may read ----------------------------------------------------------------

    def _refresh_monitors(self) -> None:
        """A monitor per stored resource of the catalog; new ones (a CRD's) await a decision."""
        self._catalog = self.cluster.catalog
        for reg in self.cluster.storage_registries():
            if reg.prefix not in self._monitors:
                self._monitors[reg.prefix] = _Monitor(reg.rt, reg.prefix, reg.rt.group == _RBAC)
                self._policy_changed()

    def _monitor(self, key: str) -> _Monitor | None:
        """The monitor of the resource `key` belongs to: a lookup per directory level of the key
        (as the feed finds caches), not a scan of the types."""
        monitors = self._monitors
        cut = key.find("/", 1)
        while cut != -1:
            monitor = monitors.get(key[: cut + 1])
            if monitor is not None:
                return monitor
            cut = key.find("/", cut + 1)
        if self.cluster.catalog is not self._catalog:  # types came since (a CRD's)
            self._refresh_monitors()
            return self._monitor(key)
        return None

    async def _may_read(self, monitor: _Monitor) -> bool:
        return await informer.may_read(self.cluster, self._reader, monitor.rt, what=_METADATA)

    def _policy_changed(self) -> None:
        """Decide every monitor again, soon (once per burst of changes)."""
        self._stale = True
        if self._started and self._rechecking is None:
            self._rechecking = asyncio.get_running_loop().create_task(self._recheck(), name="garbagecollector monitors")

    async def _recheck(self) -> None:
        """Upstream's monitors' resync: a resource now refused is no longer followed (the index
        keeps what it had of it, as a reflector's store does); one now allowed is listed again."""
        try:
            while self._stale:
                self._stale = False
                for monitor in list(self._monitors.values()):
                    if not await self._may_read(monitor):
                        monitor.allowed, monitor.pending = False, None
                    elif not monitor.allowed:
                        await self._relist(monitor)
        except Exception:
            self._stale = True  # tried again on the next change
            log.exception("garbage collector: resyncing its monitors failed")
        finally:
            self._rechecking = None

    async def _relist(self, monitor: _Monitor) -> None:
        """Follow a resource from now: its objects into the index, the ones gone meanwhile out."""
        if monitor.pending is None:
            monitor.pending = []
        try:
            listed = await self.cluster.store.list(monitor.prefix)
        except BaseException:
            monitor.allowed, monitor.pending = False, None  # not followed until a list succeeds
            raise
        present = set()
        for kv in listed.items:
            present.add(kv.key)
            node = self._index(kv.key, kv.value, monitor)
            if node is not None:
                self._consider(kv.key, node)
        for key in [k for k, node in self.nodes.items() if node.monitor is monitor and k not in present]:
            self._forget(key)
        monitor.allowed = True
        self._listed(monitor, listed.revision)

    def _listed(self, monitor: _Monitor, revision: int) -> None:
        """The index has the resource as of `revision`: apply what came after, if it is followed."""
        monitor.revision = revision
        pending, monitor.pending = monitor.pending or [], None
        if monitor.allowed:
            for ev, obj in pending:
                if ev.revision > revision:
                    self._apply(ev, obj, monitor)

    # -- the index ---------------------------------------------------------------------

    def _on_event(self, ev: store.Event, obj: dict | None = None) -> None:
        key = ev.kv.key
        node = self.nodes.get(key)
        monitor = node.monitor if node is not None else self._monitor(key)
        if monitor is None:
            return  # not a resource's object
        if monitor.policy:
            self._policy_changed()  # the authorizer's index (fed before listeners) has the change
        if monitor.pending is not None:
            monitor.pending.append((ev, obj))
        elif monitor.allowed and ev.revision > monitor.revision:
            self._apply(ev, obj, monitor)

    def _apply(self, ev: store.Event, obj: dict | None, monitor: _Monitor) -> None:
        key = ev.kv.key
        if ev.type == "DELETE":
            self._forget(key)
        else:
            node = self._index(key, ev.kv.value, monitor, obj)
            if node is not None:
                self._consider(key, node)

    def _forget(self, key: str) -> None:
        """The object is gone: its dependents and its deleting owners have a look."""
        node = self._unindex(key)
        if node is not None:
            for dep in self.dependents.get(node.uid, ()):
                self.queue.add(("dependent", dep))
            for ref in node.owners:
                owner_key = self.by_uid.get(ref.get("uid", ""))
                if owner_key is not None and self.nodes[owner_key].deleting:
                    self.queue.add(("owner", owner_key))

    def _index(self, key: str, value: bytes, monitor: _Monitor, obj: dict | None = None) -> _Node | None:
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
        node = _Node(uid, list(owners), deleting, finalizers, monitor)
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

