"""Decoding Kubernetes protobuf request bodies into the JSON a JSON client would have sent.

client-go (kubectl) sends built-in objects as ``application/vnd.kubernetes.protobuf``: the magic
``k8s\\x00`` then a ``runtime.Unknown`` envelope holding apiVersion, kind and the object's
protobuf bytes. The field tables come from ``data/protobuf.json`` (built by
``tools/gen_proto_schema.py`` from upstream's ``generated.proto`` files and Go struct tags); a
table is compiled once per message on first use, so decoding is one pass over the bytes.

The result must equal what the same Go object would have been as JSON (kubectl's own JSON body
for an object is reproduced byte for byte, key order included), because the rest of the server
only ever sees JSON. The two Go encodings differ in what they leave out: protobuf writes every
non-pointer scalar and struct, zero or not, and nil pointers, lists and maps not at all, while
encoding/json follows the ``json`` tags. So each field is written as encoding/json would:

- a non-pointer scalar tagged ``omitempty`` is dropped when zero (``generateName: ""``); one
  without ``omitempty`` is kept (``OwnerReference.uid: ""``);
- a pointer is on the wire only when set, so it is kept even when zero (``replicas: 0``);
- a struct is kept even when empty (encoding/json ignores ``omitempty`` on structs: kubectl's
  ``"resources": {}``, ``"status": {}``) unless tagged ``omitzero`` and zero: that is why a zero
  ``metadata.creationTimestamp`` is left out (upstream's JSON had ``null`` before ``omitzero``);
- a list, map, pointer or ``[]byte`` missing from the wire was nil: left out under ``omitempty``,
  else ``null``, as encoding/json writes it (an HPA's ``"currentMetrics": null``);
- a value whose JSON is ``null`` (a zero Time, an empty RawExtension) is ``null``, unless
  ``omitzero``.

Types with their own JSON form become it: Time and MicroTime as RFC 3339 strings, Duration as a
Go duration string, Quantity as its string, IntOrString as int or string, RawExtension, FieldsV1
and apiextensions JSON as the embedded JSON value, ``bytes`` as base64, Go named-slice wrappers
(``ExtraValue``, ``Verbs``) as arrays, and the apiextensions ``JSONSchemaPropsOr*`` unions as
upstream's MarshalJSON writes them. Keys come out in Go struct order, kind and apiVersion first.
"""

from __future__ import annotations

import base64
import datetime
import functools
import operator
import struct
from importlib import resources

import orjson

from lks.clock import go_duration

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_APIEXT = ("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1",
           "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1")
_EPOCH = datetime.datetime(1970, 1, 1)


class ProtobufError(ValueError):
    """A body that is not a decodable Kubernetes protobuf object."""


@functools.cache
def _data() -> dict:
    return orjson.loads((resources.files(__package__) / "data" / "protobuf.json").read_bytes())


# field value kinds, decided once per field when a table is compiled
(_STRING, _BYTES, _RAW, _BOOL, _INT, _UINT, _DOUBLE, _FLOAT, _MESSAGE, _MAP) = range(10)
# the proto scalar types Kubernetes uses (no zigzag or fixed-width integers)
_SCALAR_KINDS = {"string": _STRING, "bytes": _BYTES, "bool": _BOOL, "int32": _INT, "int64": _INT,
                 "uint32": _UINT, "uint64": _UINT, "double": _DOUBLE, "float": _FLOAT}
_WIRE = {_STRING: 2, _BYTES: 2, _RAW: 2, _BOOL: 0, _INT: 0, _UINT: 0, _DOUBLE: 1, _FLOAT: 5,
         _MESSAGE: 2, _MAP: 2}


class _Field:
    __slots__ = ("number", "name", "kind", "msg", "repeated", "pointer", "omitempty", "omitzero",
                 "inline", "key_kind", "rank", "nil")

    def __init__(self, number: int, name: str, kind: int, repeated: bool, flags: str, rank: int):
        self.number, self.name, self.kind, self.repeated, self.rank = number, name, kind, repeated, rank
        self.msg: _Message | None = None  # message kind, or a map's message value
        self.key_kind = _STRING  # map keys
        self.pointer, self.omitempty = "p" in flags, "o" in flags
        self.omitzero, self.inline = "z" in flags, "i" in flags
        self.nil = False  # absent from the wire means Go nil: a list, map, pointer or []byte

    def absent(self) -> object:
        """The JSON of this field when the wire does not have it."""
        if self.nil:
            return None
        if self.kind == _MESSAGE:
            return self.msg.finish({}, self.msg)
        return _ZERO[self.kind]


