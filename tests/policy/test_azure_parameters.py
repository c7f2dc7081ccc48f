"""ARM's checks of an assignment's parameters (`lks.policy.azure.parameters`) beyond the API
tests: names in any case, each declared type, allowed values of arrays, parameter expressions with
a property path, and the OData `$filter` subset of policy state queries (`lks.policy.azure.odata`)."""

from __future__ import annotations

import pytest

from lks.arm.errors import ARMError
from lks.policy.azure import odata, parameters

DOC = {"name": "d1", "properties": {"parameters": {
    "effect": {"type": "String", "defaultValue": "Audit", "allowedValues": ["Audit", "Deny"]},
    "count": {"type": "Integer", "defaultValue": 1},
    "ratio": {"type": "Float", "defaultValue": 0.5},
    "on": {"type": "Boolean", "defaultValue": False},
    "when": {"type": "DateTime", "defaultValue": "2026-01-01T00:00:00Z"},
    "kinds": {"type": "Array", "defaultValue": [], "allowedValues": ["Pod", "Service"]},
    "shape": {"type": "object", "defaultValue": {}},
    "needed": {"type": "String"}}}}


def test_effective_values_take_defaults_and_any_case_of_names():
    out = parameters.check("a", DOC, {"NEEDED": {"value": "x"}, "kinds": {"value": ["Pod"]}})
    assert out["needed"] == "x" and out["kinds"] == ["Pod"] and out["effect"] == "Audit" and out["count"] == 1


@pytest.mark.parametrize(("given", "code"), [
    pytest.param({"count": {"value": "1"}}, "InvalidPolicyParameterValue", id="string-for-integer"),
    pytest.param({"count": {"value": True}}, "InvalidPolicyParameterValue", id="bool-for-integer"),
    pytest.param({"ratio": {"value": 1}}, None, id="integer-for-float"),
    pytest.param({"on": {"value": "true"}}, "InvalidPolicyParameterValue", id="string-for-boolean"),
    pytest.param({"when": {"value": "yesterday"}}, "InvalidPolicyParameterValue", id="bad-datetime"),
    pytest.param({"shape": {"value": []}}, "InvalidPolicyParameterValue", id="array-for-object"),
    pytest.param({"kinds": {"value": ["Pod", "Node"]}}, "PolicyParameterValueNotAllowed", id="array-item"),
    pytest.param({"effect": {"value": "audit"}}, "PolicyParameterValueNotAllowed", id="case-matters"),
    pytest.param({"effect": "Deny"}, "InvalidRequestContent", id="no-value-wrapper"),
    pytest.param({"other": {"value": 1}, "more": {"value": 2}}, "UndefinedPolicyParameter", id="unknown"),
])
def test_bad_values(given, code):
    given = {"needed": {"value": "x"}, **given}
    if code is None:
        parameters.check("a", DOC, given)
        return
    with pytest.raises(ARMError) as err:
        parameters.check("a", DOC, given)
    assert err.value.code == code
    if code == "UndefinedPolicyParameter":
        assert "'other,more'" in err.value.message


def test_missing_required():
    with pytest.raises(ARMError) as err:
        parameters.check("a1", DOC, {})
    assert (err.value.code, err.value.message) == (
        "MissingPolicyParameter",
        "The policy assignment 'a1' is missing the parameter(s) 'needed' as defined in the policy definition 'd1'.")


def test_substitute_with_property_paths():
    value = {"ranges": "[parameters('r').ranges]", "plain": "[parameters('E')]", "text": "[not an expression]"}
    assert parameters.substitute(value, {"r": {"ranges": [{"min": 1}]}, "e": "Deny"}) == {
        "ranges": [{"min": 1}], "plain": "Deny", "text": "[not an expression]"}


STATE = {"complianceState": "NonCompliant", "policyAssignmentName": "it's", "isCompliant": False, "n": 3}


@pytest.mark.parametrize(("text", "expected"), [
    ("ComplianceState eq 'NonCompliant'", True),
    ("compliancestate eq 'noncompliant'", True),
    ("ComplianceState ne 'NonCompliant'", False),
    ("IsCompliant eq false and n eq 3", True),
    ("IsCompliant eq true or PolicyAssignmentName eq 'it''s'", True),
    ("(IsCompliant eq true) or (n eq 4)", False),
])
def test_odata_filters(text, expected):
    assert odata.predicate(text)(STATE) is expected


@pytest.mark.parametrize("text", ["ComplianceState", "ComplianceState gt 'a'", "a eq 'b' and", "(a eq 'b'", "a eq 'b"])
def test_odata_refuses(text):
    with pytest.raises(odata.FilterError):
        odata.predicate(text)
