"""The CEL parser and type checker (lks.kube.cel.parser, checker, types, signatures): expressions
typed against schema-derived `self`, with cel-go's exact error texts, and their wiring into CRD
rules (refused when they do not type-check or are not bool) and policy type checking."""

from __future__ import annotations

import pytest

from lks.kube import catalog as catalogs
from lks.kube import crdrules, crdvalidation
from lks.kube.cel import checker, parser
from lks.kube.cel import types as t
from lks.kube.cel.strings import parse_duration
from lks.kube.policy import typecheck
from lks.kube.schema import Schema

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "replicas": {"type": "integer"}, "name": {"type": "string"}, "ratio": {"type": "number"},
    "on": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "port": {"x-kubernetes-int-or-string": True},
    "when": {"type": "string", "format": "date-time"},
    "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}}}
SELF = t.from_schema(Schema({}, SCHEMA), resource_root=True, name="selfType0")


def check(expression: str) -> checker.Checked:
    checked = checker.check(expression, {"self": SELF, "oldSelf": SELF})
    assert checked is not None
    return checked


def error(expression: str) -> str:
    errors = check(expression).errors
    assert len(errors) == 1, errors
    return errors[0].split("\n")[0]


@pytest.mark.parametrize(("expression", "type_"), [
    pytest.param("self.spec.replicas > 1", "bool", id="compare"),
    pytest.param("self.spec.replicas", "int", id="field"),
    pytest.param("self.spec.ratio * 2.0", "double", id="double"),
    pytest.param("self.spec.tags", "list(string)", id="list"),
    pytest.param("self.spec.labels", "map(string, string)", id="map"),
    pytest.param("self.spec.labels.anything", "string", id="map-select"),
    pytest.param("self.spec.free.a.b.c", "dyn", id="preserve-unknown"),
    pytest.param("self.spec.port", "dyn", id="int-or-string"),
    pytest.param("self.spec.when", "google.protobuf.Timestamp", id="date-time"),
    pytest.param("self.spec.tags.map(x, x.size())", "list(int)", id="map-macro"),
    pytest.param("self.spec.tags.filter(x, x != 'a')", "list(string)", id="filter"),
    pytest.param("self.spec.items.all(i, i.n > 0)", "bool", id="all"),
    pytest.param("self.spec.tags.exists(i, v, i > 0 && v == 'a')", "bool", id="two-variable"),
    pytest.param("has(self.spec.name)", "bool", id="has"),
    pytest.param("self.spec.on ? 'a' : 'b'", "string", id="conditional"),
    pytest.param("self.?spec.?name.orValue('x')", "string", id="optional"),
    pytest.param("self.spec.tags[0]", "string", id="index"),
    pytest.param("self.spec.labels['a']", "string", id="map-index"),
    pytest.param("self.metadata.name + self.kind + self.apiVersion", "string", id="resource-root"),
    pytest.param("quantity('1').isGreaterThan(quantity(self.spec.name))", "bool", id="quantity"),
    pytest.param("self.spec.tags.isSorted() && sets.contains(self.spec.tags, ['a'])", "bool", id="lists"),
    pytest.param("cel.bind(n, self.spec.name, n.size())", "int", id="bind"),
    pytest.param("self.spec.name.split(',')", "list(string)", id="split"),
    pytest.param("1 < 2u && 1.0 >= 2", "bool", id="cross-numeric"),
    pytest.param("duration('1s') + duration('2s')", "google.protobuf.Duration", id="duration"),
    pytest.param("dyn(self.spec).nothing.here", "dyn", id="dyn"),
    pytest.param("[1, 2, 3]", "list(int)", id="list-literal"),
    pytest.param("{'a': 1}", "map(string, int)", id="map-literal"),
    pytest.param("type(1) == int", "bool", id="type"),
    pytest.param("self == oldSelf", "bool", id="self-old-self"),
    pytest.param("[?self.?spec.?name, 'a']", "list(string)", id="optional-element"),
    pytest.param("{?'a': self.?spec.?name}", "map(string, string)", id="optional-entry"),
    pytest.param("type(self.spec.name) == string", "bool", id="type-compare"),
    pytest.param("self.spec.labels.transformMap(k, v, v + 'x')", "map(string, string)", id="transformMap"),
])
def test_types(expression: str, type_: str) -> None:
    checked = check(expression)
    assert checked.errors == []
    assert str(checked.type) == type_


