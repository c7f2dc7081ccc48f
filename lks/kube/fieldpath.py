"""Field paths, field sets and their FieldsV1 form, plus the schema-aware walks that produce
them: which fields an object sets, and how two objects differ. This is the part of
`sigs.k8s.io/structured-merge-diff` (`fieldpath`, `typed/tofieldset.go`, `typed/compare.go`)
that server-side apply and `metadata.managedFields` are built on; `lks.kube.fieldmanager` does
the bookkeeping on top.

A path is a tuple of serialized path elements, exactly as FieldsV1 spells them: `f:spec` (a
field), `k:{"name":"c"}` (a list-map element, keys sorted), `v:"x"` (a set element), `i:0` (an
index; never produced for granular lists). A `FieldSet` is a plain Python set of paths: SMD's
Set is a trie of members, and its union, intersection and difference are exactly set algebra
on member paths, which Python does in C. FieldsV1 JSON ({"f:spec": {".": {}, ...}}) is the
storage form; `encode`/`decode` convert, and `tree_has`/`tree_edit` change a stored tree along
a few paths without decoding the rest, because every write touches managedFields.

Schemas are the kubernetes-validate `$defs` (or a CRD's inline openAPIV3Schema) read through
`lks.kube.schema.Schema`; `Type` compiles them once into what SMD's schema says: granular or
atomic maps, atomic/set/map lists with their keys. Built-in objects are compared as the Go
structs kube-apiserver decodes them into (`_GoView`): a non-pointer struct or a field without
`omitempty` is always there (`spec.template` exists in an empty Deployment, `containers` is
null), and empty `omitempty` values are not. That is what decides, for example, that
`f:spec` gets no "." entry when a Deployment is created while a custom resource's does.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from lks.kube import catalog, protobuf, structural
from lks.kube.schema import Schema

Path = tuple[str, ...]
FieldSet = set[Path]


class _Missing:
    """An absent value, as opposed to an explicit null."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- path elements -------------------------------------------------------------------------------

def go_json(v: Any) -> str:
    """Go's encoding/json of a JSON value: compact, map keys sorted, <>& escaped as \\u003c etc."""
    if isinstance(v, str):
        return _go_str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_go_str(k) + ":" + go_json(v[k]) for k in sorted(v)) + "}"
    raise TypeError(f"not a JSON value: {v!r}")


def _go_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    if any(c in s for c in "<>&\u2028\u2029"):
        out = (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
               .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return out


def _go_float(f: float) -> str:
    """encoding/json's float64: shortest digits, 'e' form below 1e-6 and from 1e21 (e-07 -> e-7)."""
    if not math.isfinite(f):
        raise ValueError(f"json: unsupported value: {f}")
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        s = repr(f)
        mantissa, _, exp = s.partition("e")
        return f"{mantissa}e{exp[0]}{int(exp[1:])}" if exp[0] == "-" else s
    return format(Decimal(repr(f)), "f")


def key_element(fields: Iterable[tuple[str, Any]]) -> str:
    """`k:{"containerPort":80,"protocol":"TCP"}`: the key fields sorted by name."""
    return "k:{" + ",".join(_go_str(n) + ":" + go_json(v) for n, v in sorted(fields, key=lambda f: f[0])) + "}"


def value_element(v: Any) -> str:
    return "v:" + go_json(v)


def index_element(i: int) -> str:
    return f"i:{i}"


_canonical: dict[str, str] = {}


def canonical(pe: str) -> str | None:
    """A serialized path element as upstream re-serializes it (a client may send
    `k:{ "protocol":"TCP","containerPort":80}`); None for an element type this version does not
    know (upstream drops those). Raises ValueError on a malformed element."""
    if pe.startswith("f:"):
        return pe
    hit = _canonical.get(pe)
    if hit is not None:
        return hit
    if len(pe) < 2:
        raise ValueError("key must be 2 characters long:")
    if pe[1] != ":":
        raise ValueError(f"missing colon: {pe}")
    kind, payload = pe[0], pe[2:]
    if kind == "k":
        try:
            fields = json.loads(payload)
        except ValueError as err:
            raise ValueError(f"parsing key as path element: {err}") from None
        if not isinstance(fields, dict):
            raise ValueError("parsing key as path element: not an object")
        out = key_element(fields.items())
    elif kind == "v":
        try:
            out = value_element(json.loads(payload))
        except ValueError as err:
            raise ValueError(f"parsing key as path element: {err}") from None
    elif kind == "i":
        try:
            out = index_element(int(payload))
        except ValueError as err:
            raise ValueError(f"parsing key as path element: {err}") from None
    else:
        return None
    if len(_canonical) > 65536:
        _canonical.clear()
    _canonical[pe] = out
    return out


def _value_key(v: Any) -> tuple:
    # SMD's value.Compare: numbers (ints and floats numerically) < strings < bools < lists < maps < null
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_key(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _value_key(v[k])) for k in sorted(v)))
    return (5,)


