"""Gatekeeper's CustomResourceDefinitions, as its chart installs them (`templates.gatekeeper.sh`
ConstraintTemplate, `config.gatekeeper.sh` Config, `status.gatekeeper.sh` pod statuses), and the
constraint CRD a template makes (`constraints.gatekeeper.sh`, kind `spec.crd.spec.names.kind`,
cluster-scoped, v1beta1 stored, v1 and v1alpha1 served, `spec.parameters` typed by the
template's `openAPIV3Schema`), as the frameworks' `crds.CreateCRD` builds it. The schemas are
written here from Gatekeeper's API types, descriptions left out.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

TEMPLATES_GROUP = "templates.gatekeeper.sh"
CONSTRAINTS_GROUP = "constraints.gatekeeper.sh"
CONFIG_GROUP = "config.gatekeeper.sh"
STATUS_GROUP = "status.gatekeeper.sh"
SYSTEM_LABEL = {"gatekeeper.sh/system": "yes"}

_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_ANY = {"x-kubernetes-preserve-unknown-fields": True}
_LABEL_SELECTOR = {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": _STR},
    "matchExpressions": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {
        "type": "object", "required": ["key", "operator"], "properties": {
            "key": _STR, "operator": _STR, "values": {**_STRS, "x-kubernetes-list-type": "atomic"}}}}}}
_GLOB = {"type": "string", "pattern": r"^\*?[-:a-z0-9]*\*?$"}
_ERROR = {"type": "object", "required": ["code", "message"],
          "properties": {"code": _STR, "location": _STR, "message": _STR}}


def _template_schema(legacy: bool) -> Obj:
    code = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["engine"],
            "items": {"type": "object", "required": ["engine", "source"],
                      "properties": {"engine": _STR, "source": _ANY}}}
    operations = {"type": "array", "items": {"type": "string", "enum": ["*", "CREATE", "DELETE", "UPDATE",
                                                                          "CONNECT"]}}
    return {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "spec": {"type": "object", "properties": {
            "crd": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "names": {"type": "object", "properties": {"kind": _STR, "shortNames": _STRS}},
                "validation": {"type": "object", "default": {"legacySchema": legacy}, "properties": {
                    "legacySchema": {"type": "boolean", "default": legacy},
                    "openAPIV3Schema": {"type": "object", **_ANY}}}}}}},
            "targets": {"type": "array", "items": {"type": "object", "properties": {
                "code": code, "libs": _STRS, "operations": operations, "rego": _STR, "target": _STR}}}}},
        "status": {"type": "object", "properties": {
            "byPod": {"type": "array", "items": {"type": "object", **_ANY, "properties": {
                "errors": {"type": "array", "items": _ERROR}, "id": _STR,
                "observedGeneration": {"type": "integer", "format": "int64"}}}},
            "created": {"type": "boolean"}}}}}


def _crd(group: str, kind: str, plural: str, versions: list[Obj], *, scope: str = "Cluster",
         short: list[str] | None = None, categories: list[str] | None = None, labels: Obj | None = None) -> Obj:
    names: Obj = {"kind": kind, "listKind": kind + "List", "plural": plural, "singular": kind.lower()}
    if short:
        names["shortNames"] = short
    if categories:
        names["categories"] = categories
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", "labels": {**SYSTEM_LABEL, **(labels or {})}},
            "spec": {"group": group, "names": names, "scope": scope, "versions": versions}}


def _version(name: str, schema: Obj, *, storage: bool, status: bool = True, columns: list[Obj] | None = None) -> Obj:
    v: Obj = {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": schema}}
    if status:
        v["subresources"] = {"status": {}}
    if columns:
        v["additionalPrinterColumns"] = columns
    return v


def system_crds() -> list[Obj]:
    """The CRDs Gatekeeper's chart installs that users read and write."""
    templates = _crd(TEMPLATES_GROUP, "ConstraintTemplate", "constrainttemplates", [
        _version("v1", _template_schema(False), storage=True),
        _version("v1beta1", _template_schema(True), storage=False),
        _version("v1alpha1", _template_schema(True), storage=False)], categories=["all"])
    config_schema = {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "spec": {"type": "object", "properties": {
            "match": {"type": "array", "items": {"type": "object", "properties": {
                "excludedNamespaces": {"type": "array", "items": _GLOB}, "processes": _STRS}}},
            "readiness": {"type": "object", "properties": {"statsEnabled": {"type": "boolean"}}},
            "sync": {"type": "object", "properties": {"syncOnly": {"type": "array", "items": {
                "type": "object", "properties": {"group": _STR, "kind": _STR, "version": _STR}}}}},
            "validation": {"type": "object", "properties": {"traces": {"type": "array", "items": {
                "type": "object", "properties": {"dump": _STR, "kind": {"type": "object", "properties": {
                    "group": _STR, "kind": _STR, "version": _STR}}, "user": _STR}}}}}}},
        "status": {"type": "object", **_ANY}}}
    config = _crd(CONFIG_GROUP, "Config", "configs", [_version("v1alpha1", config_schema, storage=True)],
                  scope="Namespaced")
    pod_status = {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "status": {"type": "object", **_ANY, "properties": {
            "errors": {"type": "array", "items": _ERROR}, "id": _STR,
            "observedGeneration": {"type": "integer", "format": "int64"}, "operations": _STRS}}}}
    statuses = [
        _crd(STATUS_GROUP, kind, plural, [_version("v1beta1", copy.deepcopy(pod_status), storage=True, status=False)],
             scope="Namespaced")
        for kind, plural in (("ConstraintTemplatePodStatus", "constrainttemplatepodstatuses"),
                             ("ConstraintPodStatus", "constraintpodstatuses"))]
    mutator_status = {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "status": {"type": "object", "properties": {
            "enforced": {"type": "boolean"},
            "errors": {"type": "array", "items": {"type": "object", "required": ["message"],
                                                  "properties": {"message": _STR, "type": _STR}}},
            "id": _STR, "mutatorUID": _STR, "observedGeneration": {"type": "integer", "format": "int64"},
            "operations": _STRS}}}}
    statuses.append(_crd(STATUS_GROUP, "MutatorPodStatus", "mutatorpodstatuses",
                         [_version("v1beta1", mutator_status, storage=True, status=False)], scope="Namespaced"))
    return [templates, config, *statuses]


