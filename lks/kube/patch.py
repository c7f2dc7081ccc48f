"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386), applied to plain JSON values.

Errors are APIErrors worded like upstream's (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`):
a malformed patch is 400 BadRequest; a patch that cannot apply (a failed `test`, a missing
path) is 422. Strategic merge patch and server-side apply build on these in later modules.
"""

from __future__ import annotations

import copy
from typing import Any

from lks.kube import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

SUPPORTED = [JSON_PATCH, MERGE_PATCH]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class _PatchFailed(Exception):
    pass


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _PatchFailed(f'invalid JSON pointer "{path}"')
    return [_unescape(t) for t in path.split("/")[1:]] if path else []


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    if not tokens:
        raise _PatchFailed("cannot operate on the whole document")
    cur = doc
    for tok in tokens[:-1]:
        cur = _child(cur, tok, path)
    return cur, tokens[-1]


def _child(cur: Any, tok: str, path: str) -> Any:
    if isinstance(cur, dict):
        if tok not in cur:
            raise _PatchFailed(f"doc is missing path: \"{path}\"")
        return cur[tok]
    if isinstance(cur, list):
        idx = _index(tok, len(cur) - 1, path)
        return cur[idx]
    raise _PatchFailed(f"doc is missing path: \"{path}\"")


def _index(tok: str, max_index: int, path: str) -> int:
    if not tok.isdigit() or (len(tok) > 1 and tok.startswith("0")):
        raise _PatchFailed(f"invalid index in path: \"{path}\"")
    idx = int(tok)
    if idx > max_index:
        raise _PatchFailed(f"index out of range in path: \"{path}\"")
    return idx


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for tok in _split(path):
        cur = _child(cur, tok, path)
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _split(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent), path), value)
    else:
        raise _PatchFailed(f"doc is missing path: \"{path}\"")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, _split(path), path)
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent) - 1, path)]
    else:
        raise _PatchFailed(f"doc is missing path: \"{path}\"")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of `doc`."""
    if not isinstance(ops, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    try:
        for op in ops:
            if not isinstance(op, dict):
                raise _PatchFailed("invalid operation")
            kind, path = op.get("op"), op.get("path")
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(_value(op)))
            elif kind == "remove":
                doc = _remove(doc, path)
            elif kind == "replace":
                _get(doc, path)  # must exist
                doc = _add(_remove(doc, path), path, copy.deepcopy(_value(op))) if _split(path) else _value(op)
            elif kind == "move":
                value = _get(doc, op.get("from"))
                doc = _add(_remove(doc, op.get("from")), path, value)
            elif kind == "copy":
                doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from"))))
            elif kind == "test":
                if _get(doc, path) != _value(op):
                    raise _PatchFailed(f"testing value {path} failed: test failed")
            else:
                raise _PatchFailed(f"Unexpected kind: {kind}")
    except _PatchFailed as err:
        raise errors.APIError(422, "Invalid", f"the server rejected our request due to an error in our request: {err}") from None
    return doc


def _value(op: dict) -> Any:
    if "value" not in op:
        raise _PatchFailed(f"missing value for operation {op.get('op')}")
    return op["value"]