@functools.lru_cache(maxsize=65536)
def sort_key(pe: str) -> tuple:
    """PathElement.Compare: fields < keys < values < indexes, each in its own order."""
    kind, payload = pe[0], pe[2:]
    if kind == "f":
        return (0, payload)
    if kind == "k":
        fields = json.loads(payload)
        return (1, tuple((n, _value_key(fields[n])) for n in sorted(fields)))
    if kind == "v":
        return (2, _value_key(json.loads(payload)))
    return (3, int(payload))


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): `.spec.template.spec.containers[name="c"].image`."""
    out = []
    for pe in path:
        kind, payload = pe[0], pe[2:]
        if kind == "f":
            out.append("." + payload)
        elif kind == "k":
            fields = json.loads(payload)
            out.append("[" + ",".join(f"{n}={_to_string(fields[n])}" for n in sorted(fields)) + "]")
        elif kind == "v":
            out.append(f"[={_to_string(json.loads(payload))}]")
        else:
            out.append(f"[{payload}]")
    return "".join(out)


def _to_string(v: Any) -> str:
    """value.ToString: strings %q, numbers %v (values read back from FieldsV1 are float64)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return structural.go_quote(v)
    if isinstance(v, (int, float)):
        return _go_g(float(v))
    if isinstance(v, list):
        return "[" + ",".join(_to_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_to_string(x)}" for k, x in v.items())
    return str(v)


def _go_g(f: float) -> str:
    """fmt's %v of a float64: shortest digits, exponent form below 1e-4 and from 1e6."""
    if f == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(f)).normalize().as_tuple()
    point = exponent + len(digits) - 1  # the power of ten of the first digit
    if point < -4 or point >= 6:
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e{'+' if point >= 0 else '-'}{abs(point):02d}"
    return format(Decimal(repr(f)).normalize(), "f")


def sort_paths(paths: Iterable[Path]) -> list[Path]:
    """The order Set.Iterate visits members: at each level the members, then each child."""
    return sorted(paths, key=lambda p: tuple((1, sort_key(pe)) for pe in p[:-1]) + ((0, sort_key(p[-1])),))


# --- FieldsV1 ------------------------------------------------------------------------------------

def encode(fs: Iterable[Path]) -> dict:
    """FieldsV1 JSON of a set, ordered and "."-marked as `Set.ToJSON` writes it."""
    root: dict = {}
    for p in fs:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node["."] = None
    return _emit(root)


def _emit(node: dict) -> dict:
    out: dict = {}
    for pe in sorted((k for k in node if k != "."), key=sort_key):
        child = node[pe]
        if len(child) == 1 and "." in child:
            out[pe] = {}
        else:
            sub = _emit(child)
            out[pe] = {".": {}, **sub} if "." in child else sub
    return out


def decode(fields_v1: Any) -> FieldSet:
    """The set a FieldsV1 object holds. Keys are canonicalized and unknown element types dropped,
    as `Set.FromJSON` does; ValueError on anything malformed."""
    if not isinstance(fields_v1, dict):
        raise ValueError("expected an object")
    out: FieldSet = set()
    _read(fields_v1, (), out)
    return out


