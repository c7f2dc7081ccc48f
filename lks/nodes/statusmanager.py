"""Kubelet's status manager: writes the pod statuses the pod workers (`lks.nodes.pods`) report,
through `pods/status`, and confirms a deletion (DELETE with grace period 0) once a deleted
pod's final status is written.

Reporting never waits for the API: the newest status per pod waits here and a pool of writers
takes them in turn. A pod whose status changed again before its turn gets one write of the
newest (as kubelet's status manager does), so under load a pod typically reaches Running in a
single write, and at rest in two (ContainerCreating, then Running). `lks.nodes.podstatus`
builds the statuses and merges them into the stored one. One status manager serves every node,
so each write acts as the kubelet of the pod's node (the `user` its report names).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from lks.clock import Clock
from lks.controllers.workqueue import WorkQueue
from lks.kube import deletion, errors
from lks.kube.authn import User, acting_as
from lks.kube.registry import Registry, WriteOptions
from lks.nodes import podstatus

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_WRITE = WriteOptions(field_manager="kubelet", field_validation="Ignore", trusted=True)


class Tracked(Protocol):
    """What the pod worker keeps of its last report: the status (merged, as stored) and the
    resourceVersion our last write made, so its watch event can be told from others'."""

    reported: Obj | None
    rv: int


@dataclass(slots=True)
class _Report:
    namespace: str
    name: str
    uid: str
    status: Obj  # kubelet's part, see `podstatus.generate`
    now: float
    delete: bool
    rec: Tracked | None
    user: User | None  # who writes it: the kubelet of the pod's node


class _Replaced(Exception):
    """The pod was deleted and created again under the same name."""


class StatusManager:
    def __init__(self, registry: Registry, *, clock: Clock, workers: int):
        self._registry = registry
        self._pending: dict[str, _Report] = {}
        self._queue: WorkQueue[str] = WorkQueue(self._write, name="kubelet status", workers=workers, clock=clock)

    def start(self) -> None:
        self._queue.start()

    async def stop(self) -> None:
        await self._queue.stop()
        self._pending.clear()

    def report(self, key: str, pod: Obj, status: Obj, now: float, *, delete: bool = False,
               rec: Tracked | None = None, user: User | None = None) -> None:
        """Write `status` as `user` (replacing one not written yet); `delete` confirms the
        deletion after."""
        meta = pod["metadata"]
        self._pending[key] = _Report(meta["namespace"], meta["name"], meta["uid"], status, now, delete, rec, user)
        self._queue.add(key)

    def pending(self, key: str) -> bool:
        return key in self._pending

    def drop(self, key: str) -> None:
        self._pending.pop(key, None)

    async def _write(self, key: str) -> None:
        report = self._pending.pop(key, None)
        if report is None:
            return
        with acting_as(report.user):
            await self._write_report(key, report)

    async def _write_report(self, key: str, report: _Report) -> None:
        try:
            obj = await self._patch(report)
        except Exception:
            self._pending.setdefault(key, report)  # retried with back-off, unless a newer one came
            raise
        if obj is None:
            return  # the pod is gone: nothing to write to or to delete
        rec = report.rec
        if rec is not None:
            rec.rv = int(obj["metadata"]["resourceVersion"])
            if key not in self._pending:
                rec.reported = obj["status"]
        if report.delete:
            await self._delete(report)

    async def _patch(self, report: _Report) -> Obj | None:
        def write(current: Obj) -> Obj:
            if current["metadata"].get("uid") != report.uid:
                raise _Replaced
            current["status"] = podstatus.merge(current.get("status") or {}, report.status, report.now)
            return current

        try:
            return await self._registry.patch(report.namespace, report.name, write, _WRITE, subresource="status")
        except _Replaced:
            return None
        except errors.APIError as err:
            if err.code == 404:
                return None
            raise

    async def _delete(self, report: _Report) -> None:
        """The containers have stopped: the kubelet's DELETE, grace period 0, for this uid."""
        opts = deletion.DeleteOptions(grace_period_seconds=0, preconditions={"uid": report.uid})
        try:
            await self._registry.delete(report.namespace, report.name, opts)
        except errors.APIError as err:
            if err.code not in (404, 409):  # gone already, or another pod by that name now
                raise
