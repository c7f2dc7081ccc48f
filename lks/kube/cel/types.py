"""CEL's types as the checker (`lks.kube.cel.checker`) sees them, named as cel-go prints them
(`int`, `list(string)`, `map(string, int)`, `google.protobuf.Timestamp`, `optional_type(int)`,
`kubernetes.Quantity`), and the object types of OpenAPI schemas (k8s.io/apiserver's
`SchemaDeclType`): `properties` make an object with fields, `additionalProperties` a map, items a
list, `integer`/`number`/`boolean`/`string` the scalars (a string with format `byte`, `duration`,
`date` or `date-time` is bytes, a duration or a timestamp), and what a schema leaves open
(`x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`, no type) is `dyn`.

Each type from a schema also carries the bounds the cost estimator (`lks.kube.cel.cost`) needs:
the most elements it can hold (`maxItems`, `maxProperties`, `maxLength` * 4 bytes, else what
the largest request could hold, as upstream estimates) and its smallest serialized size.
"""

from __future__ import annotations

from lks.kube.schema import Schema

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # celconfig.MaxRequestSizeBytes
# smallest JSON of each scalar (apiserver/pkg/cel/types.go)
_MIN_SIZE = {"int": 1, "uint": 1, "double": 1, "bool": 4, "string": 2, "bytes": 2, "dyn": 1, "null_type": 4,
             "google.protobuf.Duration": 4, "google.protobuf.Timestamp": 10}
_MAX_DURATION_JSON, _JSON_DATE, _MAX_DATETIME_JSON = 32, 10, 32  # apiserver/pkg/cel/limits.go


class Type:
    """A CEL type. `kind`: prim (by name), list, map, type, opaque (named, with parameters),
    object (fields from a schema), param (a type parameter), dyn, error."""

    __slots__ = ("kind", "name", "params", "schema", "root", "max", "min_size", "_fields")

    def __init__(self, kind: str, name: str, params: tuple[Type, ...] = (), *, schema: Schema | None = None,
                 root: bool = False, max: int = 0, min_size: int = 0):  # noqa: A002 (upstream's word)
        self.kind, self.name, self.params = kind, name, params
        self.schema, self.root = schema, root
        self.max, self.min_size = max, min_size
        self._fields: dict[str, Type | None] = {}

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if self.kind in ("list", "map", "type", "opaque") and self.params:
            return f"{self.name}({', '.join(str(p) for p in self.params)})"
        return self.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Type):
            return NotImplemented
        if self.kind == "object" or other.kind == "object":
            return self is other
        return self.kind == other.kind and self.name == other.name and self.params == other.params

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    @property
    def elem(self) -> Type:
        return self.params[-1] if self.params else DYN

    def field(self, name: str) -> Type | None:
        """An object type's field, None when the schema has no such field."""
        if name in self._fields:
            return self._fields[name]
        if self.schema is None:  # a record: only the fields it was made with
            return None
        found = _field(self, name)
        self._fields[name] = found
        return found


def prim(name: str) -> Type:
    return Type("prim", name, min_size=_MIN_SIZE.get(name, 1))


INT, UINT, DOUBLE, BOOL, STRING, BYTES = (prim(n) for n in ("int", "uint", "double", "bool", "string", "bytes"))
NULL = Type("null", "null_type")
DYN = Type("dyn", "dyn")
ERROR = Type("error", "*error*")
DURATION, TIMESTAMP = prim("google.protobuf.Duration"), prim("google.protobuf.Timestamp")


def list_of(elem: Type, max: int = 0) -> Type:  # noqa: A002
    return Type("list", "list", (elem,), max=max, min_size=2)


def map_of(key: Type, value: Type, max: int = 0) -> Type:  # noqa: A002
    return Type("map", "map", (key, value), max=max, min_size=2)


def type_of(t: Type) -> Type:
    return Type("type", "type", (t,))


def opaque(name: str, *params: Type) -> Type:
    return Type("opaque", name, params)


def optional(t: Type) -> Type:
    return opaque("optional_type", t)


def record(name: str, fields: dict[str, Type]) -> Type:
    """An object type of the given fields (an admission policy's `variables`)."""
    made = Type("object", name, min_size=2)
    made._fields.update(fields)
    return made


def param(name: str) -> Type:
    return Type("param", name)


def is_dyn(t: Type) -> bool:
    return t.kind in ("dyn", "error")


# the names that denote types in expressions (`type(x) == int`)
TYPE_NAMES = {"int": INT, "uint": UINT, "double": DOUBLE, "bool": BOOL, "string": STRING, "bytes": BYTES,
              "null_type": NULL, "dyn": DYN, "list": list_of(DYN), "map": map_of(DYN, DYN),
              "type": type_of(DYN), "optional_type": optional(DYN)}


# -- types of OpenAPI schemas ---------------------------------------------------------------------