@pytest.mark.parametrize(("expression", "message"), [
    pytest.param("self.spec.replicass > 1", "ERROR: <input>:1:10: undefined field 'replicass'", id="undefined"),
    pytest.param("self.spec.items.all(i, i.m > 0)", "ERROR: <input>:1:25: undefined field 'm'", id="in-macro"),
    pytest.param("'a' + 1", "ERROR: <input>:1:5: found no matching overload for '_+_' applied to '(string, int)'",
                 id="plus"),
    pytest.param("size(1)", "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'",
                 id="size"),
    pytest.param("self.spec.replicas.size()",
                 "ERROR: <input>:1:24: found no matching overload for 'size' applied to 'int.()'", id="member"),
    pytest.param("self.spec.replicas == '3'",
                 "ERROR: <input>:1:20: found no matching overload for '_==_' applied to '(int, string)'",
                 id="equals"),
    pytest.param("1 + 1.0", "ERROR: <input>:1:3: found no matching overload for '_+_' applied to '(int, double)'",
                 id="no-int-to-double"),
    pytest.param("self.spec.tags['a']",
                 "ERROR: <input>:1:15: found no matching overload for '_[_]' applied to '(list(string), string)'",
                 id="index"),
    pytest.param("self.spec.on ? 1 : 'b'",
                 "ERROR: <input>:1:14: found no matching overload for '_?_:_' applied to '(bool, int, string)'",
                 id="conditional"),
    pytest.param("[1, 'a']", "ERROR: <input>:1:5: expected type 'int' but found 'string'", id="homogeneous"),
    pytest.param("self.spec.name.foo", "ERROR: <input>:1:15: type 'string' does not support field selection",
                 id="select-scalar"),
    pytest.param("self.spec.replicas.all(x, x)", "ERROR: <input>:1:10: expression of type 'int' cannot be range "
                 "of a comprehension (must be list, map, or dynamic)", id="range"),
    pytest.param("self.spec.tags.all(x, 0)",
                 "ERROR: <input>:1:19: found no matching overload for '_&&_' applied to '(bool, int)'", id="all-body"),
    pytest.param("self.spec.tags.exists(x, x)",
                 "ERROR: <input>:1:22: found no matching overload for '_||_' applied to '(bool, string)'",
                 id="exists-body"),
    pytest.param("self.spec.tags.filter(x, 1)", "ERROR: <input>:1:22: found no matching overload for '_?_:_' "
                 "applied to '(int, list(string), list(string))'", id="filter-body"),
    pytest.param("self.spec.name.startsWith(1)",
                 "ERROR: <input>:1:26: found no matching overload for 'startsWith' applied to 'string.(int)'",
                 id="startsWith"),
    pytest.param("self.spec.on && 1", "ERROR: <input>:1:14: found no matching overload for '_&&_' applied to "
                 "'(bool, int)'", id="logical"),
])
def test_errors(expression: str, message: str) -> None:
    assert error(expression) == message


def test_errors_render_the_line_and_a_caret() -> None:
    assert check("self.spec.replicass > 1").errors == [
        "ERROR: <input>:1:10: undefined field 'replicass'\n | self.spec.replicass > 1\n | .........^"]


def test_every_error_is_reported() -> None:
    assert len(check("self.spec.a > 1 && self.spec.b > 2").errors) == 2


def test_parser_precedence() -> None:
    node = parser.parse("a || b && c == 1 + 2 * 3")
    assert isinstance(node, parser.Call) and node.function == "_||_"
    right = node.args[1]
    assert right.function == "_&&_" and right.args[1].function == "_==_"
    assert right.args[1].args[1].function == "_+_" and right.args[1].args[1].args[1].function == "_*_"
    assert parser.parse("-1").value == -1
    with pytest.raises(parser.ParseError):
        parser.parse("a +")


# -- wiring --------------------------------------------------------------------------------------

P = "spec.validation.openAPIV3Schema"