class _Message:
    """A compiled field table: fields by wire tag, and how the decoded fields become JSON."""

    __slots__ = ("name", "by_tag", "implicit", "finish", "key_field", "value_field")

    def __init__(self, name: str):
        self.name = name
        self.by_tag: dict[int, _Field] = {}
        self.implicit: tuple[_Field, ...] = ()  # fields that have JSON even when not on the wire
        self.finish = _object
        self.key_field: _Field | None = None  # a map entry's key and value
        self.value_field: _Field | None = None


_compiled: dict[str, _Message] = {}


def _message(name: str) -> _Message:
    """The compiled table of a message, compiling it (and what it refers to) on first use."""
    msg = _compiled.get(name)
    if msg is not None:
        return msg
    table = _data()["messages"].get(name)
    if table is None:
        raise ProtobufError(f"unknown protobuf message {name}")
    # registered before its fields are compiled: JSONSchemaProps refers to itself
    msg = _compiled[name] = _Message(name)
    try:
        _compile(msg, table)
    except BaseException:
        del _compiled[name]
        raise
    return msg


def _compile(msg: _Message, table: dict) -> None:
    name = msg.name
    special = _SPECIAL.get(name) or _special(name)
    for rank, (num, (jname, kind, ptype, repeated, flags)) in enumerate(table.items()):
        if kind == "message":
            f = _Field(int(num), jname, _MESSAGE, bool(repeated), flags, rank)
            f.msg = _message(ptype)
        elif kind == "map":
            f = _Field(int(num), jname, _MAP, True, flags, rank)
            key, value = ptype
            f.key_kind = _scalar(key)
            entry = _Message(f"{name}.{jname}Entry")
            entry.value_field = vf = _Field(2, "value", _MESSAGE, False, "", 1)
            if value in _SCALAR_KINDS:
                vf.kind = _scalar(value)
            else:
                vf.msg = _message(value)
            entry.key_field = kf = _Field(1, "key", f.key_kind, False, "", 0)
            entry.by_tag = {(1 << 3) | _WIRE[kf.kind]: kf, (2 << 3) | _WIRE[vf.kind]: vf}
            f.msg = entry
        else:
            f = _Field(int(num), jname, _scalar(kind), bool(repeated), flags, rank)
            if special and f.kind == _BYTES:
                f.kind = _RAW  # special types read their bytes themselves
        f.nil = f.repeated or f.pointer or f.kind == _BYTES
        msg.by_tag[(f.number << 3) | _WIRE[f.kind]] = f
        if repeated and f.kind in (_BOOL, _INT, _UINT, _DOUBLE, _FLOAT):
            msg.by_tag[(f.number << 3) | 2] = f  # packed encoding of a repeated scalar
        # structs always have JSON; other fields unless omitempty or omitzero
        if (not f.nil and f.kind == _MESSAGE and not f.omitzero) or not (f.omitempty or f.omitzero):
            msg.implicit += (f,)
    if special:
        msg.finish = special


def _scalar(kind: str) -> int:
    code = _SCALAR_KINDS.get(kind)
    if code is None:
        raise ProtobufError(f"unsupported protobuf type {kind}")
    return code


# --- wire format -------------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise ProtobufError("varint overflow")


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 5:
        return pos + 4
    raise ProtobufError(f"unsupported wire type {wire}")