def from_schema(schema: Schema, *, resource_root: bool = False, name: str = "object") -> Type:
    """The CEL type of values of `schema` (a CRD's structural schema or a built-in type's
    OpenAPI definition); `resource_root`: apiVersion, kind and metadata.name/generateName are
    always there (the root of a custom resource and embedded resources)."""
    node = schema.node
    if not node:
        return DYN
    if node.get("x-kubernetes-int-or-string") is True or node.get("format") == "int-or-string":
        return Type("dyn", "dyn", max=MAX_REQUEST_BYTES - 2, min_size=1)
    t = node.get("type")
    if isinstance(t, list):  # the JSON schemas of built-in types: ["object", "null"]
        named = [x for x in t if x != "null"]
        t = named[0] if len(named) == 1 else None
    embedded = resource_root or node.get("x-kubernetes-embedded-resource") is True
    if t == "object" or (t is None and (embedded or node.get("properties"))):
        if node.get("x-kubernetes-preserve-unknown-fields") is True and not embedded:
            return DYN
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not node.get("properties"):
            value = from_schema(Schema(schema.defs, extra), name=f"{name}.@elem")
            bound = node.get("maxProperties")
            most = bound if isinstance(bound, int) else (MAX_REQUEST_BYTES - 2) // (value.min_size + 6)
            return map_of(STRING, value, max(most, 0))
        if not node.get("properties") and not embedded:
            return DYN  # an object the schema says nothing of (RawExtension and the like)
        return Type("object", name, schema=schema, root=embedded, min_size=_object_min_size(schema))
    if t == "array":
        items = node.get("items")
        elem = from_schema(Schema(schema.defs, items), name=f"{name}.@idx") if isinstance(items, dict) else DYN
        bound = node.get("maxItems")
        most = bound if isinstance(bound, int) else (MAX_REQUEST_BYTES - 2) // (elem.min_size + 1)
        return list_of(elem, max(most, 0))
    if t == "string":
        fmt = node.get("format")
        bound = node.get("maxLength")
        if fmt == "byte":
            return Type("prim", "bytes", max=bound if isinstance(bound, int) else MAX_REQUEST_BYTES - 2, min_size=2)
        if fmt == "duration":
            return Type("prim", DURATION.name, max=_MAX_DURATION_JSON, min_size=4)
        if fmt in ("date", "date-time"):
            return Type("prim", TIMESTAMP.name, max=_JSON_DATE if fmt == "date" else _MAX_DATETIME_JSON,
                        min_size=_JSON_DATE)
        if isinstance(bound, int):
            most = max(bound, 0) * 4  # runes to bytes
        elif isinstance(node.get("enum"), list) and node["enum"]:
            most = max(len(str(v)) for v in node["enum"])
        else:
            most = MAX_REQUEST_BYTES - 2
        return Type("prim", "string", max=most, min_size=2)
    if t == "integer":
        return INT
    if t == "number":
        return DOUBLE
    if t == "boolean":
        return BOOL
    return DYN


_OBJECT_META = {"type": "object", "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}}}


def _field(t: Type, name: str) -> Type | None:
    assert t.schema is not None
    node = t.schema.node
    if t.root and name in ("apiVersion", "kind"):
        return STRING
    if t.root and name == "metadata" and not isinstance((node.get("properties") or {}).get("metadata"), dict):
        return from_schema(Schema({}, _OBJECT_META), name=f"{t.name}.metadata")
    props = node.get("properties") or {}
    key = _unescape(name)
    if key not in props or not isinstance(props[key], dict):
        return None
    sub = t.schema.prop(key)
    if t.root and key == "metadata" and t.schema.defs == {}:  # a CRD: only name and generateName
        sub = Schema({}, _OBJECT_META)
    return from_schema(sub, resource_root=sub.node.get("x-kubernetes-embedded-resource") is True,
                       name=f"{t.name}.{name}")


def _object_min_size(schema: Schema) -> int:
    """2 for `{}` plus each required property without a default (apiserver's estimate)."""
    node = schema.node
    size = 2
    required = set(node.get("required") or ())
    for key, prop in (node.get("properties") or {}).items():
        if key in required and isinstance(prop, dict) and "default" not in prop:
            size += len(key) + 4 + _scalar_min(Schema(schema.defs, prop))
    return size


def _scalar_min(schema: Schema) -> int:
    t = schema.node.get("type")
    return {"string": 2, "boolean": 4, "array": 2, "object": 2}.get(t, 1) if isinstance(t, str) else 1


_ESCAPES = (("__underscores__", "__"), ("__dot__", "."), ("__dash__", "-"), ("__slash__", "/"))


def _unescape(name: str) -> str:
    """A property name as CEL escapes it (`__dash__` for `-`, and the reserved words
    `__namespace__`) back to the schema's."""
    if name.startswith("__") and name.endswith("__") and name[2:-2] in _RESERVED:
        return name[2:-2]
    for escaped, plain in _ESCAPES:
        name = name.replace(escaped, plain)
    return name


_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                       "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                       "void", "while"})

