"""Strategic merge patch (`application/strategic-merge-patch+json`), as
`k8s.io/apimachinery/pkg/util/strategicpatch` applies it to built-in types.

Maps merge recursively and `null` deletes. A list whose schema declares
`x-kubernetes-patch-strategy: merge` merges: lists of objects by their
`x-kubernetes-patch-merge-key`, lists of scalars as a set union; every other list is replaced.
Directives: `$patch` (`replace`, `delete`, `merge`) in maps and list items, `$retainKeys`,
`$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
"""

from __future__ import annotations

import copy
from typing import Any

from lks.kube import errors
from lks.kube.schema import Schema

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def apply(original: dict[str, Any], patch: Any, schema: Schema) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise errors.bad_request("error decoding patch: a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(original), patch, schema)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    directive = patch.get(_PATCH)
    if directive == "replace":
        return _clean(patch, schema)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise errors.bad_request(f"Unknown patch directive: {directive!r}")
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise errors.bad_request("$retainKeys must be a list")
        for key in [k for k in original if k not in retain]:
            del original[key]
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in (_PATCH, _RETAIN):
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            current = original.get(field)
            if isinstance(current, list) and isinstance(value, list):
                original[field] = [v for v in current if v not in value]
            continue
        if value is None:
            original.pop(key, None)
            continue
        sub = schema.prop(key)
        current = original.get(key)
        if isinstance(value, dict):
            if isinstance(value.get(_PATCH), str) and value[_PATCH] == "delete":
                original.pop(key, None)
                continue
            original[key] = _merge_map(current if isinstance(current, dict) else {}, value, sub)
        elif isinstance(value, list):
            original[key] = _merge_list(current if isinstance(current, list) else [], value, sub)
        else:
            original[key] = value
    for field, order in orders.items():
        if isinstance(original.get(field), list) and isinstance(order, list):
            original[field] = _reorder(original[field], order, schema.prop(field).merge_key)
    return original


def _merge_list(original: list, patch: list, schema: Schema) -> list:
    items = schema.items()
    if "merge" not in schema.patch_strategies:
        return [_clean(v, items) if isinstance(v, dict) else v for v in patch
                if not (isinstance(v, dict) and v.get(_PATCH) == "replace" and len(v) == 1)]
    if any(isinstance(v, dict) and v.get(_PATCH) == "replace" for v in patch):
        return [_clean(v, items) for v in patch if not (isinstance(v, dict) and v.get(_PATCH) == "replace")]
    key = schema.merge_key
    if key is None or not any(isinstance(v, dict) for v in patch + original):
        merged = list(original)
        for v in patch:
            if v not in merged:
                merged.append(v)
        return merged
    result = list(original)
    for element in patch:
        if not isinstance(element, dict):
            raise errors.bad_request(f"map: {element!r} is not a map in a list merged by key {key}")
        if key not in element:
            raise errors.bad_request(f"map: {element} does not contain declared merge key: {key}")
        match = element[key]
        if element.get(_PATCH) == "delete":
            result = [o for o in result if not (isinstance(o, dict) and o.get(key) == match)]
            continue
        for i, o in enumerate(result):
            if isinstance(o, dict) and o.get(key) == match:
                result[i] = _merge_map(o, element, items)
                break
        else:
            result.append(_clean(element, items))
    return result


def _reorder(values: list, order: list, key: str | None) -> list:
    def ident(v: Any) -> Any:
        return v.get(key) if key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    rank = {w: i for i, w in enumerate(wanted) if isinstance(w, (str, int, float, bool))}
    known = sorted((v for v in values if ident(v) in rank), key=lambda v: rank[ident(v)])
    return known + [v for v in values if ident(v) not in rank]


def _clean(value: Any, schema: Schema) -> Any:
    """A patch fragment without directives, for places with nothing to merge into."""
    if isinstance(value, dict):
        return _merge_map({}, {k: v for k, v in value.items() if k != _PATCH}, schema)
    if isinstance(value, list):
        items = schema.items()
        return [_clean(v, items) for v in value]
    return value
