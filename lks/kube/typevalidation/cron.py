"""CronJob schedules as `github.com/robfig/cron/v3`'s `ParseStandard` reads them (five fields or
a descriptor such as ``@hourly``), with its error messages, which upstream shows verbatim:
``spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61``.

The CronJob controller (``lks.controllers``) can use `parse` to compute run times.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

from lks.kube.structural import go_quote

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (min, max, names) of minute, hour, day of month, month, day of week
_BOUNDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS)]
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_MAX_INT = 2**63 - 1


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    """The sets of minutes, hours, days of month, months and days of week a schedule fires on;
    `every` (seconds) for ``@every <duration>``; `location` from a ``TZ=`` prefix."""

    fields: tuple[frozenset[int], ...] = ()
    every: float | None = None
    location: str | None = None


def parse(spec: str) -> Schedule:
    """`cron.ParseStandard`; raises CronError with robfig/cron's message."""
    if not spec:
        raise CronError("empty spec string")
    location = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        eq, space = spec.find("="), spec.find(" ")
        location = spec[eq + 1:space] if space > eq else spec[eq + 1:]
        err = time_zone_error(location)
        if err:
            raise CronError(f"provided bad location {location}: {err}")
        spec = spec[space:].strip() if space > eq else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return Schedule(_fields(_DESCRIPTORS[spec].split()), location=location)
        if spec.startswith("@every "):
            try:
                return Schedule(every=parse_duration(spec[len("@every "):]), location=location)
            except CronError as err:
                raise CronError(f"failed to parse duration {spec}: {err}") from None
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return Schedule(_fields(fields), location=location)


def _fields(fields: list[str]) -> tuple[frozenset[int], ...]:
    return tuple(frozenset(_field(f, b)) for f, b in zip(fields, _BOUNDS, strict=True))


def _field(text: str, bounds: tuple) -> set[int]:
    values: set[int] = set()
    for expr in (r for r in text.split(",") if r):
        values |= _range(expr, bounds)
    return values


def _range(expr: str, bounds: tuple) -> set[int]:
    lo, hi, names = bounds
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = hi
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step))


def _int_or_name(expr: str, names: dict | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _int(expr)


def _int(expr: str) -> int:
    """`mustParseInt` over Go's `strconv.Atoi`."""
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronError(f"failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: invalid syntax")
    num = int(expr)
    if not -_MAX_INT - 1 <= num <= _MAX_INT:
        raise CronError(f"failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: value out of range")
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]*)")


def parse_duration(text: str) -> float:
    """Go's `time.ParseDuration`, in seconds; raises CronError with Go's message."""
    orig, s, sign = text, text, 1.0
    if s[:1] in "+-" and s:
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise CronError(f"time: invalid duration {go_quote(orig)}")
    total = 0.0
    while s:
        m = _DURATION_PART.match(s)
        number, unit = m.group(1), m.group(2)
        if not number or number == ".":
            raise CronError(f"time: invalid duration {go_quote(orig)}")
        if not unit:
            raise CronError(f"time: missing unit in duration {go_quote(orig)}")
        if unit not in _UNITS:
            raise CronError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(orig)}")
        total += float(number) * _UNITS[unit]
        s = s[m.end():]
    return sign * total


def time_zone_error(name: str) -> str | None:
    """Go's `time.LoadLocation(name)` error, or None."""
    if name in ("", "UTC", "Local"):
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name}"
    return None
