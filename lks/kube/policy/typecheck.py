"""Type checking of a ValidatingAdmissionPolicy's validations (upstream's
`validating.TypeChecker`): each expression is checked by `lks.kube.cel.checker` once per type the
policy's resource rules name, with `object` and `oldObject` typed by that type's OpenAPI schema
and `params` by its paramKind's, and each type's errors reported as cel-go's checker words them:

    apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'
     | object.replicas > 1
     | ......^

`request` is typed as upstream's AdmissionRequest, `namespaceObject` as a Namespace, and
`variables.<name>` by the type of that variable's expression; `authorizer` checks as `dyn`.
Rules with a wildcard group, version or resource are not checked, as upstream. `lks.controllers.admissionpolicystatus` writes the warnings into the policy's status.
"""

from __future__ import annotations

from typing import Any

from lks.kube import catalog as catalogs
from lks.kube.cel import checker
from lks.kube.cel import types as celtypes
from lks.kube.schema import Schema

Obj = dict[str, Any]
_ROOTS = ("object", "oldObject")
_DYN = ("authorizer", "params")
_STRING, _STRINGS = {"type": "string"}, {"type": "array", "items": {"type": "string"}}
_GVK = {"type": "object", "properties": {"group": _STRING, "version": _STRING, "kind": _STRING}}
_GVR = {"type": "object", "properties": {"group": _STRING, "version": _STRING, "resource": _STRING}}
# the fields of `request` (k8s.io/apiserver's BuildRequestType)
_REQUEST = {"type": "object", "properties": {
    "kind": _GVK, "resource": _GVR, "subResource": _STRING, "requestKind": _GVK, "requestResource": _GVR,
    "requestSubResource": _STRING, "name": _STRING, "namespace": _STRING, "operation": _STRING,
    "userInfo": {"type": "object", "properties": {
        "username": _STRING, "uid": _STRING, "groups": _STRINGS,
        "extra": {"type": "object", "additionalProperties": _STRINGS}}},
    "dryRun": {"type": "boolean"}, "options": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
MAX_TYPES_PER_RULE = 10  # upstream's maxTypesToCheck


def _types(spec: Obj, catalog: catalogs.Catalog) -> list[tuple[str, str, str, str]]:
    """(group, version, kind, schema name) of each type the resource rules name, sorted; a rule
    with a wildcard group, version or resource names none, and each rule at most 10."""
    out: set[tuple[str, str, str, str]] = set()
    for rule in (spec.get("matchConstraints") or {}).get("resourceRules") or ():
        groups, versions = sorted(rule.get("apiGroups") or ()), sorted(rule.get("apiVersions") or ())
        resources = sorted(r for r in rule.get("resources") or () if "/" not in r)
        if "*" in groups or "*" in versions or "*" in resources:
            continue
        count = 0
        for g in groups:
            for v in versions:
                for r in resources:
                    rt = catalog.lookup(g, v, r)
                    if rt is not None and rt.schema_name and count < MAX_TYPES_PER_RULE:
                        out.add((g, v, rt.kind, rt.schema_name))
                        count += 1
    return sorted(out)


def _variables(spec: Obj, roots: dict[str, celtypes.Type]) -> celtypes.Type:
    """`variables`: each variable typed by its expression, which sees the ones before it."""
    fields: dict[str, celtypes.Type] = {}
    for v in spec.get("variables") or ():
        name = v.get("name") or ""
        checked = checker.check(v.get("expression") or "", {**roots, "variables": celtypes.record("variables", fields)})
        fields[name] = checked.type if checked is not None and not checked.errors else celtypes.DYN
    return celtypes.record("variables", fields)


def _issues(expression: str, roots: dict[str, celtypes.Type]) -> list[str]:
    checked = checker.check(expression, roots)
    return checked.errors if checked is not None else []


def check(policy: Obj, catalog: catalogs.Catalog) -> list[Obj]:
    """The status's `typeChecking.expressionWarnings`: [{fieldRef, warning}]."""
    spec = policy.get("spec") or {}
    types = _types(spec, catalog)
    params: celtypes.Type | None = None
    kind = spec.get("paramKind")
    if isinstance(kind, dict):
        group, _, version = (kind.get("apiVersion") or "").rpartition("/")
        rt = catalog.by_kind(group, version, kind.get("kind") or "")
        if rt is not None and rt.schema_name:
            params = celtypes.from_schema(Schema.of(catalog.schemas, rt.schema_name), name=rt.kind)
    if not types and params is None:
        return []
    request = celtypes.from_schema(Schema({}, _REQUEST), name="kubernetes.AdmissionRequest")
    rt = catalog.lookup("", "v1", "namespaces")
    namespace = celtypes.from_schema(Schema.of(catalog.schemas, rt.schema_name), name="Namespace") \
        if rt is not None and rt.schema_name else celtypes.DYN
    targets = [(f"{g}/{v}, Kind={k}", celtypes.from_schema(Schema.of(catalog.schemas, name), name=k))
               for g, v, k, name in types] or [("", None)]
    warnings = []
    for i, v in enumerate(spec.get("validations") or ()):
        for key in ("expression", "messageExpression"):
            expression = v.get(key) or ""
            if not expression:
                continue
            found = []
            for label, schema in targets:
                roots = {r: schema for r in _ROOTS} if schema is not None else {}
                roots.update((name, celtypes.DYN) for name in _DYN)
                roots.update(request=request, namespaceObject=namespace)
                if params is not None:
                    roots["params"] = params
                roots["variables"] = _variables(spec, roots)
                issues = _issues(expression, roots)
                if issues:
                    found.append(f"{label}: " + "\n".join(issues) if label else "\n".join(issues))
            if found:
                warnings.append({"fieldRef": f"spec.validations[{i}].{key}", "warning": "\n".join(found)})
    return warnings
