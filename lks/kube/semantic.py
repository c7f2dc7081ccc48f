"""One JSON form per Go value: what makes two built-in objects "the same" to kube-apiserver.

A Go server never sees the JSON a client sent, only the struct it decoded, and every comparison
and hash it makes (apiequality.Semantic.DeepEqual, the pod-template hash that names a
Deployment's ReplicaSets, a DaemonSet's ControllerRevisions) is of structs. Many JSON texts
decode to one struct: `"resources": {}` and no `resources` (a non-pointer struct is always
there), `"stdin": false` and no `stdin`, `"env": []` and `"env": null`. Round trips through
Go clients turn one into the other (`kubectl rollout undo` sends back the ReplicaSet's
template as client-go serialized it), so lks compares and hashes `canonical` forms:

- a non-pointer field at its Go zero value (`{}` once its own fields are canonical, `""`, `0`,
  `false`) is left out, as is `null`;
- a list or map that is empty is left out (Semantic.DeepEqual holds nil and empty equal);
- a pointer is kept even when zero (`replicas: 0`, `privileged: false`, `securityContext: {}`),
  since nil and zero differ for it;
- types with their own JSON (Quantity, IntOrString, Time, RawExtension ...) and keys that are
  no field of the type (`$patch`) are kept as they are.

The field tables (which fields are pointers, lists, maps, embedded structs) are those
`lks.kube.protobuf` decodes with, taken from upstream's Go types. The result is for comparing
and hashing, never for storing or serving. `lks.controllers` builds its template hashes and
template comparisons on it.
"""

from __future__ import annotations

import functools
from typing import Any

from lks.kube import protobuf

POD_TEMPLATE = "k8s.io.api.core.v1.PodTemplateSpec"

# messages whose JSON is not an object of their fields (protobuf's special encodings)
_OPAQUE_SUFFIXES = (".Time", ".MicroTime", ".Duration", ".FieldsV1", ".Quantity", ".QuantityValue",
                    ".IntOrString", ".RawExtension", ".JSON", ".JSONSchemaPropsOrArray",
                    ".JSONSchemaPropsOrBool", ".JSONSchemaPropsOrStringArray")
_SCALAR, _MESSAGE, _LIST, _MAP = range(4)


class _Field:
    __slots__ = ("shape", "message", "pointer")

    def __init__(self, shape: int, message: str | None, pointer: bool):
        self.shape, self.message, self.pointer = shape, message, pointer


@functools.cache
def _fields(message: str) -> dict[str, _Field] | None:
    """JSON name -> field of a message; None for a message with a JSON form of its own."""
    table = protobuf._data()["messages"].get(message)  # the decoder's own tables, shared
    if table is None or message.endswith(_OPAQUE_SUFFIXES) or message in protobuf._wrappers():
        return None
    fields: dict[str, _Field] = {}
    for name, kind, ptype, repeated, flags in table.values():
        if "i" in flags and kind == "message":  # an embedded struct: its fields are ours
            fields.update(_fields(ptype) or {})
            continue
        value_message = ptype[1] if kind == "map" else ptype if kind == "message" else None
        shape = _MAP if kind == "map" else _LIST if repeated or kind == "bytes" else \
            _MESSAGE if kind == "message" else _SCALAR
        fields[name] = _Field(shape, value_message, "p" in flags)
    return fields


def canonical(value: Any, message: str) -> Any:
    """`value`, the JSON of a `message` (a protobuf message name such as `POD_TEMPLATE`), in
    the one form every JSON of the same Go value has. Does not mutate `value`."""
    fields = _fields(message)
    if fields is None or not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        f = fields.get(key)
        if f is None:
            if item is not None:
                out[key] = item
            continue
        if f.shape == _LIST:
            if isinstance(item, list) and f.message is not None:
                item = [canonical(i, f.message) for i in item]
            if not item:
                continue
        elif f.shape == _MAP:
            if isinstance(item, dict) and f.message is not None:
                item = {k: canonical(v, f.message) for k, v in item.items()}
            if not item:
                continue
        elif item is None:
            continue
        else:
            if f.message is not None:
                item = canonical(item, f.message)
            if not f.pointer and _is_zero(item):
                continue
        out[key] = item
    return out


def _is_zero(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    return value in ("", 0) or value == {}


def canonical_template(template: Any) -> Any:
    """`canonical` of a pod template (`spec.template` of the workload kinds)."""
    return canonical(template, POD_TEMPLATE)