def _read(node: dict, prefix: Path, out: FieldSet) -> bool:
    """Adds the members under `node`; True if `node` itself is a member."""
    member, children = False, False
    for key, sub in node.items():
        if key == ".":
            member = True
            continue
        pe = canonical(key)
        if pe is None:
            continue
        if not isinstance(sub, dict):
            raise ValueError(f"expected an object at {key}")
        children = True
        path = prefix + (pe,)
        if _read(sub, path, out):
            out.add(path)
    # an element with no children of its own ({} or only unknown kinds) is a member
    return member or not children


def tree_has(tree: dict, path: Path) -> bool:
    """Whether a FieldsV1 tree (as `encode` made it) has `path` as a member."""
    node = tree
    for pe in path:
        node = node.get(pe)
        if node is None:
            return False
    return not node or "." in node


def tree_paths(tree: dict, paths: Iterable[Path]) -> list[Path]:
    """The members of `paths` that a FieldsV1 tree has."""
    return [p for p in paths if tree_has(tree, p)]


def tree_edit(tree: dict, remove: Iterable[Path] = (), add: Iterable[Path] = ()) -> dict:
    """A copy of a FieldsV1 tree without the `remove` members and with the `add` ones, sharing
    every untouched subtree; levels that gain keys are re-sorted. {} means an empty set."""
    groups: dict[str, list] = {}
    for p in remove:
        g = groups.setdefault(p[0], [False, False, [], []])
        if len(p) == 1:
            g[0] = True
        else:
            g[2].append(p[1:])
    for p in add:
        g = groups.setdefault(p[0], [False, False, [], []])
        if len(p) == 1:
            g[1] = True
        else:
            g[3].append(p[1:])
    out = dict(tree)
    grew = False
    for pe, (rm_self, add_self, rm_sub, add_sub) in groups.items():
        child = tree.get(pe)
        member = child is not None and (not child or "." in child)
        sub = {k: v for k, v in child.items() if k != "."} if child else {}
        if rm_self:
            member = False
        if add_self:
            member = True
        if rm_sub or add_sub:
            sub = tree_edit(sub, rm_sub, add_sub)
        if sub:
            node = {".": {}, **sub} if member else sub
        elif member:
            node = {}
        else:
            out.pop(pe, None)
            continue
        grew = grew or pe not in out
        out[pe] = node
    if grew:
        out = {k: out[k] for k in sorted(out, key=sort_key)}
    return out


def without_prefixes(fs: FieldSet, prefixes: Iterable[Path]) -> FieldSet:
    """Set.RecursiveDifference with a set of members: drop those paths and all below them."""
    prefixes = set(prefixes)
    if not prefixes:
        return fs
    lengths = {len(x) for x in prefixes}
    if len(lengths) == 1:  # the usual case: a strategy's reset fields, ("f:status",) or ("f:spec",)
        n = lengths.pop()
        return {p for p in fs if p[:n] not in prefixes}
    return {p for p in fs if not any(p[:i] in prefixes for i in lengths if i <= len(p))}


# --- compiled schema types -----------------------------------------------------------------------

SCALAR, MAP, LIST, ANY = range(4)

# list-map key defaults kube-openapi carries (`+default=`) that the kubernetes-validate schemas lost
_KEY_DEFAULTS = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.LocalObjectReference": {"name": ""},
}


