"""The CronJob controller (upstream's `pkg/controller/cronjob/cronjob_controllerv2.go`):
creates a Job from `jobTemplate` each time the schedule is due.

`sync` first deletes finished Jobs beyond `successfulJobsHistoryLimit` and
`failedJobsHistoryLimit` (oldest first), then reconciles `status.active` with the Jobs that
exist (`SawCompletedJob`, `MissingJob`, `UnexpectedJob` events; `lastSuccessfulTime`), then,
unless suspended, finds the most recent unmet schedule time (`lks.controllers.cronschedule`,
in `spec.timeZone`), skips it if it is past `startingDeadlineSeconds`, applies the
`concurrencyPolicy` (Allow; Forbid waits for the running Job; Replace deletes it), and
creates the Job `<cronjob>-<scheduled time in minutes since the epoch>` (so a time is never
run twice). Nothing polls: the key is re-queued for the next due time on the cluster clock,
100 ms late as upstream. The Job controller (`lks.controllers.job`) runs the Jobs.
"""

from __future__ import annotations

import copy
import logging
import zoneinfo
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from lks.clock import rfc3339
from lks.controllers import cronschedule, ownerindex, podcontrol
from lks.controllers import job_util as ju
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.typevalidation import cron

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "CronJob"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_DELTA = 0.1  # nextScheduleDelta: wake a little after the due time


def job_name(cronjob: Obj, scheduled: float) -> str:
    """getJobName: the scheduled time in minutes makes the name, so a time runs once."""
    return f"{cronjob['metadata']['name']}-{int(scheduled) // 60}"


def job_from_template(cronjob: Obj, scheduled: float) -> Obj:
    """getJobFromTemplate2."""
    template = cronjob["spec"].get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    zone = cronjob["spec"].get("timeZone")
    when = datetime.fromtimestamp(int(scheduled), zoneinfo.ZoneInfo(zone) if zone else UTC)
    stamp = when.isoformat().replace("+00:00", "Z")
    meta: Obj = {"name": job_name(cronjob, scheduled),
                 "labels": dict(tmeta.get("labels") or {}),
                 "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED_ANNOTATION: stamp},
                 "ownerReferences": [rsutil.new_controller_ref(cronjob, api_version=API_VERSION, kind=KIND)]}
    if not meta["labels"]:
        del meta["labels"]
    return {"apiVersion": API_VERSION, "kind": "Job", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def _ref(job: Obj) -> Obj:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
            "apiVersion": API_VERSION, "resourceVersion": meta.get("resourceVersion")}


def _finished(job: Obj) -> str | None:
    for type_ in ("Complete", "Failed"):
        if ju.is_true(job, type_):
            return type_
    return None


