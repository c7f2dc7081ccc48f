"""OpenAPI schema definitions, converted from a catalog's JSON-schema `$defs` into the shapes
kube-apiserver publishes: OpenAPI 3.0 `components.schemas` (a `$ref` with siblings is wrapped
in `allOf`, as kube-openapi does) and Swagger 2.0 `definitions` (`$ref` keeps its siblings).

The `kubernetes-validate` data we start from differs from upstream in a few ways that clients
notice, so the conversion undoes them: every type is a `[type, "null"]` list (upstream schemas
are never nullable), `apiVersion` and `kind` carry enums upstream does not have (`kubectl
explain` would print them), and `IntOrString`/`Quantity` are bare `oneOf`s without their
descriptions. Custom resources get what the CRD OpenAPI builder adds: `metadata` as an
`ObjectMeta` reference, `apiVersion`/`kind`, the GVK extension, and a `<Kind>List` schema.

Each definition is converted once per catalog and format; `lks.kube.openapi_paths` names the
definitions a group-version needs and `lks.kube.openapi` assembles and serves the documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lks.kube import openapi_crd

Node = dict[str, Any]

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_DEFS_PREFIX = "#/$defs/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."

# JSON-schema keywords whose value is a schema, a list of schemas or a map of them: the only
# places the conversion descends into (enums, defaults and extensions are copied verbatim).
_ONE = ("items", "additionalProperties", "not")
_MANY = ("allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties")

_INT_OR_STRING_DOC = (
    "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and "
    "unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON "
    "field that can accept a name or number.")
_QUANTITY_DOC = (
    "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling "
    "in JSON and YAML, in addition to String() and AsInt64() accessors.\n\nThe serialization format is:\n\n"
    "``` <quantity>        ::= <signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" "
    "case in <decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | "
    "<digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>"
    "            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= "
    "<binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t"
    "(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>"
    "       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose "
    "the capitalization.)\n\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> ```\n\nNo "
    "matter which of the three exponent forms is used, no quantity may represent a number greater than "
    "2^63-1 in magnitude, nor may it have more than 3 decimal places. Numbers larger or more precise will be "
    "capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we "
    "require larger or smaller quantities.\n\nWhen a Quantity is parsed from a string, it will remember the "
    "type of suffix it had, and will use the same type again when it is serialized.\n\nBefore serializing, "
    "Quantity will be put in \"canonical form\". This means that Exponent/suffix will be adjusted up or down "
    "(with a corresponding increase or decrease in Mantissa) such that:\n\n- No precision is lost - No "
    "fractional digits will be emitted - The exponent (or suffix) is as large as possible.\n\nThe sign will "
    "be omitted unless the number is negative.\n\nExamples:\n\n- 1.5 will be serialized as \"1500m\" - 1.5Gi "
    "will be serialized as \"1536Mi\"\n\nNote that the quantity will NEVER be internally represented by a "
    "floating point number. That is the whole point of this exercise.\n\nNon-canonical values will still "
    "parse as long as they are well formed, but will be re-emitted in their canonical form. (So always use "
    "canonical form, or don't diff.)\n\nThis format is intended to make it difficult to use these numbers "
    "without writing some sort of special handling code in the hopes that that will cause implementors to "
    "also use a fixed point implementation.")

# Upstream's exact definitions where kubernetes-validate's differ: (v3 form, v2 form).
_OVERRIDES: dict[str, tuple[Node, Node]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": (
        {"description": _INT_OR_STRING_DOC, "format": "int-or-string",
         "oneOf": [{"type": "integer"}, {"type": "string"}]},
        {"description": _INT_OR_STRING_DOC, "format": "int-or-string", "type": "string"}),
    "io.k8s.apimachinery.pkg.api.resource.Quantity": (
        {"description": _QUANTITY_DOC, "oneOf": [{"type": "string"}, {"type": "number"}]},
        {"description": _QUANTITY_DOC, "type": "string"}),
}


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def custom_schema_name(group: str, version: str, kind: str) -> str:
    """Where upstream publishes a custom resource's schema: `com.example.stable.v1.CronTab`."""
    return ".".join([*reversed(group.split(".")), version, kind])


def list_schema_name(schema_name: str, list_kind: str) -> str:
    """`io.k8s.api.apps.v1.DeploymentList` for `io.k8s.api.apps.v1.Deployment`."""
    head, _, _ = schema_name.rpartition(".")
    return f"{head}.{list_kind}" if head else list_kind


