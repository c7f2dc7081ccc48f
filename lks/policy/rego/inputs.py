"""Gatekeeper's input handed to rego-cpp, built straight through its C input API.

regopy's own converter (`regopy.Input`) checks every value against the `Mapping`/`Sequence`
ABCs and copies every string into a fresh buffer; for a Pod's review that cost more than the
evaluation. This one dispatches on exact JSON types and calls the C functions directly (the
same stack protocol: push the members, then close the object/array with its count).

rego-cpp keeps strings as JSON-escaped text: its built-ins (regex.match) unescape them and its
output does not escape them again, so a string with a backslash, a quote or a control character
is pushed JSON-escaped (without its quotes): the very text rego-cpp's own reader keeps for it, so
it reads exactly as the same document set as JSON text, without that reader's cost (~4 ms for a
stored Pod, whose managedFields keys (`k:{"name":"c"}`) all hold quotes).

One `Input` can be set on any number of interpreters (`regoSetInput` copies it): `program.py`
builds one per review and parameters, and every constraint with them reuses it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from regopy import rego_shared as _c

_lib = _c.rego
_STRING, _INT, _FLOAT = _lib.regoInputString, _lib.regoInputInt, _lib.regoInputFloat
_BOOL, _NULL = _lib.regoInputBoolean, _lib.regoInputNull
_ITEM, _OBJECT, _ARRAY = _lib.regoInputObjectItem, _lib.regoInputObject, _lib.regoInputArray


_ESCAPED = re.compile(r'[\\"\x00-\x1f\x7f]').search


class Input:
    """One input document on the C side; freed with the object."""

    __slots__ = ("_impl",)

    def __init__(self, value: dict) -> None:
        self._impl = _c.rego_new_input()
        try:
            if _push(self._impl, value):
                raise _c.RegoError("Unable to create input")
        except BaseException:
            _c.rego_free_input(self._impl)
            self._impl = None
            raise

    def __del__(self) -> None:
        if self._impl:
            _c.rego_free_input(self._impl)


def _push(p: Any, value: Any) -> int:
    """Push `value` on the input's stack; a non-zero C result code on failure."""
    t = type(value)
    if t is str:
        return _STRING(p, orjson.dumps(value)[1:-1] if _ESCAPED(value) else value.encode())
    if t is dict:
        for k, v in value.items():
            if _push(p, k) or _push(p, v) or _ITEM(p):
                return 1
        return _OBJECT(p, len(value))
    if t is list:
        for v in value:
            if _push(p, v):
                return 1
        return _ARRAY(p, len(value))
    if t is bool:
        return _BOOL(p, value)
    if t is int:
        return _INT(p, value)
    if t is float:
        return _FLOAT(p, value)
    if value is None:
        return _NULL(p)
    return _fallback(p, value)


def _fallback(p: Any, value: Any) -> int:
    """Other containers (tuples, sets, mappings): as plain JSON types, as regopy would."""
    from collections.abc import Mapping, Set

    if isinstance(value, Mapping):
        return _push(p, dict(value))
    if isinstance(value, Set):
        for v in value:
            if _push(p, v):
                return 1
        return _lib.regoInputSet(p, len(value))
    if isinstance(value, tuple):
        return _push(p, list(value))
    raise ValueError(f"cannot convert {type(value).__name__} to a Rego input")
