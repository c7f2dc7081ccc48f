"""Type checking of a ValidatingAdmissionPolicy's validations (upstream's
`validating.TypeChecker`), as far as an untyped CEL allows: every `object.a.b`, `oldObject.a.b`
and `params.a.b` path an expression selects is looked up in the OpenAPI schema of each type the
policy's resource rules name (and of its paramKind), and a field the schema does not have is
reported as cel-go's checker words it:

    apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'
     | object.replicas > 1
     | ......^

What this does not see, for want of CEL types: wrong operand types (`object.spec.replicas ==
'3'`), fields reached through a variable, index or comprehension variable, and the result type
of an expression (upstream warns when a validation is not a bool). Rules with a wildcard group,
version or resource are not checked, as upstream. `lks.controllers.admissionpolicystatus`
writes the warnings into the policy's status.
"""

from __future__ import annotations

from typing import Any

from lks.kube import catalog as catalogs
from lks.kube.cel import source
from lks.kube.schema import Schema

Obj = dict[str, Any]
_ROOTS = ("object", "oldObject")
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


def _issues(expression: str, roots: dict[str, Schema]) -> list[str]:
    try:
        toks = source.tokens(expression)
    except source.SyntaxProblem:
        return []
    issues = []
    for i, tok in enumerate(toks):
        if tok.kind != "ident" or tok.text not in roots or (i and toks[i - 1].text == "."):
            continue
        schema, j = roots[tok.text], i + 1
        while j + 1 < len(toks) and toks[j].text in (".", "?.") and toks[j + 1].kind == "ident":
            if j + 2 < len(toks) and toks[j + 2].text == "(":
                break  # a member function: its result is not a field
            name, node = toks[j + 1].text, schema.node
            props = node.get("properties")
            if not props or name in props:
                if not props and not isinstance(node.get("additionalProperties"), dict):
                    break  # nothing known below here
                schema = schema.prop(name)
            else:
                issues.append(source.render(expression, toks[j].pos, f"undefined field '{name}'"))
                break
            j += 2
    return issues


def check(policy: Obj, catalog: catalogs.Catalog) -> list[Obj]:
    """The status's `typeChecking.expressionWarnings`: [{fieldRef, warning}]."""
    spec = policy.get("spec") or {}
    types = _types(spec, catalog)
    params: Schema | None = None
    kind = spec.get("paramKind")
    if isinstance(kind, dict):
        group, _, version = (kind.get("apiVersion") or "").rpartition("/")
        rt = catalog.by_kind(group, version, kind.get("kind") or "")
        if rt is not None and rt.schema_name:
            params = Schema.of(catalog.schemas, rt.schema_name)
    if not types and params is None:
        return []
    targets = [(f"{g}/{v}, Kind={k}", Schema.of(catalog.schemas, name)) for g, v, k, name in types] or [("", None)]
    warnings = []
    for i, v in enumerate(spec.get("validations") or ()):
        for key in ("expression", "messageExpression"):
            expression = v.get(key) or ""
            if not expression:
                continue
            found = []
            for label, schema in targets:
                roots = {r: schema for r in _ROOTS} if schema is not None else {}
                if params is not None:
                    roots["params"] = params
                issues = _issues(expression, roots)
                if issues:
                    found.append(f"{label}: " + "\n".join(issues) if label else "\n".join(issues))
            if found:
                warnings.append({"fieldRef": f"spec.validations[{i}].{key}", "warning": "\n".join(found)})
    return warnings