class Definitions:
    """The definitions of one catalog in both formats, converted on first use.

    `custom` pairs each custom resource type (CRD version) with its schema; the schema is
    published under the type's `schema_name` (upstream's `com.example.stable.v1.CronTab`) and
    completed as the CRD OpenAPI builder does. `base`, the built-in catalog's definitions, lends
    its conversions for definitions both share, so a cluster with CRDs converts only CRD schemas.
    """

    def __init__(self, schemas: dict[str, Node], custom: Iterable[tuple[Any, Node]] = (),
                 base: Definitions | None = None):
        self.raw = dict(schemas)
        self._base = base
        self._refs: dict[str, frozenset[str]] = {}
        self._converted: tuple[dict[str, Node], dict[str, Node]] = ({}, {})
        self._raw_v2: dict[str, Node] = {}  # custom resources' Swagger 2.0 forms, which differ
        for rt, schema in custom:
            self._complete_custom(rt, schema)

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def by_gvk(self) -> dict[tuple[str, str, str], str]:
        """(group, version, kind) → definition name, from the GVK extensions."""
        out: dict[tuple[str, str, str], str] = {}
        for name, node in self.raw.items():
            for g in node.get("x-kubernetes-group-version-kind") or ():
                out.setdefault((g.get("group", ""), g.get("version", ""), g.get("kind", "")), name)
        return out

    def closure(self, roots: Iterable[str]) -> list[str]:
        """`roots` and every definition they reach through `$ref`s, sorted by name."""
        seen: set[str] = set()
        todo = [r for r in roots if r in self.raw]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(r for r in self._refs_of(name) if r not in seen and r in self.raw)
        return sorted(seen)

    def get(self, name: str, v3: bool = True) -> Node:
        """The converted definition; v3 (`components.schemas`) or v2 (`definitions`)."""
        cache = self._converted[0 if v3 else 1]
        node = cache.get(name)
        if node is None:
            base = self._base
            if base is not None and base.raw.get(name) is self.raw[name]:
                node = base.get(name, v3)
            elif name in _OVERRIDES:
                node = _OVERRIDES[name][0 if v3 else 1]
            elif not v3 and name in self._raw_v2:
                node = _definition(self._raw_v2[name], V2_PREFIX, v3)
            else:
                node = _definition(self.raw[name], V3_PREFIX if v3 else V2_PREFIX, v3)
            cache[name] = node
        return node

    def _refs_of(self, name: str) -> frozenset[str]:
        refs = self._refs.get(name)
        if refs is None:
            found: set[str] = set()
            _collect_refs(self.raw[name], found)
            refs = self._refs[name] = frozenset(found)
        return refs

    def _complete_custom(self, rt: Any, schema: Node) -> None:
        """Give a custom resource's schema what kube-apiserver publishes for it."""
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        self.raw[rt.schema_name] = openapi_crd.published(schema, gvk, v2=False)
        self._raw_v2[rt.schema_name] = openapi_crd.published(schema, gvk, v2=True)
        list_name = list_schema_name(rt.schema_name, rt.list_kind)
        if list_name not in self.raw:
            self.raw[list_name] = {
                "description": f"{rt.list_kind} is a list of {rt.kind}",
                "properties": {
                    "apiVersion": {"description": openapi_crd.API_VERSION_DOC, "type": "string"},
                    "items": {"description": f"List of {rt.resource}. More info: https://git.k8s.io/community/"
                                             "contributors/devel/sig-architecture/api-conventions.md",
                              "items": {"$ref": _DEFS_PREFIX + rt.schema_name}, "type": "array"},
                    "kind": {"description": openapi_crd.KIND_DOC, "type": "string"},
                    "metadata": {"$ref": _DEFS_PREFIX + _META + "ListMeta", "description": (
                        "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"
                        "sig-architecture/api-conventions.md#types-kinds")},
                },
                "required": ["items"], "type": "object",
                "x-kubernetes-group-version-kind": [{**gvk, "kind": rt.list_kind}],
            }


def _collect_refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref_name(ref))
        for key in _ONE:
            if isinstance(node.get(key), dict):
                _collect_refs(node[key], out)
        for key in _MANY:
            for sub in node.get(key) or ():
                _collect_refs(sub, out)
        for key in _MAP:
            for sub in (node.get(key) or {}).values():
                _collect_refs(sub, out)


def _definition(node: Node, prefix: str, v3: bool) -> Node:
    out = _schema(node, prefix, v3)
    if node.get("x-kubernetes-group-version-kind") and isinstance(out.get("properties"), dict):
        # kubernetes-validate pins apiVersion/kind to enums; upstream documents them as free strings
        props = out["properties"] = dict(out["properties"])
        for key in ("apiVersion", "kind"):
            if isinstance(props.get(key), dict) and "enum" in props[key]:
                props[key] = {k: v for k, v in props[key].items() if k != "enum"}
    return out


def _schema(node: Node, prefix: str, v3: bool) -> Node:
    out: Node = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = prefix + ref_name(value)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out[key] = types[0] if len(types) == 1 else types
        elif key in _ONE and isinstance(value, dict):
            out[key] = _schema(value, prefix, v3)
        elif key in _MANY and isinstance(value, list):
            if v3:
                out[key] = [_schema(s, prefix, v3) for s in value]
            # Swagger 2.0 has no anyOf/oneOf: drop them, as the v2 publisher does
            elif key == "allOf":
                out[key] = [_schema(s, prefix, v3) for s in value]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: _schema(s, prefix, v3) for name, s in value.items()}
        elif key == "nullable" and not v3:
            continue
        else:
            out[key] = value
    if v3 and "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; kube-openapi wraps the reference in allOf instead
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out
