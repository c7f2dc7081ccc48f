"""What the StatefulSet, DaemonSet, Job and CronJob controllers share beyond the pod predicates
of `lks.controllers.replicaset_util`: pod creation and deletion that record upstream's
events (`controller.RealPodControl`), and per-key re-sync timers.

Read-your-writes instead of expectations: a controller's writes go through `PodControl`,
which remembers the highest revision written; `caught_up()` waits until the cluster's feed
(and so every informer cache) has reached it. A sync that ends with `caught_up()` leaves the
next sync a cache that already shows what it did, so it never creates a pod twice. Their
`lks.controllers.ownerindex.OwnerIndex` learns a created object at once for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
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
