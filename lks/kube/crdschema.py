"""Structural schemas of custom resources (a CRD version's `openAPIV3Schema`): validation with
kube-openapi's messages, pruning of unknown fields and defaulting, as the apiextensions
apiserver applies them to every custom resource written.

The schema is walked with `lks.kube.schema.Schema` like the built-in ones; only the keywords a
structural schema may use are understood: `type`, `properties`, `additionalProperties`,
`items`, `required`, `enum`, `minimum`/`maximum` (and exclusive), `minLength`/`maxLength`,
`minItems`/`maxItems`, `pattern`, `format`, `nullable`, `default`,
`x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
`x-kubernetes-embedded-resource`.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from lks.kube.errors import Cause
from lks.kube.schema import Schema

_JSON_TYPE = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    py = _JSON_TYPE.get(t)
    return py is None or isinstance(value, py)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern[str] | None:
    try:
        return re.compile(p)
    except re.error:
        return None


UNCORRELATED: Any = object()  # no old value to compare with (a create, a new key, an atomic list's item)


def validate(obj: Any, schema: Schema, path: str = "", old: Any = UNCORRELATED, unchanged: bool = False) -> list[Cause]:
    """Every violation of `schema` in `obj` (`path` is the field path of `obj`). On update, `old`
    is the correlated old value (through object keys and map lists' keys, as upstream's
    CorrelatedObject): a value equal to it, or whose nearest correlatable ancestor is
    (`unchanged`), was accepted before and its violations are dropped (upstream's validation
    ratcheting, whose schema errors become result warnings nobody reports)."""
    node = schema.node
    if not node:
        return []
    if old is not UNCORRELATED:
        unchanged = old == obj
    if unchanged:  # ratcheted, and so is everything below
        return []
    causes: list[Cause] = []
    if obj is None:
        if not node.get("nullable") and path:
            t = node.get("type")
            if t:
                causes.append(Cause.invalid(path, "null", f"{path} in body must be of type {t}: \"null\""))
        return causes
    if node.get("x-kubernetes-int-or-string"):
        if not (isinstance(obj, str) or (isinstance(obj, int) and not isinstance(obj, bool))):
            causes.append(Cause.invalid(path, obj, f"{path} in body must be of type integer,string: {_shown(obj)}"))
            return causes
    else:
        t = node.get("type")
        if t and not _type_ok(obj, t):
            causes.append(Cause.invalid(path, obj, f"{path or '<root>'} in body must be of type {t}: {_shown(obj)}"))
            return causes
    enum = node.get("enum")
    if enum is not None and obj not in enum:
        causes.append(Cause.not_supported(path, obj, [str(e) if not isinstance(e, str) else e for e in enum]))
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if "minimum" in node:
            lo, excl = node["minimum"], node.get("exclusiveMinimum")
            if obj < lo or (excl and obj == lo):
                word = "greater than" if excl else "greater than or equal to"
                causes.append(Cause.invalid(path, obj, f"{path} in body should be {word} {lo}"))
        if "maximum" in node:
            hi, excl = node["maximum"], node.get("exclusiveMaximum")
            if obj > hi or (excl and obj == hi):
                word = "less than" if excl else "less than or equal to"
                causes.append(Cause.invalid(path, obj, f"{path} in body should be {word} {hi}"))
    if isinstance(obj, str):
        if "maxLength" in node and len(obj) > node["maxLength"]:
            causes.append(Cause(reason="FieldValueTooLong", field=path,
                                message=f"Too long: may not be more than {node['maxLength']} bytes"))
        if "minLength" in node and len(obj) < node["minLength"]:
            causes.append(Cause.invalid(path, obj, f"{path} in body should be at least {node['minLength']} chars long"))
        pat = node.get("pattern")
        if pat and (rx := _pattern(pat)) is not None and not rx.search(obj):
            causes.append(Cause.invalid(path, obj, f"{path} in body should match '{pat}'"))
    if isinstance(obj, list):
        if "maxItems" in node and len(obj) > node["maxItems"]:
            causes.append(Cause(reason="FieldValueTooMany", field=path,
                                message=f"Too many: {len(obj)}: must have at most {node['maxItems']} items"))
        if "minItems" in node and len(obj) < node["minItems"]:
            causes.append(Cause.invalid(path, len(obj), f"{path} in body should have at least {node['minItems']} items"))
        items = schema.items()
        olds = _map_list(node, old)
        for i, v in enumerate(obj):
            causes += validate(v, items, f"{path}[{i}]", olds(v))
    if isinstance(obj, dict):
        for req in node.get("required") or ():
            if req not in obj:
                causes.append(Cause.required(_join(path, req)))
        props = node.get("properties") or {}
        for key, value in obj.items():
            if key in props or isinstance(node.get("additionalProperties"), dict):
                causes += validate(value, schema.prop(key), _join(path, key),
                                   old.get(key, UNCORRELATED) if isinstance(old, dict) else UNCORRELATED)
    return causes


def _map_list(node: dict, old: Any) -> Any:
    """The old item of each new one: by its keys in a `x-kubernetes-list-type: map` list, else
    none (sets and atomic lists do not correlate their items)."""
    keys = node.get("x-kubernetes-list-map-keys") or ()
    if node.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return lambda _item: UNCORRELATED
    by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
    return lambda item: by_key.get(tuple(item.get(k) for k in keys), UNCORRELATED) if isinstance(item, dict) \
        else UNCORRELATED


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune(obj: Any, schema: Schema, path: str = "", *, root: bool = True) -> list[str]:
    """Drop fields the schema does not know (unless it preserves unknown fields); returns the
    dropped paths, for `fieldValidation` Strict and Warn."""
    node = schema.node
    dropped: list[str] = []
    if not node or node.get("x-kubernetes-preserve-unknown-fields"):
        if isinstance(obj, dict) and node.get("properties"):
            for key in list(obj):
                if key in node["properties"]:
                    dropped += prune(obj[key], schema.prop(key), _join(path, key), root=False)
        return dropped
    if isinstance(obj, dict):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        embedded = node.get("x-kubernetes-embedded-resource") or root
        for key in list(obj):
            if embedded and key in ("apiVersion", "kind", "metadata"):
                continue  # ObjectMeta is not pruned by the schema, even one that says metadata.name's limits
            if props is not None and key in props:
                dropped += prune(obj[key], schema.prop(key), _join(path, key), root=False)
            elif isinstance(extra, dict) or extra is True:
                dropped += prune(obj[key], schema.prop(key), _join(path, key), root=False)
            else:
                dropped.append(_join(path, key))
                del obj[key]
    elif isinstance(obj, list):
        items = schema.items()
        for i, v in enumerate(obj):
            dropped += prune(v, items, f"{path}[{i}]", root=False)
    return dropped


def default(obj: Any, schema: Schema) -> None:
    """Fill in `default`s of absent fields, recursively (upstream's structural defaulting)."""
    node = schema.node
    if not node:
        return
    if isinstance(obj, dict):
        props = node.get("properties") or {}
        for key in props:
            sub_schema = schema.prop(key)
            if key not in obj and "default" in sub_schema.node:
                obj[key] = copy.deepcopy(sub_schema.node["default"])
            if key in obj:
                default(obj[key], sub_schema)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in obj:
                if key not in props:
                    default(obj[key], schema.prop(key))
    elif isinstance(obj, list):
        items = schema.items()
        for v in obj:
            default(v, items)
