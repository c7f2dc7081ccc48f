"""The Deployment controller (upstream's `pkg/controller/deployment`): a Deployment owns one
ReplicaSet per pod template it has had, named `<deployment>-<pod-template-hash>`, and moves
pods from the old sets to the new one by changing the sets' `spec.replicas`; the ReplicaSet
controller (`lks.controllers.replicaset`) does the pods.

`sync(key)` claims the Deployment's ReplicaSets, then, as upstream's `syncDeployment`: only
reports status while it is being deleted; while paused, or when only its size changed, scales
its sets proportionally; otherwise rolls out with its strategy. Those decisions live in
`lks.controllers.deployment_rollout`; this module keeps the informers, the new ReplicaSet
(named by the template hash) and the writes. The revision annotations written here (`deployment.kubernetes.io/revision` and
friends on every set) are what `kubectl rollout history|undo` read. The arithmetic lives in
`lks.controllers.deployment_util`.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from lks.controllers import deployment_rollout as rollout
from lks.controllers import deployment_util as du
from lks.controllers import ownerindex
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.controllers.replicaset import WRITE
from lks.kube import errors, selectors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WORKERS = 5  # --concurrent-deployment-syncs
CATCH_UP = 1.0  # seconds to wait for the cache to show our own last write
# the newest revision the running sync wrote (a holder, so writes in child tasks count too)
_written: contextvars.ContextVar[list[int]] = contextvars.ContextVar("deployment_written")


class DeploymentController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="deployment", workers=WORKERS)
        self.deployments = cluster.registry("apps", "v1", "deployments")
        self.sets = cluster.registry("apps", "v1", "replicasets")
        self.pods = cluster.registry("", "v1", "pods")
        self.d_informer = self.watch(self.deployments, self._on_deployment)
        self.rs_informer = self.watch(self.sets, self._on_replica_set)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.recorder = EventRecorder(cluster, component="deployment-controller")
        self.rs_index = ownerindex.OwnerIndex()
        self.pod_index = ownerindex.OwnerIndex()
        self.wakeups = rsutil.Wakeups(self.queue, cluster.clock.now)

    def prime(self) -> None:
        for informer, index in ((self.rs_informer, self.rs_index), (self.pod_informer, self.pod_index)):
            assert informer.cache is not None
            index.seed(informer.cache.objects)

    # -- event handlers: they only index and enqueue ---------------------------------------

    @staticmethod
    def key_of(obj: Obj) -> str:
        return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"

    def _on_deployment(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self.queue.add(self.key_of(obj))

    def _resolve(self, namespace: str | None, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.d_informer.get(namespace, ref.get("name", ""))
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return d

    def _deployments_selecting(self, rs: Obj) -> list[Obj]:
        """getDeploymentsForReplicaSet: the Deployments whose selector matches an orphan set."""
        meta = rs["metadata"]
        labels = meta.get("labels") or {}
        if not labels:
            return []
        out = []
        for d in self.d_informer.list():
            if d["metadata"].get("namespace") != meta.get("namespace"):
                continue
            sel = selectors.from_label_selector_object(d["spec"].get("selector"))
            if sel and sel.matches(labels):
                out.append(d)
        return out

    def _on_replica_set(self, kind: str, rs: Obj, prev: Obj | None) -> None:
        meta = rs["metadata"]
        self.rs_index.update(self.sets.key(meta.get("namespace"), meta["name"]), None if kind == "DELETED" else rs)
        ns = meta.get("namespace")
        ref = rsutil.controller_of(rs)
        if kind == "DELETED" or prev is None:
            d = self._resolve(ns, ref)
            if d is not None:
                self.queue.add(self.key_of(d))
            elif ref is None and kind != "DELETED":
                for d in self._deployments_selecting(rs):
                    self.queue.add(self.key_of(d))
            return
        if meta.get("resourceVersion") == prev["metadata"].get("resourceVersion"):
            return
        old_ref = rsutil.controller_of(prev)
        if old_ref != ref and old_ref is not None:
            old = self._resolve(ns, old_ref)
            if old is not None:
                self.queue.add(self.key_of(old))
        if ref is not None:
            d = self._resolve(ns, ref)
            if d is not None:
                self.queue.add(self.key_of(d))
            return
        if old_ref != ref or meta.get("labels") != prev["metadata"].get("labels"):
            for d in self._deployments_selecting(rs):
                self.queue.add(self.key_of(d))

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        self.pod_index.update(self.pods.key(meta.get("namespace"), meta["name"]), None if kind == "DELETED" else pod)
        if kind != "DELETED":
            return
        # a Recreate rollout waits for the old pods to be gone
        ref = rsutil.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.get(meta.get("namespace"), ref.get("name", ""))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return
        d = self._resolve(meta.get("namespace"), rsutil.controller_of(rs))
        if d is not None and not du.is_rolling_update(d):
            self.queue.add(self.key_of(d))

    # -- sync ------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ns, _, name = key.partition("/")
        cached = self.d_informer.get(ns, name)
        if cached is None:
            return
        written = [0]
        token = _written.set(written)
        try:
            await self._sync(du.clone(cached))
        except errors.APIError as err:
            if err.code != 409:
                raise
            # our cache was behind (a conflict on write): retry once it has caught up
            await rsutil.catch_up(self.cluster.feed, await self.cluster.store.current_revision(), CATCH_UP)
            self.queue.add(key)
            return
        finally:
            _written.reset(token)
        if written[0]:
            # the next sync of this key must see what this one wrote, or it would act again
            await rsutil.catch_up(self.cluster.feed, written[0], CATCH_UP)

    async def _sync(self, d: Obj) -> None:
        """syncDeployment."""
        if not d["spec"].get("selector"):
            await self._event(d, WARNING, "SelectingAll",
                              "This deployment is selecting all pods. A non-empty selector is required.")
            status = d.get("status") or {}
            if int(status.get("observedGeneration") or 0) < d["metadata"].get("generation", 0):
                await self.write_status(d, {**status, "observedGeneration": d["metadata"]["generation"]})
            return
        rss = await self._claim_replica_sets(d)
        if "deletionTimestamp" in d["metadata"]:
            new_rs, olds = await self.get_all_replica_sets(d, rss, create=False)
            await self.sync_status(d, [*olds, new_rs], new_rs)
            return
        await rollout.check_paused_conditions(self, d)
        if d["spec"].get("paused") or await rollout.is_scaling_event(self, d, rss):
            await rollout.sync_scale(self, d, rss)
            return
        if du.is_rolling_update(d):
            await rollout.rollout_rolling(self, d, rss)
        else:
            await rollout.rollout_recreate(self, d, rss)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        """getReplicaSetsForDeployment: the sets this Deployment controls, adopting orphans its
        selector matches and releasing sets it no longer selects."""
        meta = d["metadata"]
        ns = meta.get("namespace") or ""
        assert self.rs_informer.cache is not None
        objects = self.rs_informer.cache.objects
        candidates = []
        for key in [*self.rs_index.owned_by(meta["uid"]), *self.rs_index.orphans_in(ns)]:
            rs = objects.get(key)
            if rs is None:
                self.rs_index.forget(key)
            elif rs["metadata"].get("namespace") == ns:
                candidates.append(rs)
        selector = selectors.from_label_selector_object(d["spec"].get("selector"))

        async def can_adopt() -> bool:
            try:
                fresh = await self.deployments.get(ns, meta["name"])
            except errors.APIError as err:
                if err.code == 404:
                    return False
                raise
            return fresh["metadata"].get("uid") == meta["uid"] and "deletionTimestamp" not in fresh["metadata"]

        async def adopt(rs: Obj) -> None:
            ref = rsutil.new_controller_ref(d, api_version="apps/v1", kind="Deployment")
            await self.sets.patch(ns, rs["metadata"]["name"],
                                  rsutil.adopt_patch(ref, rs["metadata"]["uid"], "replicasets", "apps"), WRITE)

        async def release(rs: Obj) -> None:
            await self.sets.patch(ns, rs["metadata"]["name"],
                                  rsutil.release_patch(meta["uid"], rs["metadata"]["uid"]), WRITE)

        return await rsutil.claim(candidates, owner=d, matches=lambda o: selector.matches(o["metadata"].get("labels")),
                                  can_adopt=can_adopt, adopt=adopt, release=release)

    def pod_map(self, rss: list[Obj]) -> dict[str, list[Obj]]:
        """The pods of each set, by set uid (getPodMapForDeployment), terminating ones included."""
        assert self.pod_informer.cache is not None
        objects = self.pod_informer.cache.objects
        out: dict[str, list[Obj]] = {}
        for rs in rss:
            uid = rs["metadata"]["uid"]
            out[uid] = [p for k in self.pod_index.owned_by(uid) if (p := objects.get(k)) is not None]
        return out

    # -- the new and old sets ---------------------------------------------------------------

    async def get_all_replica_sets(self, d: Obj, rss: list[Obj], *, create: bool) -> tuple[Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision: (the new set, every old one), the new set's and the
        Deployment's revision brought up to date. Writes replace their objects in `rss`."""
        _, olds = du.find_old_replica_sets(d, rss)
        new_rs = await self._new_replica_set(d, rss, olds, create)
        return new_rs, olds

    async def _new_replica_set(self, d: Obj, rss: list[Obj], olds: list[Obj], create: bool) -> Obj | None:
        """getNewReplicaSet."""
        existing = du.find_new_replica_set(d, rss)
        new_revision = du.max_revision(olds) + 1
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        now = self.cluster.clock.now()
        if existing is not None:
            rs = du.clone(existing)
            annotated = du.set_new_replica_set_annotations(d, rs, new_revision, True)
            if annotated or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
                _set_min_ready(rs, min_ready)
                return await self.update_replica_set(rs, rss)
            revised = _set_revision(d, (rs["metadata"].get("annotations") or {}).get(du.REVISION, ""))
            status = du.clone(d.get("status") or {})
            if du.has_progress_deadline(d) and du.get_condition(status, "Progressing") is None:
                du.set_condition(status, du.new_condition("Progressing", "True", du.FOUND_NEW_RS,
                                                          f'Found new replica set "{rs["metadata"]["name"]}"', now))
            await self._persist(d, revised, status)
            return rs
        if not create:
            return None
        return await self._create_new_replica_set(d, rss, olds, new_revision, min_ready)

    async def _create_new_replica_set(self, d: Obj, rss: list[Obj], olds: list[Obj], new_revision: int,
                                      min_ready: int) -> Obj:
        meta = d["metadata"]
        ns, now = meta.get("namespace"), self.cluster.clock.now()
        status = du.clone(d.get("status") or {})
        hash_ = du.compute_hash(d["spec"].get("template") or {}, status.get("collisionCount"))
        template = du.template_with_hash(d["spec"].get("template") or {}, hash_)
        name = f"{meta['name']}-{hash_}"
        new_rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [rsutil.new_controller_ref(d, api_version="apps/v1", kind="Deployment")]},
            "spec": {"replicas": 0, "selector": du.selector_with_hash(d["spec"].get("selector"), hash_),
                     "template": template},
        }
        _set_min_ready(new_rs, min_ready)
        count = du.new_rs_new_replicas(d, [*olds, new_rs], new_rs)
        new_rs["spec"]["replicas"] = count
        du.set_new_replica_set_annotations(d, new_rs, new_revision, False)
        already = False
        try:
            created = await self.sets.create(ns, du.clone(new_rs), WRITE)
            self._wrote(created)
        except errors.APIError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                found = await self.sets.get(ns, name)
                ref = rsutil.controller_of(found)
                if ref is not None and ref.get("uid") == meta["uid"] and du.equal_ignore_hash(
                        d["spec"].get("template") or {}, found["spec"].get("template") or {}):
                    created, already = found, True  # ours: a stale cache made us try again
                else:
                    # a hash collision: another name next time
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self.write_status(d, status)
                    raise errors.APIError(500, "InternalError",
                                          f'replica set "{name}" already exists and is not ours; '
                                          f'collisionCount is now {status["collisionCount"]}') from err
            elif any(c.get("reason") == "NamespaceTerminating" for c in (err.details or {}).get("causes") or ()):
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {err.message}'
                if du.has_progress_deadline(d):
                    du.set_condition(status, du.new_condition("Progressing", "False", du.FAILED_RS_CREATE, msg, now))
                    try:
                        await self.write_status(d, status)
                    except errors.APIError:
                        pass  # the failure below is what matters
                await self._event(d, WARNING, du.FAILED_RS_CREATE, msg)
                raise
        if not already and count > 0:
            await self._event(d, NORMAL, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {count}")
        if all(rs["metadata"]["uid"] != created["metadata"]["uid"] for rs in rss):
            rss.append(created)
        # the index learns of the new set now: its informer event may come after our next sync
        self.rs_index.update(self.sets.key(ns, name), created)
        revised = _set_revision(d, str(new_revision))
        if not already and du.has_progress_deadline(d):
            du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_CREATED,
                                                      f'Created new replica set "{name}"', now))
        await self._persist(d, revised, status)
        return created

    # -- writes ----------------------------------------------------------------------------------

    def _wrote(self, obj: Obj) -> None:
        holder = _written.get(None)
        if holder is not None:
            holder[0] = max(holder[0], int(obj["metadata"].get("resourceVersion") or 0))

    async def update_replica_set(self, rs: Obj, rss: list[Obj] | None = None) -> Obj:
        """Write a changed copy of a set (optimistically: a stale copy is a 409), replacing the
        old copy in `rss`."""
        meta = rs["metadata"]
        updated, _ = await self.sets.update(meta.get("namespace"), meta["name"], rs, WRITE)
        self._wrote(updated)
        if rss is not None:
            for i, old in enumerate(rss):
                if old["metadata"]["uid"] == updated["metadata"]["uid"]:
                    rss[i] = updated
        return updated

    async def write_status(self, d: Obj, status: Obj) -> None:
        """UpdateStatus with the Deployment's resourceVersion; `d` follows what was written."""
        status = du.omit_empty(status)
        meta = d["metadata"]
        updated, _ = await self.deployments.update(meta.get("namespace"), meta["name"], {**d, "status": status},
                                                   WRITE, subresource="status")
        self._wrote(updated)
        meta["resourceVersion"] = updated["metadata"]["resourceVersion"]
        d["status"] = updated.get("status") or {}

    async def _persist(self, d: Obj, revised: bool, status: Obj) -> None:
        """Write the revision annotation (if it changed) and `status` (if it changed). Upstream
        sends both in one UpdateStatus; here the status subresource keeps annotations as stored,
        so the annotation goes through the main resource."""
        if revised:
            meta = d["metadata"]
            value = (meta.get("annotations") or {}).get(du.REVISION)
            uid = meta["uid"]

            def annotate(current: Obj) -> Obj:
                if current["metadata"].get("uid") != uid:
                    raise errors.conflict("deployments", "apps", meta["name"], "the object has been replaced")
                current["metadata"]["annotations"] = {**(current["metadata"].get("annotations") or {}),
                                                      du.REVISION: value}
                return current

            updated = await self.deployments.patch(meta.get("namespace"), meta["name"], annotate, WRITE)
            self._wrote(updated)
            meta["resourceVersion"] = updated["metadata"]["resourceVersion"]
        if du.omit_empty(status) != (d.get("status") or {}):
            await self.write_status(d, status)

    async def _event(self, d: Obj, type_: str, reason: str, message: str) -> None:
        await self.recorder.record({**d, "apiVersion": "apps/v1", "kind": "Deployment"}, type_, reason, message)

    # -- scaling (sync.go) ----------------------------------------------------------------------

    async def scale_replica_set(self, rs: Obj, new_scale: int, d: Obj, rss: list[Obj] | None = None,
                                operation: str | None = None) -> tuple[bool, Obj]:
        """scaleReplicaSet(AndRecordEvent): set a set's size and replica annotations, with a
        ScalingReplicaSet event when the size changed."""
        old_scale = du.replicas(rs)
        size_changes = old_scale != new_scale
        desired, max_ = du.replicas(d), du.replicas(d) + du.max_surge(d)
        if not size_changes and not du.replicas_annotations_need_update(rs, desired, max_):
            return False, rs
        changed = du.clone(rs)
        changed["spec"]["replicas"] = new_scale
        du.set_replicas_annotations(changed, desired, max_)
        updated = await self.update_replica_set(changed, rss)
        if size_changes:
            op = operation if operation is not None else ("up" if old_scale < new_scale else "down")
            await self._event(d, NORMAL, "ScalingReplicaSet",
                              f"Scaled {op} replica set {rs['metadata']['name']} from {old_scale} to {new_scale}")
        return size_changes, updated

    async def sync_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        """syncDeploymentStatus: the counts and Available condition, written if they changed."""
        status = du.calculate_status(all_rss, new_rs, d, self.cluster.clock.now())
        if du.omit_empty(status) != (d.get("status") or {}):
            await self.write_status(d, status)


def _set_min_ready(rs: Obj, seconds: int) -> None:
    if seconds:
        rs["spec"]["minReadySeconds"] = seconds
    else:
        rs["spec"].pop("minReadySeconds", None)


def _set_revision(d: Obj, revision: str) -> bool:
    """SetDeploymentRevision on the working copy; whether it changed."""
    ann = d["metadata"].get("annotations") or {}
    if ann.get(du.REVISION) == revision:
        return False
    d["metadata"]["annotations"] = {**ann, du.REVISION: revision}
    return True
