"""Kubernetes' list library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`), cel-go's
`ext.Lists` (`slice`, `flatten`, `distinct`, `reverse`, `sort`, `first`, `last`, `lists.range`)
and `ext.Sets` (`sets.contains`, `sets.equivalent`, `sets.intersects`), with upstream's errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import cel

from lks.kube.cel import quantity
from lks.kube.cel.library import TYPE, EvalError, cel_equal, function, kind_of
from lks.kube.cel.source import MERGE_MAPS, PAIRS, TO_MAP

_ORDERED = (int, float, str, bytes, timedelta, datetime)


def _key(value: Any, name: str) -> Any:
    """An element's sort key: comparable scalars as they are, quantities by value."""
    if kind_of(value) == "quantity":
        return quantity.value_of(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, _ORDERED):
        return value
    raise EvalError("no such overload")


def _keys(items: list[Any], name: str) -> list[Any]:
    keys = [_key(x, name) for x in items]
    if len({_family(k) for k in keys}) > 1:
        raise EvalError("no such overload")
    return keys


def _family(k: Any) -> type:
    return float if type(k) is int else type(k)


@function("isSorted", list)
def is_sorted(items: list[Any]) -> bool:
    keys = _keys(items, "isSorted")
    return all(a <= b for a, b in zip(keys, keys[1:], strict=False))


@function("sum", list)
def sum_(items: list[Any]) -> Any:
    if not items:
        return 0
    if all(isinstance(x, timedelta) for x in items):
        return sum(items, timedelta())
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in items) or \
            len({type(x) for x in items}) > 1:
        raise EvalError("no such overload")
    return sum(items)


def _extreme(items: list[Any], name: str, pick: Any) -> Any:
    if not items:
        raise EvalError(f"{name} called on empty list")
    keys = _keys(items, name)
    return items[keys.index(pick(keys))]


@function("min", list)
def min_(items: list[Any]) -> Any:
    return _extreme(items, "min", min)


@function("max", list)
def max_(items: list[Any]) -> Any:
    return _extreme(items, "max", max)


@function("indexOf", list)
def index_of(items: list[Any], value: Any) -> int:
    return next((i for i, x in enumerate(items) if cel_equal(x, value)), -1)


@function("lastIndexOf", list)
def last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if cel_equal(items[i], value)), -1)


@function("slice", list)
def slice_(items: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise EvalError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise EvalError(f"cannot slice({start}, {end}), start index must be less than or equal to end index")
    if end > len(items):
        raise EvalError(f"cannot slice({start}, {end}), list is length {len(items)}")
    return items[start:end]


@function("flatten", list)
def flatten(items: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise EvalError("level must be non-negative")
    out: list[Any] = []
    for x in items:
        out += flatten(x, depth - 1) if isinstance(x, list) and depth > 0 else [x]
    return out


@function("distinct", list)
def distinct(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if not any(cel_equal(x, y) for y in out):
            out.append(x)
    return out


@function("reverse", list)
def reverse(items: list[Any]) -> list[Any]:
    return items[::-1]


@function("sort", list)
def sort(items: list[Any]) -> list[Any]:
    keys = _keys(items, "sort")
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


@function("first", list)
def first(items: list[Any]) -> Any:
    return cel.OptionalValue.of(items[0]) if items else cel.OptionalValue.none()


@function("last", list)
def last(items: list[Any]) -> Any:
    return cel.OptionalValue.of(items[-1]) if items else cel.OptionalValue.none()


@function("lists.range", int)
def range_(n: int) -> list[int]:
    return list(range(n))


@function("sets.contains", list)
def sets_contains(items: list[Any], sub: list[Any]) -> bool:
    return all(any(cel_equal(x, y) for y in items) for x in sub)


@function("sets.equivalent", list)
def sets_equivalent(a: list[Any], b: list[Any]) -> bool:
    return sets_contains(a, b) and sets_contains(b, a)


@function("sets.intersects", list)
def sets_intersects(a: list[Any], b: list[Any]) -> bool:
    return any(cel_equal(x, y) for x in a for y in b)


# -- the helpers of the two-variable comprehensions (`source` expands them into these) ----------


@function(PAIRS)
def pairs(value: Any) -> list[list[Any]]:
    """A list's [index, item] or a map's [key, value] pairs."""
    if isinstance(value, list):
        return [[i, v] for i, v in enumerate(value)]
    if isinstance(value, dict) and TYPE not in value:
        return [[k, v] for k, v in value.items()]
    raise EvalError("no such overload")


@function(TO_MAP, list)
def to_map(items: list[list[Any]]) -> dict[Any, Any]:
    return {k: v for k, v in items}


@function(MERGE_MAPS, list)
def merge_maps(maps: list[dict[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for m in maps:
        if not isinstance(m, dict):
            raise EvalError("no such overload")
        for k, v in m.items():
            if k in out:
                raise EvalError(f"insert failed: key {k} already exists")
            out[k] = v
    return out
