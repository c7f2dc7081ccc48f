"""The rules a CRD's `openAPIV3Schema` must follow, as apiextensions checks them when a CRD is
written (`apis/apiextensions/validation` and `apiserver/schema/validation.go`): first the
structural-schema invariants (sorted, as upstream sorts them), then the OpenAPI walk (allowed
types and keywords, `additionalProperties`, `x-kubernetes-*` combinations, list and map types).
Every error names its field path under `path` (`spec.validation.openAPIV3Schema` when all
versions share one schema, else `spec.versions[i].schema.openAPIV3Schema`).

`lks.kube.crdvalidation` calls `check` for every schema of a CRD; `lks.kube.crdschema` then
applies the schemas that pass to custom resources.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from lks.kube import cel, crdrules, crdschema, goregexp
from lks.kube.cel import cost as celcost
from lks.kube.errors import Cause
from lks.kube.schema import Schema

Node = dict[str, Any]

_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_UNSUPPORTED = (("id", "id"), ("additionalItems", "additionalItems"), ("patternProperties", "patternProperties"),
                ("definitions", "definitions"), ("dependencies", "dependencies"), ("$ref", "$ref"))
_META_FIELDS = ("metadata", "kind", "apiVersion")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
_VALIDATION_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]
_ROOT, _ITEM, _FIELD = "root", "item", "field"
_EMPTY_TYPE = {_ROOT: "must not be empty at the root", _ITEM: "must not be empty for specified array items",
               _FIELD: "must not be empty for specified object fields"}

# JSONSchemaProps' fields in declaration order (for the status-subresource root check), and
# those allowed at the root when the status subresource is on
_GO_FIELDS = [
    ("id", "ID"), ("$schema", "Schema"), ("$ref", "Ref"), ("description", "Description"), ("type", "Type"),
    ("nullable", "Nullable"), ("format", "Format"), ("title", "Title"), ("default", "Default"),
    ("maximum", "Maximum"), ("exclusiveMaximum", "ExclusiveMaximum"), ("minimum", "Minimum"),
    ("exclusiveMinimum", "ExclusiveMinimum"), ("maxLength", "MaxLength"), ("minLength", "MinLength"),
    ("pattern", "Pattern"), ("maxItems", "MaxItems"), ("minItems", "MinItems"), ("uniqueItems", "UniqueItems"),
    ("multipleOf", "MultipleOf"), ("enum", "Enum"), ("maxProperties", "MaxProperties"),
    ("minProperties", "MinProperties"), ("required", "Required"), ("items", "Items"), ("allOf", "AllOf"),
    ("oneOf", "OneOf"), ("anyOf", "AnyOf"), ("not", "Not"), ("properties", "Properties"),
    ("additionalProperties", "AdditionalProperties"), ("patternProperties", "PatternProperties"),
    ("dependencies", "Dependencies"), ("additionalItems", "AdditionalItems"), ("definitions", "Definitions"),
    ("externalDocs", "ExternalDocs"), ("example", "Example"),
    ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields"),
    ("x-kubernetes-embedded-resource", "XEmbeddedResource"), ("x-kubernetes-int-or-string", "XIntOrString"),
    ("x-kubernetes-list-map-keys", "XListMapKeys"), ("x-kubernetes-list-type", "XListType"),
    ("x-kubernetes-map-type", "XMapType"), ("x-kubernetes-validations", "XValidations"),
]
_ROOT_ALLOWED = ["Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum",
                 "ExclusiveMinimum", "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems",
                 "MultipleOf", "Required", "Items", "Properties", "ExternalDocs", "Example",
                 "XPreserveUnknownFields", "XValidations"]


def check(schema: Node, path: str, *, status_enabled: bool) -> list[Cause]:
    """Every rule `schema` (a version's or the shared `openAPIV3Schema`) breaks."""
    causes: list[Cause] = []
    if not isinstance(schema, dict):
        return [Cause.invalid(path, schema, "must be an object")]
    if status_enabled:
        causes += _status_root(schema, path)
    if schema.get("nullable") is True:
        causes.append(Cause.forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    if not _has_unsupported(schema):  # upstream cannot even build a structural schema from those
        structural = _invariants(schema, _ROOT, path) + _completeness(schema, schema, path, path)
        causes += sorted(structural, key=Cause.text) or _defaults(schema, path, root=True)
    # rules are compiled only in a schema that is otherwise sound (upstream's nil CEL context)
    ctx = _Context(cel=not causes)
    causes += _walk(schema, path, ctx, root=True)
    causes += _total_cost(ctx.costs, path)
    return causes


# -- the structural invariants (apiserver/schema/validation.go, complete.go) -----------------


def _invariants(s: Node, level: str, path: str) -> list[Cause]:
    out: list[Cause] = []
    t = s.get("type") or ""
    items = s.get("items")
    if t == "array" and items is None:
        out.append(Cause.required(f"{path}.items", "must be specified"))
    if isinstance(items, dict):
        out += _invariants(items, _ITEM, f"{path}.items")
    for key, sub in _props(s):
        out += _invariants(sub, _FIELD, f"{path}.properties[{key}]")
    extra = s.get("additionalProperties")
    if extra is not None:
        if level == _ROOT:
            out.append(Cause.forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(extra, dict):
            out += _invariants(extra, _FIELD, f"{path}.additionalProperties")
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = s.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        out.append(Cause.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                                 "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        out.append(Cause.invalid(f"{path}.x-kubernetes-embedded-resource", True,
                                 "must be false if x-kubernetes-int-or-string is true"))
    out += _value_validation(s, _is_int_or_string(s.get("anyOf")), _all_of_int_or_string(s), level, path)
    if embedded and t != "object":
        msg = "must be object if x-kubernetes-embedded-resource is true"
        out.append(Cause.invalid(f"{path}.type", t, msg) if t else Cause.required(f"{path}.type", msg))
    elif not t and not int_or_string and not preserve:
        out.append(Cause.required(f"{path}.type", _EMPTY_TYPE[level]))
    if embedded and extra is not None:
        out.append(Cause.forbidden(f"{path}.additionalProperties",
                                   "must not be used if x-kubernetes-embedded-resource is set"))
    if level == _ROOT and t and t != "object":
        out.append(Cause.invalid(f"{path}.type", t, "must be object at the root"))
    props = dict(_props(s))
    check_meta = level == _ROOT or embedded
    for key in ("kind", "apiVersion"):
        if key in props and check_meta and props[key].get("type", "") != "string":
            out.append(Cause.invalid(f"{path}.properties[{key}].type", props[key].get("type", ""), "must be string"))
    if "metadata" in props:
        out += _metadata(props["metadata"], check_meta, level, f"{path}.properties[metadata]")
    if embedded and not preserve and not props:
        out.append(Cause.required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is "
                                                        "true without x-kubernetes-preserve-unknown-fields"))
    return out


def _metadata(s: Node, check_meta: bool, level: str, path: str) -> list[Cause]:
    out: list[Cause] = []
    if check_meta and s.get("type", "") != "object":
        out.append(Cause.invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if level == _ROOT:
        rest = {k: v for k, v in s.items()
                if k not in ("type", "default", "example", "externalDocs") and not _zero(k, v)}
        names = set(rest.get("properties") or {})
        if names and names <= {"name", "generateName"}:
            rest.pop("properties")
        if rest:
            out.append(Cause.forbidden(path, "must not specify anything other than name and generateName, but "
                                             "metadata is implicitly specified"))
    return out


def _value_validation(v: Node, skip_any_of: bool, skip_first_all_of_any_of: bool, level: str,
                      path: str) -> list[Cause]:
    out: list[Cause] = []
    if not skip_any_of:
        for i, sub in _list(v, "anyOf"):
            out += _nested(sub, False, level, f"{path}.anyOf[{i}]")
    for i, sub in _list(v, "allOf"):
        out += _nested(sub, skip_first_all_of_any_of and i == 0, level, f"{path}.allOf[{i}]")
    for i, sub in _list(v, "oneOf"):
        out += _nested(sub, False, level, f"{path}.oneOf[{i}]")
    if isinstance(v.get("not"), dict):
        out += _nested(v["not"], False, level, f"{path}.not")
    pattern = v.get("pattern")
    if isinstance(pattern, str) and pattern and (err := goregexp.compile_error(pattern)):
        out.append(Cause.invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {err}"))
    return out


_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"), ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"), ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"), ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(v: Node, skip_any_of: bool, level: str, path: str) -> list[Cause]:
    """A schema under allOf/anyOf/oneOf/not: value validations only, nothing that shapes data."""
    out = _value_validation(v, skip_any_of, False, level, path)
    if isinstance(v.get("items"), dict):
        out += _nested(v["items"], False, level, f"{path}.items")
    for key, sub in _props(v):
        out += _nested(sub, False, _FIELD, f"{path}.properties[{key}]")
    for key, msg in _NESTED_FORBIDDEN:
        if key in v and not _zero(key, v[key]):
            out.append(Cause.forbidden(f"{path}.{key}", msg))
    if "metadata" in (v.get("properties") or {}):
        out.append(Cause.forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return out


def _completeness(v: Node, s: Node | None, s_path: str, v_path: str, nested: bool = False) -> list[Cause]:
    """Everything a junctor names must also be specified outside junctors (at the root)."""
    if s is None:
        return [Cause.required(s_path, f"because it is defined in {v_path}")]
    out: list[Cause] = []
    subs = [(f"{v_path}.not", v["not"])] if isinstance(v.get("not"), dict) else []
    for key in ("allOf", "anyOf", "oneOf"):
        subs += [(f"{v_path}.{key}[{i}]", sub) for i, sub in _list(v, key)]
    for sub_path, sub in subs:
        out += _completeness(sub, s, s_path, sub_path, nested=True)
    if nested:
        if isinstance(v.get("items"), dict):
            items = s.get("items") if isinstance(s.get("items"), dict) else None
            out += _completeness(v["items"], items, f"{s_path}.items", f"{v_path}.items", nested=True)
        s_props = dict(_props(s))
        for key, sub in _props(v):
            key_path = f"properties[{key}]"
            if key not in s_props:
                out.append(Cause.required(f"{s_path}.{key_path}", f"because it is defined in {v_path}.{key_path}"))
            else:
                out += _completeness(sub, s_props[key], f"{s_path}.{key_path}", f"{v_path}.{key_path}", nested=True)
    return out


def _defaults(s: Node, path: str, inside_meta: bool = False, *, root: bool = False) -> list[Cause]:
    """Every default must be valid for its schema and have no field pruning would drop
    (`structuraldefaulting.ValidateDefaults`; those inside metadata are refused elsewhere)."""
    out: list[Cause] = []
    embedded = root or s.get("x-kubernetes-embedded-resource") is True
    default = s.get("default")
    if default is not None and not (inside_meta and not embedded):
        node = Schema({}, s)
        pruned = copy.deepcopy(default)
        crdschema.prune(pruned, node, root=embedded)
        if pruned != default:
            out.append(Cause.invalid(f"{path}.default", default, "must not have unknown fields"))
        out += crdschema.validate(copy.deepcopy(default), node, f"{path}.default")
    if isinstance(s.get("items"), dict):
        out += _defaults(s["items"], f"{path}.items", inside_meta and not embedded)
    for key, sub in _props(s):
        sub_meta = (inside_meta and not embedded) or (embedded and key in _META_FIELDS)
        out += _defaults(sub, f"{path}.properties[{key}]", sub_meta)
    return out


# -- the OpenAPI walk (ValidateCustomResourceDefinitionOpenAPISchema) ------------------------


@dataclass(frozen=True)
class _Context:
    defaults: str | None = None  # why defaults are forbidden here; None: allowed
    inside_meta: bool = False
    cel: bool = False  # compile x-kubernetes-validations here (not under junctors)
    uncorrelatable: str | None = None  # the highest path below which oldSelf cannot be correlated
    cel_causes: set[int] = field(default_factory=set)  # ids of the CEL causes (not schema errors)
    cardinality: int | None = 1  # how often a value here can occur (lists and maps above); None: unbounded
    costs: list[tuple[str, int]] = field(default_factory=list)  # each rule's estimated cost, by field

    def times(self, bound: Any) -> _Context:
        """Below a list or map of at most `bound` items (maxItems, maxProperties)."""
        if self.cardinality is None or not isinstance(bound, int):
            return replace(self, cardinality=None)
        return replace(self, cardinality=self.cardinality * max(bound, 0))

    def forbid_old_self(self, path: str) -> _Context:
        return self if self.uncorrelatable is not None else replace(self, uncorrelatable=path)


def _walk(s: Node, path: str, ctx: _Context, *, root: bool = False) -> list[Cause]:
    if not isinstance(s, dict):
        return []
    out: list[Cause] = []
    t = s.get("type")
    if isinstance(t, str) and t and t not in _TYPES:
        out.append(Cause.not_supported(f"{path}.type", t, _TYPES))
    elif t is not None and not isinstance(t, str):
        out.append(Cause.invalid(f"{path}.type", t, "must be a string"))
    if s.get("default") is not None and ctx.defaults is not None:
        out.append(Cause.forbidden(f"{path}.default", f"must not be set {ctx.defaults}".rstrip()))
    for key, name in _UNSUPPORTED:
        if key in s and not _zero(key, s[key]):
            out.append(Cause.forbidden(f"{path}.{key}", f"{name} is not supported"))
    if t == "null":
        out.append(Cause.forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    items = s.get("items")
    if isinstance(items, list) and items:
        out.append(Cause.forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_meta and s.get("x-kubernetes-embedded-resource") is True:
        out.append(Cause.forbidden(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"))
    if s.get("uniqueItems") is True:
        out.append(Cause.forbidden(f"{path}.uniqueItems",
                                   "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    extra = s.get("additionalProperties")
    if extra is not None:
        if s.get("properties") and (extra is False or isinstance(extra, dict)):
            out.append(Cause.forbidden(f"{path}.additionalProperties",
                                       "additionalProperties and properties are mutual exclusive"))
        sub_ctx = replace(ctx, defaults="inside additionalProperties applying to object metadata") \
            if ctx.inside_meta else ctx
        sub_ctx = sub_ctx.times(s.get("maxProperties"))
        if isinstance(extra, dict):
            out += _walk(extra, f"{path}.additionalProperties", sub_ctx)
    embedded = s.get("x-kubernetes-embedded-resource") is True
    for key, sub in _props(s):
        sub_ctx = ctx if s.get("x-kubernetes-map-type") != "atomic" else ctx.forbid_old_self(path)
        if (root or embedded) and key in _META_FIELDS:
            sub_ctx = replace(sub_ctx, inside_meta=True)
            if root:
                sub_ctx = replace(sub_ctx, defaults=f"in top-level {key}")
        out += _walk(sub, f"{path}.properties[{key}]", sub_ctx)
    junctor_ctx = replace(ctx, cel=False)
    if isinstance(s.get("not"), dict):
        out += _walk(s["not"], f"{path}.not", junctor_ctx)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub in _list(s, key):
            out += _walk(sub, f"{path}.{key}[{i}]", junctor_ctx)
    for key, sub in sorted((s.get("definitions") or {}).items()) if isinstance(s.get("definitions"), dict) else ():
        out += _walk(sub, f"{path}.definitions[{key}]", junctor_ctx)
    # only the items of map lists correlate with old items
    items_ctx = ctx if s.get("x-kubernetes-list-type") == "map" else ctx.forbid_old_self(path)
    items_ctx = items_ctx.times(s.get("maxItems"))
    if isinstance(items, dict):
        out += _walk(items, f"{path}.items", items_ctx)
    elif isinstance(items, list):
        for i, sub in enumerate(items):
            out += _walk(sub, f"{path}.items[{i}]", items_ctx)
    for key, sub in sorted((s.get("dependencies") or {}).items()) if isinstance(s.get("dependencies"), dict) else ():
        if isinstance(sub, dict):
            out += _walk(sub, f"{path}.dependencies[{key}]", junctor_ctx)
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        out.append(Cause.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    out += _map_and_list_types(s, path)
    static = _x_validations(s, path)
    out += static
    # CEL is compiled only where the schema at and below is sound (their CEL errors aside)
    if ctx.cel and all(id(c) in ctx.cel_causes for c in out):
        compiled = _cel_rules(s, path, ctx, resource_root=root or embedded)
        ctx.cel_causes.update(id(c) for c in compiled)
        out += compiled
    return out


def _map_and_list_types(s: Node, path: str) -> list[Cause]:
    out: list[Cause] = []
    t = s.get("type") or ""
    map_type, list_type = s.get("x-kubernetes-map-type"), s.get("x-kubernetes-list-type")
    keys = s.get("x-kubernetes-list-map-keys") or []
    items = s.get("items") if isinstance(s.get("items"), dict) else None
    if map_type is not None and t != "object":
        msg = "must be object if x-kubernetes-map-type is specified"
        out.append(Cause.invalid(f"{path}.type", t, msg) if t else Cause.required(f"{path}.type", msg))
    if map_type is not None and map_type not in ("atomic", "granular"):
        out.append(Cause.not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]))
    if list_type is not None and t != "array":
        msg = "must be array if x-kubernetes-list-type is specified"
        out.append(Cause.invalid(f"{path}.type", t, msg) if t else Cause.required(f"{path}.type", msg))
    elif list_type == "set" and items is not None:
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            out.append(Cause.invalid(f"{path}.items.x-kubernetes-list-type", items.get("x-kubernetes-list-type"),
                                     "must be atomic as item of a list with x-kubernetes-list-type=set"))
        elif items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            out.append(Cause.invalid(f"{path}.items.x-kubernetes-map-type", items.get("x-kubernetes-list-type"),
                                     "must be atomic as item of a list with x-kubernetes-list-type=set"))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        out.append(Cause.not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]))
    if keys:
        if list_type is None:
            out.append(Cause.required(f"{path}.x-kubernetes-list-type",
                                      "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            out.append(Cause.invalid(f"{path}.x-kubernetes-list-type", list_type,
                                     "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        if not keys:
            out.append(Cause.required(f"{path}.x-kubernetes-list-map-keys",
                                      "must not be empty if x-kubernetes-list-type is map"))
        if s.get("items") is None:
            out.append(Cause.required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
        elif items is None:
            out.append(Cause.invalid(f"{path}.items", s.get("items"),
                                     "must only have a single schema if x-kubernetes-list-type is map"))
        elif items.get("type") != "object":
            out.append(Cause.invalid(f"{path}.items.type", items.get("type", ""),
                                     "must be object if parent array's x-kubernetes-list-type is map"))
        else:
            item_props = dict(_props(items))
            seen: set[str] = set()
            for k in keys:
                if k in item_props:
                    if item_props[k].get("type") in ("array", "object"):
                        out.append(Cause.invalid(f"{path}.items.properties[{k}].type", items.get("type", ""),
                                                 "must be a scalar type if parent array's x-kubernetes-list-type "
                                                 "is map"))
                else:
                    out.append(invalid_strings(f"{path}.x-kubernetes-list-map-keys", keys,
                                                "entries must all be names of item properties"))
                if k in seen:
                    out.append(invalid_strings(f"{path}.x-kubernetes-list-map-keys", keys,
                                                "must not contain duplicate entries"))
                seen.add(k)
    if list_type in ("set", "map") and items is not None:
        if items.get("nullable") is True:
            out.append(Cause.forbidden(f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type "
                                                                 f"is {list_type}"))
        if list_type == "map":
            required = set(items.get("required") or ())
            item_props = dict(_props(items))
            for k in keys:
                if k not in item_props:
                    continue
                if k not in required and "default" not in item_props[k]:
                    out.append(Cause.required(f"{path}.items.properties[{k}].default", "this property is in "
                                              "x-kubernetes-list-map-keys, so it must have a default or be a "
                                              "required property"))
                if item_props[k].get("nullable") is True:
                    out.append(Cause.forbidden(f"{path}.items.properties[{k}].nullable", "this property is in "
                                               "x-kubernetes-list-map-keys, so it cannot be nullable"))
    return out


def _x_validations(s: Node, path: str) -> list[Cause]:
    """The static checks of `x-kubernetes-validations` (their CEL is compiled by `_cel_rules`)."""
    out: list[Cause] = []
    for i, rule in _list(s, "x-kubernetes-validations"):
        at = f"{path}.x-kubernetes-validations[{i}]"
        text, message = str(rule.get("rule") or "").strip(), rule.get("message")
        if not text:
            out.append(Cause.required(f"{at}.rule", "rule is not specified"))
        elif isinstance(message, str) and message and not message.strip():
            out.append(Cause.invalid(f"{at}.message", message, "message must be non-empty if specified"))
        elif isinstance(message, str) and ("\n" in message.strip() or "\r" in message.strip()):
            out.append(Cause.invalid(f"{at}.message", message, "message must not contain line breaks"))
        elif ("\n" in text or "\r" in text) and not str(message or "").strip():
            out.append(Cause.required(f"{at}.message", "message must be specified if rule contains line breaks"))
        expr = rule.get("messageExpression")
        if isinstance(expr, str) and expr and not expr.strip():
            out.append(Cause.required(f"{at}.messageExpression", "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in _VALIDATION_REASONS:
            out.append(Cause.not_supported(f"{at}.reason", reason, _VALIDATION_REASONS))
        fpath = rule.get("fieldPath")
        if isinstance(fpath, str) and fpath:
            if not fpath.strip():
                out.append(Cause.invalid(f"{at}.fieldPath", fpath, "fieldPath must be non-empty if specified"))
            if "\n" in fpath or "\r" in fpath:
                out.append(Cause.invalid(f"{at}.fieldPath", fpath, "fieldPath must not contain line breaks"))
            if crdrules.field_path(fpath, s) is None:
                out.append(Cause.invalid(f"{at}.fieldPath", fpath, "fieldPath must be a valid path"))
    return out


def _cel_rules(s: Node, path: str, ctx: _Context, *, resource_root: bool) -> list[Cause]:
    """Each rule (and messageExpression) compiled as upstream's `cel.Compile`, with `self` and
    `oldSelf` declared and typed by the schema (a field it does not have is undefined); a
    transition rule where no old value can be correlated, or an `optionalOldSelf` on a rule
    without `oldSelf`, is refused; so is a rule whose estimated cost (times how often its value
    can occur) exceeds the limit."""
    out: list[Cause] = []
    uncorrelatable = ctx.uncorrelatable
    for i, rule in _list(s, "x-kubernetes-validations"):
        at = f"{path}.x-kubernetes-validations[{i}]"
        program = None
        try:
            program = _compile(str(rule.get("rule") or ""), s, resource_root, rule, "bool")
            out += _cost(str(rule.get("rule") or ""), s, resource_root, ctx, f"{at}.rule", "rule")
        except cel.CompileError as err:
            out.append(_invalid_rule(f"{at}.rule", rule, f"compilation failed: {err}"))
        except _ResultType:
            out.append(_invalid_rule(f"{at}.rule", rule, "cel expression must evaluate to a bool"))
        expr = rule.get("messageExpression")
        if isinstance(expr, str) and expr.strip():
            try:
                _compile(expr, s, resource_root, rule, "string")
                out += _cost(expr, s, resource_root, ctx, f"{at}.messageExpression", "messageExpression")
            except cel.CompileError as err:
                out.append(_invalid_rule(f"{at}.messageExpression", rule, f"messageExpression compilation failed: {err}"))
            except _ResultType:
                out.append(_invalid_rule(f"{at}.messageExpression", rule, "messageExpression must evaluate to a string"))
        if program is None:
            continue
        if program.references("oldSelf"):
            if uncorrelatable is not None:
                out.append(Cause.invalid(f"{at}.rule", rule.get("rule"), "oldSelf cannot be used on the uncorrelatable "
                                                                         f"portion of the schema within {uncorrelatable}"))
        elif rule.get("optionalOldSelf") is not None:
            out.append(Cause.invalid(f"{at}.optionalOldSelf", rule["optionalOldSelf"],
                                     "may not be set if oldSelf is not used in rule"))
    return out


def _compile(expression: str, s: Node, resource_root: bool, rule: Node, result: str) -> cel.Program:
    """Compile and type-check (`crdrules.check`); a result of another type than `result` is
    refused as upstream words it."""
    program = cel.compile(expression, crdrules.VARIABLES)
    checked = crdrules.check(expression, s, resource_root=resource_root,
                             optional_old_self=rule.get("optionalOldSelf") is True)
    if checked is not None and checked.type.kind != "error" and str(checked.type) != result \
            and not checked.unknown:
        raise _ResultType(result)
    return program


class _ResultType(Exception):
    pass


def _cost(expression: str, s: Node, resource_root: bool, ctx: _Context, at: str, what: str) -> list[Cause]:
    """The rule's estimated cost, times its cardinality (upstream's `getExpressionCost`), noted
    for the CRD's total and refused over the per-expression limit."""
    found = crdrules.estimate(expression, s, resource_root=resource_root)
    if found is None:
        return []
    expression_cost, min_size = found
    cardinality = ctx.cardinality if ctx.cardinality is not None else celcost.max_cardinality(min_size)
    expression_cost = min(expression_cost * cardinality, celcost.MAX_UINT)
    ctx.costs.append((at, expression_cost))
    if expression_cost > celcost.STATIC_LIMIT:
        return [Cause.forbidden(at, celcost.exceeds_message(f"estimated {what} cost", expression_cost,
                                                            celcost.STATIC_LIMIT))]
    return []


def _total_cost(costs: list[tuple[str, int]], path: str) -> list[Cause]:
    """The CRD-wide limit on the sum of its rules' costs: the most expensive (up to four) are
    named, then the total (upstream's `TotalCost`)."""
    total = min(sum(c for _, c in costs), celcost.MAX_UINT)
    if total <= celcost.STATIC_CRD_LIMIT:
        return []
    expensive = sorted((c for c in costs if c[1] >= celcost.STATIC_CRD_LIMIT // 100), key=lambda c: -c[1])[:4]
    out = [Cause.forbidden(at, "contributed to estimated rule cost total exceeding cost limit for entire "
                               "OpenAPIv3 schema") for at, _ in expensive]
    out.append(Cause.forbidden(path, celcost.exceeds_message(
        "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema", total,
        celcost.STATIC_CRD_LIMIT)))
    return out


def _invalid_rule(field: str, rule: Node, detail: str) -> Cause:
    """An Invalid cause whose value is the whole rule, which Go prints as the struct it is."""
    return Cause(reason="FieldValueInvalid", message=f"Invalid value: {_go_rule(rule)}: {detail}", field=field)


def _go_rule(rule: Node) -> str:
    """`%#v` of an `apiextensions.ValidationRule` (pointers print as addresses, as Go's would)."""
    reason = "(*apiextensions.FieldValueErrorReason)(nil)" if rule.get("reason") is None else \
        "(*apiextensions.FieldValueErrorReason)(0xc0004a2f10)"
    optional = "(*bool)(nil)" if rule.get("optionalOldSelf") is None else "(*bool)(0xc0004a2f18)"
    return (f"apiextensions.ValidationRule{{Rule:{_go_quote(rule.get('rule'))}, "
            f"Message:{_go_quote(rule.get('message'))}, MessageExpression:{_go_quote(rule.get('messageExpression'))}, "
            f"Reason:{reason}, FieldPath:{_go_quote(rule.get('fieldPath'))}, OptionalOldSelf:{optional}}}")


_GO_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
               "\f": "\\f", "\v": "\\v"}


def _go_quote(value: Any) -> str:
    """Go's `strconv.Quote`."""
    text = "" if value is None else str(value)
    return '"' + "".join(_GO_ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
                         for c in text) + '"'


def _status_root(s: Node, path: str) -> list[Cause]:
    """With the status subresource on, the root may only hold what survives `properties[status]`
    being taken out of it."""
    for key, go_name in _GO_FIELDS:
        if key not in s or _zero(key, s[key]):
            continue
        if go_name == "Type":
            if s[key] != "object":
                return [Cause.invalid(f"{path}.type", s[key], 'only "object" is allowed as the type at the root '
                                                              'of the schema if the status subresource is enabled')]
            continue
        if go_name not in _ROOT_ALLOWED:
            return [Cause.invalid(path, s, f"only [{' '.join(_ROOT_ALLOWED)}] fields are allowed at the root of "
                                           "the schema if the status subresource is enabled")]
    return []


# -- helpers ---------------------------------------------------------------------------------


def _props(s: Node) -> list[tuple[str, Node]]:
    props = s.get("properties")
    if not isinstance(props, dict):
        return []
    return sorted((k, v) for k, v in props.items() if isinstance(v, dict))


def _list(s: Node, key: str) -> list[tuple[int, Node]]:
    value = s.get(key)
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


_EMPTY_IS_ZERO = {"patternProperties", "definitions", "x-kubernetes-list-map-keys", "x-kubernetes-validations"}


def _zero(key: str, value: Any) -> bool:
    """Whether a decoded JSONSchemaProps field holds its zero value (false, "", absent; an empty
    list or map where upstream tests the length)."""
    if key in _EMPTY_IS_ZERO and value in ([], {}):
        return True
    return value is None or value is False or (value == "" and key != "default")


def _has_unsupported(s: Any) -> bool:
    if not isinstance(s, dict):
        return False
    if any(key in s and not _zero(key, s[key]) for key, _ in _UNSUPPORTED) or isinstance(s.get("items"), list):
        return True
    subs = [v for _, v in _props(s)] + [v for key in ("allOf", "anyOf", "oneOf") for _, v in _list(s, key)]
    subs += [s[k] for k in ("items", "additionalProperties", "not") if isinstance(s.get(k), dict)]
    return any(_has_unsupported(sub) for sub in subs)


def _is_int_or_string(any_of: Any) -> bool:
    return any_of == _INT_OR_STRING


def _all_of_int_or_string(s: Node) -> bool:
    all_of = s.get("allOf")
    return isinstance(all_of, list) and bool(all_of) and isinstance(all_of[0], dict) \
        and _is_int_or_string(all_of[0].get("anyOf"))


def invalid_strings(field: str, values: list[Any] | None, detail: str) -> Cause:
    """An Invalid cause whose value is a []string, which Go prints as `[]string{"a", "b"}`
    (`[]string(nil)` when absent)."""
    shown = "[]string(nil)" if values is None else \
        "[]string{" + ", ".join('"' + str(v).replace('"', '\\"') + '"' for v in values) + "}"
    return Cause(reason="FieldValueInvalid", message=f"Invalid value: {shown}: {detail}", field=field)
