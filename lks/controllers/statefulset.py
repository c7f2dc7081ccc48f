"""The StatefulSet controller (upstream's `pkg/controller/statefulset`): pods with a stable
identity, `<set>-0` … `<set>-N-1`, each with its own PersistentVolumeClaims.

`sync` follows `updateStatefulSet`: work out the current and update ControllerRevisions
(`lks.controllers.history`), then walk the replicas in ordinal order, creating what is
missing and recreating what failed. Under `OrderedReady` each pod waits for its predecessor
to be Running and Ready (and available), and scale-down removes the highest ordinal first,
one at a time; `Parallel` does it all at once. Then the rolling update deletes pods at an old
revision from the highest ordinal down to the partition, at most `maxUnavailable` unhealthy
at a time (`OnDelete` leaves that to the user), and the recreated pods come back at the update
revision. Status goes last. Pod shapes and claims are in `lks.controllers.statefulset_util`.
"""

from __future__ import annotations

import logging
from typing import Any

from lks.controllers import history, ownerindex, podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers import statefulset_util as ssu
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.controllers.informer import Informer
from lks.kube import errors, selectors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class StatefulSetController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="statefulset")
        self.sets = cluster.registry("apps", "v1", "statefulsets")
        self.pods = cluster.registry("", "v1", "pods")
        self.claims = cluster.registry("", "v1", "persistentvolumeclaims")
        self.recorder = EventRecorder(cluster, component="statefulset-controller")
        self.control = podcontrol.PodControl(cluster, self.recorder)
        self.history = history.History(cluster)
        self.deadlines = podcontrol.Deadlines(self.queue, cluster.clock)
        self.pods_by_owner = ownerindex.OwnerIndex()
        self.revisions_by_owner = ownerindex.OwnerIndex()
        self.claim_informer = self.watch(self.claims, lambda *_: None)
        self.revision_informer = self.watch(self.history.registry, self._on_revision)
        self.set_informer = self.watch(self.sets, self._on_set)
        self.pod_informer = self.watch(self.pods, self._on_pod)

    # -- events ----------------------------------------------------------------------------

    def _on_set(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.queue.add(podcontrol.object_key(obj))

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        self.pods_by_owner.observe(self.pods.key(meta["namespace"], meta["name"]), pod, deleted=kind == "DELETED")
        for obj in (pod, prev):
            ref = rsutil.controller_of(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == ssu.KIND:
                self.queue.add(f"{meta['namespace']}/{ref['name']}")
        if kind != "DELETED" and rsutil.controller_of(pod) is None and self.set_informer.cache is not None:
            # an orphan: the sets that would adopt it
            for sts in self.set_informer.list():
                if sts["metadata"]["namespace"] == meta["namespace"] and _selector(sts).matches(meta.get("labels")):
                    self.queue.add(podcontrol.object_key(sts))

    def _on_revision(self, kind: str, rev: Obj, _prev: Obj | None) -> None:
        meta = rev["metadata"]
        self.revisions_by_owner.observe(self.history.registry.key(meta["namespace"], meta["name"]), rev,
                                        deleted=kind == "DELETED")

    def prime(self) -> None:
        self.pods_by_owner.seed(self._cached(self.pod_informer))
        self.revisions_by_owner.seed(self._cached(self.revision_informer))

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        sts = self.set_informer.get(namespace, name)
        if sts is None:
            self.deadlines.forget(key)
            return
        pods = await self._claim_pods(sts)
        revisions = self.revisions_by_owner.owned(sts["metadata"]["uid"], self._cached(self.revision_informer))
        current, update, collisions = await self._revisions(sts, revisions)
        try:
            await self._update(sts, current, update, pods)
        finally:
            await self.control.caught_up()
            await self.cluster.feed.wait_for(self.history.revision, podcontrol.CATCH_UP_TIMEOUT)
        pods = self.pods_by_owner.owned(sts["metadata"]["uid"], self._cached(self.pod_informer))
        status = self._status(sts, current, update, collisions, pods)
        await self._write_status(sts, status)
        live = {ssu.revision_of(p) for p in pods} | {current["metadata"]["name"], update["metadata"]["name"]}
        revisions = self.revisions_by_owner.owned(sts["metadata"]["uid"], self._cached(self.revision_informer))
        await self.history.truncate(revisions, live, int(sts["spec"].get("revisionHistoryLimit", 10)))
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if min_ready and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            self.deadlines.after(key, min_ready)

    @staticmethod
    def _cached(informer: Informer) -> dict[str, Obj]:
        assert informer.cache is not None
        return informer.cache.objects

    async def _claim_pods(self, sts: Obj) -> list[Obj]:
        """The set's pods: those it controls, plus matching orphans it adopts (release those
        whose labels no longer match)."""
        meta = sts["metadata"]
        objects = self._cached(self.pod_informer)
        candidates = (self.pods_by_owner.owned(meta["uid"], objects)
                      + self.pods_by_owner.orphans(meta["namespace"], objects))
        selector = _selector(sts)
        ref = rsutil.new_controller_ref(sts, api_version=ssu.API_VERSION, kind=ssu.KIND)

        async def can_adopt() -> bool:
            try:
                fresh = await self.sets.get(meta["namespace"], meta["name"])
            except errors.APIError:
                return False
            return fresh["metadata"]["uid"] == meta["uid"] and "deletionTimestamp" not in fresh["metadata"]

        async def adopt(pod: Obj) -> None:
            patched = await self.control.patch(pod, rsutil.adopt_patch(ref, pod["metadata"]["uid"], "pods", ""))
            if patched is not None:
                self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], pod["metadata"]["name"]))

        async def release(pod: Obj) -> None:
            await self.control.patch(pod, rsutil.release_patch(meta["uid"], pod["metadata"]["uid"]))

        def matches(pod: Obj) -> bool:
            # a pod of another set whose name this one's prefix also fits is not ours
            return selector.matches(pod["metadata"].get("labels")) and ssu.parent_and_ordinal(pod)[0] == meta["name"]

        return await rsutil.claim(candidates, owner=sts, matches=matches, can_adopt=can_adopt, adopt=adopt,
                                  release=release)

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """getStatefulSetRevisions: (current, update, collisionCount). The update revision is
        the template now; an equal older revision is reused (a rollback renumbers it)."""
        revisions = sorted(revisions, key=history.sort_key)
        status = sts.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        template = sts["spec"].get("template") or {}
        data = history.template_patch(template)
        number = history.next_number(revisions)

        def build(count: int) -> Obj:
            hash_ = history.compute_hash(data, count)
            labels = {**((template.get("metadata") or {}).get("labels") or {}), history.HASH_LABEL: hash_}
            return history.new_revision(sts, api_version=ssu.API_VERSION, kind=ssu.KIND, labels=labels, data=data,
                                        number=number, name=history.revision_name(sts["metadata"]["name"], hash_),
                                        annotations=sts["metadata"].get("annotations"))

        wanted = build(collisions)
        equal = [r for r in revisions if history.equal(r, wanted)]
        if equal and revisions and history.equal(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self.history.renumber(equal[-1], number)
        else:
            update, collisions = await self.history.create(sts, build, collisions)
        current = next((r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update)
        return current, update, collisions

    async def _update(self, sts: Obj, current: Obj, update: Obj, pods: list[Obj]) -> None:
        """updateStatefulSet: bring the pods to the spec, in the order the policy asks."""
        spec = sts["spec"]
        start = ssu.start_ordinal(sts)
        count = int(spec.get("replicas", 1))
        replicas: list[Obj | None] = [None] * count
        condemned: list[Obj] = []
        for pod in pods:
            ord_ = ssu.ordinal(pod)
            if start <= ord_ < start + count:
                replicas[ord_ - start] = pod
            elif ord_ >= 0:
                condemned.append(pod)
        slots = [p if p is not None else ssu.versioned_pod(sts, current, update, start + i) for i, p in enumerate(replicas)]
        condemned.sort(key=ssu.ordinal, reverse=True)
        first_unhealthy = next((p for p in [*slots, *reversed(condemned)] if not ssu.is_healthy(p)), None)
        if "deletionTimestamp" in sts["metadata"]:
            return
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        blocked = False
        for i in range(count):
            if await self._process_replica(sts, current, update, slots, i, monotonic):
                blocked = True
                if monotonic:
                    return
        if blocked:
            return
        for pod in condemned:  # retention policy: a scaled-down pod owns its claims before it goes
            await self._fix_claims(sts, pod)
        for pod in condemned:
            if await self._process_condemned(sts, pod, first_unhealthy, monotonic) and monotonic:
                return
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "OnDelete":
            return
        await self._rolling_update(sts, update, slots)

    async def _process_replica(self, sts: Obj, current: Obj, update: Obj, slots: list[Obj], i: int,
                               monotonic: bool) -> bool:
        """processReplica; True when the walk must stop here (monotonic) or went wrong."""
        pod = slots[i]
        now = self.cluster.clock.now()
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if ssu.is_created(pod) and ssu.phase(pod) in ("Failed", "Succeeded"):
            ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
            if ssu.phase(pod) == "Failed":
                await self.control.event(sts, WARNING, "RecreatingFailedPod",
                                         f"StatefulSet {ns}/{name} is recreating failed Pod {pod['metadata']['name']}")
            else:
                await self.control.event(sts, NORMAL, "RecreatingTerminatedPod",
                                         f"StatefulSet {ns}/{name} is recreating terminated Pod {pod['metadata']['name']}")
            await self._delete_pod(sts, pod)
            pod = slots[i] = ssu.versioned_pod(sts, current, update, ssu.start_ordinal(sts) + i)
        if not ssu.is_created(pod):
            if await self._claims_stale(sts, pod):
                return True  # the garbage collector is removing the old pod's claims first
            await self._create_pod(sts, pod)
            return monotonic
        if ssu.phase(pod) == "Pending":
            await self._create_claims(sts, pod)
        if monotonic and (ssu.is_terminating(pod) or not ssu.is_running_and_available(pod, min_ready, now)):
            return True
        if not ssu.identity_matches(sts, pod) or not await self._fix_claims(sts, pod, check_only=True):
            await self._update_pod(sts, pod)
        return False

    async def _process_condemned(self, sts: Obj, pod: Obj, first_unhealthy: Obj | None, monotonic: bool) -> bool:
        """processCondemned: delete a pod beyond the replicas; True when the walk must wait."""
        if ssu.is_terminating(pod):
            return True
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if monotonic and pod is not first_unhealthy and not ssu.is_running_and_available(
                pod, min_ready, self.cluster.clock.now()):
            return True
        await self._delete_pod(sts, pod)
        return True

    async def _rolling_update(self, sts: Obj, update: Obj, slots: list[Obj]) -> None:
        """updateStatefulSetAfterInvariantEstablished, with MaxUnavailableStatefulSet (on by
        default since 1.35): delete up to maxUnavailable pods at an old revision, highest
        ordinal first, never below the partition, counting pods already unavailable."""
        rolling = (sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        partition = int(rolling.get("partition") or 0)
        max_unavailable = max(ssu.scaled_value(rolling.get("maxUnavailable", 1), len(slots), round_up=False), 1)
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        now = self.cluster.clock.now()
        unavailable = sum(1 for p in slots if not ssu.is_running_and_available(p, min_ready, now) or ssu.is_terminating(p))
        budget = max_unavailable - unavailable
        for i in range(len(slots) - 1, partition - 1, -1):
            if budget <= 0:
                return
            pod = slots[i]
            if ssu.is_created(pod) and ssu.revision_of(pod) != update["metadata"]["name"] and not ssu.is_terminating(pod):
                await self._delete_pod(sts, pod)
                budget -= 1

    # -- writes ------------------------------------------------------------------------------

    async def _create_pod(self, sts: Obj, pod: Obj) -> None:
        """CreateStatefulPod: its claims first, then the pod, then the claims' owners."""
        await self._create_claims(sts, pod)
        try:
            created = await self.control.create(pod, sts, record=False)
        except errors.APIError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                raise  # the cache is behind; the retry sees the pod
            await self._pod_event(sts, "create", pod, err)
            raise
        meta = sts["metadata"]
        self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], created["metadata"]["name"]))
        await self._fix_claims(sts, created)
        await self._pod_event(sts, "create", created, None)

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        try:
            await self.control.delete(pod, sts, record=False)
        except errors.APIError as err:
            await self._pod_event(sts, "delete", pod, err)
            raise
        await self._pod_event(sts, "delete", pod, None)

    async def _update_pod(self, sts: Obj, pod: Obj) -> None:
        """UpdateStatefulPod: restore the identity labels and the claims a pod lost."""
        def fix(current: Obj) -> Obj:
            ssu.set_identity_labels(current)
            return current

        await self._create_claims(sts, pod)
        await self._fix_claims(sts, pod)
        if not ssu.identity_matches(sts, pod):
            try:
                await self.control.patch(pod, fix)
            except errors.APIError as err:
                await self._pod_event(sts, "update", pod, err)
                raise
            await self._pod_event(sts, "update", pod, None)

    async def _pod_event(self, sts: Obj, verb: str, pod: Obj, err: errors.APIError | None) -> None:
        """recordPodEvent, worded as upstream."""
        name, set_name = pod["metadata"]["name"], sts["metadata"]["name"]
        if err is None:
            await self.control.event(sts, NORMAL, f"Successful{verb.capitalize()}",
                                     f"{verb} Pod {name} in StatefulSet {set_name} successful")
        else:
            await self.control.event(sts, WARNING, f"Failed{verb.capitalize()}",
                                     f"{verb} Pod {name} in StatefulSet {set_name} failed error: {err.message}")

    async def _create_claims(self, sts: Obj, pod: Obj) -> None:
        """createPersistentVolumeClaims: the pod's missing claims (no provisioning here)."""
        cached = self._cached(self.claim_informer)
        problems = []
        for claim in ssu.claims_for(sts, ssu.ordinal(pod)).values():
            meta = claim["metadata"]
            existing = cached.get(self.claims.key(meta["namespace"], meta["name"]))
            if existing is not None:
                if "deletionTimestamp" in existing["metadata"]:
                    problems.append(f"pvc {meta['name']} is being deleted")
                continue
            message = f"Claim {meta['name']} Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
            try:
                created = await self.claims.create(meta["namespace"], claim, podcontrol.WRITE)
            except errors.APIError as err:
                if err.code == 409 and err.reason == "AlreadyExists":
                    continue
                await self.control.event(sts, WARNING, "FailedCreate", f"create {message} failed error: {err.message}")
                problems.append(f"failed to create PVC {meta['name']}: {err.message}")
                continue
            self.control.wrote(created)
            await self.control.event(sts, NORMAL, "SuccessfulCreate", f"create {message} success")
        if problems:
            raise errors.APIError(500, "InternalError", "; ".join(problems))

    async def _claims_stale(self, sts: Obj, pod: Obj) -> bool:
        """PodClaimIsStale: with whenScaled Delete, a claim still owned by an earlier pod of
        this name blocks creating the pod until the collector has removed it."""
        if ssu.retention(sts)[1] != "Delete":
            return False
        cached = self._cached(self.claim_informer)
        for claim in ssu.claims_for(sts, ssu.ordinal(pod)).values():
            existing = cached.get(self.claims.key(claim["metadata"]["namespace"], claim["metadata"]["name"]))
            if existing is not None and ssu.has_stale_owner(existing, pod):
                return True
        return False

    async def _fix_claims(self, sts: Obj, pod: Obj, *, check_only: bool = False) -> bool:
        """Set the claims' owners the retention policy asks for; with `check_only`, whether
        they already are (ClaimsMatchRetentionPolicy)."""
        if not check_only:
            await self.control.caught_up()  # claims created a moment ago
        cached = self._cached(self.claim_informer)
        matched = True
        for claim in ssu.claims_for(sts, ssu.ordinal(pod)).values():
            meta = claim["metadata"]
            existing = cached.get(self.claims.key(meta["namespace"], meta["name"]))
            if existing is None or ssu.claim_owner_refs(existing, sts, pod) is None:
                continue
            matched = False
            if check_only:
                continue

            def set_owners(current: Obj) -> Obj:
                refs = ssu.claim_owner_refs(current, sts, pod)
                if refs is not None:
                    if refs:
                        current["metadata"]["ownerReferences"] = refs
                    else:
                        current["metadata"].pop("ownerReferences", None)
                return current

            try:
                self.control.wrote(await self.claims.patch(meta["namespace"], meta["name"], set_owners, podcontrol.WRITE))
            except errors.APIError as err:
                if err.code != 404:
                    raise
        return matched

    # -- status ------------------------------------------------------------------------------

    def _status(self, sts: Obj, current: Obj, update: Obj, collisions: int, pods: list[Obj]) -> Obj:
        """updateStatus and completeRollingUpdate."""
        now = self.cluster.clock.now()
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        cur_name, upd_name = current["metadata"]["name"], update["metadata"]["name"]
        counts = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
        for pod in pods:
            if ssu.ordinal(pod) < 0:
                continue
            counts["replicas"] += 1
            if ssu.is_running_and_ready(pod):
                counts["readyReplicas"] += 1
                counts["availableReplicas"] += ssu.is_running_and_available(pod, min_ready, now)
            if not ssu.is_terminating(pod):
                counts["currentReplicas"] += ssu.revision_of(pod) == cur_name
                counts["updatedReplicas"] += ssu.revision_of(pod) == upd_name
        status: Obj = {**{k: v for k, v in (sts.get("status") or {}).items() if k == "conditions"},
                       "observedGeneration": sts["metadata"].get("generation", 1), "currentRevision": cur_name,
                       "updateRevision": upd_name, "collisionCount": collisions}
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if (strategy == "RollingUpdate" and counts["updatedReplicas"] == counts["replicas"]
                and counts["readyReplicas"] == counts["replicas"]):
            counts["currentReplicas"] = counts["updatedReplicas"]
            status["currentRevision"] = upd_name
        status["replicas"] = counts["replicas"]
        status["availableReplicas"] = counts["availableReplicas"]
        for field in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if counts[field]:  # omitempty upstream
                status[field] = counts[field]
        return status

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        if (sts.get("status") or {}) == status:
            return
        uid = sts["metadata"]["uid"]

        def put(current: Obj) -> Obj:
            if current["metadata"].get("uid") != uid:
                raise errors.conflict("statefulsets", "apps", current["metadata"]["name"], "the object was replaced")
            current["status"] = status
            return current

        try:
            await self.sets.patch(sts["metadata"]["namespace"], sts["metadata"]["name"], put, podcontrol.WRITE,
                                  subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise


def _selector(sts: Obj) -> selectors.LabelSelector:
    sel = sts["spec"].get("selector")
    if not sel:
        return selectors.LabelSelector([selectors.Requirement("", "exists")])  # nil selects nothing
    return selectors.from_label_selector_object(sel)