def _fields(buf: bytes, pos: int, end: int, msg: _Message) -> dict[_Field, object]:
    """Decode one message's fields: {field: value, or list for repeated fields}."""
    by_tag = msg.by_tag
    vals: dict[_Field, object] = {}
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        f = by_tag.get(tag)
        if f is None:  # unknown field (newer than our tables): skipped, as upstream does
            pos = _skip(buf, pos, end, tag & 7)
            if tag >> 3 == 0 or pos > end:
                raise ProtobufError("malformed field")
            continue
        kind = f.kind
        if tag & 7 == 2:
            n = buf[pos]
            if n < 0x80:
                pos += 1
            else:
                n, pos = _varint(buf, pos)
            stop = pos + n
            if stop > end:
                raise ProtobufError("truncated field")
            if kind == _STRING:
                value = buf[pos:stop].decode()
            elif kind == _MESSAGE:
                sub = f.msg
                value = sub.finish(_fields(buf, pos, stop, sub), sub)
            elif kind == _MAP:
                entry = f.msg
                kv = _fields(buf, pos, stop, entry)
                key = kv.get(entry.key_field, "")
                vf = entry.value_field
                if vf in kv:
                    value = kv[vf]
                elif vf.kind == _MESSAGE:
                    value = vf.msg.finish({}, vf.msg)
                else:
                    value = _ZERO[vf.kind]
                if f in vals:
                    vals[f][key] = value
                else:
                    vals[f] = {key: value}
                pos = stop
                continue
            elif kind == _BYTES:
                value = base64.b64encode(buf[pos:stop]).decode()
            elif kind == _RAW:
                value = buf[pos:stop]
            else:  # packed repeated scalars
                items = vals.setdefault(f, [])
                while pos < stop:
                    value, pos = _scalar_value(buf, pos, kind)
                    items.append(value)
                if pos != stop:
                    raise ProtobufError("malformed packed field")
                continue
            pos = stop
        else:
            value, pos = _scalar_value(buf, pos, kind)
        if f.repeated:
            if f in vals:
                vals[f].append(value)
            else:
                vals[f] = [value]
        else:
            vals[f] = value
    if pos != end:
        raise ProtobufError("truncated message")
    return vals


def _scalar_value(buf: bytes, pos: int, kind: int) -> tuple[object, int]:
    if kind == _INT:
        v, pos = _varint(buf, pos)
        return (v - (1 << 64) if v >= 1 << 63 else v), pos
    if kind == _BOOL:
        v, pos = _varint(buf, pos)
        return v != 0, pos
    if kind == _UINT:
        return _varint(buf, pos)
    if kind == _DOUBLE:
        if pos + 8 > len(buf):
            raise ProtobufError("truncated double")
        return _number(struct.unpack_from("<d", buf, pos)[0]), pos + 8
    if pos + 4 > len(buf):
        raise ProtobufError("truncated float")
    return _number(struct.unpack_from("<f", buf, pos)[0]), pos + 4


def _number(v: float) -> float | int:
    # Go writes float64(2) as 2: give the JSON-parsed form
    return int(v) if v.is_integer() and abs(v) < 2 ** 63 else v


_RANK = operator.attrgetter("rank")  # declaration order: Go struct order
_ZERO = {_STRING: "", _BYTES: "", _RAW: b"", _BOOL: False, _INT: 0, _UINT: 0, _DOUBLE: 0, _FLOAT: 0}


# --- JSON forms --------------------------------------------------------------------------------

def _object(vals: dict[_Field, object], msg: _Message) -> dict:
    """An ordinary struct as encoding/json writes it (the rules are in the module docstring)."""
    for f in msg.implicit:
        if f not in vals:
            vals[f] = f.absent()
    out: dict = {}
    for f in sorted(vals, key=_RANK) if len(vals) > 1 else vals:
        v = vals[f]
        if f.inline:
            if v:
                out.update(v)
        elif f.kind == _MESSAGE and not f.repeated:
            if not (f.omitzero and not v):  # a zero Time is None, an empty struct {}
                out[f.name] = v
        elif not (f.omitempty and not f.pointer and not f.repeated and not v):
            out[f.name] = v
    return out


def _get(vals: dict, number: int, default=None):
    for f, v in vals.items():
        if f.number == number:
            return v
    return default


def _time(vals: dict, msg: _Message) -> str | None:
    seconds, nanos = _get(vals, 1, 0), _get(vals, 2, 0)
    if not seconds and not nanos:
        return None  # the zero Time: JSON null
    try:
        t = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufError("time out of range") from None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if msg.name.endswith(".MicroTime"):
        return f"{text}.{nanos // 1000:06d}Z"
    return text + "Z"  # Time's JSON has whole seconds only


def _duration(vals: dict, msg: _Message) -> str:
    return go_duration(_get(vals, 1, 0))


def _quantity(vals: dict, msg: _Message) -> str:
    return _get(vals, 1) or "0"


def _int_or_string(vals: dict, msg: _Message) -> int | str:
    return _get(vals, 3, "") if _get(vals, 1, 0) == 1 else _get(vals, 2, 0)


