"""What the StatefulSet, DaemonSet, Job and CronJob controllers share beyond the pod predicates
of `lks.controllers.replicaset_util`: an index of dependents by their controller, pod
creation and deletion that record upstream's events (`controller.RealPodControl`), and
per-key re-sync timers.

Read-your-writes instead of expectations: a controller's writes go through `PodControl`,
which remembers the highest revision written; `caught_up()` waits until the cluster's feed
(and so every informer cache) has reached it. A sync that ends with `caught_up()` leaves the
next sync a cache that already shows what it did, so it never creates a pod twice. The
`OwnerIndex` learns a created object at once for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from lks.controllers import replicaset_util as rsutil
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.controllers.workqueue import WorkQueue
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]
K = TypeVar("K", bound=Hashable)

CATCH_UP_TIMEOUT = 5.0  # seconds to wait for the feed to show our own writes
# controllers build their bodies from stored objects: no decoding checks; managedFields
# name the controller manager, as upstream's
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")


def is_terminating(pod: Obj) -> bool:
    return "deletionTimestamp" in pod["metadata"]


def is_finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def object_key(obj: Obj) -> str:
    """`namespace/name`, the work queue key of a namespaced object."""
    meta = obj["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


class OwnerIndex:
    """Store keys of objects by the uid of their controller, plus the orphans of each
    namespace (adoption candidates). Fed by an informer's events (`observe`) and by the
    controller's own creations (`add`), so it may hold keys the cache has not caught up with
    or already dropped: `resolve` reads the keys through the cache."""

    def __init__(self) -> None:
        self._by_owner: dict[str, set[str]] = {}
        self._owner_of: dict[str, str] = {}  # key -> owner uid ("" for an orphan)
        self._orphans: dict[str, set[str]] = {}  # namespace -> keys

    def seed(self, objects: dict[str, Obj]) -> None:
        """Index what a just-started informer's cache holds (store key -> object), before the
        first sync: its events reach the handler only later, and a sync that saw no pods
        would create them again."""
        for key, obj in list(objects.items()):
            self.observe(key, obj, deleted=False)

    def observe(self, key: str, obj: Obj, *, deleted: bool) -> None:
        ref = None if deleted else rsutil.controller_of(obj)
        if not deleted and self._owner_of.get(key) == (ref.get("uid", "") if ref is not None else ""):
            return  # the usual update: same owner (a key's namespace never changes)
        self._forget(key)
        if deleted:
            return
        if ref is None:
            self._orphans.setdefault(obj["metadata"].get("namespace") or "", set()).add(key)
            self._owner_of[key] = ""
        else:
            self.add(ref.get("uid", ""), key)

    def add(self, owner_uid: str, key: str) -> None:
        self._forget(key)
        self._by_owner.setdefault(owner_uid, set()).add(key)
        self._owner_of[key] = owner_uid

    def _forget(self, key: str) -> None:
        owner = self._owner_of.pop(key, None)
        if owner is None:
            return
        if owner:
            keys = self._by_owner.get(owner)
        else:
            keys = next((ks for ks in self._orphans.values() if key in ks), None)
        if keys is not None:
            keys.discard(key)
            if not keys and owner:
                del self._by_owner[owner]

    def owned(self, owner_uid: str, objects: dict[str, Obj]) -> list[Obj]:
        """The cached objects `owner_uid` controls."""
        return self.resolve(self._by_owner.get(owner_uid, ()), objects, owner_uid)

    def orphans(self, namespace: str, objects: dict[str, Obj]) -> list[Obj]:
        return self.resolve(self._orphans.get(namespace, ()), objects, None)

    @staticmethod
    def resolve(keys: Iterable[str], objects: dict[str, Obj], owner_uid: str | None) -> list[Obj]:
        out = []
        for key in list(keys):
            obj = objects.get(key)
            if obj is None:
                continue
            ref = rsutil.controller_of(obj)
            if (ref.get("uid") if ref else None) == owner_uid:
                out.append(obj)
        return out


class PodControl:
    """Creates and deletes a controller's pods, recording `SuccessfulCreate`/`FailedCreate`
    and `SuccessfulDelete`/`FailedDelete` on the owner as upstream's RealPodControl does
    (spam-filtered per owner like client-go's recorder), and remembering what it wrote."""

    def __init__(self, cluster: Cluster, recorder: EventRecorder):
        self.cluster = cluster
        self.recorder = recorder
        self.pods = cluster.registry("", "v1", "pods")
        self.budget = rsutil.EventBudget(cluster.clock.now)
        self.revision = 0

    def wrote(self, obj: Obj) -> None:
        """Note a write answered with `obj`, so `caught_up` waits for it."""
        try:
            self.revision = max(self.revision, int(obj["metadata"].get("resourceVersion") or 0))
        except (TypeError, ValueError):
            pass

    async def caught_up(self) -> None:
        """Wait until the caches show every write made through this control."""
        if self.revision and not await self.cluster.feed.wait_for(self.revision, CATCH_UP_TIMEOUT):
            log.warning("the cluster feed did not reach revision %d in time", self.revision)

    async def event(self, owner: Obj, type_: str, reason: str, message: str) -> None:
        if self.budget.take(owner["metadata"].get("uid", "")):
            await self.recorder.record(owner, type_, reason, message)

    async def create(self, pod: Obj, owner: Obj, *, record: bool = True) -> Obj:
        """Create `pod` in the owner's namespace; raises the APIError after recording it."""
        namespace = owner["metadata"]["namespace"]
        try:
            created = await self.pods.create(namespace, pod, WRITE)
        except errors.APIError as err:
            if record and not _namespace_terminating(err):
                await self.event(owner, WARNING, "FailedCreate", f"Error creating: {err.message}")
            raise
        self.wrote(created)
        if record:
            await self.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    async def delete(self, pod: Obj, owner: Obj, *, record: bool = True,
                     options: deletion.DeleteOptions | None = None) -> bool:
        """Delete (or start deleting) `pod`; False if it was already gone."""
        meta = pod["metadata"]
        opts = options or deletion.DeleteOptions(preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        try:
            answer, _ = await self.pods.delete(meta["namespace"], meta["name"], opts)
        except errors.APIError as err:
            if err.code == 404 or (err.code == 409 and opts.preconditions):
                return False  # gone, or replaced by a namesake
            if record:
                await self.event(owner, WARNING, "FailedDelete", f"Error deleting: {err.message}")
            raise
        self.wrote(answer)
        if record:
            await self.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")
        return True

    async def patch(self, pod: Obj, fn: Callable[[Obj], Obj], *, subresource: str | None = None) -> Obj | None:
        """Patch `pod` by `fn` (given a copy of the current pod); None if it is gone."""
        meta = pod["metadata"]
        try:
            patched = await self.pods.patch(meta["namespace"], meta["name"], fn, WRITE, subresource=subresource)
        except errors.APIError as err:
            if err.code == 404:
                return None
            raise
        self.wrote(patched)
        return patched


def _namespace_terminating(err: errors.APIError) -> bool:
    causes = (err.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


class Deadlines(Generic[K]):
    """Re-sync timers on the cluster clock, one pending per key: a timer is only added when
    no earlier one is pending, since the sync it triggers arms the next. Keeps a CronJob or a
    Job with a deadline from piling up sleeping tasks each time it is synced."""

    def __init__(self, queue: WorkQueue[K], clock: Any):
        self.queue = queue
        self.clock = clock
        self._due: dict[K, float] = {}

    def after(self, key: K, seconds: float) -> None:
        now = self.clock.now()
        due = now + max(seconds, 0.0)
        pending = self._due.get(key)
        if pending is not None and now < pending <= due:
            return
        self._due[key] = due
        self.queue.add_after(key, max(seconds, 0.0))

    def forget(self, key: K) -> None:
        self._due.pop(key, None)
