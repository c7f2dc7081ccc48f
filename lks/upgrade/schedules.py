"""Planned maintenance (AKS's `planned-maintenance.md`): the three maintenance configurations of a
managed cluster, their validation, and the windows they open.

`default` takes the legacy `timeInWeek` hour slots (UTC) with `notAllowedTime`, or a
`maintenanceWindow` with a weekly schedule every week; `aksManagedAutoUpgradeSchedule` (when the
auto-upgrade channel may upgrade the cluster) and `aksManagedNodeOSUpgradeSchedule` (when the node
OS channel may reimage nodes) take a `maintenanceWindow`: a daily, weekly, absolute-monthly or
relative-monthly schedule from `startDate`, starting at `startTime` in `utcOffset`, lasting
`durationHours` (4 to 24), minus the local `notAllowedDates`.

`check` turns a PUT body's properties into the stored ones (AKS's defaults, AKS's 400s);
`next_window` answers when a configuration next lets work run, which `lks.upgrade.auto` sleeps
until. Nothing here performs I/O or reads a clock: the caller passes the time.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lks.arm.errors import invalid_parameter

Doc = dict[str, Any]

DEFAULT = "default"
AUTO_UPGRADE = "aksManagedAutoUpgradeSchedule"
NODE_OS_UPGRADE = "aksManagedNodeOSUpgradeSchedule"
NAMES = (DEFAULT, AUTO_UPGRADE, NODE_OS_UPGRADE)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday() order
WEEK_INDEXES = ("First", "Second", "Third", "Fourth", "Last")
SCHEDULES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly")
# ranges of the REST spec (MaintenanceWindow, DailySchedule, WeeklySchedule, *MonthlySchedule)
DURATION_HOURS = (4, 24)
_INTERVALS = {"daily": ("intervalDays", 1, 7), "weekly": ("intervalWeeks", 1, 4),
              "absoluteMonthly": ("intervalMonths", 1, 6), "relativeMonthly": ("intervalMonths", 1, 6)}
_LOOKAHEAD_DAYS = 3 * 366  # far enough for the sparsest schedule past a long run of not-allowed dates
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
_MW = "maintenanceWindow"


def canonical_name(name: str) -> str:
    """The configuration's name as AKS spells it, or AKS's 400 for any other name."""
    for known in NAMES:
        if name.lower() == known.lower():
            return known
    raise invalid_parameter("Only 'default', 'aksManagedAutoUpgradeSchedule' and 'aksManagedNodeOSUpgradeSchedule' "
                            "are allowed configNames for maintenance configuration.", "configName")


# -- validation ------------------------------------------------------------------------------------

def check(name: str, props: Any, *, existing: Doc | None, today: date) -> Doc:
    """The stored properties for a PUT of configuration `name` (canonical). `existing` is the stored
    properties (a `startDate` kept as it was may lie in the past); `today` is the service's UTC date."""
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise invalid_parameter("The value of parameter properties is invalid.", "properties")
    window = props.get(_MW)
    slots, not_allowed = props.get("timeInWeek"), props.get("notAllowedTime")
    if name != DEFAULT:
        if slots or not_allowed:
            raise invalid_parameter(f"timeInWeek and notAllowedTime are not supported for maintenance configuration "
                                    f"{name}, please use maintenanceWindow instead.", "properties.timeInWeek")
        if window is None:
            raise invalid_parameter(f"maintenanceWindow is required for maintenance configuration {name}.",
                                    f"properties.{_MW}")
    out: Doc = {}
    if window is not None:
        if slots or not_allowed:
            raise invalid_parameter("maintenanceWindow cannot be used together with timeInWeek or notAllowedTime.",
                                    f"properties.{_MW}")
        out[_MW] = _window(name, window, existing=(existing or {}).get(_MW), today=today)
        return out
    out["timeInWeek"] = _time_in_week(slots)
    out["notAllowedTime"] = _time_spans(not_allowed)
    return out


