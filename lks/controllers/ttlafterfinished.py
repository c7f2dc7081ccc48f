"""The TTL-after-finished controller (upstream's `pkg/controller/ttlafterfinished`): deletes a
finished Job `ttlSecondsAfterFinished` seconds after it completed or failed.

The expiry is counted from `completionTime`, else from the Complete/Failed condition's
`lastTransitionTime`. A Job not yet due is re-queued for its expiry on the cluster clock (no
polling); a due Job is checked once more against a fresh read, then deleted with Foreground
propagation and a uid precondition, so its pods go first and a Job re-created under the same
name is never hit. The Job controller (`lks.controllers.job`) finishes the Jobs.
"""

from __future__ import annotations

import logging
from typing import Any

from lks.controllers import job_util as ju
from lks.controllers import podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def expires_at(job: Obj) -> float | None:
    """When a finished Job with a TTL is due for deletion; None when it has no TTL or is not
    finished (timeLeft / getFinishAndExpireTime)."""
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    if ttl is None or not ju.is_finished(job):
        return None
    finished = rsutil.parse_time((job.get("status") or {}).get("completionTime"))
    if not finished:
        for type_ in ("Complete", "Failed"):
            cond = ju.condition(job, type_)
            if cond is not None and cond.get("status") == "True":
                finished = rsutil.parse_time(cond.get("lastTransitionTime"))
                break
    return finished + int(ttl) if finished else None


class TTLAfterFinishedController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="ttl-after-finished")
        self.jobs = cluster.registry("batch", "v1", "jobs")
        self.deadlines = podcontrol.Deadlines(self.queue, cluster.clock)
        self.informer = self.watch(self.jobs, self._on_job)

    def _on_job(self, kind: str, job: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED" and "deletionTimestamp" not in job["metadata"] and expires_at(job) is not None:
            self.queue.add(podcontrol.object_key(job))

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        job = self.informer.get(namespace, name)
        if job is None or "deletionTimestamp" in job["metadata"] or not self._due(key, job):
            return
        # the cache may be stale (the TTL changed, the Job was re-run): decide on a fresh read
        try:
            fresh = await self.jobs.get(namespace, name)
        except errors.APIError as err:
            if err.code == 404:
                return
            raise
        if fresh["metadata"]["uid"] != job["metadata"]["uid"] or not self._due(key, fresh):
            return
        log.info("deleting job %s: its TTL after finishing has expired", key)
        try:
            await self.jobs.delete(namespace, name, deletion.DeleteOptions(
                propagation_policy="Foreground", preconditions={"uid": fresh["metadata"]["uid"]}))
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise
        self.deadlines.forget(key)

    def _due(self, key: str, job: Obj) -> bool:
        expiry = expires_at(job)
        if expiry is None:
            return False
        left = expiry - self.cluster.clock.now()
        if left > 0:
            self.deadlines.after(key, left)
            return False
        return True
