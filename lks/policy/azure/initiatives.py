"""Custom initiatives (`policySetDefinitions` at a subscription), checked as ARM checks a PUT:
the declared parameters (`check_declared`, shared with custom definitions), every member naming
an existing policy definition (not an initiative), reference ids (generated when left out,
unique), and each member's parameters against its definition: names it declares
(`UndefinedPolicyParameter`), those it requires, `[parameters('x')]` naming the initiative's
own parameters, and values (literal, or the initiative's defaults) of the member's types and
allowed values. `lks.arm.policy` looks the members up and stores the result; an assignment
resolves them with `lks.policy.azure.parameters.members`.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from lks.arm.errors import ARMError
from lks.policy.azure import parameters

Doc = dict[str, Any]
_TYPES = ("string", "array", "object", "boolean", "integer", "float", "datetime")
_REFERENCE = re.compile(r"\[parameters\('([^']+)'\)", re.IGNORECASE)


def bad_content(message: str) -> ARMError:
    return ARMError("InvalidRequestContent", f"The request content was invalid and could not be deserialized: "
                    f"'{message}'.")


def _invalid(name: str, reason: str) -> ARMError:
    return ARMError("InvalidCreatePolicySetDefinitionRequest",
                    f"The policy set definition '{name}' request is invalid. {reason}")


def check_declared(declared: Any) -> Doc:
    """A definition's or initiative's `parameters` declarations, as ARM checks them."""
    declared = declared or {}
    if not isinstance(declared, dict) or not all(isinstance(v, dict) for v in declared.values()):
        raise bad_content("'parameters' must be an object of parameter definitions.")
    for pname, spec in declared.items():
        ptype = str(spec.get("type", ""))
        if ptype.lower() not in _TYPES:
            raise ARMError("InvalidPolicyParameters", f"The policy parameter '{pname}' has an invalid type "
                           f"'{ptype}'. The allowed types are 'String, Array, Object, Boolean, Integer, Float, "
                           "DateTime'.")
        if "defaultValue" in spec and not parameters._fits(ptype, spec["defaultValue"]):
            raise ARMError("InvalidPolicyParameters", f"The policy parameter '{pname}' default value does not "
                           "match the expected parameter type defined in the policy definition. Details 'The "
                           f"expected policy parameter type: '{ptype.capitalize()}'. The actual policy parameter "
                           f"type '{parameters.type_of(spec['defaultValue'])}'.'.")
    return declared


def member_ids(props: Doc) -> list[str]:
    """The `policyDefinitionId` of each member (shape checked first)."""
    members = props.get("policyDefinitions")
    if members is None:
        raise bad_content("Required property 'policyDefinitions' not found in JSON. Path 'properties'.")
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise bad_content("'policyDefinitions' must be an array of policy definition references.")
    out = []
    for i, m in enumerate(members):
        pid = m.get("policyDefinitionId")
        if not isinstance(pid, str) or not pid:
            raise bad_content(f"Required property 'policyDefinitionId' not found in JSON. Path "
                              f"'properties.policyDefinitions[{i}]'.")
        out.append(pid)
    return out


def _major(doc: Doc) -> str:
    version = str((doc.get("properties") or {}).get("version") or "1.0.0")
    return version.split(".", 1)[0] + ".*.*"


def _definition_named(doc: Doc) -> str:
    version = (doc.get("properties") or {}).get("version")
    return f"'{doc['name']}' using version '{version}'" if version else f"'{doc['name']}'"


def build(name: str, props: Doc, definitions: list[Doc], old: Doc | None = None) -> Doc:
    """The stored `properties` of initiative `name` from a PUT's `props`, whose members'
    definitions (in order) are `definitions`; `old` is the initiative it replaces."""
    declared = check_declared(props.get("parameters"))
    set_params = {k.lower(): k for k in declared}
    if not definitions:
        raise _invalid(name, "At least one policy definition must be referenced.")
    old_refs = {m.get("policyDefinitionId", "").lower(): m.get("policyDefinitionReferenceId")
                for m in ((old or {}).get("properties") or {}).get("policyDefinitions") or []}
    seen: set[str] = set()
    members = []
    defaults = {k: v["defaultValue"] for k, v in declared.items() if "defaultValue" in v}
    for member, definition in zip(props["policyDefinitions"], definitions, strict=True):
        ref = member.get("policyDefinitionReferenceId")
        if ref is None or ref == "":
            ref = old_refs.get(definition["id"].lower()) or str(random.randrange(10 ** 18, 10 ** 19))
        if not isinstance(ref, str):
            raise bad_content("'policyDefinitionReferenceId' must be a string.")
        if ref.lower() in seen:
            raise _invalid(name, f"The policy definition reference id '{ref}' is used more than once.")
        seen.add(ref.lower())
        given = member.get("parameters") or {}
        if not isinstance(given, dict) or not all(isinstance(v, dict) and "value" in v for v in given.values()):
            raise bad_content("Each policy definition reference parameter must be an object with a 'value' "
                              "property.")
        _check_member(name, definition, given, set_params, defaults)
        out: Doc = {"policyDefinitionReferenceId": ref, "policyDefinitionId": definition["id"],
                    "definitionVersion": member.get("definitionVersion") or _major(definition),
                    "parameters": copy.deepcopy(given)}
        if member.get("groupNames"):
            out["groupNames"] = member["groupNames"]
        members.append(out)
    result: Doc = {"policyType": "Custom", "displayName": props.get("displayName") or "",
                   "description": props.get("description") or "", "metadata": props.get("metadata") or {},
                   "version": props.get("version") or "1.0.0", "parameters": declared, "policyDefinitions": members}
    if props.get("policyDefinitionGroups"):
        result["policyDefinitionGroups"] = props["policyDefinitionGroups"]
    return result


def _check_member(name: str, definition: Doc, given: Doc, set_params: dict[str, str], defaults: Doc) -> None:
    declared = parameters.declared(definition)
    known = {k.lower(): k for k in declared}
    unknown = [k for k in given if k.lower() not in known]
    if unknown:
        raise ARMError("UndefinedPolicyParameter", f"The policy set definition '{name}' is attempting to assign the "
                       f"parameter(s) '{','.join(unknown)}' which are not defined in the policy definition "
                       f"{_definition_named(definition)}.")
    for k, v in given.items():
        for ref in _REFERENCE.findall(str(v["value"])) if isinstance(v["value"], str) else []:
            if ref.lower() not in set_params:
                raise ARMError("InvalidPolicyParameters", f"The policy set definition '{name}' references the "
                               f"parameter '{ref}' in the parameter '{k}' of the policy definition "
                               f"'{definition['name']}', but the policy set definition does not define it.")
    supplied = {known[k.lower()] for k in given}
    missing = [k for k, spec in declared.items() if k not in supplied and "defaultValue" not in (spec or {})]
    if missing:
        raise ARMError("MissingPolicyParameter", f"The policy set definition '{name}' is missing the parameter(s) "
                       f"'{','.join(missing)}' as defined in the policy definition '{definition['name']}'.")
    # literal values now; values from the initiative's defaults as ARM words them; the rest at assignment
    literal, from_defaults = {}, {}
    for k, v in given.items():
        value = v["value"]
        if isinstance(value, str) and _REFERENCE.match(value):
            if all(r.lower() in {d.lower() for d in defaults} for r in _REFERENCE.findall(value)):
                from_defaults[known[k.lower()]] = parameters.substitute(value, defaults)
        else:
            literal[known[k.lower()]] = value
    for values, wrap in ((literal, False), (from_defaults, True)):
        if not values:
            continue
        only = copy.deepcopy(definition)
        only["properties"]["parameters"] = {k: {key: s for key, s in spec.items() if key != "defaultValue"}
                                            for k, spec in declared.items() if k in values}
        try:
            parameters.check(name, only, {k: {"value": v} for k, v in values.items()})
        except ARMError as err:
            if not wrap:
                raise
            raise ARMError("InvalidPolicyParameters", f"The policy set '{name}' could not be parameterized because "
                           "the default value of a policy set parameter referenced by policy definition "
                           f"{definition['name']} was not valid for that policy definition. Please verify that the "
                           "default values of all policy set parameters are valid in the context of the policy "
                           f"definitions referencing them. The inner exception '{err.message}'.") from None
