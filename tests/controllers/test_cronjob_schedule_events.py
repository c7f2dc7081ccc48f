"""The CronJob controller's warnings for schedules it cannot run, as upstream's
cronjob_controllerv2 records them: `InvalidSchedule` for a schedule that parses but never
fires, `UnknownTimeZone` and `UnparseableSchedule` for what validation would normally refuse
(a time zone database that changed, an object stored by an older server)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.controllers import cronschedule
from lks.controllers.cronjob import CronJobController
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]


def test_a_schedule_that_never_fires_is_an_error() -> None:
    schedule = cronschedule.parse("59 23 31 2 *")
    with pytest.raises(cronschedule.CronError, match="time difference between two schedules is less than 1 second"):
        cronschedule.most_recent(schedule, 1_700_000_000, 1_700_000_100)


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[CronJobController]:
    c = CronJobController(cluster)
    await c.start()
    yield c
    await c.stop()


def _cronjob(schedule: str, **spec: Any) -> Obj:
    return {"metadata": {"name": "never"}, "spec": {
        "schedule": schedule,
        "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}},
        **spec}}


async def _events(cluster: Cluster) -> set[tuple[str, str, str]]:
    return {(e["type"], e["reason"], e["message"]) for e in await w.listed(cluster, "", "events")}


async def test_invalid_schedule_is_reported(cluster: Cluster, controller: CronJobController) -> None:
    await cluster.registry("batch", "v1", "cronjobs").create("default", _cronjob("59 23 31 2 *"))
    await w.idle(controller.queue)
    assert ("Warning", "InvalidSchedule",
            "invalid schedule: 59 23 31 2 * : time difference between two schedules is less than 1 second") \
        in await _events(cluster)
    got = await cluster.registry("batch", "v1", "cronjobs").get("default", "never")
    assert not got.get("status") and not await w.listed(cluster, "batch", "jobs")


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"schedule": "*/5 * * * *", "timeZone": "Mars/Olympus_Mons"},
                 ("Warning", "UnknownTimeZone", 'invalid timeZone: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons'),
                 id="unknown-time-zone"),
    pytest.param({"schedule": "61 * * * *"},
                 ("Warning", "UnparseableSchedule",
                  'unparseable schedule: "61 * * * *" : end of range (61) above maximum (59): 61'),
                 id="unparseable"),
])
async def test_schedules_validation_would_refuse(cluster: Cluster, controller: CronJobController,
                                                 spec: Obj, expected: tuple[str, str, str]) -> None:
    created = await cluster.registry("batch", "v1", "cronjobs").create("default", _cronjob("*/5 * * * *"))
    await w.idle(controller.queue)
    cronjob = copy.deepcopy(created)  # as if stored before validation knew better
    cronjob["spec"].update(spec)
    cronjob.setdefault("status", {})
    assert await controller._sync(cronjob, []) == (None, False)
    assert expected in await _events(cluster)