def _embedded_json(vals: dict, msg: _Message) -> object:
    raw = _get(vals, 1)
    if not raw:
        return None
    if raw.startswith(MAGIC):  # an embedded protobuf object
        return decode(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtobufError(f"{msg.name.rsplit('.', 1)[1]} does not hold JSON") from None


def _items(vals: dict, msg: _Message) -> list:
    return _get(vals, 1, [])


def _or_array(vals: dict, msg: _Message) -> object:  # JSONSchemaPropsOrArray
    return _get(vals, 2) or _get(vals, 1)


def _or_bool(vals: dict, msg: _Message) -> object:  # JSONSchemaPropsOrBool
    schema = _get(vals, 2)
    return schema if schema is not None else bool(_get(vals, 1, False))


def _or_string_array(vals: dict, msg: _Message) -> object:  # JSONSchemaPropsOrStringArray
    return _get(vals, 2) or _get(vals, 1)


_SPECIAL = {
    f"{_META}.Time": _time, f"{_META}.MicroTime": _time, f"{_META}.Duration": _duration,
    f"{_META}.FieldsV1": _embedded_json,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _quantity,
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": _quantity,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    **{f"{p}.JSON": _embedded_json for p in _APIEXT},
    **{f"{p}.JSONSchemaPropsOrArray": _or_array for p in _APIEXT},
    **{f"{p}.JSONSchemaPropsOrBool": _or_bool for p in _APIEXT},
    **{f"{p}.JSONSchemaPropsOrStringArray": _or_string_array for p in _APIEXT},
}


def _special(name: str):
    # Go named slices (type ExtraValue []string) travel as {items}; their JSON is the array
    return _items if name in _wrappers() else None


@functools.cache
def _wrappers() -> frozenset[str]:
    return frozenset(_data()["wrappers"])


# --- envelope ----------------------------------------------------------------------------------

def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message of a kind: ("apps/v1", "Deployment") -> k8s.io.api.apps.v1.Deployment.

    Option types (DeleteOptions, ...) are registered in every group version, as upstream does.
    """
    data = _data()
    package = data["groupVersions"].get(api_version)
    for name in (f"{package}.{kind}" if package else None, f"{_META}.{kind}"):
        if name and name in data["messages"]:
            return name
    return None


def decode(body: bytes) -> dict:
    """A protobuf request body as the JSON object a JSON client would have sent.

    Raises ProtobufError (a ValueError) for anything that is not a well-formed object of a known
    kind; nothing else escapes.
    """
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, "
                            "expected prefix [107 56 115 0]")
    try:
        return _decode(body)
    except ProtobufError:
        raise
    except Exception as err:  # noqa: BLE001 - untrusted bytes: any failure is a malformed body
        raise ProtobufError(f"malformed protobuf body ({type(err).__name__})") from None


def _decode(buf: bytes) -> dict:
    envelope = _unknown_fields(buf)
    api_version, kind = envelope.get("apiVersion", ""), envelope.get("kind", "")
    raw = envelope.get("raw", b"")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"unsupported content encoding {envelope['contentEncoding']!r}")
    ctype = envelope.get("contentType", "")
    if ctype and ctype.split(";")[0].strip() == "application/json":
        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ProtobufError("embedded JSON is not an object")
        return obj
    if ctype and ctype.split(";")[0].strip() != MEDIA_TYPE:
        raise ProtobufError(f"unsupported embedded content type {ctype!r}")
    name = message_for(api_version, kind)
    if name is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}"')
    msg = _message(name)
    body = msg.finish(_fields(raw, 0, len(raw), msg), msg)
    out: dict = {}
    if kind:
        out["kind"] = kind
    if api_version:
        out["apiVersion"] = api_version
    out.update(body)
    return out


def _unknown_fields(buf: bytes) -> dict:
    """The runtime.Unknown envelope after the magic: typeMeta, raw, contentEncoding, contentType."""
    out: dict = {}
    pos, end = len(MAGIC), len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        if tag & 7 != 2:
            pos = _skip(buf, pos, end, tag & 7)
            continue
        n, pos = _varint(buf, pos)
        chunk, pos = buf[pos:pos + n], pos + n
        if pos > end:
            raise ProtobufError("truncated envelope")
        number = tag >> 3
        if number == 1:  # TypeMeta {apiVersion = 1, kind = 2}
            p = 0
            while p < len(chunk):
                t, p = _varint(chunk, p)
                if t & 7 != 2:
                    p = _skip(chunk, p, len(chunk), t & 7)
                    continue
                m, p = _varint(chunk, p)
                if t >> 3 in (1, 2):
                    out["apiVersion" if t >> 3 == 1 else "kind"] = chunk[p:p + m].decode()
                p += m
            if p != len(chunk):
                raise ProtobufError("truncated typeMeta")
        elif number == 2:
            out["raw"] = chunk
        elif number in (3, 4):
            out["contentEncoding" if number == 3 else "contentType"] = chunk.decode()
    return out