def _crd_texts(rules: list[dict]) -> list[str]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "replicas": {"type": "integer"}, "name": {"type": "string"}}, "x-kubernetes-validations": rules}}}
    crd = {"metadata": {"name": "foos.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                    "conversion": {"strategy": "None"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": schema}}]},
           "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}}
    return [c.text() for c in crdvalidation.validate(crd)]


def test_a_crd_rule_that_does_not_type_check_is_refused() -> None:
    [text] = _crd_texts([{"rule": "self.name + self.replicas == 'a'"}])
    assert text.startswith(f"{P}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
                           "apiextensions.ValidationRule{")
    assert text.endswith("compilation failed: ERROR: <input>:1:11: found no matching overload for '_+_' applied to "
                         "'(string, int)'\n | self.name + self.replicas == 'a'\n | ..........^")


def test_a_crd_rule_must_be_bool_and_a_message_expression_a_string() -> None:
    [text] = _crd_texts([{"rule": "self.replicas"}])
    assert text.endswith(": cel expression must evaluate to a bool")
    [text] = _crd_texts([{"rule": "true", "messageExpression": "self.replicas"}])
    assert text.startswith(f"{P}.properties[spec].x-kubernetes-validations[0].messageExpression: Invalid value: ")
    assert text.endswith(": messageExpression must evaluate to a string")
    assert _crd_texts([{"rule": "self.replicas > 0", "messageExpression": "'bad: ' + self.name"}]) == []


def test_policy_type_checking_reports_operand_types_per_kind() -> None:
    catalog = catalogs.load()
    policy = {"spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                "resources": ["deployments"], "operations": ["CREATE"]}]},
        "validations": [{"expression": "object.spec.replicas == '3'"},
                        {"expression": "object.spec.template.spec.containers.all(c, c.image.startsWith('x'))"}]}}
    assert typecheck.check(policy, catalog) == [{
        "fieldRef": "spec.validations[0].expression",
        "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_==_' applied to "
                   "'(int, string)'\n | object.spec.replicas == '3'\n | .....................^"}]


def test_policy_type_checking_types_request_and_variables() -> None:
    catalog = catalogs.load()

    def warnings(expression: str) -> list[str]:
        policy = {"spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                    "resources": ["deployments"], "operations": ["CREATE"]}]},
            "variables": [{"name": "n", "expression": "object.spec.replicas"}],
            "validations": [{"expression": expression}]}}
        return [w["warning"].split("\n")[0] for w in typecheck.check(policy, catalog)]

    assert warnings("request.operation == 'CREATE' && request.userInfo.groups.exists(g, g == 'x')") == []
    assert warnings("request.operaton == 'CREATE'") == [
        "apps/v1, Kind=Deployment: ERROR: <input>:1:8: undefined field 'operaton'"]
    assert warnings("variables.n > 1 && namespaceObject.metadata.name != ''") == []
    assert warnings("variables.n == 'x'") == [
        "apps/v1, Kind=Deployment: ERROR: <input>:1:13: found no matching overload for '_==_' applied to "
        "'(int, string)'"]
    assert warnings("variables.m > 1") == ["apps/v1, Kind=Deployment: ERROR: <input>:1:10: undefined field 'm'"]


def test_dates_and_durations_are_what_the_checker_says_at_runtime() -> None:
    schema = {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"t": {"type": "string", "format": "date-time"},
                                         "d": {"type": "string", "format": "duration"},
                                         "b": {"type": "string", "format": "byte"}},
        "x-kubernetes-validations": [{"rule": "self.t < timestamp('2021-01-01T00:00:00Z') && self.d > duration('1s') "
                                              "&& (!has(self.b) || self.b == b'hi')",
                                      "messageExpression": "'t=' + string(self.t) + ' d=' + string(self.d)"}]}}}
    root = crdrules.build(schema)
    assert root.validate({"spec": {"t": "2020-01-01T00:00:00Z", "d": "1m30s", "b": "aGk="}}, None, "") == []
    [cause] = root.validate({"spec": {"t": "2022-01-01T00:00:00Z", "d": "5s"}}, None, "")
    assert cause.text() == 'spec: Invalid value: "object": t=2022-01-01T00:00:00Z d=5s'
    assert parse_duration("1h30m").total_seconds() == 5400 and parse_duration("-1.5s").total_seconds() == -1.5
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
