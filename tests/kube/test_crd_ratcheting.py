"""CRD validation ratcheting (KEP-4008) at the CR strategy: where a value is unchanged (or its
nearest correlatable ancestor is), a failing rule without oldSelf is a warning and a schema
error is dropped; evaluation errors and transition rules are not ratcheted; allOf branches
ratchet by their parent only; map lists correlate items by key, atomic lists not at all."""

from __future__ import annotations

from typing import Any

from lks.kube import warning

from .test_crd_cel_rules import _cr, _spec, _strategy

MIN_MAX = {"rule": "self.min <= self.max", "message": "min must not exceed max"}


def _checked(schema: dict, obj: dict, old: dict | None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of validating `obj` over `old`."""
    warned: list[str] = []
    with warning.collecting(warned):
        errors = [c.text() for c in _strategy(schema).schema_causes(obj, old)]
    return errors, warned


def _range(**extra: Any) -> dict:
    return _spec({"type": "object", "properties": {
        "note": {"type": "string"},
        "range": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                  "x-kubernetes-validations": [MIN_MAX], **extra}}})


def test_an_unchanged_value_warns_and_a_changed_one_fails() -> None:
    old = _cr({"note": "a", "range": {"min": 3, "max": 2}})
    assert _checked(_range(), _cr({"note": "b", "range": {"min": 3, "max": 2}}), old) == (
        [], ['spec.range: Invalid value: "object": min must not exceed max'])
    assert _checked(_range(), _cr({"note": "b", "range": {"min": 4, "max": 2}}), old) == (
        ['spec.range: Invalid value: "object": min must not exceed max'], [])


def test_evaluation_errors_and_transition_rules_are_not_ratcheted() -> None:
    schema = _spec({"type": "object", "properties": {"note": {"type": "string"}, "n": {"type": "integer"}},
                    "x-kubernetes-validations": [
                        {"rule": "self.n / 0 == 1", "message": "div"},
                        {"rule": "self.n == oldSelf.n + 1", "message": "n must grow by one"}]})
    old = _cr({"note": "a", "n": 1})
    errors, warned = _checked(schema, _cr({"note": "a", "n": 1}), old)
    assert errors == ['spec: Invalid value: "object": division by zero evaluating rule: div',
                      'spec: Invalid value: "object": n must grow by one']
    assert warned == []


def test_all_of_ratchets_by_the_parent_only() -> None:
    schema = _spec({"type": "object", "properties": {
        "note": {"type": "string"},
        "range": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                  "allOf": [{"x-kubernetes-validations": [MIN_MAX]}]}}})
    old = _cr({"note": "a", "range": {"min": 3, "max": 2}})
    # range is unchanged, its parent (spec) is not: upstream does not ratchet the allOf rule
    assert _checked(schema, _cr({"note": "b", "range": {"min": 3, "max": 2}}), old) == (
        ['spec.range: Invalid value: "object": min must not exceed max'], [])


def test_schema_errors_ratchet_through_map_lists_but_not_atomic_lists() -> None:
    schema = _spec({"type": "object", "properties": {
        "note": {"type": "string"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                             "port": {"type": "integer", "maximum": 100}}}},
        "sizes": {"type": "array", "items": {"type": "integer", "maximum": 10}}}})
    old = _cr({"ports": [{"name": "a", "port": 500}], "sizes": [50]})
    # the old port moves and a new one joins; the atomic list gains an item: all of it is new
    errors, warned = _checked(schema, _cr({"ports": [{"name": "b", "port": 1}, {"name": "a", "port": 500}],
                                           "sizes": [50, 1]}), old)
    assert errors == ["spec.sizes[0]: Invalid value: 50: spec.sizes[0] in body should be less than or equal to 10"]
    assert warned == []  # schema errors are dropped without a warning
    errors, _ = _checked(schema, _cr({"note": "x", "ports": [{"name": "a", "port": 500}], "sizes": [50]}), old)
    assert errors == []
