"""Filling plain JSON objects the way upstream's Go defaulters fill typed structs.

A Go defaulter tests a pointer field against `nil` and a value field against its zero value;
in a client's JSON both "absent" and `null` are nil, and `""`, `0` and empty lists or maps are
zero. `default` and `default_zero` encode the two tests, so every defaulter says which one
upstream uses. The walkers skip anything that is not the expected JSON type, and the setters
skip a missing object: validation, which runs later, reports what is malformed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def is_zero(value: Any) -> bool:
    """Go's zero value as JSON shows it (a `false` is a set bool, never "unset")."""
    if value is None or isinstance(value, bool):
        return value is None
    return value in ("", 0) or (isinstance(value, list | dict) and not value)


def default(obj: Obj | None, key: str, value: Any) -> None:
    """A pointer field: set when absent or null (on an `obj` that exists)."""
    if obj is not None and obj.get(key) is None:
        obj[key] = value


def default_zero(obj: Obj | None, key: str, value: Any) -> None:
    """A value field: set when absent, null or the zero value (on an `obj` that exists)."""
    if obj is not None and is_zero(obj.get(key)):
        obj[key] = value


def child(obj: Obj | None, key: str) -> Obj | None:
    """An optional (pointer) struct: the dict, or None when absent or malformed."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def struct(obj: Obj | None, key: str) -> Obj:
    """A non-pointer struct, which Go always has: created empty when absent or null. Under a
    malformed parent, or in place of a malformed value, a detached dict takes the writes."""
    if not isinstance(obj, dict):
        return {}
    if obj.get(key) is None:
        obj[key] = {}
    value = obj[key]
    return value if isinstance(value, dict) else {}


def children(obj: Obj | None, key: str) -> Iterator[Obj]:
    """The dict items of a list field."""
    items = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def labels(obj: Obj, where: str = "metadata") -> Obj | None:
    """`<where>.labels`, or None when absent or malformed."""
    return child(child(obj, where), "labels")
