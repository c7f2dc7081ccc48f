"""Optional field selection and indexing (`self.?spec.?replicas.orValue(1)`, `list[?0]`): the
interpreter has optional values (`optional.of`, `orValue`, `hasValue`, `value`, `or`) but not
this syntax, which `source.rewrite` turns into calls of these two functions."""

from __future__ import annotations

from typing import Any

import cel

from lks.kube.cel.library import TYPE, EvalError, function
from lks.kube.cel.source import OPT_INDEX, OPT_SELECT

_NONE = cel.OptionalValue.none()


def _unwrap(value: Any) -> tuple[bool, Any]:
    if isinstance(value, cel.OptionalValue):
        return (True, value.value()) if value.has_value() else (False, None)
    return True, value


@function(OPT_SELECT)
def select(receiver: Any, name: str) -> Any:
    present, value = _unwrap(receiver)
    if not present:
        return _NONE
    if not isinstance(value, dict) or TYPE in value:
        raise EvalError("no such overload")
    return cel.OptionalValue.of(value[name]) if name in value else _NONE


@function(OPT_INDEX)
def index(receiver: Any, key: Any) -> Any:
    present, value = _unwrap(receiver)
    if not present:
        return _NONE
    if isinstance(value, list):
        if isinstance(key, bool) or not isinstance(key, (int, float)) or key != int(key):
            raise EvalError("unsupported index type")
        return cel.OptionalValue.of(value[int(key)]) if 0 <= key < len(value) else _NONE
    if isinstance(value, dict) and TYPE not in value:
        return cel.OptionalValue.of(value[key]) if key in value else _NONE
    raise EvalError("no such overload")
