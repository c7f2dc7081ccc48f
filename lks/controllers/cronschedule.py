"""When a CronJob is due: robfig/cron's `Schedule.Next` over the schedules
`lks.kube.typevalidation.cron` parses (five fields with ranges, steps and names, `@hourly` and
friends, `@every`), in the CronJob's `timeZone`, and the CronJob controller's
`mostRecentScheduleTime` (which missed time to run, and how many were missed).

Day of month and day of week combine as in cron: when either field is a `*`, both must
match; otherwise either may. Times are searched on the zone's wall clock: a time that does
not exist (the hour skipped when clocks go forward) is skipped, as robfig's does; an hour
repeated when clocks go back fires once (robfig's fires in both). `lks.controllers.cronjob`
uses `parse`, `next_after` and `most_recent`.
"""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from lks.kube.typevalidation import cron

CronError = cron.CronError
MANY_MISSED = 100  # more missed times than this is reported as TooManyMissedTimes

_DESCRIPTORS = {  # robfig's descriptors, as field text (only their `*`s matter here)
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    day_star: bool
    weekday_star: bool
    every: float | None  # seconds, for `@every <duration>`
    zone: tzinfo


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    """A CronJob's schedule in its time zone (upstream formats it as `TZ=<zone> <schedule>`
    for `cron.ParseStandard`). Raises CronError with robfig's message."""
    text = f"TZ={time_zone} {schedule}" if time_zone else schedule
    parsed = cron.parse(text)
    zone: tzinfo = UTC
    if parsed.location and parsed.location not in ("UTC", "Local"):
        zone = zoneinfo.ZoneInfo(parsed.location)
    bare = text
    if bare.startswith(("TZ=", "CRON_TZ=")):
        bare = bare[bare.find(" "):].strip() if " " in bare else ""
    if parsed.every is not None:
        every = max(float(int(parsed.every)), 1.0)  # robfig's Every: whole seconds, at least one
        return Schedule(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), True, True, every, zone)
    fields = _DESCRIPTORS.get(bare, bare).split()
    minutes, hours, days, months, weekdays = parsed.fields
    return Schedule(minutes, hours, days, months, weekdays, _star(fields[2]), _star(fields[4]), None, zone)


def _star(field: str) -> bool:
    """robfig's starBit: some part of the field is `*` or `?` without a step above one."""
    for part in field.split(","):
        range_, _, step = part.partition("/")
        if range_ in ("*", "?") and (not step or step == "1"):
            return True
    return False


def _day_matches(s: Schedule, w: datetime) -> bool:
    day = w.day in s.days
    weekday = (w.isoweekday() % 7) in s.weekdays
    if s.day_star or s.weekday_star:
        return day and weekday
    return day or weekday


def next_after(s: Schedule, t: float) -> float | None:
    """The first time the schedule fires strictly after `t` (seconds since the epoch); None
    when it never does within five years (robfig returns the zero time then)."""
    if s.every is not None:
        return math.floor(t) + s.every
    start = math.ceil((math.floor(t) + 1) / 60) * 60  # fields fire on whole minutes only
    w = datetime.fromtimestamp(start, s.zone).replace(tzinfo=None)
    year_limit = w.year + 5
    while w.year <= year_limit:
        if w.month not in s.months:
            w = datetime(w.year + (w.month == 12), w.month % 12 + 1, 1)
            continue
        if not _day_matches(s, w):
            w = datetime(w.year, w.month, w.day) + timedelta(days=1)
            continue
        if w.hour not in s.hours:
            w = w.replace(minute=0) + timedelta(hours=1)
            continue
        if w.minute not in s.minutes:
            w += timedelta(minutes=1)
            continue
        for fold in (0, 1):
            aware = w.replace(tzinfo=s.zone, fold=fold)
            ts = aware.timestamp()
            exists = datetime.fromtimestamp(ts, s.zone).replace(tzinfo=None) == w
            if exists and ts >= start:
                return ts
        w += timedelta(minutes=1)
    return None


def most_recent(s: Schedule, earliest: float, now: float) -> tuple[float | None, int]:
    """mostRecentScheduleTime: the latest time in (earliest, now] the schedule fired, and
    roughly how many it fired in that span (upstream's approximation: the span over the gap
    between the first two). Raises CronError, as upstream, for a schedule whose next two
    times are less than a second apart, which is how robfig's zero time for a schedule that
    never fires (`59 23 31 2 *`) shows there."""
    t1 = next_after(s, earliest)
    if t1 is not None and now < t1:
        return None, 0
    t2 = next_after(s, t1) if t1 is not None else None
    if t1 is not None and t2 is not None and now < t2:
        return t1, 1
    between = round(t2 - t1) if t1 is not None and t2 is not None else 0
    if between < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // between + 1
    recent = None
    t = next_after(s, t1 + (missed - 2) * between)
    while t is not None and t <= now:
        recent = t
        t = next_after(s, t)
    return recent, missed
