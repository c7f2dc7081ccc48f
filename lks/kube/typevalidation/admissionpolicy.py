"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding rules of upstream's
`pkg/apis/admissionregistration/validation` (v1): known failure and match policies, a paramKind
that names a group/version and kind, match constraints with selectors and resource rules,
validations, variables, matchConditions and auditAnnotations whose CEL compiles (`compilation
failed: ERROR: <input>:1:7: ...`), and bindings with a policy name, a paramRef (name or
selector, and a parameterNotFoundAction) and validationActions (Deny, Warn, Audit; not both Deny
and Warn). Expressions compile with the names admission gives them (`lks.kube.policy.compiled`).

Upstream also type-checks expressions against the matched types' schemas; the CEL library here
has no types, so a reference to a field a type lacks is found only when it is evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from lks.kube import cel, validation
from lks.kube.errors import Cause
from lks.kube.policy.compiled import declared
from lks.kube.typevalidation import field
from lks.kube.typevalidation.admissionregistration import _rule
from lks.kube.typevalidation.common import get, items, label_selector, qualified_name

_FAILURE = ["Fail", "Ignore"]
_MATCH = ["Equivalent", "Exact"]
_REASONS = ["Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"]  # sets.List: sorted
_ACTIONS = ["Audit", "Deny", "Warn"]
_NOT_FOUND_ACTIONS = ["Deny", "Allow"]
MAX_AUDIT_ANNOTATIONS = 20
MAX_VALUE_EXPRESSION = 5 * 1024
MAX_MATCH_CONDITIONS = 64
_CEL_IDENT = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_CEL_RESERVED = frozenset(("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"))


def _compiles(expression: str, names: frozenset[str], path: str) -> list[Cause]:
    try:
        cel.compile(expression, names)
    except cel.CompileError as err:
        return [field.invalid(path, expression, f"compilation failed: {err}")]
    return []


def _param_kind(kind: Any, path: str) -> list[Cause]:
    kind = kind if isinstance(kind, dict) else {}
    causes: list[Cause] = []
    api_version = kind.get("apiVersion") or ""
    if not api_version:
        causes.append(field.required(f"{path}.apiVersion"))
    elif api_version != "/" and api_version.count("/") > 1:
        causes.append(field.invalid(f"{path}.apiVersion", api_version,
                                    f"unexpected GroupVersion string: {api_version}"))
    elif api_version != "/":
        group, _, version = api_version.rpartition("/")
        if group:
            msgs = validation.dns_subdomain(group)
            if msgs:
                causes.append(field.invalid(f"{path}.apiVersion", group, ",".join(msgs)))
        if not version:
            causes.append(field.invalid(f"{path}.apiVersion", api_version, "version must be specified"))
        elif msgs := validation.dns1035_label(version):
            causes.append(field.invalid(f"{path}.apiVersion", version, ",".join(msgs)))
    else:
        causes.append(field.invalid(f"{path}.apiVersion", api_version, "version must be specified"))
    name = kind.get("kind") or ""
    if not name:
        causes.append(field.required(f"{path}.kind"))
    elif msgs := validation.dns1035_label(name.lower()):
        causes.append(field.invalid(f"{path}.kind", name, "may have mixed case, but should otherwise match: "
                                    + ",".join(msgs)))
    return causes


