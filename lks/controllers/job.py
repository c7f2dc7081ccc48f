"""The Job controller (upstream's `pkg/controller/job/job_controller.go`): runs pods until
`completions` succeed, `parallelism` at a time, or fails the Job.

`sync` follows `syncJob`. Pods carry the `batch.kubernetes.io/job-tracking` finalizer from
creation; a finished pod is counted in three steps, so that a crash never loses or doubles a
count: its uid goes to `status.uncountedTerminatedPods`, its finalizer is removed, then it moves
to `succeeded`/`failed` (Indexed Jobs record `completedIndexes` instead). Failures beyond
`backoffLimit` (or `backoffLimitPerIndex`), a matching `podFailurePolicy` FailJob rule, or
`activeDeadlineSeconds` add the interim `FailureTarget` condition; reaching the completions
or a `successPolicy` adds `SuccessCriteriaMet`. The remaining pods are then deleted, and the
terminal `Failed` or `Complete` condition is added once none is left terminating (upstream's
behaviour since JobPodReplacementPolicy). Replacements after failures wait 10 s, doubling,
on the cluster clock. `suspend` deletes the active pods and stops the deadline clock.

Pure helpers are in `lks.controllers.job_util` and, for Indexed Jobs, in
`lks.controllers.job_indexes`; deleting finished Jobs after
`ttlSecondsAfterFinished` is `lks.controllers.ttlafterfinished`; CronJobs create Jobs
through `lks.controllers.cronjob`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from lks.clock import rfc3339
from lks.controllers import job_indexes as jix
from lks.controllers import job_util as ju
from lks.controllers import ownerindex, podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.controllers.workqueue import WorkQueue
from lks.kube import errors, selectors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "Job"
WORKERS = 5  # --concurrent-job-syncs
MAX_UNCOUNTED = 500  # MaxUncountedPods: pods counted per status write
MAX_PER_SYNC = 500  # MaxPodCreateDeletePerSync


class JobController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="job", workers=WORKERS)
        self.jobs = cluster.registry("batch", "v1", "jobs")
        self.pods = cluster.registry("", "v1", "pods")
        self.recorder = EventRecorder(cluster, component="job-controller")
        self.control = podcontrol.PodControl(cluster, self.recorder)
        self.orphans: WorkQueue[str] = WorkQueue(self.sync_orphan, name="job-orphan-pods", clock=cluster.clock)
        self.deadlines = podcontrol.Deadlines(self.queue, cluster.clock)
        self.pods_by_owner = ownerindex.OwnerIndex()
        self.job_informer = self.watch(self.jobs, self._on_job)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self._backoff: dict[str, ju.Backoff] = {}

    # -- events ----------------------------------------------------------------------------

    def _on_job(self, kind: str, job: Obj, _prev: Obj | None) -> None:
        self.queue.add(podcontrol.object_key(job))
        if kind == "DELETED" or ju.is_finished(job):
            self._cleanup_finalizers(job["metadata"]["uid"])

    def _cleanup_finalizers(self, uid: str) -> None:
        """cleanupPodFinalizers: the pods of a deleted or finished Job lose the finalizer."""
        if self.pod_informer.cache is None:
            return
        for pod in self.pods_by_owner.owned(uid, self.pod_informer.cache.objects):
            if ju.has_finalizer(pod):
                self.orphans.add(self.pods.key(pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = self.pods.key(meta["namespace"], meta["name"])
        self.pods_by_owner.observe(key, pod, deleted=kind == "DELETED")
        for obj in (pod, prev):
            ref = rsutil.controller_of(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
                job = self.job_informer.get(meta["namespace"], ref["name"]) if self.job_informer.cache else None
                if job is None or job["metadata"]["uid"] != ref.get("uid") or ju.is_finished(job):
                    if kind != "DELETED" and ju.has_finalizer(pod):
                        self.orphans.add(key)
                else:
                    self.queue.add(f"{meta['namespace']}/{ref['name']}")
        if kind != "DELETED" and rsutil.controller_of(pod) is None and ju.has_finalizer(pod):
            self.orphans.add(key)

    def prime(self) -> None:
        assert self.pod_informer.cache is not None
        self.pods_by_owner.seed(self.pod_informer.cache.objects)

    async def start(self) -> None:
        await super().start()
        self.orphans.start()

    async def stop(self) -> None:
        await self.orphans.stop()
        await super().stop()

    # -- orphans -----------------------------------------------------------------------------

    async def sync_orphan(self, key: str) -> None:
        """syncOrphanPod: drop the finalizer of a pod no unfinished Job of ours controls."""
        assert self.pod_informer.cache is not None
        pod = self.pod_informer.cache.objects.get(key)
        if pod is None or not ju.has_finalizer(pod):
            return
        ref = rsutil.controller_of(pod)
        if ref is not None:
            if ref.get("kind") != KIND or ref.get("apiVersion") != API_VERSION:
                return
            job = self.job_informer.get(pod["metadata"]["namespace"], ref["name"])
            if job is not None and job["metadata"]["uid"] == ref.get("uid"):
                if ju.managed_elsewhere(job) or not ju.is_finished(job):
                    return
        await self.control.patch(pod, ju.drop_finalizer)

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        cached = self.job_informer.get(namespace, name)
        if cached is None:
            self._backoff.pop(key, None)
            self.deadlines.forget(key)
            return
        if ju.managed_elsewhere(cached):
            return
        if ju.is_finished(cached):
            self._backoff.pop(key, None)
            return
        job = copy.deepcopy(cached)
        if job["spec"].get("completionMode", "NonIndexed") not in ("NonIndexed", "Indexed"):
            await self.control.event(job, WARNING, "UnknownCompletionMode",
                                     "Skipped Job sync because completion mode is unknown")
            return
        try:
            await self._sync(key, job)
        finally:
            await self.control.caught_up()

    async def _sync(self, key: str, job: Obj) -> None:
        now = self.clock.now()
        status = job.setdefault("status", {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        pods = await self._claim_pods(job)
        active = [p for p in pods if rsutil.is_active(p)]
        ctx = ju.SyncContext(job, pods, active, sum(rsutil.is_ready(p) for p in active),
                             sum(1 for p in pods if podcontrol.is_terminating(p) and not podcontrol.is_finished(p)),
                             set(uncounted.get("succeeded") or ()), set(uncounted.get("failed") or ()))
        spec = job["spec"]
        new_succeeded = self._new_finished(ctx, ctx.uncounted_succeeded, lambda p: ju.phase(p) == "Succeeded")
        new_failed = self._new_finished(ctx, ctx.uncounted_failed, lambda p: ju.is_pod_failed(p, job))
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        counted_failed = [p for p in new_failed
                          if ju.match_pod_failure_policy(spec.get("podFailurePolicy"), p)[1]]
        ctx.failed = int(status.get("failed") or 0) + len(counted_failed) + len(ctx.uncounted_failed)
        suspended = bool(spec.get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = rfc3339(now)
        ctx.backoff = self._backoff.get(key, ju.Backoff()).after(
            [ju.finished_time(p, now) for p in new_succeeded], [ju.finished_time(p, now) for p in new_failed])

        if ju.is_true(job, "SuccessCriteriaMet"):  # decided in an earlier sync
            ctx.finished = dict(ju.condition(job, "SuccessCriteriaMet") or {})
        if ctx.finished is None:
            target = ju.condition(job, "FailureTarget")
            if target is not None and target.get("status") == "True":
                ctx.finished = ju.new_condition("Failed", "True", target.get("reason", ""), target.get("message", ""), now)
            elif (message := ju.fail_job_message(job, pods)) is not None:
                ctx.finished = ju.new_condition("FailureTarget", "True", "PodFailurePolicy", message, now)
        if ctx.finished is None:
            if ctx.failed > int(spec.get("backoffLimit", 6)) or ju.past_backoff_on_failure(job, pods):
                ctx.finished = ju.new_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                                "Job has reached the specified backoff limit", now)
            elif ju.past_deadline(job, now):
                ctx.finished = ju.new_condition("FailureTarget", "True", "DeadlineExceeded",
                                                "Job was active longer than specified deadline", now)
            elif spec.get("activeDeadlineSeconds") is not None and not suspended:
                started = rsutil.parse_time(status.get("startTime"))
                self.deadlines.after(key, started + int(spec["activeDeadlineSeconds"]) - now)
        if ctx.indexed:
            jix.calculate(ctx, now)

        suspend_changed = False
        if ctx.finished is not None:
            deleted_ready, deleted = await self._delete_active(job, ctx.active)  # raises if one cannot go
            active_count = len(ctx.active) - deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            active_count = await self._manage(key, ctx, now)
            completions = ctx.completions
            if completions is None:
                complete = ctx.succeeded > 0 and active_count == 0
            else:
                complete = ctx.succeeded >= completions and active_count == 0
            if complete:
                ctx.finished = ju.new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                                "Reached expected number of succeeded pods", now)
            elif suspended:
                conds = status.setdefault("conditions", [])
                if ju.ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", now):
                    suspend_changed = True
                    await self.control.event(job, NORMAL, "Suspended", "Job suspended")
            else:
                conds = status.setdefault("conditions", [])
                if ju.ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", now):
                    suspend_changed = True
                    await self.control.event(job, NORMAL, "Resumed", "Job resumed")
                    # the deadline counts the time a Job is continuously active
                    status["startTime"] = rfc3339(now)
                if not conds:
                    status.pop("conditions")
        needs_flush = (suspend_changed or active_count != int(status.get("active") or 0)
                       or ctx.ready != status.get("ready") or ctx.terminating != status.get("terminating"))
        ju.set_count(status, "active", active_count)
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self._track(key, ctx, needs_flush)

    def _new_finished(self, ctx: ju.SyncContext, uncounted: set[str], keep: Any) -> list[Obj]:
        """getValidPodsWithFilter: pods still carrying the finalizer, not yet in the uncounted
        list (and, Indexed, with a valid index) that `keep` accepts."""
        out = []
        for pod in ctx.pods:
            if not ju.has_finalizer(pod) or pod["metadata"]["uid"] in uncounted:
                continue
            if ctx.indexed and jix.valid_index(pod, ctx.completions or 0) < 0:
                continue
            if keep(pod):
                out.append(pod)
        return out

    # -- pods --------------------------------------------------------------------------------

    async def _claim_pods(self, job: Obj) -> list[Obj]:
        """getPodsForJob: the pods the Job controls, adopting matching orphans (with the
        tracking finalizer added to them, as upstream)."""
        meta = job["metadata"]
        objects = self.pod_informer.cache.objects if self.pod_informer.cache else {}
        candidates = self.pods_by_owner.owned(meta["uid"], objects) + self.pods_by_owner.orphans(meta["namespace"], objects)
        selector = selectors.from_label_selector_object(job["spec"].get("selector")) if job["spec"].get("selector") \
            else selectors.LabelSelector([selectors.Requirement("", "exists")])
        ref = rsutil.new_controller_ref(job, api_version=API_VERSION, kind=KIND)

        async def can_adopt() -> bool:
            try:
                fresh = await self.jobs.get(meta["namespace"], meta["name"])
            except errors.APIError:
                return False
            return fresh["metadata"]["uid"] == meta["uid"] and "deletionTimestamp" not in fresh["metadata"]

        async def adopt(pod: Obj) -> None:
            add_ref = rsutil.adopt_patch(ref, pod["metadata"]["uid"], "pods", "")

            def adopt_tracked(current: Obj) -> Obj:
                current = add_ref(current)
                finalizers = current["metadata"].setdefault("finalizers", [])
                if ju.TRACKING_FINALIZER not in finalizers:
                    finalizers.append(ju.TRACKING_FINALIZER)
                return current

            if await self.control.patch(pod, adopt_tracked) is not None:
                self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], pod["metadata"]["name"]))

        async def release(pod: Obj) -> None:
            await self.control.patch(pod, rsutil.release_patch(meta["uid"], pod["metadata"]["uid"]))

        return await rsutil.claim(candidates, owner=job, matches=lambda p: selector.matches(p["metadata"].get("labels")),
                                  can_adopt=can_adopt, adopt=adopt, release=release)

    async def _manage(self, key: str, ctx: ju.SyncContext, now: float) -> int:
        """manageJob: delete surplus (or, suspended, all) active pods, else create the
        missing ones unless back-off says wait. Returns the active count."""
        job, spec = ctx.job, ctx.spec
        active = len(ctx.active)
        if "deletionTimestamp" in job["metadata"]:
            return active
        if spec.get("suspend"):
            ready, removed = await self._delete_pods(job, ctx.active)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed
        parallelism = int(spec.get("parallelism", 1))
        if ctx.completions is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(min(ctx.completions - ctx.succeeded, parallelism), 0)
        surplus = self._pods_to_remove(ctx, max(active - want, 0))[:MAX_PER_SYNC]
        if surplus:
            ready, removed = await self._delete_pods(job, surplus)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed
        terminating = ctx.terminating if ju.only_replace_failed(job) else 0
        diff = min(want - terminating - active, MAX_PER_SYNC)
        if diff <= 0:
            return active
        if spec.get("backoffLimitPerIndex") is None:
            wait = ctx.backoff.remaining(now)
            if wait > 0:
                self.deadlines.after(key, wait)
                return active
        indexes: list[int | None] = [None] * diff
        if ctx.indexed:
            pending = jix.pending(ctx, diff)
            if spec.get("backoffLimitPerIndex") is not None:
                pending, wait = jix.ready_to_retry(ctx, pending, now)
                if wait > 0:
                    self.deadlines.after(key, wait)
                    return active
            indexes = list(pending)
        template = copy.deepcopy(spec.get("template") or {})
        if ctx.indexed:
            jix.add_index_env(template.setdefault("spec", {}))
        finalizers = template.setdefault("metadata", {}).setdefault("finalizers", [])
        if ju.TRACKING_FINALIZER not in finalizers:
            finalizers.append(ju.TRACKING_FINALIZER)
        pending_iter = iter(indexes)
        meta = job["metadata"]
        ref = rsutil.new_controller_ref(job, api_version=API_VERSION, kind=KIND)

        async def create_one() -> None:
            ix = next(pending_iter)
            pod = rsutil.pod_from_template(template, meta["name"], ref)
            if ix is not None:
                annotations = pod["metadata"].setdefault("annotations", {})
                annotations[jix.INDEX_KEY] = str(ix)
                pod["metadata"].setdefault("labels", {})[jix.INDEX_KEY] = str(ix)
                pod["spec"]["hostname"] = f"{meta['name']}-{ix}"
                pod["metadata"]["generateName"] = f"{meta['name']}-{ix}-"
                if spec.get("backoffLimitPerIndex") is not None:
                    jix.inherit_failure_counts(job, annotations, ctx.delayed.get(ix))
            created = await self.control.create(pod, job)
            self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], created["metadata"]["name"]))

        created, error = await rsutil.slow_start_batch(len(indexes), 1, create_one)
        if error is not None and not _namespace_terminating(error):
            raise error
        return active + created

    @staticmethod
    def _pods_to_remove(ctx: ju.SyncContext, at_least: int) -> list[Obj]:
        """activePodsForRemoval: Indexed Jobs first drop duplicate and out-of-range indexes,
        then the pods least along (unscheduled, pending, not ready) go first."""
        remove, left = jix.duplicates(ctx) if ctx.indexed else ([], list(ctx.active))
        if len(remove) < at_least:
            left.sort(key=ju.removal_key)
            remove.extend(left[:at_least - len(remove)])
        return remove

    async def _delete_active(self, job: Obj, pods: list[Obj]) -> tuple[int, int]:
        """deleteActivePods: the finalizers stay, so the pods are counted as they go."""
        ready = removed = 0
        for pod in pods:
            await self.control.delete(pod, job)  # one already gone counts as deleted too
            removed += 1
            ready += rsutil.is_ready(pod)
        return ready, removed

    async def _delete_pods(self, job: Obj, pods: list[Obj]) -> tuple[int, int]:
        """deleteJobPods: pods removed on purpose (surplus, suspension) are not counted as
        failures, so their finalizer goes first."""
        ready = removed = 0
        for pod in pods:
            if ju.has_finalizer(pod):
                await self.control.patch(pod, ju.drop_finalizer)
            await self.control.delete(pod, job)
            removed += 1
            ready += rsutil.is_ready(pod)
        return ready, removed

    # -- status ------------------------------------------------------------------------------

    async def _track(self, key: str, ctx: ju.SyncContext, needs_flush: bool) -> None:
        """trackJobStatusAndRemoveFinalizers: record finished pods as uncounted, remove their
        finalizers, move them to the counters, then add the terminal condition."""
        job, status, now = ctx.job, ctx.status, self.clock.now()
        completions = ctx.completions or 0
        uncounted = status["uncountedTerminatedPods"]
        with_finalizer = {p["metadata"]["uid"] for p in ctx.pods if ju.has_finalizer(p)}
        needs_flush |= ju.count_uncounted(status, with_finalizer)
        to_release: list[Obj] = []
        new_indexes: list[int] = []
        capped = False
        pods = sorted(ctx.pods, key=jix.completion_index) if ctx.indexed else ctx.pods
        for pod in pods:
            if not ju.has_finalizer(pod):
                continue
            uid = pod["metadata"]["uid"]
            failed = ju.is_pod_failed(pod, job)
            if not self._can_release(ctx, pod, failed):
                continue
            to_release.append(pod)
            if ju.phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
                if ctx.indexed:
                    ix = jix.valid_index(pod, completions)
                    if ix >= 0 and not ctx.prev_succeeded_indexes.has(ix):
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in ctx.uncounted_succeeded:
                    uncounted.setdefault("succeeded", []).append(uid)
                    ctx.uncounted_succeeded.add(uid)
                    needs_flush = True
            elif failed or (ctx.finished is not None and ctx.finished["type"] != "SuccessCriteriaMet"):
                if uid not in ctx.uncounted_failed and (not ctx.indexed or jix.valid_index(pod, completions) >= 0):
                    if ju.match_pod_failure_policy(ctx.spec.get("podFailurePolicy"), pod)[1]:
                        uncounted.setdefault("failed", []).append(uid)
                        ctx.uncounted_failed.add(uid)
                        needs_flush = True
            if len(new_indexes) + len(uncounted.get("succeeded") or ()) + len(uncounted.get("failed") or ()) >= MAX_UNCOUNTED:
                capped = True
                break
        if ctx.indexed:
            ctx.succeeded_indexes = ctx.succeeded_indexes.with_indexes(new_indexes)
            text = str(ctx.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            ju.set_count(status, "succeeded", ctx.succeeded_indexes.total())
            if text:
                status["completedIndexes"] = text
            else:
                status.pop("completedIndexes", None)
            if ctx.failed_indexes is not None and status.get("failedIndexes") != str(ctx.failed_indexes):
                status["failedIndexes"] = str(ctx.failed_indexes)
                needs_flush = True
        finished = ctx.finished
        if finished is not None and finished["type"] == "FailureTarget":
            status.setdefault("conditions", []).append(finished)
            needs_flush = True
            finished = ju.new_condition("Failed", "True", finished["reason"], finished["message"], now)
        if finished is not None and finished["type"] == "SuccessCriteriaMet":
            if ju.condition(job, "SuccessCriteriaMet") is None:
                status.setdefault("conditions", []).append(finished)
                needs_flush = True
            finished = ju.new_condition("Complete", "True", finished["reason"], finished["message"], now)
        if needs_flush:
            await self._write_status(job)
            self._backoff[key] = ctx.backoff
            needs_flush = False
        for pod in to_release:
            await self.control.patch(pod, ju.drop_finalizer)  # a pod already gone has none either
            with_finalizer.discard(pod["metadata"]["uid"])
        needs_flush |= ju.count_uncounted(status, with_finalizer)
        done = not capped and self._enact_finished(ctx, finished, now)
        if needs_flush or done:
            await self._write_status(job)
            if done and finished is not None:
                if finished["type"] == "Complete":
                    if ctx.completions is not None and int(status.get("succeeded") or 0) > ctx.completions:
                        await self.control.event(job, WARNING, "TooManySucceededPods",
                                                 "Too many succeeded pods running after completion count reached")
                    await self.control.event(job, NORMAL, "Completed", "Job completed")
                else:
                    await self.control.event(job, WARNING, finished["reason"], finished["message"])

    @staticmethod
    def _can_release(ctx: ju.SyncContext, pod: Obj, failed: bool) -> bool:
        """canRemoveFinalizer."""
        if "deletionTimestamp" in ctx.job["metadata"] or ctx.finished is not None or ju.phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if ctx.spec.get("backoffLimitPerIndex") is not None:
            ix = jix.completion_index(pod)
            kept = ctx.delayed.get(ix)
            if kept is not None and kept["metadata"]["uid"] == pod["metadata"]["uid"]:
                return False
        return True

    @staticmethod
    def _enact_finished(ctx: ju.SyncContext, finished: Obj | None, now: float) -> bool:
        """enactJobFinished: the terminal condition, once no pod is uncounted or terminating."""
        if finished is None:
            return False
        uncounted = ctx.status["uncountedTerminatedPods"]
        if uncounted.get("succeeded") or uncounted.get("failed") or ctx.terminating > 0:
            return False
        conds = ctx.status.setdefault("conditions", [])
        ju.ensure_condition(conds, finished["type"], "True", finished["reason"], finished["message"], now)
        if finished["type"] == "Complete":
            ctx.status["completionTime"] = finished["lastTransitionTime"]
        return True

    async def _write_status(self, job: Obj) -> None:
        """UpdateStatus at the resourceVersion this sync started from (a conflict retries the
        sync, which recounts from the fresh object)."""
        meta = job["metadata"]
        updated, _ = await self.jobs.update(meta["namespace"], meta["name"], job, podcontrol.WRITE,
                                            subresource="status")
        self.control.wrote(updated)
        meta["resourceVersion"] = updated["metadata"]["resourceVersion"]


def _namespace_terminating(err: Exception) -> bool:
    details = getattr(err, "details", None) or {}
    return any(c.get("reason") == "NamespaceTerminating" for c in details.get("causes") or [])
