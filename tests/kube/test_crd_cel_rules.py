"""CRD `x-kubernetes-validations`: compiled when the CRD is written (crdschemarules, through
crdvalidation) and evaluated on custom resources (crdrules, through the CR strategy), with
upstream's field errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lks.kube import crdrules, crds, crdvalidation

P = "spec.validation.openAPIV3Schema"


def _crd(schema: dict, **version_extra: Any) -> dict:
    return {
        "metadata": {"name": "foos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                 "conversion": {"strategy": "None"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}, **version_extra}]},
        "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]},
    }


def _spec(spec_schema: dict) -> dict:
    return {"type": "object", "properties": {"spec": spec_schema, "status": {
        "type": "object", "properties": {"phase": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.phase != 'Bad'", "message": "phase may not be Bad"}]}}}


def _texts(schema: dict) -> list[str]:
    return [c.text() for c in crdvalidation.validate(_crd(schema))]


def _rules(rules: list[dict], **props: Any) -> dict:
    return _spec({"type": "object", "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"},
                                                   "min": {"type": "integer"}, "max": {"type": "integer"},
                                                   **props},
                  "x-kubernetes-validations": rules})


RULE_AT = f"{P}.properties[spec].x-kubernetes-validations[0]"


def test_a_crd_with_good_rules_is_accepted() -> None:
    schema = _rules([{"rule": "self.min <= self.max", "message": "min must not exceed max"},
                     {"rule": "self.replicas == oldSelf.replicas", "optionalOldSelf": False},
                     {"rule": "self.?name.orValue('') != 'x'", "messageExpression": "'name ' + self.name + ' is bad'",
                      "fieldPath": ".name", "reason": "FieldValueForbidden"}])
    assert _texts(schema) == []


def test_a_rule_that_does_not_compile_refuses_the_crd() -> None:
    assert _texts(_rules([{"rule": "self.replicas == bogus"}])) == [
        f'{RULE_AT}.rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.replicas == bogus", Message:"", '
        'MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", '
        "OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:18: undeclared reference to 'bogus' "
        "(in container '')\n | self.replicas == bogus\n | .................^"]


def test_a_syntax_error_refuses_the_crd() -> None:
    [text] = _texts(_rules([{"rule": "self.replicas >", "message": "m"}]))
    assert text.startswith(f'{RULE_AT}.rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.replicas >", '
                           'Message:"m", ')
    assert "compilation failed: ERROR: <input>:1:16: Syntax error: mismatched input '<EOF>'" in text


def test_a_field_the_schema_lacks_is_undefined() -> None:
    assert _texts(_rules([{"rule": "self.replicas > self.maxReplicas"}])) == [
        f'{RULE_AT}.rule: Invalid value: apiextensions.ValidationRule{{Rule:"self.replicas > self.maxReplicas", '
        'Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", '
        "OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:21: undefined field 'maxReplicas'\n"
        " | self.replicas > self.maxReplicas\n | ....................^"]
    # maps, free-form objects, functions called on fields, and the root's type and object meta are fine
    schema = {**_rules([{"rule": "self.labels.anything == 'x' && self.free.whatever.deeper && "
                                  "self.name.startsWith('a') && has(oldSelf.labels.y)"}],
                       labels={"type": "object", "additionalProperties": {"type": "string"}},
                       free={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
              "x-kubernetes-validations": [{"rule": "self.metadata.name == self.kind + self.apiVersion"}]}
    assert _texts(schema) == []
    [text] = _texts({**_spec({"type": "object"}), "x-kubernetes-validations": [{"rule": "self.metadata.labels.a == 'b'"}]})
    assert "ERROR: <input>:1:14: undefined field 'labels'" in text


def test_a_message_expression_that_does_not_compile() -> None:
    [text] = _texts(_rules([{"rule": "true", "messageExpression": "nope"}]))
    assert text.startswith(f"{RULE_AT}.messageExpression: Invalid value: apiextensions.ValidationRule{{")
    assert "messageExpression compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'" in text


def test_bad_rules_at_two_levels_are_both_reported() -> None:
    schema = _rules([{"rule": "nope1"}], name={"type": "string", "x-kubernetes-validations": [{"rule": "nope2"}]})
    assert [t.split(":")[0] for t in _texts(schema)] == [
        f"{P}.properties[spec].properties[name].x-kubernetes-validations[0].rule", f"{RULE_AT}.rule"]


def test_old_self_where_nothing_correlates() -> None:
    schema = _spec({"type": "object", "properties": {"list": {"type": "array", "maxItems": 10, "items": {
        "type": "string", "maxLength": 10, "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}})
    assert _texts(schema) == [
        f'{P}.properties[spec].properties[list].items.x-kubernetes-validations[0].rule: Invalid value: '
        f'"self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema within '
        f"{P}.properties[spec].properties[list]"]


def test_optional_old_self_without_old_self() -> None:
    assert _texts(_rules([{"rule": "self.replicas > 0", "optionalOldSelf": True}])) == [
        f"{RULE_AT}.optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"]


def test_field_path_must_name_a_field() -> None:
    assert _texts(_rules([{"rule": "true", "fieldPath": ".nope"}])) == [
        f'{RULE_AT}.fieldPath: Invalid value: ".nope": fieldPath must be a valid path']


def test_rules_are_not_compiled_in_an_unsound_schema() -> None:
    texts = _texts(_spec({"type": "object", "properties": {"x": {"type": "frob"}},
                          "x-kubernetes-validations": [{"rule": "bogus"}]}))
    assert len(texts) == 1 and "Unsupported value" in texts[0]


# -- evaluation on custom resources ---------------------------------------------------------------


def _strategy(schema: dict) -> crds.CustomResourceStrategy:
    types, _, _ = crds.resource_types([{**_crd(schema, subresources={"status": {}}), "status": {
        "conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1"],
        "acceptedNames": {"plural": "foos", "kind": "Foo"}}}])
    return crds.CustomResourceStrategy(types[0])


def _cr(spec: dict, status: dict | None = None) -> dict:
    obj = {"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "a", "namespace": "default"},
           "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def _errors(strategy: crds.CustomResourceStrategy, obj: dict, old: dict | None = None) -> list[str]:
    return [c.text() for c in strategy.schema_causes(obj, old)]


def test_a_failed_rule_with_a_message() -> None:
    s = _strategy(_rules([{"rule": "self.min <= self.max", "message": "min must not exceed max"}]))
    assert _errors(s, _cr({"min": 1, "max": 2})) == []
    assert _errors(s, _cr({"min": 3, "max": 2})) == ['spec: Invalid value: "object": min must not exceed max']


def test_a_failed_rule_without_a_message_quotes_the_rule() -> None:
    s = _strategy(_rules([{"rule": "self.min <= self.max"}]))
    assert _errors(s, _cr({"min": 3, "max": 2})) == ['spec: Invalid value: "object": failed rule: self.min <= self.max']


def test_message_expression_reason_and_field_path() -> None:
    s = _strategy(_rules([{"rule": "self.name != 'x'", "messageExpression": "'name ' + self.name + ' is taken'",
                           "reason": "FieldValueForbidden", "fieldPath": ".name"},
                          {"rule": "has(self.replicas)", "reason": "FieldValueRequired", "message": "set replicas"},
                          {"rule": "self.name != 'x'", "reason": "FieldValueDuplicate"},
                          {"rule": "self.name != 'x'", "messageExpression": "self.missing"}]))
    assert _errors(s, _cr({"name": "x"})) == [
        "spec.name: Forbidden: name x is taken", "spec: Required value: set replicas",
        'spec: Duplicate value: "object"', 'spec: Invalid value: "object": failed rule: self.name != \'x\'']


def test_rules_at_every_level() -> None:
    schema = _spec({"type": "object", "properties": {
        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('a')", "message": "a!"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [
            {"rule": "self.all(t, t.size() < 4)", "message": "short tags"}]},
        "ports": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self > 0", "message": "positive"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self != ''", "message": "no empty labels"}]}},
        "ratio": {"type": "number", "x-kubernetes-validations": [{"rule": "self < 1.5", "message": "ratio"}]}}})
    s = _strategy(schema)
    assert _errors(s, _cr({"name": "abc", "tags": ["x"], "ports": [1], "labels": {"a": "b"}, "ratio": 1})) == []
    assert sorted(_errors(s, _cr({"name": "b", "tags": ["long!"], "ports": [1, -1], "labels": {"k": ""},
                                  "ratio": 2}))) == [
        'spec.labels[k]: Invalid value: "string": no empty labels',
        'spec.name: Invalid value: "string": a!',
        'spec.ports[1]: Invalid value: "integer": positive',
        'spec.ratio: Invalid value: "number": ratio',
        'spec.tags: Invalid value: "array": short tags']


def test_root_rules_see_type_and_object_meta() -> None:
    schema = {**_spec({"type": "object"}), "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('a') && self.kind == 'Foo' && !has(self.metadata.namespace)",
         "message": "root"}]}
    s = _strategy(schema)
    assert _errors(s, _cr({})) == []
    bad = _cr({})
    bad["metadata"]["name"] = "b"
    assert _errors(s, bad) == ['<nil>: Invalid value: "object": root']


def test_transition_rules_run_on_update_only() -> None:
    s = _strategy(_rules([{"rule": "self.name == oldSelf.name", "message": "name is immutable"}]))
    assert _errors(s, _cr({"name": "a"})) == []
    assert _errors(s, _cr({"name": "a", "replicas": 2}), _cr({"name": "a"})) == []
    assert _errors(s, _cr({"name": "b"}), _cr({"name": "a"})) == ['spec: Invalid value: "object": name is immutable']


def test_transition_rules_skip_values_that_did_not_exist() -> None:
    schema = _spec({"type": "object", "properties": {"name": {"type": "string", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "immutable"}]}}})
    s = _strategy(schema)
    assert _errors(s, _cr({"name": "b"}), _cr({})) == []
    assert _errors(s, _cr({"name": "b"}), _cr({"name": "a"})) == ['spec.name: Invalid value: "string": immutable']


def test_optional_old_self() -> None:
    s = _strategy(_rules([{"rule": "!oldSelf.hasValue() || self.name == oldSelf.value().name",
                           "optionalOldSelf": True, "message": "immutable once set"}]))
    assert _errors(s, _cr({"name": "a"})) == []  # evaluated on create too, with oldSelf none
    assert _errors(s, _cr({"name": "b"}), _cr({"name": "a"})) == [
        'spec: Invalid value: "object": immutable once set']


def test_map_list_items_correlate_by_key() -> None:
    schema = _spec({"type": "object", "properties": {"ports": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "port": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}]}}}})
    s = _strategy(schema)
    old = _cr({"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]})
    assert _errors(s, _cr({"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1},
                                     {"name": "c", "port": 3}]}), old) == []
    assert _errors(s, _cr({"ports": [{"name": "b", "port": 5}]}), old) == [
        'spec.ports[0]: Invalid value: "object": port is immutable']


def test_unchanged_values_are_ratcheted() -> None:
    s = _strategy(_rules([{"rule": "self.min <= self.max", "message": "min must not exceed max"}]))
    old = _cr({"min": 3, "max": 2})
    assert _errors(s, _cr({"min": 3, "max": 2}, {"phase": "x"}), old) == []
    assert _errors(s, _cr({"min": 4, "max": 2}), old) == ['spec: Invalid value: "object": min must not exceed max']


def test_evaluation_errors() -> None:
    s = _strategy(_rules([{"rule": "self.name == 'a'"}, {"rule": "self.replicas / 0 == 1", "message": "div"}]))
    assert _errors(s, _cr({"replicas": 1})) == [
        'spec: Invalid value: "object": no such key: name evaluating rule: self.name == \'a\'',
        'spec: Invalid value: "object": division by zero evaluating rule: div']


def test_schema_errors_that_block_rules() -> None:
    s = _strategy(_rules([{"rule": "self.min <= self.max"}]))
    assert _errors(s, _cr({"min": "x", "max": 2})) == [
        'spec.min: Invalid value: "x": spec.min in body must be of type integer: "x"',
        '<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
        "correct the existing errors to complete validation"]


def test_status_updates_run_the_rules() -> None:
    s = _strategy(_rules([]))
    status = s.for_subresource("status")
    old = _cr({}, {"phase": "Good"})
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Bad"
    assert [c.text() for c in status.validate_update(new, old)] == [
        'status: Invalid value: "object": phase may not be Bad']


def test_schemas_without_rules_build_nothing() -> None:
    assert crdrules.build({"type": "object", "properties": {"spec": {"type": "object"}}}) is None
    assert _strategy({"type": "object", "properties": {"spec": {"type": "object"}}}).rules is None


@pytest.mark.parametrize(("path", "expected"), [
    (".spec.name", "spec.name"), (".spec['name']", "spec.name"), (".spec.labels['a.b']", "spec.labels[a.b]"),
    (".spec.nope", None), ("spec", None), (".spec[name]", None),
])
def test_field_paths(path: str, expected: str | None) -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "name": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
    assert crdrules.field_path(path, schema) == expected