def _time_in_week(slots: Any) -> list[Doc]:
    target = "properties.timeInWeek"
    if slots is None:
        return []
    if not isinstance(slots, list):
        raise invalid_parameter("The value of parameter timeInWeek is invalid.", target)
    out = []
    for slot in slots:
        if not isinstance(slot, dict):
            raise invalid_parameter("The value of parameter timeInWeek is invalid.", target)
        day = _day(slot.get("day"), f"{target}.day")
        hours = slot.get("hourSlots") or []
        if not isinstance(hours, list) or not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 23
                                                  for h in hours):
            raise invalid_parameter(f"The value of parameter timeInWeek.hourSlots is invalid: {hours}. Hour slots "
                                    "must be integers from 0 to 23.", f"{target}.hourSlots")
        out.append({"day": day, "hourSlots": sorted(set(hours))})
    return out


def _time_spans(spans: Any) -> list[Doc]:
    target = "properties.notAllowedTime"
    if spans is None:
        return []
    if not isinstance(spans, list):
        raise invalid_parameter("The value of parameter notAllowedTime is invalid.", target)
    out = []
    for span in spans:
        if not isinstance(span, dict):
            raise invalid_parameter("The value of parameter notAllowedTime is invalid.", target)
        start, end = (_datetime(span.get(k), f"{target}.{k}") for k in ("start", "end"))
        if end <= start:
            raise invalid_parameter(f"The end of notAllowedTime {span.get('end')} must be after its start "
                                    f"{span.get('start')}.", target)
        out.append({"start": span["start"], "end": span["end"]})
    return out


def _window(name: str, window: Any, *, existing: Doc | None, today: date) -> Doc:
    if not isinstance(window, dict):
        raise invalid_parameter("The value of parameter maintenanceWindow is invalid.", f"properties.{_MW}")
    schedule = _schedule(window.get("schedule"))
    if name == DEFAULT and (set(schedule) != {"weekly"} or schedule["weekly"]["intervalWeeks"] != 1):
        # AKS since API 2025-03-01 (Azure/AgentBaker#6529; az's default-config check, Azure/azure-cli#33431)
        raise invalid_parameter("Only weekly schedule is supported for control plane upgrade maintenance "
                                "configuration: default.", f"{_MW}.schedule")
    duration = window.get("durationHours")
    low, high = DURATION_HOURS
    if not isinstance(duration, int) or isinstance(duration, bool) or not low <= duration <= high:
        raise invalid_parameter(f"The input '{_MW}.durationHours' {duration} is invalid. The duration of a "
                                f"maintenance window must be between {low} and {high} hours.", f"{_MW}.durationHours")
    offset = window.get("utcOffset") or "+00:00"
    _offset(offset)
    start_time = window.get("startTime")
    if not isinstance(start_time, str) or not (m := _TIME.match(start_time)) or int(m[1]) > 23 or int(m[2]) > 59:
        raise invalid_parameter(f"The input '{_MW}.startTime' {start_time} is invalid. Accepted values are from "
                                "'00:00' to '23:59'.", f"{_MW}.startTime")
    local_today = (datetime.combine(today, datetime.min.time(), UTC) + _offset(offset)).date()
    start_date = window.get("startDate")
    if start_date is None:
        start_date = local_today.isoformat()  # AKS fills in the day the window was set
    day = _date(start_date, f"{_MW}.startDate")
    if day < local_today and start_date != (existing or {}).get("startDate"):
        # AKS checks a start date it is given anew (hashicorp/terraform-provider-azurerm#22762)
        raise invalid_parameter(f"The input '{_MW}.startDate' {day.isoformat()} 00:00:00 {offset} is before the "
                                "current time.", f"{_MW}.startDate")
    not_allowed = window.get("notAllowedDates") or []
    if not isinstance(not_allowed, list):
        raise invalid_parameter("The value of parameter notAllowedDates is invalid.", f"{_MW}.notAllowedDates")
    spans = []
    for span in not_allowed:
        if not isinstance(span, dict):
            raise invalid_parameter("The value of parameter notAllowedDates is invalid.", f"{_MW}.notAllowedDates")
        start, end = (_date(span.get(k), f"{_MW}.notAllowedDates.{k}") for k in ("start", "end"))
        if end < start:
            raise invalid_parameter(f"The end date {end.isoformat()} of notAllowedDates is before its start date "
                                    f"{start.isoformat()}.", f"{_MW}.notAllowedDates")
        spans.append({"start": start.isoformat(), "end": end.isoformat()})
    return {"schedule": schedule, "durationHours": duration, "utcOffset": offset, "startDate": day.isoformat(),
            "startTime": start_time, "notAllowedDates": spans}