def match_schema() -> Obj:
    """`spec.match` of every constraint (Gatekeeper's `match.Match`)."""
    return {"type": "object", "properties": {
        "kinds": {"type": "array", "items": {"type": "object", "properties": {"apiGroups": _STRS, "kinds": _STRS}}},
        "scope": {"type": "string", "enum": ["*", "Cluster", "Namespaced"]},
        "namespaces": {"type": "array", "items": _GLOB},
        "excludedNamespaces": {"type": "array", "items": _GLOB},
        "labelSelector": _LABEL_SELECTOR,
        "namespaceSelector": _LABEL_SELECTOR,
        "name": {"type": "string", "pattern": r"^\*?[-:a-z0-9]*\*?$"},
        "source": {"type": "string", "enum": ["All", "Generated", "Original"]}}}


def constraint_crd(template: Obj) -> Obj:
    """The constraint CRD of `template` (frameworks' `CreateCRD` and the target's match schema)."""
    spec = (template.get("spec") or {}).get("crd", {}).get("spec") or {}
    kind = spec["names"]["kind"]
    params = copy.deepcopy((spec.get("validation") or {}).get("openAPIV3Schema"))
    legacy = (spec.get("validation") or {}).get("legacySchema")
    if params is None:
        params = dict(_ANY)
    elif legacy:  # v1beta1 templates: a schema that leaves out fields still takes them
        params.setdefault("x-kubernetes-preserve-unknown-fields", True)
    params.setdefault("type", "object")
    schema = {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "spec": {"type": "object", "properties": {
            "match": match_schema(),
            "enforcementAction": _STR,
            "scopedEnforcementActions": {"type": "array", "items": {"type": "object", **_ANY}},
            "parameters": params}},
        "status": {"type": "object", **_ANY}}}
    columns = [{"name": "enforcement-action", "type": "string", "jsonPath": ".spec.enforcementAction",
                "description": "Type of enforcement action"},
               {"name": "total-violations", "type": "integer", "jsonPath": ".status.totalViolations",
                "description": "Total number of violations"}]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "gatekeeper.sh/constraint": "yes"}
    crd = _crd(CONSTRAINTS_GROUP, kind, kind.lower(), [
        _version("v1beta1", schema, storage=True, columns=columns),
        _version("v1", copy.deepcopy(schema), storage=False, columns=columns),
        _version("v1alpha1", copy.deepcopy(schema), storage=False, columns=columns)],
        short=spec["names"].get("shortNames"), categories=["constraint", "constraints"], labels=labels)
    crd["metadata"]["labels"].pop("gatekeeper.sh/system", None)
    return crd


