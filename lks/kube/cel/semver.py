"""Kubernetes' semver library (`library/semverlib.go`): `isSemver(s[, normalize])`,
`semver(s[, normalize])` and a version's `major()`, `minor()`, `patch()`, `isGreaterThan`,
`isLessThan`, `compareTo`, compared by semver precedence (pre-releases before releases, build
metadata ignored). Normalizing accepts a `v` prefix, missing minor and patch, and leading zeros."""

from __future__ import annotations

import functools
import re

from lks.kube.cel.library import EvalError, function, kind_of, tagged, text_of

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
                     r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?")
_LOOSE = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", re.DOTALL)


def _normalize(text: str) -> str:
    m = _LOOSE.fullmatch(text)
    if not m:
        return text
    return ".".join(str(int(p or 0)) for p in m.group(1, 2, 3)) + m.group(4)


@functools.lru_cache(maxsize=512)
def parse(text: str, normalize: bool = False) -> tuple[int, int, int, tuple]:
    """(major, minor, patch, pre-release parts); raises ValueError."""
    m = _SEMVER.fullmatch(_normalize(text) if normalize else text)
    if not m:
        raise ValueError(f"{text!r} is not a valid semantic version")
    pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in m.group(4).split(".")) if m.group(4) else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def _key(version: str) -> tuple:
    major, minor, patch, pre = parse(text_of(version))
    return major, minor, patch, (1,) if not pre else (0, pre)  # a release sorts after its pre-releases


@function("isSemver", str)
def is_semver(text: str, normalize: bool = False) -> bool:
    try:
        parse(text, normalize)
    except ValueError:
        return False
    return True


@function("semver", str)
def semver(text: str, normalize: bool = False) -> str:
    try:
        parse(text, normalize)
    except ValueError as err:
        raise EvalError(f"error converting string to semver: {err}") from None
    canonical = _normalize(text) if normalize else text
    return tagged("semver", canonical.partition("+")[0])  # build metadata does not take part in equality


@function("major", "semver")
def major(v: str) -> int:
    return parse(text_of(v))[0]


@function("minor", "semver")
def minor(v: str) -> int:
    return parse(text_of(v))[1]


@function("patch", "semver")
def patch(v: str) -> int:
    return parse(text_of(v))[2]


def _other(v: object) -> str:
    if kind_of(v) != "semver":
        raise EvalError("no such overload")
    return v  # type: ignore[return-value]


@function("isGreaterThan", "semver")
def is_greater_than(v: str, other: object) -> bool:
    return _key(v) > _key(_other(other))


@function("isLessThan", "semver")
def is_less_than(v: str, other: object) -> bool:
    return _key(v) < _key(_other(other))


@function("compareTo", "semver")
def compare_to(v: str, other: object) -> int:
    a, b = _key(v), _key(_other(other))
    return (a > b) - (a < b)