class Type:
    """What SMD's schema says about one position: a scalar, a map (struct or string-keyed,
    granular or atomic), a list (atomic, set, or map with keys), or ANY (no schema: deduced
    from the value; maps granular, lists atomic)."""

    __slots__ = ("kind", "atomic", "keys", "go", "name", "node", "_defs", "_fields", "_elem", "_named",
                 "_key_defaults")

    def __init__(self, defs: dict, node: dict, name: str | None):
        self._defs, self.node, self.name = defs, node, name
        self._fields: dict[str, Type] = {}
        self._elem: Type | None = None
        self.atomic, self.keys, self.go = False, (), None
        self._key_defaults: dict[str, Any] | None = None
        types = node.get("type")
        types = [types] if isinstance(types, str) else (types or [])
        props = node.get("properties")
        self._named = frozenset(props) if props else frozenset()
        if props is not None or "additionalProperties" in node or "object" in types:
            self.kind = MAP
            self.atomic = node.get("x-kubernetes-map-type") == "atomic"
            if name:
                self.go = _go_view(name)
        elif "items" in node or "array" in types:
            self.kind = LIST
            self._list_relationship(node)
        elif any(t != "null" for t in types):
            self.kind = SCALAR
        else:
            self.kind = ANY
            if "x-kubernetes-list-type" in node:
                self._list_relationship(node)
            else:
                self.atomic = True  # deduced lists are atomic

    def _list_relationship(self, node: dict) -> None:
        # kube-openapi's getListElementRelationship
        list_type = node.get("x-kubernetes-list-type")
        if list_type is not None:
            self.atomic = list_type not in ("set", "map")
            if list_type == "map":
                self.keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
        elif node.get("x-kubernetes-patch-strategy") in ("merge", "merge,retainKeys"):
            key = node.get("x-kubernetes-patch-merge-key")
            self.keys = (key,) if key else ()
        else:
            self.atomic = True

    @property
    def key_defaults(self) -> dict[str, Any]:
        """Values of key fields an item may leave out (SMD's `getAssociativeKeyDefault`)."""
        if self._key_defaults is None:
            self._key_defaults = {}
            elem = self.elem
            props = elem.node.get("properties") or {}
            builtin = _KEY_DEFAULTS.get(elem.name or "", {})
            for k in self.keys:
                prop = props.get(k) or {}
                if "default" in prop:
                    self._key_defaults[k] = prop["default"]
                elif k in builtin:
                    self._key_defaults[k] = builtin[k]
        return self._key_defaults

    def field(self, name: str) -> Type:
        t = self._fields.get(name)
        if t is None:
            node = (self.node.get("properties") or {}).get(name)
            if node is None:
                extra = self.node.get("additionalProperties")
                node = extra if isinstance(extra, dict) else None
            t = self._fields[name] = _compile(self._defs, node) if node is not None else _ANY
        return t

    def named(self, name: str) -> bool:
        """Whether `name` is a declared struct field (not a string-keyed map entry)."""
        return name in self._named

    @property
    def elem(self) -> Type:
        if self._elem is None:
            items = self.node.get("items")
            self._elem = _compile(self._defs, items) if isinstance(items, dict) else _ANY
        return self._elem

    def __repr__(self) -> str:
        return f"Type({('SCALAR', 'MAP', 'LIST', 'ANY')[self.kind]}, atomic={self.atomic}, keys={self.keys})"


_ANY = Type({}, {}, None)
_ref_cache: dict[int, tuple[dict, dict]] = {}  # id(defs) -> (defs, {(ref, map type): Type})
_root_cache: dict[int, tuple[dict, Type]] = {}  # id(root node) -> (node, Type)
_MAX_ROOTS = 2048


def _compile(defs: dict, node: dict) -> Type:
    ref = node.get("$ref")
    if not ref:
        return Type(defs, node, None)
    name = ref.rsplit("/", 1)[-1]
    map_type = node.get("x-kubernetes-map-type")
    entry = _ref_cache.get(id(defs))
    if entry is None or entry[0] is not defs:
        entry = _ref_cache[id(defs)] = (defs, {})
    cache = entry[1]
    t = cache.get((name, map_type))
    if t is None:
        target = defs.get(name) or {}
        if target.get("$ref"):
            t = _compile(defs, target)
        else:
            # the property carries the extensions; the definition carries the structure
            merged = target if map_type is None else {**target, "x-kubernetes-map-type": map_type}
            t = Type(defs, merged, name)
        cache[(name, map_type)] = t
    return t


def type_of(schema: Schema) -> Type:
    """The compiled type of a root schema (a built-in kind's definition or a CRD's schema),
    compiled once per schema node."""
    node = schema.node
    hit = _root_cache.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    name = _root_name(schema.defs, node)
    t = Type(schema.defs, node, name)
    if name is None and t.kind == MAP:
        # apiextensions-apiserver types a custom resource's metadata as ObjectMeta whatever the
        # CRD says (labels are a struct field there, not a free-form map); no Go view: CRs stay
        # unstructured
        t._fields["metadata"] = _object_meta()
    if len(_root_cache) >= _MAX_ROOTS:
        _root_cache.pop(next(iter(_root_cache)))
    _root_cache[id(node)] = (node, t)
    return t