def _schedule(schedule: Any) -> Doc:
    target = f"{_MW}.schedule"
    given = [k for k in SCHEDULES if isinstance(schedule, dict) and schedule.get(k) is not None]
    if len(given) != 1:
        raise invalid_parameter("One and only one of the schedule types should be specified. Choose either 'daily', "
                                "'weekly', 'absoluteMonthly' or 'relativeMonthly' for your maintenance schedule.",
                                target)
    kind = given[0]
    body = schedule[kind]
    if not isinstance(body, dict):
        raise invalid_parameter(f"The value of parameter {target}.{kind} is invalid.", f"{target}.{kind}")
    field, low, high = _INTERVALS[kind]
    interval = body.get(field)
    if not isinstance(interval, int) or isinstance(interval, bool) or not low <= interval <= high:
        raise invalid_parameter(f"The input '{target}.{kind}.{field}' {interval} is invalid. It must be between "
                                f"{low} and {high}.", f"{target}.{kind}.{field}")
    out: Doc = {field: interval}
    if kind in ("weekly", "relativeMonthly"):
        out["dayOfWeek"] = _day(body.get("dayOfWeek"), f"{target}.{kind}.dayOfWeek")
    if kind == "absoluteMonthly":
        day = body.get("dayOfMonth")
        if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 31:
            raise invalid_parameter(f"The input '{target}.{kind}.dayOfMonth' {day} is invalid. It must be between 1 "
                                    "and 31.", f"{target}.{kind}.dayOfMonth")
        out["dayOfMonth"] = day
    if kind == "relativeMonthly":
        index = next((w for w in WEEK_INDEXES if isinstance(body.get("weekIndex"), str)
                      and body["weekIndex"].lower() == w.lower()), None)
        if index is None:
            raise invalid_parameter(f"The input '{target}.{kind}.weekIndex' {body.get('weekIndex')} is invalid. "
                                    f"Allowed values are {', '.join(WEEK_INDEXES)}.", f"{target}.{kind}.weekIndex")
        out["weekIndex"] = index
    return {kind: out}


def _day(value: Any, target: str) -> str:
    for day in DAYS:
        if isinstance(value, str) and value.lower() == day.lower():
            return day
    raise invalid_parameter(f"The input '{target.removeprefix('properties.')}' {value} is invalid. Allowed values "
                            f"are {', '.join(('Sunday', *DAYS[:-1]))}.", target)


def _offset(value: Any) -> timedelta:
    m = _OFFSET.match(value) if isinstance(value, str) else None
    if m is None or int(m[2]) > 14 or int(m[3]) > 59:
        raise invalid_parameter(f"The input '{_MW}.utcOffset' {value} is invalid. The UTC offset must be in the "
                                "format +/-HH:mm, for example '+05:30' or '-07:00'.", f"{_MW}.utcOffset")
    delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
    return -delta if m[1] == "-" else delta


def _date(value: Any, target: str) -> date:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else _bad()
    except ValueError:
        raise invalid_parameter(f"The input '{target}' {value} is invalid. Dates must be in the format YYYY-MM-DD.",
                                target) from None


