"""The subset of client-go's JSONPath that CRD `additionalPrinterColumns` use.

A printer column names a value with a path such as `.spec.replicas`,
`.metadata.labels.app\\.kubernetes\\.io/name`, `.spec.items[0].name`, `.spec.items[*].name` or
`.status.conditions[?(@.type=="Ready")].status`. Like the apiextensions table convertor, paths
are evaluated with missing keys allowed: a missing key yields no result, while a type mismatch
(indexing a string, filtering a map, comparing a string with a number) is an error.
`lks.kube.tables` turns the first result into a cell.

Supported: `$` root, `.field` (with `\\` escapes), `['field']`, `[n]` and negative indexes,
`[start:end]`, `*` and `[*]`, `..field` recursive descent, and filters `[?(@.a.b <op> value)]`
with `==`, `!=`, `<`, `>`, `<=`, `>=` against string, number, boolean or `@` path operands, or a
bare `[?(@.a)]` existence test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    """The path does not parse, or the data cannot be walked the way the path asks."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Recursive:
    pass


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    end: int | None
    single: bool  # `[n]` (an index) rather than `[a:b]`


@dataclass(frozen=True, slots=True)
class _Filter:
    left: tuple
    op: str  # "exists" for `[?(@.a)]`
    right: tuple | Any = None  # a path (tuple of steps) or a literal


_TERMINATORS = set(" .,[]$@{}")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?$")


class _Parser:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def steps(self, stop: str = "") -> tuple:
        result: list = []
        if self.peek() in ("$", "@"):
            self.pos += 1
        while self.pos < len(self.text) and self.peek() not in stop:
            if self.peek(2) == "..":
                self.pos += 1
                result.append(_Recursive())
            elif self.peek() == ".":
                self.pos += 1
                result.append(self.field())
            elif self.peek() == "[":
                result.append(self.bracket())
            else:
                raise JSONPathError(f"unrecognized character in action: {self.peek()!r}")
        return tuple(result)

    def field(self) -> _Field | _Wildcard:
        chars = []
        while self.pos < len(self.text) and self.peek() not in _TERMINATORS and self.peek() not in "()=!<>":
            if self.peek() == "\\":  # `\.` keeps a dot inside a key such as app.kubernetes.io/name
                self.pos += 1
            chars.append(self.peek())
            self.pos += 1
        name = "".join(chars)
        if name == "*":
            return _Wildcard()
        if not name:
            raise JSONPathError("missing field name")
        return _Field(name)

    def bracket(self) -> Any:
        end = self._closing("[", "]")
        inner, self.pos = self.text[self.pos + 1:end].strip(), end + 1
        if inner.startswith("?"):
            return _parse_filter(inner)
        if inner == "*":
            return _Wildcard()
        if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
            return _Field(inner[1:-1])
        parts = inner.split(":")
        try:
            numbers = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            raise JSONPathError(f"invalid array index {inner!r}") from None
        if len(parts) == 1 and numbers[0] is not None:
            return _Slice(numbers[0], None, single=True)
        if len(parts) in (2, 3):
            return _Slice(numbers[0], numbers[1], single=False)
        raise JSONPathError(f"invalid array index {inner!r}")

    def _closing(self, opening: str, closing: str) -> int:
        depth, quote = 0, ""
        for i in range(self.pos, len(self.text)):
            ch = self.text[i]
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == opening:
                depth += 1
            elif ch == closing:
                depth -= 1
                if depth == 0:
                    return i
        raise JSONPathError(f"unclosed {opening}")


def _parse_filter(inner: str) -> _Filter:
    if not (inner.startswith("?(") and inner.endswith(")")):
        raise JSONPathError(f"invalid filter {inner!r}")
    body = inner[2:-1].strip()
    parser = _Parser(body)
    left = parser.steps(stop=" =!<>")
    rest = body[parser.pos:].strip()
    if not rest:
        return _Filter(left, "exists")
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise JSONPathError(f"unrecognized filter operator in {inner!r}")
    return _Filter(left, op, _operand(rest[len(op):].strip()))


def _operand(text: str) -> Any:
    if text.startswith("@"):
        return _Parser(text).steps()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise JSONPathError(f"invalid filter operand {text!r}")


def parse(path: str) -> tuple:
    """The steps of a printer column's path (as given in the CRD, without the `{}`)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    return _Parser(text).steps()


# --- evaluation ----------------------------------------------------------------------------

def find(steps: tuple, data: Any) -> list:
    """Every value the path selects; an explicit JSON null is a result (None), a missing key is not."""
    values = [data]
    for step in steps:
        values = _apply(step, values)
    return values


def _apply(step: Any, values: list) -> list:
    out: list = []
    for value in values:
        if value is None:
            continue
        if isinstance(step, _Field):
            if isinstance(value, Mapping) and step.name in value:
                out.append(value[step.name])
        elif isinstance(step, _Wildcard):
            out.extend(value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else [])
        elif isinstance(step, _Recursive):
            out.extend(_descendants(value))
        elif isinstance(step, _Slice):
            out.extend(_slice(step, value))
        else:
            out.extend(_filter(step, value))
    return out


def _descendants(value: Any) -> list:
    children = list(value.values()) if isinstance(value, Mapping) else value if isinstance(value, list) else []
    if not children:
        return []
    result = [value]
    for child in children:
        if child is not None:
            result.extend(_descendants(child))
    return result


def _slice(step: _Slice, value: Any) -> list:
    if not isinstance(value, list):
        raise JSONPathError(f"{type(value).__name__} is not array or slice")
    if step.single:
        index = step.start + len(value) if step.start < 0 else step.start
        if not 0 <= index < len(value):
            raise JSONPathError(f"array index out of bounds: index {step.start}, length {len(value)}")
        return [value[index]]
    return value[step.start:step.end]


def _filter(step: _Filter, value: Any) -> list:
    if not isinstance(value, list):
        raise JSONPathError(f"{type(value).__name__} is not array or slice and cannot be filtered")
    matched = []
    for item in value:
        lefts = find(step.left, item)
        if step.op == "exists":
            if lefts:
                matched.append(item)
            continue
        rights = find(step.right, item) if isinstance(step.right, tuple) else [step.right]
        if not lefts or not rights:
            continue
        if len(lefts) > 1 or len(rights) > 1:
            raise JSONPathError("can only compare one element at a time")
        if _compare(step.op, lefts[0], rights[0]):
            matched.append(item)
    return matched


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _compare(op: str, left: Any, right: Any) -> bool:
    # text/template's comparisons: only like kinds compare, and only == and != on booleans
    kind = _kind(left)
    if kind != _kind(right) or kind == "other" or (kind == "bool" and op not in ("==", "!=")):
        raise JSONPathError(f"incompatible types for comparison: {left!r} {op} {right!r}")
    return {"==": left == right, "!=": left != right, "<": left < right, ">": left > right,
            "<=": left <= right, ">=": left >= right}[op]


# --- printing ------------------------------------------------------------------------------

def go_float(value: float) -> str:
    """`fmt.Print` of a float64 (`%v`): shortest form, exponent only from 1e21 or below 1e-4."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{abs(int(exponent)):02d}"
    return text


def print_value(value: Any) -> str:
    """`JSONPath.PrintResults` of one value: JSON for maps and lists, `fmt.Print` otherwise."""
    if value is None:
        return "<no value>"  # an explicit null: text/template's printableValue of an invalid value
    if isinstance(value, Mapping | list):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        # encoding/json escapes HTML-significant characters
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)