@functools.cache
def _object_meta() -> Type:
    defs = catalog.load().schemas
    return Type(defs, defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"], None)


def _root_name(defs: dict, node: dict) -> str | None:
    if not defs:
        return None
    index = _def_index(id(defs), defs)
    return index.get(id(node))


_def_indexes: dict[int, tuple[dict, dict[int, str]]] = {}


def _def_index(key: int, defs: dict) -> dict[int, str]:
    hit = _def_indexes.get(key)
    if hit is None or hit[0] is not defs:
        hit = _def_indexes[key] = (defs, {id(v): k for k, v in defs.items()})
    return hit[1]


# --- the Go struct view of built-in objects -------------------------------------------------------

_SPECIAL_ZERO = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "0s",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "0",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "0",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": 0,
}
_SPECIAL_NULL = ("Time", "MicroTime", "FieldsV1", "RawExtension", "JSON", "JSONSchemaPropsOrArray",
                 "JSONSchemaPropsOrBool", "JSONSchemaPropsOrStringArray")


class _GoView:
    """How encoding a JSON object into its Go struct changes it: per JSON field, the value when
    absent or null (`MISSING` if then left out) and whether an empty value is dropped
    (`omitempty` on a non-pointer string, number, bool, slice or map); and which fields a zero
    struct always has."""

    __slots__ = ("fields", "implicit")

    def __init__(self, fields: dict[str, tuple[Any, bool]]):
        self.fields = fields
        self.implicit = tuple((k, z) for k, (z, _) in fields.items() if z is not MISSING)

    def view(self, d: dict) -> dict:
        out = {}
        fields = self.fields
        for k, v in d.items():
            f = fields.get(k)
            if f is not None:
                if v is None:
                    v = f[0]
                elif f[1] and not v:
                    continue
                if v is MISSING:
                    continue
            out[k] = v
        for k, zero in self.implicit:
            if k not in out and d.get(k, MISSING) is MISSING:
                out[k] = zero
        return out

    def zero(self, name: str) -> Any:
        f = self.fields.get(name)
        return MISSING if f is None else f[0]


@functools.cache
def _messages() -> dict:
    return protobuf._data()["messages"]  # the Go shapes generated for protobuf decoding


@functools.cache
def _wrappers() -> frozenset:
    return frozenset(protobuf._data().get("wrappers", ()))


@functools.cache
def _go_view(def_name: str) -> _GoView | None:
    msg = _message_name(def_name)
    if msg is None or _is_special(msg):
        return None
    fields = _go_fields(msg)
    return _GoView(fields) if fields is not None else None


def _message_name(def_name: str) -> str | None:
    if not def_name.startswith("io.k8s."):
        return None
    name = "k8s.io." + def_name[len("io.k8s."):].replace("-", "_")
    return name if name in _messages() else None


def _is_special(msg: str) -> bool:
    return msg in _SPECIAL_ZERO or msg.rsplit(".", 1)[-1] in _SPECIAL_NULL or msg in _wrappers()


@functools.cache
def _go_fields(msg: str) -> dict[str, tuple[Any, bool]] | None:
    table = _messages().get(msg)
    if table is None:
        return None
    out: dict[str, tuple[Any, bool]] = {}
    for jname, kind, ptype, repeated, flags in table.values():
        if "i" in flags:  # an embedded struct: its fields are ours
            out.update(_go_fields(ptype) or {})
            continue
        pointer, omitempty, omitzero = "p" in flags, "o" in flags, "z" in flags
        nil = repeated or pointer or kind in ("map", "bytes")
        struct = kind == "message" and not nil
        if nil:
            zero: Any = None
        elif struct:
            zero = _zero_message(ptype)
        else:
            zero = "" if kind == "string" else False if kind == "bool" else 0
        implicit = (struct and not omitzero) or not (omitempty or omitzero)
        out[jname] = (zero if implicit else MISSING, omitempty and not pointer and not struct)
    return out


def _zero_message(msg: str) -> Any:
    if msg in _SPECIAL_ZERO:
        return _SPECIAL_ZERO[msg]
    if _is_special(msg):
        return None
    fields = _go_fields(msg) or {}
    return {k: z for k, (z, _) in fields.items() if z is not MISSING}


