"""Conversion between the served versions of a resource that share storage.

Most resources are served in one version, or in versions with the same schema, and convert by
rewriting `apiVersion` ("None" conversion). The few that differ in shape get a converter here,
keyed by (from apiVersion, to apiVersion, kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Converter = Callable[[Obj], Obj]

_CONVERTERS: dict[tuple[str, str, str], Converter] = {}


def converter(src: str, dst: str, kind: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        _CONVERTERS[(src, dst, kind)] = fn
        return fn

    return register


def convert(obj: Obj, api_version: str) -> Obj:
    """`obj` in `api_version` (a new dict; `obj` is not changed)."""
    fn = _CONVERTERS.get((obj.get("apiVersion", ""), api_version, obj.get("kind", "")))
    out = fn(obj) if fn is not None else dict(obj)
    out["apiVersion"] = api_version
    return out
