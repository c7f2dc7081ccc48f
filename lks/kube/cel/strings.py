"""cel-go's `ext.Strings` (the version Kubernetes enables): indices count code points, and the
errors are cel-go's ("index out of range: 7")."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import cel as _cel

from lks.kube.cel.library import EvalError, function, kind_of, require, text_of
from lks.kube.cel.source import STRING


def _bound(s: str, i: int) -> int:
    if i < 0 or i > len(s):
        raise EvalError(f"index out of range: {i}")
    return i


@function("charAt", str)
def char_at(s: str, i: int) -> str:
    return s[_bound(s, i):i + 1]


@function("indexOf", str)
def index_of(s: str, sub: str, offset: int = 0) -> int:
    return s.find(sub, _bound(s, offset))


@function("lastIndexOf", str)
def last_index_of(s: str, sub: str, offset: int | None = None) -> int:
    offset = len(s) if offset is None else _bound(s, offset)
    return s.rfind(sub, 0, offset + len(sub))


@function("lowerAscii", str)
def lower_ascii(s: str) -> str:
    return s.translate(_LOWER)


@function("upperAscii", str)
def upper_ascii(s: str) -> str:
    return s.translate(_UPPER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


@function("replace", str)
def replace(s: str, old: str, new: str, n: int = -1) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


@function("split", str)
def split(s: str, sep: str, n: int = -1) -> list[str]:
    """Go's `strings.SplitN`: n == 0 gives nothing, n < 0 every piece, else at most n."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        return chars if n < 0 or n >= len(chars) else chars[:n - 1] + ["".join(chars[n - 1:])]
    return s.split(sep, n - 1 if n > 0 else -1)


@function("substring", str)
def substring(s: str, start: int, end: int | None = None) -> str:
    end = len(s) if end is None else end
    _bound(s, start)
    _bound(s, end)
    if start > end:
        raise EvalError(f"invalid substring range. start: {start}, end: {end}")
    return s[start:end]


@function("trim", str)
def trim(s: str) -> str:
    return s.strip()


@function("reverse", str)
def reverse(s: str) -> str:
    return s[::-1]


@function("join", list)
def join(items: list[Any], sep: str = "") -> str:
    return sep.join(require(x, str, "join") for x in items)


_QUOTE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
          "\f": "\\f", "\v": "\\v"}


@function("strings.quote", str)
def quote(s: str) -> str:
    return '"' + "".join(_QUOTE.get(c, c) for c in s) + '"'


@function("format", str)
def format_(template: str, args: list[Any]) -> str:
    """cel-go's `string.format(list)`: %s %d %f %e %b %o %x %X and %%, with a precision for %f/%e."""
    out, i, n, arg = [], 0, len(template), 0
    while i < n:
        c = template[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        precision = None
        if i < n and template[i] == ".":
            j = i + 1
            while j < n and template[j].isdigit():
                j += 1
            precision, i = int(template[i + 1:j] or 0), j
        if i >= n:
            raise EvalError("unexpected end of string")
        verb = template[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if arg >= len(args):
            raise EvalError(f"index {arg} out of range")
        out.append(_verb(verb, args[arg], precision))
        arg += 1
    return "".join(out)


def _verb(verb: str, value: Any, precision: int | None) -> str:
    if verb == "s":
        return to_string(value)
    if verb == "d":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvalError(f"error during formatting: integer clause can only be used on integers, was given {_type(value)}")
        return str(value)
    if verb in "fe":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvalError("error during formatting: fixed-point clause can only be used on doubles, was given "
                            f"{_type(value)}")
        p = 6 if precision is None else precision
        if math.isnan(value) or math.isinf(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"{value:.{p}{verb}}"
    if verb in "boxX":
        if isinstance(value, str) and verb in "xX":
            text = value.encode().hex()
            return text.upper() if verb == "X" else text
        if isinstance(value, bytes) and verb in "xX":
            return value.hex().upper() if verb == "X" else value.hex()
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvalError(f"error during formatting: only integers, byte buffers, and strings can be formatted as "
                            f"{_NAMES[verb]}, was given {_type(value)}")
        return format(value, verb)
    raise EvalError(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')


_NAMES = {"b": "binary", "o": "octal", "x": "hex", "X": "hex"}


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "double", str: "string", bytes: "bytes", list: "list", dict: "map",
            type(None): "null_type"}.get(type(value), type(value).__name__)


def to_string(value: Any) -> str:
    """CEL's `string(x)` as `%s` renders it, lists and maps included."""
    if value is None:
        return "null"
    if kind_of(value) in ("ip", "cidr", "url"):
        return text_of(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return "[" + ", ".join(to_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_string(k)}: {to_string(v)}" for k, v in sorted(value.items(), key=str)) + "}"
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, bool):  # the interpreter has no string(bool)
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _double(v: float) -> str:
    """Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which cel-go's `string(double)` uses."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    _, digits, exp = Decimal(repr(abs(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    point = len(digits) + exp  # where the decimal point falls after the digits' first
    sign = "-" if v < 0 else ""
    x = point - 1
    if x < -4 or x >= 6:  # shortest form: the exponent decides at precision 6
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{sign}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{text}"
    if point >= len(text):
        return sign + text + "0" * (point - len(text))
    return f"{sign}{text[:point]}.{text[point:]}"


_NATIVE_STRING = _cel.compile("string(x)")


@function(STRING)
def string(value: Any) -> str:
    """CEL's `string(x)`: the interpreter's, with cel-go's text for timestamps and durations, and
    the Kubernetes types that have a string form (IP, CIDR, URL)."""
    kind = kind_of(value)
    if kind in ("ip", "cidr", "url"):
        return text_of(value)
    if kind is not None or isinstance(value, (list, dict)) or value is None:
        raise EvalError("no such overload")
    if isinstance(value, bool):  # the interpreter has no string(bool)
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, float):
        return _double(value)
    try:
        return _NATIVE_STRING.execute({"x": value})
    except Exception as err:  # the interpreter's conversion error (string(b'\xff'))
        raise EvalError(str(err)) from None


def duration_text(d: timedelta) -> str:
    """Go's protobuf duration text as cel-go prints it: seconds, fractions without trailing zeros."""
    micros = (d.days * 86400 + d.seconds) * 10**6 + d.microseconds
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    whole, frac = divmod(micros, 10**6)
    return f"{sign}{whole}" + (f".{frac:06d}".rstrip("0") if frac else "") + "s"


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Go's `time.ParseDuration` (`1h30m`, `-1.5s`, `0`); ValueError when it is not one."""
    sign, rest = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    if rest == "0":
        return timedelta(0)
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total, pos = 0.0, 0
    while pos < len(rest):
        m = _DURATION_PART.match(rest, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return timedelta(seconds=sign * total)