def zero_object(t: Type) -> dict:
    """What an empty object of a root type looks like to the field manager: the Go zero struct
    of a built-in kind (`scope.Creater.New`), an empty map for a custom resource."""
    if t.go is None:
        return {}
    msg = _message_name(t.name) if t.name else None
    zero = _zero_message(msg) if msg else {}
    return zero if isinstance(zero, dict) else {}


# --- walks ---------------------------------------------------------------------------------------

_key_cache: dict[tuple, str] = {}
_value_cache: dict[tuple, str] = {}


def item_element(item: Any, t: Type) -> str | None:
    """The path element of a list item of an associative list (None if it cannot have one)."""
    if t.keys:
        if not isinstance(item, dict):
            return None
        found = []
        for k in t.keys:
            v = item.get(k, MISSING)
            if v is MISSING:
                v = t.key_defaults.get(k, MISSING)
                if v is MISSING:
                    continue  # a key field left out names a different element
            found.append((k, v))
        if not found:
            return None
        try:
            ck = tuple((k, type(v), v) for k, v in found)
            pe = _key_cache.get(ck)
        except TypeError:
            return key_element(found)
        if pe is None:
            if len(_key_cache) > 65536:
                _key_cache.clear()
            pe = _key_cache[ck] = key_element(found)
        return pe
    if item is None or isinstance(item, (dict, list)):
        return None
    cv = (type(item), item)
    pe = _value_cache.get(cv)
    if pe is None:
        if len(_value_cache) > 65536:
            _value_cache.clear()
        pe = _value_cache[cv] = value_element(item)
    return pe


def _shape(v: Any, t: Type) -> int:
    """The kind to walk a value as: the schema's, or for ANY the value's own."""
    if t.kind != ANY:
        return t.kind
    if isinstance(v, dict):
        return MAP
    if isinstance(v, list):
        return LIST
    return SCALAR


def fields_of(obj: Any, schema: Schema | Type) -> FieldSet:
    """The fields an object sets, as `TypedValue.ToFieldSet` lists them: every scalar, atomic
    map or list, null or empty map, string-keyed map entry and list item (structs by their
    fields only). This is what an applier comes to own."""
    t = schema if isinstance(schema, Type) else type_of(schema)
    out: FieldSet = set()
    _fields(obj, t, (), out)
    return out


def _fields(v: Any, t: Type, path: Path, out: FieldSet) -> None:
    shape = _shape(v, t)
    if shape == MAP:
        if t.atomic and t.kind == MAP:
            if path:
                out.add(path)
            return
        if not isinstance(v, dict):
            return
        for k, val in v.items():
            p = path + ("f:" + k,)
            _fields(val, t.field(k), p, out)
            if val is None or (isinstance(val, dict) and not val) or not t.named(k):
                out.add(p)
    elif shape == LIST:
        if t.atomic:
            if path:
                out.add(path)
            return
        if not isinstance(v, list):
            return
        elem = t.elem
        pes = [item_element(item, t) for item in v]
        seen: set[str] = set()
        dups: set[str] = set()
        for pe in pes:
            if pe in seen:
                if pe is not None and pe not in dups:
                    dups.add(pe)
                    out.add(path + (pe,))
            seen.add(pe)
        for item, pe in zip(v, pes, strict=True):
            if pe is None or pe in dups:
                continue
            p = path + (pe,)
            _fields(item, elem, p, out)
            out.add(p)
    elif path:
        out.add(path)


class Comparison:
    """`typed.Comparison`: the paths added, modified and removed from one object to another."""

    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: FieldSet = set()
        self.modified: FieldSet = set()
        self.removed: FieldSet = set()

    def empty(self) -> bool:
        return not (self.added or self.modified or self.removed)

    def without(self, prefixes: Iterable[Path]) -> Comparison:
        prefixes = list(prefixes)
        if prefixes:
            self.added = without_prefixes(self.added, prefixes)
            self.modified = without_prefixes(self.modified, prefixes)
            self.removed = without_prefixes(self.removed, prefixes)
        return self


