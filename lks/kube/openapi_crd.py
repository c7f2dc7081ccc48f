"""The OpenAPI schema of a custom resource, as apiextensions' OpenAPI builder publishes it
(`pkg/controller/openapi/builder`): the CRD version's structural schema with `metadata`,
`apiVersion` and `kind` added at the root and in every embedded resource, in two forms.

- OpenAPI v3 keeps the schema whole, with `x-kubernetes-int-or-string` unfolded into
  `anyOf: [integer, string]` as upstream does.
- Swagger 2.0 is what kubectl's client-side validation reads (`kubectl apply` of a `kind: List`,
  or against a server without field validation), and kubectl treats every `properties` as
  closed. So, as `ToStructuralOpenAPIV2` does, the v2 form drops what kubectl would misread:
  the junctors (`allOf`, `anyOf`, `oneOf`, `not`), `nullable` (with the type, properties and
  items of a nullable node, and the `required` entries naming one), the properties and items
  of every `x-kubernetes-preserve-unknown-fields` node (and the `object` type of one), and an
  array type without items. A schema whose root preserves unknown fields is published as a
  bare `{"type": "object"}`; defaults are pruned, as from every v2 definition.

`lks.kube.openapi_defs` calls `published` for each CRD version and converts `$ref`s.
"""

from __future__ import annotations

from typing import Any

Node = dict[str, Any]

_META_REF = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
METADATA_DOC = ("Standard object's metadata. More info: "
                 "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
_EMBEDDED_API_VERSION_DOC = (
    "apiVersion defines the versioned schema of this representation of an object. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
_EMBEDDED_KIND_DOC = (
    "kind is a string value representing the type of this object. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def published(schema: Node | None, gvk: dict[str, str], *, v2: bool) -> Node:
    """The definition of a custom resource's kind (its `$ref`s still in `#/$defs/` form)."""
    if not schema or (v2 and schema.get(_PRESERVE)):
        # properties would make kubectl refuse every field not listed, even apiVersion or kind
        return {"type": "object", "x-kubernetes-group-version-kind": [gvk]}
    node = _to_v2(schema) if v2 else _unfold(schema)
    node["properties"] = {
        **(node.get("properties") or {}),
        "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
        "kind": {"description": KIND_DOC, "type": "string"},
        "metadata": {"$ref": _META_REF, "description": METADATA_DOC},
    }
    node.setdefault("type", "object")
    node = _embedded(node, v2)
    node["x-kubernetes-group-version-kind"] = [gvk]
    return node


def _children(node: Node, fn: Any) -> Node:
    """A copy of `node` with `fn` applied to its properties, items and additionalProperties."""
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: fn(v) for k, v in out["properties"].items() if isinstance(v, dict)}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = fn(out[key])
    return out


def _to_v2(node: Node) -> Node:
    """`ToStructuralOpenAPIV2` and `PruneDefaults` on one node and, through it, its children."""
    s = {k: v for k, v in node.items() if k not in _JUNCTORS and k != "default"}
    if s.pop("nullable", False):
        for key in ("type", "items", "properties"):
            s.pop(key, None)
    if s.get(_PRESERVE):
        s.pop("items", None)
        s.pop("properties", None)
        if s.get("type") == "object":
            s.pop("type")
    if s.get("type") == "array" and not isinstance(s.get("items"), dict):
        s.pop("type")
    props = s.get("properties")
    if isinstance(props, dict) and s.get("required"):
        kept = [r for r in s["required"] if not (props.get(r) or {}).get("nullable")]
        if kept:
            s["required"] = kept
        else:
            s.pop("required")
    extra = s.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("nullable"):
        s.pop("required", None)
    return _children(s, _to_v2)


def _unfold(node: Node) -> Node:
    """`Structural.Unfold`: an int-or-string node gets `anyOf: [integer, string]` (inside an
    `allOf` when it has an `anyOf` of its own), unless it spells that pattern out already."""
    s = dict(node)
    if s.get("x-kubernetes-int-or-string") and not _spells_int_or_string(s):
        pair = [{"type": "integer"}, {"type": "string"}]
        if "anyOf" not in s:
            s["anyOf"] = pair
        else:
            s["allOf"] = [{"anyOf": pair}, *(s.get("allOf") or ())]
    return _children(s, _unfold)


def _spells_int_or_string(s: Node) -> bool:
    def pair(any_of: Any) -> bool:
        return (isinstance(any_of, list) and len(any_of) == 2
                and [x.get("type") if isinstance(x, dict) else None for x in any_of] == ["integer", "string"])
    all_of = s.get("allOf")
    return pair(s.get("anyOf")) or (isinstance(all_of, list) and bool(all_of) and isinstance(all_of[0], dict)
                                    and pair(all_of[0].get("anyOf")))


def _embedded(node: Node, v2: bool) -> Node:
    """`addEmbeddedProperties`: every `x-kubernetes-embedded-resource` node gets apiVersion,
    kind and metadata, and requires the first two; in v2, not where unknown fields are kept."""
    s = _children(node, lambda child: _embedded(child, v2))
    if v2 and s.get(_PRESERVE):
        return s
    if s.get("x-kubernetes-embedded-resource"):
        s["properties"] = {
            **(s.get("properties") or {}),
            "apiVersion": {"description": _EMBEDDED_API_VERSION_DOC, "type": "string"},
            "kind": {"description": _EMBEDDED_KIND_DOC, "type": "string"},
            "metadata": {"$ref": _META_REF, "description": METADATA_DOC},
        }
        required = list(s.get("required") or ())
        s["required"] = required + [k for k in ("kind", "apiVersion") if k not in required]
    return s
