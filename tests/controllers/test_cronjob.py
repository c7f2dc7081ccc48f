"""Cron schedules (next times, day-of-month/day-of-week rules, time zones, missed times) and
the CronJob controller on the memory store with a manual clock: Jobs created when due and
named for their scheduled minute, concurrency policies, starting deadlines, suspension and
history limits. Jobs are finished by the test, standing in for the Job controller."""

from __future__ import annotations

import zoneinfo
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from lks.clock import ManualClock, rfc3339
from lks.controllers import cronschedule
from lks.controllers.cronjob import CronJobController
from lks.kube.cluster import Cluster

from . import workloads as w

Obj = dict[str, Any]


def _ts(text: str) -> float:
    """An ISO 8601 time with its offset, in seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()


def _iso(ts: float | None, zone: str = "UTC") -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %a")


@pytest.mark.parametrize(("spec", "after", "expected"), [
    pytest.param("*/5 * * * *", "2024-03-01T10:02:30", "2024-03-01 10:05 Fri", id="step"),
    pytest.param("*/5 * * * *", "2024-03-01T10:05:00", "2024-03-01 10:10 Fri", id="strictly-after"),
    pytest.param("0 9-17/4 * * *", "2024-03-01T13:00:00", "2024-03-01 17:00 Fri", id="range-step"),
    pytest.param("30 2 * * mon-fri", "2024-03-01T03:00:00", "2024-03-04 02:30 Mon", id="weekday-names"),
    pytest.param("0 0 1 jan,jul *", "2024-03-01T00:00:00", "2024-07-01 00:00 Mon", id="month-names"),
    pytest.param("0 0 13 * 5", "2024-03-01T01:00:00", "2024-03-08 00:00 Fri", id="dom-or-dow"),
    pytest.param("0 0 13 * *", "2024-03-01T01:00:00", "2024-03-13 00:00 Wed", id="dom-only"),
    pytest.param("0 0 */2 * 5", "2024-03-01T01:00:00", "2024-03-03 00:00 Sun", id="dom-step-is-not-star"),
    pytest.param("0 0 * * 5", "2024-03-01T01:00:00", "2024-03-08 00:00 Fri", id="dom-star-and"),
    pytest.param("@hourly", "2024-03-01T10:00:00", "2024-03-01 11:00 Fri", id="hourly"),
    pytest.param("@daily", "2024-03-01T10:00:00", "2024-03-02 00:00 Sat", id="daily"),
    pytest.param("@weekly", "2024-03-01T10:00:00", "2024-03-03 00:00 Sun", id="weekly"),
    pytest.param("@monthly", "2024-03-01T10:00:00", "2024-04-01 00:00 Mon", id="monthly"),
    pytest.param("@yearly", "2024-03-01T10:00:00", "2025-01-01 00:00 Wed", id="yearly"),
    pytest.param("0 0 29 2 *", "2024-03-01T10:00:00", "2028-02-29 00:00 Tue", id="leap-day"),
])
def test_next_after(spec: str, after: str, expected: str) -> None:
    schedule = cronschedule.parse(spec)
    assert _iso(cronschedule.next_after(schedule, _ts(after + "+00:00"))) == expected


def test_impossible_schedule_never_fires() -> None:
    assert cronschedule.next_after(cronschedule.parse("0 0 31 2 *"), _ts("2024-01-01T00:00:00+00:00")) is None


def test_every() -> None:
    schedule = cronschedule.parse("@every 90s")
    assert cronschedule.next_after(schedule, 1000.5) == 1090


def test_time_zone_and_dst() -> None:
    berlin = cronschedule.parse("0 9 * * *", "Europe/Berlin")
    # 09:00 in Berlin is 08:00Z in winter and 07:00Z in summer
    assert _iso(cronschedule.next_after(berlin, _ts("2024-03-01T00:00:00+00:00"))) == "2024-03-01 08:00 Fri"
    assert _iso(cronschedule.next_after(berlin, _ts("2024-07-01T00:00:00+00:00"))) == "2024-07-01 07:00 Mon"
    # 02:30 does not exist on the day clocks go forward: that day is skipped
    ny = cronschedule.parse("30 2 * * *", "America/New_York")
    got = cronschedule.next_after(ny, _ts("2024-03-10T00:00:00-05:00"))
    assert _iso(got, "America/New_York") == "2024-03-11 02:30 Mon"


def test_most_recent_and_missed() -> None:
    schedule = cronschedule.parse("*/10 * * * *")
    start = _ts("2024-03-01T10:00:00+00:00")
    assert cronschedule.most_recent(schedule, start, start + 5 * 60) == (None, 0)
    assert cronschedule.most_recent(schedule, start, start + 12 * 60) == (start + 600, 1)
    recent, missed = cronschedule.most_recent(schedule, start, start + 3600 * 24)
    assert recent == start + 3600 * 24 and missed == 144


def test_parse_errors_are_robfigs() -> None:
    with pytest.raises(cronschedule.CronError, match="end of range"):
        cronschedule.parse("61 * * * *")


# -- the controller ----------------------------------------------------------------------------

@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[CronJobController]:
    c = CronJobController(cluster)
    await c.start()
    yield c
    await c.stop()


def _cronjob(name: str = "hello", schedule: str = "*/5 * * * *", **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {
        "schedule": schedule,
        "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox"}]}}}},
        **spec}}


async def _create(cluster: Cluster, body: Obj) -> Obj:
    return await cluster.registry("batch", "v1", "cronjobs").create("default", body)


async def _get(cluster: Cluster, name: str = "hello") -> Obj:
    return await cluster.registry("batch", "v1", "cronjobs").get("default", name)


async def _jobs(cluster: Cluster) -> list[Obj]:
    return sorted((j for j in await w.listed(cluster, "batch", "jobs") if "deletionTimestamp" not in j["metadata"]),
                  key=lambda j: j["metadata"]["name"])


async def _finish(cluster: Cluster, job: Obj, outcome: str = "Complete") -> None:
    now = rfc3339(cluster.clock.now())

    def done(current: Obj) -> Obj:
        st = current.setdefault("status", {})
        st["startTime"] = st.get("startTime") or now
        st["conditions"] = [{"type": outcome, "status": "True", "lastTransitionTime": now}]
        if outcome == "Complete":
            st["completionTime"] = now
            st["succeeded"] = 1
        else:
            st["failed"] = 1
        return current

    await cluster.registry("batch", "v1", "jobs").patch("default", job["metadata"]["name"], done, subresource="status")


async def _advance_to_next(clock: ManualClock, controller: CronJobController, minutes: int = 5) -> None:
    """Move the clock to just past the next multiple of `minutes`."""
    now = clock.now()
    target = (int(now) // (minutes * 60) + 1) * minutes * 60 + 1
    await clock.advance(target - now)
    await w.idle(controller.queue)


async def test_fires_on_schedule(cluster: Cluster, controller: CronJobController, clock: ManualClock) -> None:
    cj = await _create(cluster, _cronjob())
    await w.idle(controller.queue)
    assert await _jobs(cluster) == []
    await _advance_to_next(clock, controller)
    jobs = await _jobs(cluster)
    scheduled = (int(clock.now()) // 300) * 300
    assert [j["metadata"]["name"] for j in jobs] == [f"hello-{scheduled // 60}"]
    job = jobs[0]
    assert job["metadata"]["labels"]["team"] == "a"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == rfc3339(scheduled)
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("CronJob", cj["metadata"]["uid"], True)
    status = (await _get(cluster))["status"]
    assert status["lastScheduleTime"] == rfc3339(scheduled)
    assert [a["name"] for a in status["active"]] == [job["metadata"]["name"]]
    await _finish(cluster, job)
    await w.idle(controller.queue)
    status = (await _get(cluster))["status"]
    assert "active" not in status and status["lastSuccessfulTime"] == rfc3339(clock.now())
    events = {(e["reason"], e["message"]) for e in await w.listed(cluster, "", "events")}
    assert ("SuccessfulCreate", f"Created job {job['metadata']['name']}") in events
    assert ("SawCompletedJob", f"Saw completed job: {job['metadata']['name']}, condition: Complete") in events
    await _advance_to_next(clock, controller)
    assert len(await _jobs(cluster)) == 2


async def test_forbid_and_replace(cluster: Cluster, controller: CronJobController, clock: ManualClock) -> None:
    await _create(cluster, _cronjob("forbid", concurrencyPolicy="Forbid"))
    await _create(cluster, _cronjob("replace", concurrencyPolicy="Replace"))
    await _advance_to_next(clock, controller)
    first = {j["metadata"]["name"].split("-")[0]: j for j in await _jobs(cluster)}
    assert set(first) == {"forbid", "replace"}
    await _advance_to_next(clock, controller)
    names = [j["metadata"]["name"] for j in await _jobs(cluster)]
    assert [n for n in names if n.startswith("forbid")] == [first["forbid"]["metadata"]["name"]]
    replaced = [n for n in names if n.startswith("replace")]
    assert len(replaced) == 1 and replaced != [first["replace"]["metadata"]["name"]]
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in await w.listed(cluster, "", "events")}
    assert ("forbid", "JobAlreadyActive") in reasons and ("replace", "SuccessfulDelete") in reasons
    # once the forbidding job is done, the held-back run starts (no deadline set)
    await _finish(cluster, first["forbid"])
    await w.idle(controller.queue)
    assert len([j for j in await _jobs(cluster) if j["metadata"]["name"].startswith("forbid")]) == 2


async def test_starting_deadline(cluster: Cluster, controller: CronJobController, clock: ManualClock) -> None:
    await _create(cluster, _cronjob("late", suspend=True, startingDeadlineSeconds=30))
    await _create(cluster, _cronjob("anytime", suspend=True))
    await _advance_to_next(clock, controller)
    await clock.advance(120)
    reg = cluster.registry("batch", "v1", "cronjobs")

    def resume(current: Obj) -> Obj:
        current["spec"]["suspend"] = False
        return current

    await reg.patch("default", "late", resume)
    await reg.patch("default", "anytime", resume)
    await w.idle(controller.queue)
    names = [j["metadata"]["name"] for j in await _jobs(cluster)]
    assert [n.split("-")[0] for n in names] == ["anytime"]  # "late" missed its start by more than 30 s


async def test_history_limits(cluster: Cluster, controller: CronJobController, clock: ManualClock) -> None:
    await _create(cluster, _cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1))
    for outcome in ("Complete", "Complete", "Failed", "Failed"):
        await _advance_to_next(clock, controller)
        newest = (await _jobs(cluster))[-1]
        await _finish(cluster, newest, outcome)
        await clock.advance(1)
        await w.idle(controller.queue)
    jobs = await _jobs(cluster)
    outcomes = sorted(c["type"] for j in jobs for c in j["status"]["conditions"])
    assert outcomes == ["Complete", "Failed"]
    assert "SuccessfulDelete" in {e["reason"] for e in await w.listed(cluster, "", "events")}


async def test_time_zone(cluster: Cluster, controller: CronJobController, clock: ManualClock) -> None:
    # the manual clock starts at 2023-11-14T22:13:20Z, 23:13:20 in Berlin
    await _create(cluster, _cronjob("berlin", "0 0 * * *", timeZone="Europe/Berlin"))
    await w.idle(controller.queue)
    await clock.advance(_ts("2023-11-14T22:59:00+00:00") - clock.now())
    await w.idle(controller.queue)
    assert await _jobs(cluster) == []
    await clock.advance(61)
    await w.idle(controller.queue)
    job = (await _jobs(cluster))[0]
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2023-11-15T00:00:00+01:00"
    assert job["metadata"]["name"] == f"berlin-{int(_ts('2023-11-14T23:00:00+00:00')) // 60}"


async def test_many_missed_runs_start_only_the_latest(cluster: Cluster, controller: CronJobController,
                                                      clock: ManualClock) -> None:
    await _create(cluster, _cronjob("every-minute", "* * * * *", suspend=True))
    await w.idle(controller.queue)
    await clock.advance(3 * 3600)

    def resume(current: Obj) -> Obj:
        current["spec"]["suspend"] = False
        return current

    await cluster.registry("batch", "v1", "cronjobs").patch("default", "every-minute", resume)
    await w.idle(controller.queue)
    assert len(await _jobs(cluster)) == 1
    assert "TooManyMissedTimes" in {e["reason"] for e in await w.listed(cluster, "", "events")}