def compare(lhs: Any, rhs: Any, schema: Schema | Type) -> Comparison:
    """`TypedValue.Compare`, walking only where the two differ. Built-in objects are seen as
    their Go structs (see the module docstring)."""
    t = schema if isinstance(schema, Type) else type_of(schema)
    c = Comparison()
    if lhs is not rhs and lhs != rhs:
        _compare(lhs, rhs, t, (), c)
    return c


def _compare(l: Any, r: Any, t: Type, path: Path, c: Comparison) -> None:  # noqa: E741
    shape = _shape(r if r is not MISSING else l, t)
    if shape == MAP and (l is MISSING or l is None or isinstance(l, dict)) and (
            r is MISSING or r is None or isinstance(r, dict)):
        lm = l if isinstance(l, dict) else None
        rm = r if isinstance(r, dict) else None
        go = t.go
        if go is not None:
            lm = go.view(lm) if lm is not None else None
            rm = go.view(rm) if rm is not None else None
        if (t.atomic and t.kind == MAP) or (not lm and not rm):
            # a big leaf: compared as the Go structs are ({"paused": false} is {})
            _leaf(l if lm is None else lm, r if rm is None else rm, path, c)
            return
        if lm is None:
            for k, rv in rm.items():
                _compare(MISSING, rv, t.field(k), path + ("f:" + k,), c)
        elif rm is None:
            for k, lv in lm.items():
                _compare(lv, MISSING, t.field(k), path + ("f:" + k,), c)
        else:
            for k, lv in lm.items():
                rv = rm.get(k, MISSING)
                if lv is not rv and lv != rv:
                    _compare(lv, rv, t.field(k), path + ("f:" + k,), c)
            for k, rv in rm.items():
                if k not in lm:
                    _compare(MISSING, rv, t.field(k), path + ("f:" + k,), c)
    elif shape == LIST and not t.atomic and (l is MISSING or l is None or isinstance(l, list)) and (
            r is MISSING or r is None or isinstance(r, list)):
        if not l and not r:
            _leaf(l, r, path, c)
            return
        _compare_items(l if isinstance(l, list) else [], r if isinstance(r, list) else [], t, path, c)
    else:
        _leaf(l, r, path, c)
        return
    if path:
        if l is MISSING:
            c.added.add(path)
        elif r is MISSING:
            c.removed.add(path)


def _leaf(l: Any, r: Any, path: Path, c: Comparison) -> None:  # noqa: E741
    if not path:
        return
    if l is MISSING:
        c.added.add(path)
    elif r is MISSING:
        c.removed.add(path)
    elif l != r or isinstance(l, bool) is not isinstance(r, bool):
        c.modified.add(path)


def _compare_items(ll: list, rl: list, t: Type, path: Path, c: Comparison) -> None:
    # items are matched by path element; duplicates (which live objects may have) are compared
    # as a block, as compareWalker.visitListItems does
    elem = t.elem
    lv: dict[str, list] = {}
    order: list[str] = []
    for item in ll:
        pe = item_element(item, t)
        if pe is None:
            continue
        if pe in lv:
            lv[pe].append(item)
        else:
            lv[pe] = [item]
            order.append(pe)
    rv: dict[str, list] = {}
    for item in rl:
        pe = item_element(item, t)
        if pe is None:
            continue
        if pe in rv:
            rv[pe].append(item)
        else:
            rv[pe] = [item]
            if pe not in lv:
                order.append(pe)
    for pe in order:
        litems, ritems = lv.get(pe, ()), rv.get(pe, ())
        p = path + (pe,)
        if len(litems) <= 1 and len(ritems) <= 1:
            left = litems[0] if litems else MISSING
            right = ritems[0] if ritems else MISSING
            if left is not right and left != right:
                _compare(left, right, elem, p, c)
        elif len(litems) >= 2 and len(ritems) >= 2:
            if litems != ritems:
                c.modified.add(p)
        elif len(litems) >= 2:
            if ritems:
                _compare(MISSING, ritems[0], elem, p, c)
            c.removed.add(p)
        else:
            if litems:
                _compare(litems[0], MISSING, elem, p, c)
            c.added.add(p)
