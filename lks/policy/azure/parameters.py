"""An assignment's parameters against its definition's: ARM's checks on a PUT (no parameter the
definition lacks, every parameter without a default given, each value of the declared type and
among the allowed values) and the resolution of `[parameters('name')]` in a definition's rule,
which turns an assignment into an effect and the Gatekeeper details a cluster installs.
`lks.arm.policy` checks on write; the in-cluster side reads `resolve`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from lks.arm.errors import ARMError

Doc = dict[str, Any]
_EXPRESSION = re.compile(r"^\[parameters\('([^']+)'\)((?:\.\w+)*)\]$", re.IGNORECASE)


def declared(doc: Doc) -> dict[str, Doc]:
    params = (doc.get("properties") or {}).get("parameters") or {}
    return params if isinstance(params, dict) else {}


def check(assignment: str, doc: Doc, given: Any) -> dict[str, Any]:
    """The values of an assignment's `parameters` ({name: {"value": …}}), checked against the
    definition (or initiative) `doc` as ARM checks them: the effective values, defaults filled in."""
    if given is None:
        given = {}
    if not isinstance(given, dict) or not all(isinstance(v, dict) and "value" in v for v in given.values()):
        raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       "'Each policy assignment parameter must be an object with a 'value' property.'.")
    params = declared(doc)
    by_lower = {k.lower(): k for k in params}
    definition = doc["name"]
    unknown = [k for k in given if k.lower() not in by_lower]
    if unknown:
        raise ARMError("UndefinedPolicyParameter", f"The policy assignment '{assignment}' has the parameter(s) "
                       f"'{','.join(unknown)}' which are not defined in the policy definition '{definition}'.")
    values = {by_lower[k.lower()]: v["value"] for k, v in given.items()}
    missing = [k for k, p in params.items() if k not in values and "defaultValue" not in (p or {})]
    if missing:
        raise ARMError("MissingPolicyParameter", f"The policy assignment '{assignment}' is missing the "
                       f"parameter(s) '{','.join(missing)}' as defined in the policy definition '{definition}'.")
    version = (doc.get("properties") or {}).get("version")
    named = f"{definition} version {version}" if version else definition
    out = {}
    for name, spec in params.items():
        spec = spec or {}
        value = values.get(name, spec.get("defaultValue"))
        expected = str(spec.get("type", "String"))
        actual = type_of(value)
        if not _fits(expected, value):
            raise ARMError("InvalidPolicyParameterValue", f"The policy parameter '{name}' value does not match the "
                           f"expected parameter type defined in the policy definition '{definition}'. Details 'The "
                           f"expected policy parameter type: '{expected.capitalize()}'. The actual policy parameter "
                           f"type '{actual}'.'.")
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and allowed and name in values:
            items = value if expected.lower() == "array" and not any(isinstance(a, list) for a in allowed) else [value]
            for item in items:
                if item not in allowed:
                    raise ARMError("PolicyParameterValueNotAllowed", f"The value '{_text(item)}' is not allowed for "
                                   f"policy parameter '{name}' in policy definition '{named}'. The allowed values are "
                                   f"'{', '.join(_text(a) for a in _distinct(allowed))}'.")
        out[name] = value
    return out


def type_of(value: Any) -> str:
    """A JSON value's policy parameter type, as ARM names it in errors."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if value is None:
        return "Null"
    return "String"


def _fits(expected: str, value: Any) -> bool:
    kind = expected.lower()
    if value is None:
        return True  # a parameter without a value or default: the rule sees null, as ARM's does
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "datetime":
        if not isinstance(value, str):
            return False
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _distinct(values: list[Any]) -> list[Any]:
    """Allowed values as ARM lists them: once each, case folded (`audit`, `Audit` → `Audit`)."""
    seen: dict[str, Any] = {}
    for v in values:
        key = v.lower() if isinstance(v, str) else repr(v)
        if key not in seen or (isinstance(v, str) and v[:1].isupper()):
            seen[key] = v
    return list(seen.values())


def substitute(value: Any, params: dict[str, Any]) -> Any:
    """`value` with every `[parameters('name')]` (or `[parameters('name').field]`) replaced by
    the parameter's value."""
    if isinstance(value, str):
        m = _EXPRESSION.match(value)
        if m is None:
            return value
        lower = {k.lower(): v for k, v in params.items()}
        out = lower.get(m.group(1).lower())
        for field in filter(None, m.group(2).split(".")):
            out = out.get(field) if isinstance(out, dict) else None
        return out
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    return value


def resolve(doc: Doc, params: dict[str, Any]) -> Doc:
    """A definition under an assignment's (effective) parameters: `{"effect": "Deny"|"Audit"|…,
    "details": {templateInfo, apiGroups, kinds, excludedNamespaces, namespaces, labelSelector,
    values, …}}`, the effect capitalised as Azure reports it."""
    then = ((doc.get("properties") or {}).get("policyRule") or {}).get("then") or {}
    effect = substitute(then.get("effect"), params)
    effect = effect[:1].upper() + effect[1:] if isinstance(effect, str) else effect
    return {"effect": effect, "details": substitute(then.get("details") or {}, params)}


def members(set_doc: Doc, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """An initiative's member definitions under the initiative's parameters: (reference id,
    definition id, the member's parameter values)."""
    out = []
    for member in (set_doc.get("properties") or {}).get("policyDefinitions") or []:
        values = {k: substitute((v or {}).get("value"), params) for k, v in (member.get("parameters") or {}).items()}
        out.append((member.get("policyDefinitionReferenceId", ""), member["policyDefinitionId"], values))
    return out
