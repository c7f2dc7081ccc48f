"""Field errors worded as upstream's `k8s.io/apimachinery/pkg/util/validation/field` words them.

Every rule of this package reports through these constructors, so a message is
``<Type>: <value>: <detail>`` with the value rendered as kube-apiserver 1.34+ renders it: numbers
and booleans as Go's ``%v``, strings as ``%q``, anything else as Go's ``json.Marshal`` (sorted
map keys, ``null`` for a nil pointer, ``\\u003c`` for ``<``). Go structs without JSON tags (the
internal API types) are rendered from a `GoStruct`, whose keys keep their order.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lks.kube.errors import Cause
from lks.kube.structural import go_quote


class GoStruct(dict):
    """A value shown as a Go struct: rendered in this key order, not sorted like a map."""


class _Omit:
    """`field.OmitValueType{}`: the message shows no value."""


OMIT = _Omit()


def go_json(v: Any) -> str:
    """Go's `json.Marshal` of a JSON-like value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, GoStruct):
        return "{" + ",".join(f"{_json_str(k)}:{go_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{_json_str(k)}:{go_json(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    return _json_str(str(v))


def _json_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    # Go escapes HTML-significant characters and the JavaScript line separators
    return (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_float(f: float) -> str:
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    text = repr(f)
    if "e" in text:  # Go: 1e-07, 1e+21
        mant, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        text = f"{mant}e{sign}{int(exp.lstrip('+-')):02d}"
    return text


def show(v: Any) -> str:
    """A bad value as `ErrorBody` shows it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v) if math.isfinite(v) else str(v)
    if isinstance(v, str):
        return go_quote(v)
    return go_json(v)


def _error(reason: str, type_: str, path: str, value: Any, detail: str) -> Cause:
    msg = type_ if value is OMIT else f"{type_}: {show(value)}"
    if detail:
        msg += f": {detail}"
    return Cause(reason=reason, message=msg, field=path)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return _error("FieldValueInvalid", "Invalid value", path, value, detail)


def required(path: str, detail: str = "") -> Cause:
    return Cause(reason="FieldValueRequired", message="Required value" + (f": {detail}" if detail else ""),
                 field=path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(reason="FieldValueForbidden", message="Forbidden" + (f": {detail}" if detail else ""),
                 field=path)


def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(str(s)) for s in supported) if supported else ""
    return _error("FieldValueNotSupported", "Unsupported value", path, value, detail)


def duplicate(path: str, value: Any, detail: str = "") -> Cause:
    return _error("FieldValueDuplicate", "Duplicate value", path, value, detail)


def not_found(path: str, value: Any, detail: str = "") -> Cause:
    return _error("FieldValueNotFound", "Not found", path, value, detail)


def too_long(path: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause(reason="FieldValueTooLong", message=f"Too long: may not be more than {max_bytes} {unit}",
                 field=path)


def too_many(path: str, actual: int, max_items: int) -> Cause:
    unit = "item" if max_items == 1 else "items"
    return _error("FieldValueTooMany", "Too many", path, actual, f"must have at most {max_items} {unit}")
