"""Maintenance configurations: AKS's defaults and 400s for the bodies, and the windows each
schedule opens (local start times, intervals, not-allowed dates)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lks.arm.errors import ARMError
from lks.upgrade import schedules

TODAY = date(2026, 12, 7)  # a Monday


def _window(schedule: dict, **kw) -> dict:
    return {"maintenanceWindow": {"schedule": schedule, "durationHours": kw.pop("durationHours", 4),
                                  "startTime": kw.pop("startTime", "02:00"), **kw}}


def _check(props: dict, name: str = schedules.AUTO_UPGRADE, existing: dict | None = None) -> dict:
    return schedules.check(name, props, existing=existing, today=TODAY)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_defaults_are_filled_in():
    out = _check(_window({"weekly": {"intervalWeeks": 1, "dayOfWeek": "monday"}}))
    assert out["maintenanceWindow"] == {
        "schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}}, "durationHours": 4,
        "utcOffset": "+00:00", "startDate": "2026-12-07", "startTime": "02:00", "notAllowedDates": []}


@pytest.mark.parametrize(("name", "props", "message"), [
    pytest.param("weekly", _window({"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}}, durationHours=3),
                 "between 4 and 24 hours", id="duration-too-short"),
    pytest.param("weekly", _window({"weekly": {"intervalWeeks": 5, "dayOfWeek": "Monday"}}),
                 "intervalWeeks' 5 is invalid", id="interval-out-of-range"),
    pytest.param("none", _window({}), "One and only one of the schedule types", id="no-schedule"),
    pytest.param("two", _window({"daily": {"intervalDays": 1}, "weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}}),
                 "One and only one", id="two-schedules"),
    pytest.param("day", _window({"weekly": {"intervalWeeks": 1, "dayOfWeek": "Funday"}}), "dayOfWeek' Funday",
                 id="bad-day"),
    pytest.param("offset", _window({"daily": {"intervalDays": 1}}, utcOffset="5:30"), "utcOffset' 5:30",
                 id="bad-offset"),
    pytest.param("time", _window({"daily": {"intervalDays": 1}}, startTime="24:00"), "startTime' 24:00",
                 id="bad-start-time"),
    pytest.param("past", _window({"daily": {"intervalDays": 1}}, startDate="2026-12-01"),
                 "is before the current time", id="start-date-in-the-past"),
    pytest.param("index", _window({"relativeMonthly": {"intervalMonths": 1, "dayOfWeek": "Monday",
                                                       "weekIndex": "Fifth"}}), "weekIndex' Fifth", id="week-index"),
    pytest.param("slots", {"timeInWeek": [{"day": "Monday", "hourSlots": [1]}]},
                 "timeInWeek and notAllowedTime are not supported", id="legacy-slots-on-a-dedicated-config"),
    pytest.param("missing", {}, "maintenanceWindow is required", id="no-window"),
])
def test_bad_bodies_get_aks_errors(name, props, message):
    with pytest.raises(ARMError) as err:
        _check(props)
    assert err.value.status == 400 and err.value.code == "InvalidParameter"
    assert message in err.value.message


def test_a_kept_start_date_may_lie_in_the_past():
    old = _check(_window({"daily": {"intervalDays": 1}}, startDate="2026-12-07"))
    later = schedules.check(schedules.AUTO_UPGRADE, _window({"daily": {"intervalDays": 1}}, startDate="2026-12-07",
                                                             durationHours=6),
                            existing=old, today=date(2027, 1, 10))
    assert later["maintenanceWindow"]["durationHours"] == 6


def test_default_config_takes_weekly_windows_only():
    with pytest.raises(ARMError, match="Only weekly schedule is supported"):
        _check(_window({"daily": {"intervalDays": 1}}), name=schedules.DEFAULT)
    legacy = _check({"timeInWeek": [{"day": "tuesday", "hourSlots": [3, 1, 2]}]}, name=schedules.DEFAULT)
    assert legacy == {"timeInWeek": [{"day": "Tuesday", "hourSlots": [1, 2, 3]}], "notAllowedTime": []}


def test_config_names():
    assert schedules.canonical_name("AKSManagedAutoUpgradeSchedule") == schedules.AUTO_UPGRADE
    with pytest.raises(ARMError, match="Only 'default', 'aksManagedAutoUpgradeSchedule' and "
                                       "'aksManagedNodeOSUpgradeSchedule' are allowed configNames"):
        schedules.canonical_name("nightly")


def test_weekly_window_in_a_utc_offset():
    props = _check(_window({"weekly": {"intervalWeeks": 1, "dayOfWeek": "Wednesday"}}, utcOffset="+05:30"))
    # Wednesday 02:00 at +05:30 is Tuesday 20:30 UTC
    assert schedules.next_window(props, _utc(2026, 12, 7)) == (_utc(2026, 12, 8, 20, 30), _utc(2026, 12, 9, 0, 30))
    inside = _utc(2026, 12, 8, 22)
    assert schedules.next_window(props, inside) == (inside, _utc(2026, 12, 9, 0, 30))
    assert schedules.next_window(props, _utc(2026, 12, 9, 0, 30))[0] == _utc(2026, 12, 15, 20, 30)


def test_intervals_count_from_the_start_date():
    every_other_week = _check(_window({"weekly": {"intervalWeeks": 2, "dayOfWeek": "Friday"}}, startDate="2026-12-09"))
    first = schedules.next_window(every_other_week, _utc(2026, 12, 7))[0]
    assert first == _utc(2026, 12, 11, 2)
    assert schedules.next_window(every_other_week, _utc(2026, 12, 12))[0] == _utc(2026, 12, 25, 2)
    every_third_day = _check(_window({"daily": {"intervalDays": 3}}, startDate="2026-12-08"))
    assert schedules.next_window(every_third_day, _utc(2026, 12, 9))[0] == _utc(2026, 12, 11, 2)


def test_monthly_schedules():
    absolute = _check(_window({"absoluteMonthly": {"intervalMonths": 1, "dayOfMonth": 31}}))
    assert schedules.next_window(absolute, _utc(2027, 1, 1))[0] == _utc(2027, 1, 31, 2)
    assert schedules.next_window(absolute, _utc(2027, 2, 1))[0] == _utc(2027, 3, 31, 2)  # February has none
    last_sunday = _check(_window({"relativeMonthly": {"intervalMonths": 1, "dayOfWeek": "Sunday",
                                                      "weekIndex": "Last"}}))
    assert schedules.next_window(last_sunday, _utc(2026, 12, 7))[0] == _utc(2026, 12, 27, 2)
    second_tuesday = _check(_window({"relativeMonthly": {"intervalMonths": 2, "dayOfWeek": "Tuesday",
                                                         "weekIndex": "Second"}}))
    assert schedules.next_window(second_tuesday, _utc(2026, 12, 7))[0] == _utc(2026, 12, 8, 2)
    assert schedules.next_window(second_tuesday, _utc(2026, 12, 9))[0] == _utc(2027, 2, 9, 2)


def test_not_allowed_dates_skip_windows():
    props = _check(_window({"daily": {"intervalDays": 1}}, durationHours=4, notAllowedDates=[
        {"start": "2026-12-24", "end": "2026-12-26"}]))
    assert schedules.next_window(props, _utc(2026, 12, 23, 12))[0] == _utc(2026, 12, 27, 2)


def test_legacy_hour_slots_merge_and_skip_not_allowed_time():
    props = _check({"timeInWeek": [{"day": "Monday", "hourSlots": [1, 2, 5]}],
                    "notAllowedTime": [{"start": "2026-12-07T00:00:00Z", "end": "2026-12-08T00:00:00Z"}]},
                   name=schedules.DEFAULT)
    assert schedules.next_window(props, _utc(2026, 12, 6)) == (_utc(2026, 12, 14, 1), _utc(2026, 12, 14, 3))