def _named_rule(rule: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, name in enumerate(items(rule, "resourceNames")):
        causes += [field.invalid(f"{path}.resourceNames[{i}]", name, m) for m in validation.path_segment(name)]
        if name in seen:
            causes.append(field.duplicate(f"{path}.resourceNames[{i}]", name))
        seen.add(name)
    return causes + _rule(rule, path)


def _match_resources(match: Any, path: str) -> list[Cause]:
    if not isinstance(match, dict):
        return []
    causes: list[Cause] = []
    policy = match.get("matchPolicy")
    if policy is None:
        causes.append(field.required(f"{path}.matchPolicy"))
    elif policy not in _MATCH:
        causes.append(field.not_supported(f"{path}.matchPolicy", policy, _MATCH))
    for key in ("namespaceSelector", "objectSelector"):
        if match.get(key) is None:
            causes.append(field.required(f"{path}.{key}"))
        else:
            causes += label_selector(match[key], f"{path}.{key}")
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(items(match, key)):
            causes += _named_rule(rule, f"{path}.{key}[{i}]")
    return causes


def _match_conditions(conditions: list, names: frozenset[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(conditions) > MAX_MATCH_CONDITIONS:
        causes.append(field.too_many(path, len(conditions), MAX_MATCH_CONDITIONS))
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        p = f"{path}[{i}]"
        expression = (get(cond, "expression") or "").strip()
        causes += _compiles(expression, names, f"{p}.expression") if expression else [field.required(f"{p}.expression")]
        name = get(cond, "name") or ""
        if not name:
            causes.append(field.required(f"{p}.name"))
        else:
            causes += qualified_name(name, f"{p}.name")
            if name in seen:
                causes.append(field.duplicate(f"{p}.name", name))
            seen.add(name)
    return causes


def _validation(v: Any, full: frozenset[str], bare: frozenset[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    expression = get(v, "expression") or ""
    if not expression.strip():
        causes.append(field.required(f"{path}.expression", "expression is not specified"))
    else:
        causes += _compiles(expression, full, f"{path}.expression")
    message_expression = get(v, "messageExpression") or ""
    if message_expression and not message_expression.strip():
        causes.append(field.invalid(f"{path}.messageExpression", message_expression, "must be non-empty if specified"))
    elif message_expression.strip():
        causes += _compiles(message_expression, bare, f"{path}.messageExpression")
    message = get(v, "message") or ""
    if message and not message.strip():
        causes.append(field.invalid(f"{path}.message", message, "message must be non-empty if specified"))
    elif re.search(r"[\n\r]", message.strip()):
        causes.append(field.invalid(f"{path}.message", message, "message must not contain line breaks"))
    reason = get(v, "reason")
    if reason is not None and reason not in _REASONS:
        causes.append(field.not_supported(f"{path}.reason", reason, _REASONS))
    return causes


def _audit_annotation(a: Any, policy_name: str, names: frozenset[str], path: str) -> list[Cause]:
    key = get(a, "key") or ""
    if policy_name:
        causes = qualified_name(f"{policy_name}/{key}", f"{path}.key")
    else:
        causes = [field.invalid(f"{path}.key", key, "requires metadata.name be non-empty")]
    value = get(a, "valueExpression") or ""
    if not value.strip():
        causes.append(field.required(f"{path}.valueExpression", "valueExpression is not specified"))
    elif len(value.strip()) > MAX_VALUE_EXPRESSION:
        causes.append(field.required(f"{path}.valueExpression", f"must not exceed {MAX_VALUE_EXPRESSION} bytes in length"))
    else:
        causes += _compiles(value.strip(), names, f"{path}.valueExpression")
    return causes


def validate_policy(obj: dict) -> list[Cause]:
    """`ValidateValidatingAdmissionPolicy`, without the metadata rules."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    failure = spec.get("failurePolicy")
    if failure is None:
        causes.append(field.required("spec.failurePolicy"))
    elif failure not in _FAILURE:
        causes.append(field.not_supported("spec.failurePolicy", failure, _FAILURE))
    has_params = spec.get("paramKind") is not None
    if has_params:
        causes += _param_kind(spec["paramKind"], "spec.paramKind")
    match = spec.get("matchConstraints")
    if match is None:
        causes.append(field.required("spec.matchConstraints"))
    else:
        causes += _match_resources(match, "spec.matchConstraints")
        if not items(match, "resourceRules"):  # they give the expressions their types
            causes.append(field.required("spec.matchConstraints.resourceRules"))
    full = declared(params=has_params, authorizer=True)
    bare = declared(params=has_params, authorizer=False)
    causes += _match_conditions(items(spec, "matchConditions"), full, "spec.matchConditions")
    for i, var in enumerate(items(spec, "variables")):
        path = f"spec.variables[{i}]"
        name = get(var, "name") or ""
        if not name.strip():
            causes.append(field.required(f"{path}.name", "name is not specified"))
        elif not _CEL_IDENT.match(name) or name in _CEL_RESERVED:
            causes.append(field.invalid(f"{path}.name", name, "name is not a valid CEL identifier"))
        expression = get(var, "expression") or ""
        if not expression.strip():
            causes.append(field.required(f"{path}.expression", "expression is not specified"))
        else:
            causes += _compiles(expression, full, f"{path}.expression")
    validations, annotations = items(spec, "validations"), items(spec, "auditAnnotations")
    if not validations and not annotations:
        msg = "validations or auditAnnotations must contain at least one item"
        return causes + [field.required("spec.validations", msg), field.required("spec.auditAnnotations", msg)]
    for i, v in enumerate(validations):
        causes += _validation(v, full, bare, f"spec.validations[{i}]")
    if len(annotations) > MAX_AUDIT_ANNOTATIONS:
        causes.append(field.invalid("spec.auditAnnotations", annotations,
                                    f"must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"))
    keys: set[str] = set()
    policy_name = get(obj, "metadata", "name") or ""
    for i, a in enumerate(annotations):
        path = f"spec.auditAnnotations[{i}]"
        causes += _audit_annotation(a, policy_name, full, path)
        key = get(a, "key") or ""
        if key in keys:
            causes.append(field.duplicate(f"{path}.key", key))
        keys.add(key)
    return causes


def _param_ref(ref: Any, path: str) -> list[Cause]:
    if not isinstance(ref, dict):
        return []
    causes: list[Cause] = []
    name, selector = ref.get("name") or "", ref.get("selector")
    if name:
        causes += [field.invalid(f"{path}.name", name, m) for m in validation.path_segment(name)]
        if selector is not None:
            causes.append(field.forbidden(f"{path}.name", "name and selector are mutually exclusive"))
    if selector is not None:
        causes += label_selector(selector, f"{path}.selector")
        if name:
            causes.append(field.forbidden(f"{path}.selector", "name and selector are mutually exclusive"))
    if not name and selector is None:
        causes.append(field.required(path, "one of name or selector must be specified"))
    action = ref.get("parameterNotFoundAction")
    if not action:
        causes.append(field.required(f"{path}.parameterNotFoundAction"))
    elif action not in _NOT_FOUND_ACTIONS:
        causes.append(field.not_supported(f"{path}.parameterNotFoundAction", action, _NOT_FOUND_ACTIONS))
    return causes


def _validation_actions(actions: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, action in enumerate(actions):
        if action not in _ACTIONS:
            causes.append(field.not_supported(f"{path}[{i}]", action, _ACTIONS))
        if action in seen:
            causes.append(field.duplicate(f"{path}[{i}]", action))
        seen.add(action)
    if "Deny" in seen and "Warn" in seen:
        causes.append(field.invalid(path, actions, "must not contain both Deny and Warn (repeating the same "
                                                   "validation failure information in the API response and "
                                                   "headers serves no purpose)"))
    if not seen:
        causes.append(field.required(path, "at least one validation action is required"))
    return causes


def validate_binding(obj: dict) -> list[Cause]:
    """`ValidateValidatingAdmissionPolicyBinding`, without the metadata rules."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    policy_name = spec.get("policyName") or ""
    if not policy_name:
        causes.append(field.required("spec.policyName"))
    else:
        causes += [field.invalid("spec.policyName", policy_name, m) for m in validation.dns_subdomain(policy_name)]
    causes += _param_ref(spec.get("paramRef"), "spec.paramRef")
    causes += _match_resources(spec.get("matchResources"), "spec.matchResouces")  # sic: upstream's path
    causes += _validation_actions(items(spec, "validationActions"), "spec.validationActions")
    return causes
