"""The protobuf encoding of the Swagger 2.0 document (gnostic's `openapi.v2.Document`), which is
what client-go's `OpenAPISchema()` asks `/openapi/v2` for, and all it accepts: kubectl's v2
fallbacks (`explain --output plaintext-openapiv2`, client-side validation, apply's patch
computation), Helm and other clients built on it. kube-apiserver makes it by parsing its JSON
document with gnostic; we encode the dict `lks.kube.openapi` built directly.

Only what our documents contain is encoded (field numbers from gnostic-models'
`openapiv2/OpenAPIv2.proto`); vendor extensions, defaults, enums and examples are `Any`s holding
YAML text, for which JSON serves (it is YAML).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

Node = dict[str, Any]

# Schema fields: JSON key → (field number, kind). Kinds: s string, b bool, d double, i int64,
# S repeated string, A Any, R repeated Any.
_SCHEMA_SCALARS: dict[str, tuple[int, str]] = {
    "$ref": (1, "s"), "format": (2, "s"), "title": (3, "s"), "description": (4, "s"), "default": (5, "A"),
    "multipleOf": (6, "d"), "maximum": (7, "d"), "exclusiveMaximum": (8, "b"), "minimum": (9, "d"),
    "exclusiveMinimum": (10, "b"), "maxLength": (11, "i"), "minLength": (12, "i"), "pattern": (13, "s"),
    "maxItems": (14, "i"), "minItems": (15, "i"), "uniqueItems": (16, "b"), "maxProperties": (17, "i"),
    "minProperties": (18, "i"), "required": (19, "S"), "enum": (20, "R"), "discriminator": (26, "s"),
    "readOnly": (27, "b"), "example": (30, "A"),
}
_OPERATION_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}
# Query and path parameter sub-schemas number their common fields alike, except that query
# parameters have allowEmptyValue (5) and so shift the rest by one.
_PARAM_FIELDS = {"required": 1, "in": 2, "description": 3, "name": 4, "type": 5, "format": 6}


def encode(doc: Node) -> bytes:
    """`openapi.v2.Document` bytes of a Swagger 2.0 document."""
    out = bytearray()
    _string(out, 1, doc.get("swagger", "2.0"))
    info = doc.get("info") or {}
    _message(out, 2, _strings((1, info.get("title")), (2, info.get("version"))))
    paths = bytearray()
    for name, item in (doc.get("paths") or {}).items():
        _message(paths, 2, _named(name, _path_item(item)))
    _message(out, 8, paths)
    definitions = bytearray()
    for name, schema in (doc.get("definitions") or {}).items():
        _message(definitions, 1, _named(name, _schema(schema)))
    _message(out, 9, definitions)
    for requirement in doc.get("security") or ():
        req = bytearray()
        for name, scopes in requirement.items():
            array = bytearray()
            for scope in scopes:
                _string(array, 1, scope)
            _message(req, 1, _named(name, array))
        _message(out, 12, req)
    security = bytearray()
    for name, item in (doc.get("securityDefinitions") or {}).items():
        api_key = _strings((1, item.get("type")), (2, item.get("name")), (3, item.get("in")),
                           (4, item.get("description")))
        wrapper = bytearray()
        _message(wrapper, 2, api_key)  # ApiKeySecurity: the only kind kube-apiserver declares
        _message(security, 1, _named(name, wrapper))
    _message(out, 13, security)
    return bytes(out)


def _path_item(item: Node) -> bytearray:
    out = bytearray()
    for method, field_no in _OPERATION_FIELDS.items():
        if method in item:
            _message(out, field_no, _operation(item[method]))
    for p in item.get("parameters") or ():
        _message(out, 9, _parameter(p))
    return out


def _operation(op: Node) -> bytearray:
    out = bytearray()
    for tag in op.get("tags") or ():
        _string(out, 1, tag)
    _string(out, 3, op.get("description"))
    _string(out, 5, op.get("operationId"))
    for t in op.get("produces") or ():
        _string(out, 6, t)
    for t in op.get("consumes") or ():
        _string(out, 7, t)
    for p in op.get("parameters") or ():
        _message(out, 8, _parameter(p))
    responses = bytearray()
    for code, resp in (op.get("responses") or {}).items():
        response = _strings((1, resp.get("description")))
        if "schema" in resp:
            item = bytearray()
            _message(item, 1, _schema(resp["schema"]))
            _message(response, 2, item)
        value = bytearray()
        _message(value, 1, response)
        _message(responses, 1, _named(code, value))
    _message(out, 9, responses)
    for scheme in op.get("schemes") or ():
        _string(out, 10, scheme)
    _extensions(out, 13, op)
    return out


def _parameter(p: Node) -> bytearray:
    """A ParametersItem holding a Parameter: a body parameter, or a query or path one."""
    param = bytearray()
    if p.get("in") == "body":
        body = _strings((1, p.get("description")), (2, p.get("name")), (3, "body"))
        _bool(body, 4, p.get("required"))
        if "schema" in p:
            _message(body, 5, _schema(p["schema"]))
        _message(param, 1, body)
    else:
        query = p.get("in") != "path"
        shift = 1 if query else 0
        sub = bytearray()
        _bool(sub, 1, p.get("required"))
        for key in ("in", "description", "name"):
            _string(sub, _PARAM_FIELDS[key], p.get(key))
        for key in ("type", "format"):
            _string(sub, _PARAM_FIELDS[key] + shift, p.get(key))
        _bool(sub, 19 + shift, p.get("uniqueItems"))
        non_body = bytearray()
        _message(non_body, 3 if query else 4, sub)
        _message(param, 2, non_body)
    item = bytearray()
    _message(item, 1, param)
    return item


def _schema(s: Node) -> bytearray:
    out = bytearray()
    for key, (field_no, kind) in _SCHEMA_SCALARS.items():
        if key in s:
            _value(out, field_no, kind, s[key])
    extra = s.get("additionalProperties")
    if isinstance(extra, dict) or isinstance(extra, bool):
        item = bytearray()
        if isinstance(extra, bool):
            _varint_field(item, 2, int(extra))
        else:
            _message(item, 1, _schema(extra))
        _message(out, 21, item)
    kind = s.get("type")
    if kind:
        _message(out, 22, _strings(*((1, t) for t in (kind if isinstance(kind, list) else [kind]))))
    items = s.get("items")
    if items:
        wrapper = bytearray()
        for sub in items if isinstance(items, list) else [items]:
            _message(wrapper, 1, _schema(sub))
        _message(out, 23, wrapper)
    for sub in s.get("allOf") or ():
        _message(out, 24, _schema(sub))
    props = s.get("properties")
    if props:
        wrapper = bytearray()
        for name, sub in props.items():
            _message(wrapper, 1, _named(name, _schema(sub)))
        _message(out, 25, wrapper)
    _extensions(out, 31, s)
    return out


def _extensions(out: bytearray, field_no: int, node: Node) -> None:
    for key, value in node.items():
        if key.startswith("x-"):
            _message(out, field_no, _named(key, _any(value)))


def _any(value: Any) -> bytearray:
    return _strings((2, orjson.dumps(value).decode() + "\n"))


def _value(out: bytearray, field_no: int, kind: str, value: Any) -> None:
    if kind == "s":
        _string(out, field_no, value)
    elif kind == "b":
        _bool(out, field_no, value)
    elif kind == "d" and isinstance(value, (int, float)):
        out += _key(field_no, 1) + struct.pack("<d", float(value))
    elif kind == "i" and isinstance(value, int):
        _varint_field(out, field_no, value)
    elif kind == "S":
        for v in value:
            _string(out, field_no, v)
    elif kind == "A":
        _message(out, field_no, _any(value))
    elif kind == "R":
        for v in value:
            _message(out, field_no, _any(v))


def _named(name: str, value: bytes | bytearray) -> bytearray:
    out = bytearray()
    _string(out, 1, name)
    _message(out, 2, value, always=True)
    return out


def _strings(*fields: tuple[int, str | None]) -> bytearray:
    out = bytearray()
    for field_no, value in fields:
        _string(out, field_no, value)
    return out


# -- wire format -------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64s take ten bytes, as protobuf does
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field_no: int, wire_type: int) -> bytes:
    return _varint(field_no << 3 | wire_type)


def _varint_field(out: bytearray, field_no: int, n: int) -> None:
    out += _key(field_no, 0) + _varint(n)


def _bool(out: bytearray, field_no: int, value: Any) -> None:
    if value is True:  # proto3 leaves false out
        _varint_field(out, field_no, 1)


def _string(out: bytearray, field_no: int, value: str | None) -> None:
    if isinstance(value, str) and value:
        _message(out, field_no, value.encode())


def _message(out: bytearray, field_no: int, payload: bytes | bytearray, always: bool = False) -> None:
    if payload or always:
        out += _key(field_no, 2) + _varint(len(payload)) + payload