def _datetime(value: Any, target: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else _bad()
    except ValueError:
        raise invalid_parameter(f"The input '{target.removeprefix('properties.')}' {value} is invalid. Times must "
                                "be RFC 3339 date-times, for example 2026-12-24T00:00:00Z.", target) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bad() -> Any:
    raise ValueError("not a string")


# -- windows ---------------------------------------------------------------------------------------

def next_window(props: Doc, at: datetime) -> tuple[datetime, datetime] | None:
    """The first stretch of time from `at` (aware, UTC) on in which the configuration lets work
    run, as (start, end) in UTC: `start <= at` means open now. None: it never opens again."""
    for start, end in _openings(props, at):
        if end > at:
            return max(start, at), end
    return None


def _openings(props: Doc, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    window = props.get(_MW)
    if window is not None:
        return _minus(_occurrences(window, at), _blocked_dates(window))
    spans = [(_datetime(s["start"], ""), _datetime(s["end"], "")) for s in props.get("notAllowedTime") or []]
    return _minus(_hour_slots(props.get("timeInWeek") or [], at), sorted(spans))


def _occurrences(window: Doc, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's occurrences that end after `at`, in order (UTC)."""
    offset = _offset(window["utcOffset"])
    hours, minutes = (int(p) for p in window["startTime"].split(":"))
    duration = timedelta(hours=window["durationHours"])
    first = date.fromisoformat(window["startDate"])
    # an occurrence that began up to a day before `at` (local) may still be open
    day = max(first, (at + offset).date() - timedelta(days=2))
    for _ in range(_LOOKAHEAD_DAYS):
        if _matches(window["schedule"], day, first):
            start = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC) - offset
            if start + duration > at:
                yield start, start + duration
        day += timedelta(days=1)


def _matches(schedule: Doc, day: date, first: date) -> bool:
    """Whether the schedule has an occurrence on the local date `day` (counting from `first`)."""
    kind, rule = next(iter(schedule.items()))
    if kind == "daily":
        return (day - first).days % rule["intervalDays"] == 0
    if kind == "weekly":
        weekday = DAYS.index(rule["dayOfWeek"])
        if day.weekday() != weekday:
            return False
        opening = first + timedelta(days=(weekday - first.weekday()) % 7)  # the first such day from startDate
        return ((day - opening).days // 7) % rule["intervalWeeks"] == 0
    if (day.year - first.year) * 12 + day.month - first.month < 0 or \
            ((day.year - first.year) * 12 + day.month - first.month) % rule["intervalMonths"]:
        return False
    if kind == "absoluteMonthly":
        return day.day == rule["dayOfMonth"]
    if day.weekday() != DAYS.index(rule["dayOfWeek"]):
        return False
    if rule["weekIndex"] == "Last":
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 == WEEK_INDEXES.index(rule["weekIndex"])


def _blocked_dates(window: Doc) -> list[tuple[datetime, datetime]]:
    """`notAllowedDates` as UTC spans: whole local days, both ends included."""
    offset = _offset(window["utcOffset"])
    out = []
    for span in window.get("notAllowedDates") or []:
        start, end = date.fromisoformat(span["start"]), date.fromisoformat(span["end"]) + timedelta(days=1)
        out.append((datetime(start.year, start.month, start.day, tzinfo=UTC) - offset,
                    datetime(end.year, end.month, end.day, tzinfo=UTC) - offset))
    return sorted(out)


def _hour_slots(slots: list[Doc], at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The legacy `timeInWeek` hour slots (UTC) from `at` on, adjacent hours merged."""
    hours_by_day: dict[int, set[int]] = {}
    for slot in slots:
        hours_by_day.setdefault(DAYS.index(slot["day"]), set()).update(slot["hourSlots"])
    if not any(hours_by_day.values()):
        return
    day = at.date() - timedelta(days=1)
    pending: tuple[datetime, datetime] | None = None
    for _ in range(_LOOKAHEAD_DAYS):
        for hour in sorted(hours_by_day.get(day.weekday(), ())):
            start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            if pending is not None and pending[1] == start:
                pending = (pending[0], start + timedelta(hours=1))
                continue
            if pending is not None:
                yield pending
            pending = (start, start + timedelta(hours=1))
        day += timedelta(days=1)
    if pending is not None:
        yield pending


def _minus(openings: Iterator[tuple[datetime, datetime]],
           blocked: list[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    """`openings` with the `blocked` spans (sorted) cut out."""
    for start, end in openings:
        for b_start, b_end in blocked:
            if b_end <= start or b_start >= end:
                continue
            if b_start > start:
                yield start, b_start
            start = max(start, b_end)
            if start >= end:
                break
        if start < end:
            yield start, end
