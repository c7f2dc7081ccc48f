"""Kubernetes' regex library (`library/regex.go`): `s.find(re)` and `s.findAll(re[, n])`, with Go's
RE2 syntax (a pattern Go refuses fails as upstream: `Illegal regex: error parsing regexp: ...`).
`s.matches(re)` (CEL's own) is answered here too: the interpreter's compiles the pattern at every
call (~50 µs, most of a rule over a Pod's images), here it is compiled once."""

from __future__ import annotations

import functools
import re

from lks.kube import goregexp
from lks.kube.cel import source
from lks.kube.cel.library import EvalError, function

# RE2 spellings Python's `re` writes differently
_TRANSLATE = re.compile(r"\\z|\\Q(.*?)(?:\\E|$)|\(\?P<", re.DOTALL)


@functools.lru_cache(maxsize=512)
def compile_go(pattern: str) -> re.Pattern[str]:
    problem = goregexp.compile_error(pattern)
    if problem:
        raise EvalError(f"Illegal regex: {problem}")
    text = _TRANSLATE.sub(_python, pattern)
    try:
        return re.compile(text)
    except re.error as err:  # RE2 syntax Python lacks (\pL): say so rather than guess
        raise EvalError(f"Illegal regex: {err}") from None


def _python(m: re.Match[str]) -> str:
    if m.group() == "\\z":
        return r"\Z"
    return m.group() if m.group(1) is None else re.escape(m.group(1))


@function("find", str)
def find(s: str, pattern: str) -> str:
    m = compile_go(pattern).search(s)
    return m.group() if m else ""


@function("findAll", str)
def find_all(s: str, pattern: str, n: int = -1) -> list[str]:
    if n == 0:
        return []
    found = [m.group() for m in compile_go(pattern).finditer(s)]
    return found if n < 0 else found[:n]


@function(source.MATCHES, str)
def matches(s: str, pattern: str) -> bool:
    return _compile_matches(pattern).search(s) is not None


@functools.lru_cache(maxsize=512)
def _compile_matches(pattern: str) -> re.Pattern[str]:
    """As cel-go's `matches`: RE2's unanchored match, Go's words for a bad pattern."""
    try:
        compiled = compile_go(pattern)
    except EvalError as err:
        raise EvalError(str(err).removeprefix("Illegal regex: ")) from None
    if "(?" in pattern and "m" in "".join(re.findall(r"\(\?([a-zA-Z-]*)", pattern)):
        return compiled  # multi-line: `$` ends lines in both
    return re.compile(_DOLLAR.sub(lambda m: r"\Z" if m.group() == "$" else m.group(), compiled.pattern))


# RE2's `$` (without the m flag) is the end of the text; Python's also matches before a final
# newline: outside character classes, as `\Z`
_DOLLAR = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]?|\$", re.DOTALL)