class CronJobController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="cronjob")
        self.cronjobs = cluster.registry("batch", "v1", "cronjobs")
        self.jobs = cluster.registry("batch", "v1", "jobs")
        self.recorder = EventRecorder(cluster, component="cronjob-controller")
        self.deadlines = podcontrol.Deadlines(self.queue, cluster.clock)
        self.jobs_by_owner = ownerindex.OwnerIndex()
        self.job_informer = self.watch(self.jobs, self._on_job)
        self.cron_informer = self.watch(self.cronjobs, self._on_cronjob)
        self._revision = 0

    def _on_cronjob(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.queue.add(podcontrol.object_key(obj))

    def _on_job(self, kind: str, job: Obj, prev: Obj | None) -> None:
        meta = job["metadata"]
        self.jobs_by_owner.observe(self.jobs.key(meta["namespace"], meta["name"]), job, deleted=kind == "DELETED")
        for obj in (job, prev):
            ref = rsutil.controller_of(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == KIND:
                self.queue.add(f"{meta['namespace']}/{ref['name']}")

    def prime(self) -> None:
        assert self.job_informer.cache is not None
        self.jobs_by_owner.seed(self.job_informer.cache.objects)

    async def _event(self, cronjob: Obj, type_: str, reason: str, message: str) -> None:
        await self.recorder.record(cronjob, type_, reason, message)

    def _wrote(self, obj: Obj) -> None:
        self._revision = max(self._revision, int(obj["metadata"].get("resourceVersion") or 0))

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        cached = self.cron_informer.get(namespace, name)
        if cached is None:
            self.deadlines.forget(key)
            return
        cronjob = copy.deepcopy(cached)
        status = cronjob.setdefault("status", {})
        assert self.job_informer.cache is not None
        jobs = self.jobs_by_owner.owned(cronjob["metadata"]["uid"], self.job_informer.cache.objects)
        try:
            changed = await self._cleanup(cronjob, jobs)
            requeue, synced = await self._sync(cronjob, jobs)
            if changed or synced:
                if not status.get("active"):
                    status.pop("active", None)
                await self._write_status(cronjob)
            if requeue is not None:
                self.deadlines.after(key, requeue)
        finally:
            if self._revision:
                await self.cluster.feed.wait_for(self._revision, podcontrol.CATCH_UP_TIMEOUT)

    async def _cleanup(self, cronjob: Obj, jobs: list[Obj]) -> bool:
        """cleanupFinishedJobs: keep the newest finished Jobs the history limits allow."""
        spec = cronjob["spec"]
        changed = False
        for outcome, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                               ("Failed", spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = [j for j in jobs if _finished(j) == outcome and "deletionTimestamp" not in j["metadata"]]
            done.sort(key=lambda j: (not (j.get("status") or {}).get("startTime"),
                                     rsutil.parse_time((j.get("status") or {}).get("startTime")), j["metadata"]["name"]))
            for job in done[:max(len(done) - int(limit), 0)]:
                changed |= await self._delete_job(cronjob, job)
        return changed

    async def _delete_job(self, cronjob: Obj, job: Obj) -> bool:
        meta = job["metadata"]
        try:
            answer, _ = await self.jobs.delete(meta["namespace"], meta["name"],
                                               deletion.DeleteOptions(propagation_policy="Background"))
        except errors.APIError as err:
            if err.code != 404:
                await self._event(cronjob, WARNING, "FailedDelete", f"Deleted job: {err.message}")
                return False
        else:
            if isinstance(answer, dict) and answer.get("kind") == "Job":
                self._wrote(answer)
        _drop_active(cronjob, meta["uid"])
        await self._event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}")
        return True

    async def _sync(self, cronjob: Obj, jobs: list[Obj]) -> tuple[float | None, bool]:
        """syncCronJob: (seconds until the next look, whether status changed)."""
        status, spec, meta = cronjob["status"], cronjob["spec"], cronjob["metadata"]
        now = self.clock.now()
        changed = False
        active_uids = {a.get("uid") for a in status.get("active") or []}
        children = set()
        for job in jobs:
            uid = job["metadata"]["uid"]
            children.add(uid)
            outcome = _finished(job)
            if uid not in active_uids and outcome is None:
                await self._event(cronjob, WARNING, "UnexpectedJob",
                                  f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}")
            elif uid in active_uids and outcome is not None:
                _drop_active(cronjob, uid)
                await self._event(cronjob, NORMAL, "SawCompletedJob",
                                  f"Saw completed job: {job['metadata']['name']}, condition: {outcome}")
                changed = True
            if outcome == "Complete":
                completed = (job.get("status") or {}).get("completionTime")
                if completed and rsutil.parse_time(completed) > rsutil.parse_time(status.get("lastSuccessfulTime")):
                    status["lastSuccessfulTime"] = completed
                    changed = True
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:
                await self.jobs.get(ref.get("namespace") or meta["namespace"], ref.get("name", ""))
            except errors.APIError as err:
                if err.code != 404:
                    raise
                await self._event(cronjob, NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")
                _drop_active(cronjob, ref.get("uid"))
                changed = True
        if "deletionTimestamp" in meta:
            return None, changed
        zone = spec.get("timeZone")
        if zone is not None and (problem := cron.time_zone_error(zone)):
            await self._event(cronjob, WARNING, "UnknownTimeZone", f'invalid timeZone: "{zone}": {problem}')
            return None, changed
        if spec.get("suspend"):
            return None, changed
        if "TZ" in spec.get("schedule", ""):
            await self._event(cronjob, WARNING, "UnsupportedSchedule",
                              f'CRON_TZ or TZ used in schedule "{spec["schedule"]}" is not officially supported, see '
                              "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
        try:
            schedule = cronschedule.parse(spec["schedule"], zone or None)
        except cronschedule.CronError as err:
            await self._event(cronjob, WARNING, "UnparseableSchedule",
                              f'unparseable schedule: "{spec.get("schedule")}" : {err}')
            return None, changed
        earliest = rsutil.parse_time(status.get("lastScheduleTime")) or rsutil.parse_time(meta.get("creationTimestamp"))
        deadline = spec.get("startingDeadlineSeconds")
        try:
            scheduled, missed = cronschedule.most_recent(
                schedule, max(earliest, now - deadline) if deadline is not None else earliest, now)
        except cronschedule.CronError as err:
            await self._event(cronjob, WARNING, "InvalidSchedule", f"invalid schedule: {spec['schedule']} : {err}")
            return None, changed
        if missed > cronschedule.MANY_MISSED:
            await self._event(cronjob, WARNING, "TooManyMissedTimes",
                              "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
        next_in = self._next_in(schedule, earliest, now)
        if scheduled is None:
            return next_in, changed
        if deadline is not None and scheduled + deadline < now:
            when = format_datetime(datetime.fromtimestamp(int(scheduled), UTC)).replace("-0000", "+0000")
            await self._event(cronjob, WARNING, "MissSchedule", f"Missed scheduled time to start a job: {when}")
            return next_in, changed
        name = job_name(cronjob, scheduled)
        if any(a.get("name") == name for a in status.get("active") or []) or \
                rsutil.parse_time(status.get("lastScheduleTime")) == scheduled:
            return next_in, changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            await self._event(cronjob, NORMAL, "JobAlreadyActive",
                              "Not starting job because prior execution is running and concurrency policy is Forbid")
            return next_in, changed
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                job = next((j for j in jobs if j["metadata"]["uid"] == ref.get("uid")), None)
                if job is not None:
                    changed |= await self._delete_job(cronjob, job)
                else:
                    _drop_active(cronjob, ref.get("uid"))
                    changed = True
        job = await self._create_job(cronjob, scheduled)
        if job is None:
            return None, changed
        status.setdefault("active", []).append(_ref(job))
        status["lastScheduleTime"] = rfc3339(scheduled)
        return self._next_in(schedule, scheduled, now), True

    async def _create_job(self, cronjob: Obj, scheduled: float) -> Obj | None:
        body = job_from_template(cronjob, scheduled)
        try:
            job = await self.jobs.create(cronjob["metadata"]["namespace"], body, podcontrol.WRITE)
        except errors.APIError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                # ours from an earlier sync whose status write was lost: adopt the outcome
                existing = await self.jobs.get(cronjob["metadata"]["namespace"], body["metadata"]["name"])
                ref = rsutil.controller_of(existing)
                if ref is not None and ref.get("uid") == cronjob["metadata"]["uid"]:
                    return existing
                raise
            if any(c.get("reason") == "NamespaceTerminating" for c in (err.details or {}).get("causes") or []):
                return None
            await self._event(cronjob, WARNING, "FailedCreate", f"Error creating job: {err.message}")
            raise
        self._wrote(job)
        await self._event(cronjob, NORMAL, "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        return job

    def _next_in(self, schedule: cronschedule.Schedule, last: float, now: float) -> float | None:
        """nextScheduleTimeDuration: from the most recent time (or, with nothing missed, the
        last one run), how long until the next, plus a little."""
        try:
            recent, missed = cronschedule.most_recent(schedule, last, now)
        except cronschedule.CronError:
            return None
        base = recent if recent is not None else (last if not missed else now)
        following = cronschedule.next_after(schedule, base)
        return None if following is None else following + NEXT_DELTA - now

    async def _write_status(self, cronjob: Obj) -> None:
        uid, status = cronjob["metadata"]["uid"], cronjob["status"]

        def put(current: Obj) -> Obj:
            if current["metadata"].get("uid") != uid:
                raise errors.conflict("cronjobs", "batch", current["metadata"]["name"], "the object was replaced")
            current["status"] = status
            return current

        meta = cronjob["metadata"]
        try:
            self._wrote(await self.cronjobs.patch(meta["namespace"], meta["name"], put, podcontrol.WRITE,
                                                  subresource="status"))
        except errors.APIError as err:
            if err.code != 404:
                raise


def _drop_active(cronjob: Obj, uid: str | None) -> None:
    status = cronjob["status"]
    status["active"] = [a for a in status.get("active") or [] if a.get("uid") != uid]
