"""The ReplicaSet controller (upstream's `pkg/controller/replicaset/replica_set.go`), which also
runs ReplicationControllers, as upstream does (same code, the other type's names).

`sync(key)` claims the pods the set's selector matches (adopting orphans, releasing pods that
no longer match), creates the missing ones from the template or deletes the surplus in
upstream's order, unless expectations say the cache has not yet caught up with its previous
writes, and writes the status (replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas, observedGeneration, the ReplicaFailure condition) last, through `status`.

Thousands of pods per set are the normal case, so nothing here scans every pod per event:
the pod informer keeps an index of pods by controller uid (and of orphans by namespace), and
per set a tally (`lks.controllers.replicaset_tally`) of the counts its status needs, updated
by the pod handler. Pods are created in slow-start batches of 1, 2, 4 ... up to 500 per sync. The Deployment
controller (`lks.controllers.deployment`) drives ReplicaSets through their `spec.replicas`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lks.controllers import ownerindex
from lks.controllers import replicaset_tally as tally
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.kube import deletion, errors, selectors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WORKERS = 5  # kube-controller-manager's --concurrent-replicaset-syncs
# controllers build their bodies from stored objects: no decoding checks needed
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")


@dataclass(frozen=True)
class Kind:
    """The type a controller instance runs: ReplicaSet or ReplicationController."""

    group: str
    version: str
    resource: str
    kind: str
    component: str
    map_selector: bool  # ReplicationController selects with a plain label map

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def selector(self, obj: Obj) -> selectors.LabelSelector:
        sel = (obj.get("spec") or {}).get("selector")
        if self.map_selector:
            return selectors.from_label_selector_object({"matchLabels": sel or {}})
        return selectors.from_label_selector_object(sel)


REPLICA_SET = Kind("apps", "v1", "replicasets", "ReplicaSet", "replicaset-controller", False)
REPLICATION_CONTROLLER = Kind("", "v1", "replicationcontrollers", "ReplicationController",
                              "replication-controller", True)


class ReplicaSetController(Controller[str]):
    def __init__(self, cluster: Cluster, kind: Kind = REPLICA_SET):
        super().__init__(cluster, name=kind.resource, workers=WORKERS)
        self.kind = kind
        self.sets = cluster.registry(kind.group, kind.version, kind.resource)
        self.pods = cluster.registry("", "v1", "pods")
        self.set_informer = self.watch(self.sets, self._on_set)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.expectations = rsutil.Expectations(cluster.clock.now)
        self.recorder = EventRecorder(cluster, component=kind.component)
        self.budget = rsutil.EventBudget(cluster.clock.now)
        self.wakeups = rsutil.Wakeups(self.queue, cluster.clock.now)
        self.index = ownerindex.OwnerIndex()  # pods by controller
        self._tallies: dict[str, tally.Tally] = {}  # set uid -> its pods and status sums

    def prime(self) -> None:
        # index what the cache holds now, so the first syncs see every existing pod (the
        # informer's initial events arrive later and index the same pods again, harmlessly)
        assert self.pod_informer.cache is not None
        self.index.seed(self.pod_informer.cache.objects)

    # -- event handlers: they only index and enqueue ---------------------------------------

    def _set_key(self, obj: Obj) -> str:
        return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"

    def _on_set(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        key = self._set_key(obj)
        if kind == "DELETED":
            self.expectations.forget(key)
            self._tallies.pop(obj["metadata"].get("uid", ""), None)
        elif prev is not None and prev["metadata"].get("uid") != obj["metadata"].get("uid"):
            # a set re-created under the same name starts with clean expectations
            self.expectations.forget(key)
            self._tallies.pop(prev["metadata"].get("uid", ""), None)
        self.queue.add(key)

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = self.pods.key(meta.get("namespace"), meta["name"])
        if kind == "DELETED":
            self._track(key, None)
            self._pod_gone(pod, key)
            return
        self._track(key, pod)
        if prev is None:  # added (or re-listed)
            if "deletionTimestamp" in meta:
                self._pod_gone(pod, key)
                return
            ref = rsutil.controller_of(pod)
            if ref is not None:
                owner = self._resolve(meta.get("namespace"), ref)
                if owner is not None:
                    owner_key = self._set_key(owner)
                    self.expectations.creation_observed(owner_key)
                    self.queue.add(owner_key)
                return
            for owner in self._matching_sets(pod):
                self.queue.add(self._set_key(owner))
            return
        if meta.get("resourceVersion") == prev["metadata"].get("resourceVersion"):
            return
        label_changed = meta.get("labels") != prev["metadata"].get("labels")
        if "deletionTimestamp" in meta:
            # a graceful deletion started: replace the pod now, not once the kubelet is done
            self._pod_gone(pod, key)
            if label_changed:
                self._pod_gone(prev, key)
            return
        cur_ref, old_ref = rsutil.controller_of(pod), rsutil.controller_of(prev)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            old_owner = self._resolve(meta.get("namespace"), old_ref)
            if old_owner is not None:
                self.queue.add(self._set_key(old_owner))
        if cur_ref is not None:
            owner = self._resolve(meta.get("namespace"), cur_ref)
            if owner is None:
                return
            owner_key = self._set_key(owner)
            self.queue.add(owner_key)
            min_ready = int(owner["spec"].get("minReadySeconds") or 0)
            if min_ready and not rsutil.is_ready(prev) and rsutil.is_ready(pod):
                # the pod becomes available after minReadySeconds: look again then (+1 s skew)
                self.wakeups.schedule(owner_key, min_ready + 1)
            return
        if label_changed or ref_changed:
            for owner in self._matching_sets(pod):
                self.queue.add(self._set_key(owner))

    def _track(self, key: str, pod: Obj | None) -> None:
        """Index the pod by controller and bring the tallies of its old and new owner up to date."""
        old_uid = self.index.update(key, pod)
        ref = rsutil.controller_of(pod) if pod is not None else None
        uid = ref.get("uid") if ref is not None else None
        if old_uid and old_uid != uid and (old := self._tallies.get(old_uid)) is not None:
            old.put(key, None)
        if uid and (current := self._tallies.get(uid)) is not None:
            current.put(key, pod)

    def _pod_gone(self, pod: Obj, key: str) -> None:
        ref = rsutil.controller_of(pod)
        if ref is None:
            return
        owner = self._resolve(pod["metadata"].get("namespace"), ref)
        if owner is None:
            return
        owner_key = self._set_key(owner)
        self.expectations.deletion_observed(owner_key, key)
        self.queue.add(owner_key)

    def _resolve(self, namespace: str | None, ref: Obj) -> Obj | None:
        """The set a controller reference names, if it is of our kind and still the same one."""
        if ref.get("kind") != self.kind.kind:
            return None
        owner = self.set_informer.get(namespace, ref.get("name", ""))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return owner

    def _matching_sets(self, pod: Obj) -> list[Obj]:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        if not labels:
            return []
        return [s for s in self.set_informer.list()
                if s["metadata"].get("namespace") == ns and (sel := self.kind.selector(s)) and sel.matches(labels)]

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ns, _, name = key.partition("/")
        rs = self.set_informer.get(ns, name)
        if rs is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key)
        t = self._tally(rs)
        adopted = await self._claim_pods(rs, t)
        manage_err: Exception | None = None
        if needs_sync and "deletionTimestamp" not in rs["metadata"]:
            try:
                await self._manage_replicas(key, rs, t.claimed + len(adopted), lambda: t.claimed_pods() + adopted)
            except errors.APIError as err:
                manage_err = err
        now = self.cluster.clock.now()
        min_ready = int(rs["spec"].get("minReadySeconds") or 0)
        status = tally.calculate_status(rs, t.counts(min_ready, now, adopted), manage_err, now=now)
        updated = await self._update_status(rs, status)
        new = updated.get("status") or {}
        replicas = int(updated["spec"].get("replicas", 1))
        if manage_err is None and min_ready and new.get("readyReplicas", 0) == replicas \
                and new.get("availableReplicas", 0) != replicas:
            # a last line of defence against missed readiness changes
            self.wakeups.schedule(key, min_ready)
        if manage_err is not None:
            raise manage_err

    def _tally(self, rs: Obj) -> tally.Tally:
        """The set's tally, counted afresh from the cache when missing or outdated."""
        uid = rs["metadata"]["uid"]
        now = self.cluster.clock.now()
        t = self._tallies.get(uid)
        if t is not None and t.fits(rs, now):
            return t
        t = self._tallies[uid] = tally.Tally(rs, self.kind.selector(rs), now)
        assert self.pod_informer.cache is not None
        objects = self.pod_informer.cache.objects
        for key in list(self.index.owned_by(uid)):
            pod = objects.get(key)
            if pod is None:
                self.index.forget(key)  # gone; its DELETED event is on its way or was lost
            elif (rsutil.controller_of(pod) or {}).get("uid") == uid:
                t.put(key, pod)
        return t

    async def _claim_pods(self, rs: Obj, t: tally.Tally) -> list[Obj]:
        """claimPods beyond what the tally already counts: release the pods the set controls
        but no longer selects, adopt matching orphans. Returns the pods just adopted."""
        ns = rs["metadata"].get("namespace") or ""
        assert self.pod_informer.cache is not None
        objects = self.pod_informer.cache.objects
        unclaimed = [pod for key in list(t.unmatched) if (pod := objects.get(key)) is not None]
        if t.selector:  # an empty selector adopts nothing (validation forbids it anyway)
            for key in list(self.index.orphans_in(ns)):
                pod = objects.get(key)
                if pod is not None and rsutil.is_active(pod) and rsutil.controller_of(pod) is None \
                        and t.selector.matches(pod["metadata"].get("labels")):
                    unclaimed.append(pod)
        if not unclaimed:
            return []
        claimed = await rsutil.claim(
            unclaimed, owner=rs, matches=lambda p: t.selector.matches(p["metadata"].get("labels")),
            can_adopt=lambda: self._can_adopt(rs), adopt=lambda p: self._adopt(rs, p),
            release=lambda p: self._release(rs, p))
        return [p for p in claimed if rsutil.controller_of(p) is None]  # the ones adopted just now

    async def _can_adopt(self, rs: Obj) -> bool:
        """Adopt only if a fresh read shows the set is the same one and not being deleted."""
        meta = rs["metadata"]
        try:
            fresh = await self.sets.get(meta.get("namespace"), meta["name"])
        except errors.APIError as err:
            if err.code == 404:
                return False
            raise
        return fresh["metadata"].get("uid") == meta["uid"] and "deletionTimestamp" not in fresh["metadata"]

    async def _adopt(self, rs: Obj, pod: Obj) -> None:
        ref = rsutil.new_controller_ref(rs, api_version=self.kind.api_version, kind=self.kind.kind)
        meta = pod["metadata"]
        await self.pods.patch(meta.get("namespace"), meta["name"],
                              rsutil.adopt_patch(ref, meta["uid"], "pods", ""), WRITE)

    async def _release(self, rs: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        await self.pods.patch(meta.get("namespace"), meta["name"],
                              rsutil.release_patch(rs["metadata"]["uid"], meta["uid"]), WRITE)

    async def _manage_replicas(self, key: str, rs: Obj, active: int, pods: Callable[[], list[Obj]]) -> None:
        """Create or delete the difference between the `active` pods and `spec.replicas`
        (`pods()` lists them, only needed to choose whom to delete)."""
        diff = active - int(rs["spec"].get("replicas", 1))
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, rsutil.BURST_REPLICAS))
        elif diff > 0:
            await self._delete_pods(key, rs, pods(), min(diff, rsutil.BURST_REPLICAS))

    async def _create_pods(self, key: str, rs: Obj, n: int) -> None:
        meta = rs["metadata"]
        ns = meta.get("namespace")
        ref = rsutil.new_controller_ref(rs, api_version=self.kind.api_version, kind=self.kind.kind)
        # serialized once: decoding a fresh copy per pod is several times faster than deepcopy
        template = orjson.dumps(rsutil.pod_from_template(rs["spec"].get("template") or {}, meta["name"], ref))
        self.expectations.expect_creations(key, n)

        async def create_one() -> None:
            try:
                pod = await self.pods.create(ns, orjson.loads(template), WRITE)
            except errors.APIError as err:
                if _namespace_terminating(err):
                    return  # every create will fail; the namespace controller is removing us
                await self._event(rs, WARNING, "FailedCreate", f"Error creating: {err.message}")
                raise
            await self._event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

        created, err = await rsutil.slow_start_batch(n, rsutil.SLOW_START_INITIAL_BATCH, create_one)
        if created < n:
            # pods never created (or refused) will not show up in the cache: stop expecting them
            self.expectations.creation_observed(key, n - created)
        if err is not None:
            raise err

    async def _delete_pods(self, key: str, rs: Obj, pods: list[Obj], n: int) -> None:
        victims = rsutil.pods_to_delete(pods, self._related_pods(rs), n, self.cluster.clock.now())
        keys = [self.pods.key(p["metadata"].get("namespace"), p["metadata"]["name"]) for p in victims]
        self.expectations.expect_deletions(key, keys)

        async def delete_one(pod: Obj, pod_key: str) -> None:
            name = pod["metadata"]["name"]
            try:
                await self.pods.delete(pod["metadata"].get("namespace"), name, deletion.DeleteOptions())
            except errors.APIError as err:
                # the cache will not see this deletion: stop expecting it
                self.expectations.deletion_observed(key, pod_key)
                if err.code == 404:
                    return
                await self._event(rs, WARNING, "FailedDelete", f"Error deleting: {err.message}")
                raise
            await self._event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

        results = await asyncio.gather(*(delete_one(p, k) for p, k in zip(victims, keys, strict=True)),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """The pods of every set controlled by the same owner (getIndirectlyRelatedPods)."""
        ref = rsutil.controller_of(rs)
        if ref is None:
            return []
        assert self.pod_informer.cache is not None
        objects = self.pod_informer.cache.objects
        ns = rs["metadata"].get("namespace")
        out: list[Obj] = []
        for sibling in self.set_informer.list():
            sib_ref = rsutil.controller_of(sibling)
            if sibling["metadata"].get("namespace") != ns or sib_ref is None or sib_ref.get("uid") != ref.get("uid"):
                continue
            for key in self.index.owned_by(sibling["metadata"]["uid"]):
                pod = objects.get(key)
                if pod is not None:
                    out.append(pod)
        return out

    async def _event(self, rs: Obj, type_: str, reason: str, message: str) -> None:
        if self.budget.take(rs["metadata"]["uid"]):
            await self.recorder.record({**rs, "apiVersion": self.kind.api_version, "kind": self.kind.kind},
                                       type_, reason, message)

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write `status` (observedGeneration: the generation it was computed from) unless it is
        what the set already shows; returns the set as it now is."""
        if status == (rs.get("status") or {}):
            return rs
        meta = rs["metadata"]
        uid = meta["uid"]

        def put(current: Obj) -> Obj:
            if current["metadata"].get("uid") != uid:
                raise errors.conflict(self.kind.resource, self.kind.group, meta["name"], "the object has been replaced")
            current["status"] = status
            return current

        try:
            return await self.sets.patch(meta.get("namespace"), meta["name"], put, WRITE, subresource="status")
        except errors.APIError as err:
            if err.code in (404, 409):
                return rs  # gone or replaced: its own events bring it back
            raise


def _namespace_terminating(err: errors.APIError) -> bool:
    causes = (err.details or {}).get("causes") or ()
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)