MUTATIONS_GROUP = "mutations.gatekeeper.sh"


def _mutator_schema(parameters: Obj, *, apply_to: bool = True) -> Obj:
    """A mutator's schema (Gatekeeper's `mutations` API types): `applyTo` (not for
    AssignMetadata), `match`, `location`, `parameters`, and the `byPod` status."""
    spec: Obj = {"match": match_schema(), "location": _STR, "parameters": {"type": "object", "properties": parameters}}
    if apply_to:
        spec["applyTo"] = {"type": "array", "items": {"type": "object", "properties": {
            "groups": _STRS, "kinds": _STRS, "versions": _STRS,
            "operations": {"type": "array", "items": {"type": "string", "enum": ["CREATE", "UPDATE", "*"]}}}}}
    by_pod = {"type": "object", "properties": {
        "enforced": {"type": "boolean"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["message"],
                                              "properties": {"message": _STR, "type": _STR}}},
        "id": _STR, "mutatorUID": _STR, "observedGeneration": {"type": "integer", "format": "int64"},
        "operations": _STRS}}
    return {"type": "object", "properties": {
        "apiVersion": _STR, "kind": _STR,
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
        "spec": {"type": "object", "properties": spec},
        "status": {"type": "object", "properties": {"byPod": {"type": "array", "items": by_pod}}}}}


def mutation_crds() -> list[Obj]:
    """Assign, AssignMetadata, ModifySet (v1 stored, v1beta1 and v1alpha1 served) and
    AssignImage (v1alpha1), cluster-scoped, as Gatekeeper's chart installs them."""
    path_tests = {"type": "array", "items": {"type": "object", "properties": {
        "condition": {"type": "string", "enum": ["MustExist", "MustNotExist"]}, "subPath": _STR}}}
    external = {"type": "object", "required": ["provider"], "properties": {
        "dataSource": {"type": "string", "default": "ValueAtLocation", "enum": ["ValueAtLocation", "Username"]},
        "default": _STR,
        "failurePolicy": {"type": "string", "default": "Fail", "enum": ["UseDefault", "Ignore", "Fail"]},
        "provider": _STR}}
    assign = {"type": "object", "properties": {
        "externalData": external,
        "fromMetadata": {"type": "object", "properties": {"field": {"type": "string",
                                                                    "enum": ["namespace", "name"]}}},
        "value": _ANY}}
    schemas = {
        "Assign": _mutator_schema({"assign": assign, "pathTests": path_tests}),
        "AssignMetadata": _mutator_schema({"assign": copy.deepcopy(assign)}, apply_to=False),
        "ModifySet": _mutator_schema({
            "operation": {"type": "string", "default": "merge", "enum": ["merge", "prune"]},
            "pathTests": path_tests,
            "values": {"type": "object", "properties": {"fromList": {"type": "array", "items": _ANY}}}}),
        "AssignImage": _mutator_schema({"assignDomain": _STR, "assignPath": _STR, "assignTag": _STR,
                                        "pathTests": path_tests}),
    }
    out = []
    for kind, schema in schemas.items():
        plural = kind.lower()
        if kind == "AssignImage":
            versions = [_version("v1alpha1", schema, storage=True)]
        else:
            versions = [_version("v1", schema, storage=True), _version("v1alpha1", copy.deepcopy(schema), storage=False),
                        _version("v1beta1", copy.deepcopy(schema), storage=False)]
        crd = _crd(MUTATIONS_GROUP, kind, plural, versions)
        crd["spec"]["names"]["singular"] = plural
        out.append(crd)
    return out
