"""CEL cost (lks.kube.cel.cost): the static estimate with a schema's bounds, CRDs refused over the
per-rule and CRD-wide limits in upstream's words, and the runtime limits (PerCallLimit,
RuntimeCELCostBudget) on custom resources and admission policies, estimated with actual sizes."""

from __future__ import annotations

import asyncio

import pytest

from lks.kube import crdrules, crdvalidation
from lks.kube.cel import cost
from lks.kube.policy import compiled, evaluate

P = "spec.validation.openAPIV3Schema"
ADVICE = ("(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and "
          "strings are declared)")


def _crd(spec: dict) -> dict:
    return {"metadata": {"name": "foos.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                     "conversion": {"strategy": "None"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}}]},
            "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}}


def _texts(spec: dict) -> list[str]:
    return [c.text() for c in crdvalidation.validate(_crd(spec))]


def _list(items: dict, rule: str, **bounds: int) -> dict:
    return {"type": "array", "items": items, **bounds, "x-kubernetes-validations": [{"rule": rule}]}


@pytest.mark.parametrize(("schema", "rule", "expected"), [
    pytest.param({"type": "integer"}, "self.all(x, x == 5)", 7864317, id="unbounded-ints"),
    pytest.param({"type": "string", "maxLength": 63}, "self.all(x, x.contains('gpu'))", 752, id="bounded-strings"),
    pytest.param({"type": "string", "maxLength": 10}, "self.exists(x, x.startsWith('a'))", 152, id="exists"),
], )
def test_static_estimates(schema: dict, rule: str, expected: int) -> None:
    spec = _list(schema, rule, **({"maxItems": 25} if schema.get("maxLength") == 63 else
                                  {"maxItems": 25} if schema.get("maxLength") == 10 else {}))
    assert crdrules.estimate(rule, spec, resource_root=False)[0] == expected


def test_an_unbounded_rule_is_accepted_and_a_nested_one_refused() -> None:
    assert _texts(_list({"type": "integer"}, "self.all(x, x == 5)")) == []
    texts = _texts(_list({"type": "array", "items": {"type": "integer"}}, "self.all(x, x.all(y, y == 5))"))
    assert texts == [
        f"{P}.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by "
        f"factor of more than 100x {ADVICE}",
        f"{P}.properties[spec].x-kubernetes-validations[0].rule: Forbidden: contributed to estimated rule cost total "
        "exceeding cost limit for entire OpenAPIv3 schema",
        f"{P}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds "
        f"budget by factor of more than 100x {ADVICE}"]


def test_the_factor_is_worded_as_upstream() -> None:
    assert cost.exceeds_message("estimated rule cost", 12_000_000, 10_000_000).startswith(
        "estimated rule cost exceeds budget by factor of 1.200000x (")
    assert cost.exceeds_message("x", 25_000_000, 10_000_000).startswith("x exceeds budget by factor of 2.5x (")


def test_a_rule_under_an_unbounded_list_is_multiplied_by_its_cardinality() -> None:
    item = {"type": "object", "properties": {"s": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.s.matches('^a+$')"}]}
    [text, *_] = _texts({"type": "object", "properties": {"l": {"type": "array", "items": item}}})
    assert text.startswith(f"{P}.properties[spec].properties[l].items.x-kubernetes-validations[0].rule: Forbidden: "
                           "estimated rule cost exceeds budget")
    bounded = {"type": "object", "properties": {"l": {"type": "array", "maxItems": 10, "items": {
        **item, "properties": {"s": {"type": "string", "maxLength": 100}}}}}}
    assert _texts(bounded) == []


# -- at runtime -----------------------------------------------------------------------------------

PAIRS = "self.tags.all(x, self.tags.exists(y, x == y))"


def _tags(rules: int) -> dict:
    return {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"tags": {"type": "array", "maxItems": 900,
                                                  "items": {"type": "string", "maxLength": 10}}},
        "x-kubernetes-validations": [{"rule": PAIRS.replace("x == y", f"x == y || {i} < 0")}
                                     for i in range(rules)]}}}


def test_the_crd_is_accepted_but_a_large_object_exceeds_the_per_call_limit() -> None:
    assert _texts(_tags(1)["properties"]["spec"]) == []
    root = crdrules.build(_tags(1))
    assert root is not None and root.budgeted
    assert root.validate({"spec": {"tags": [str(i) for i in range(50)]}}, None, "") == []
    [cause] = root.validate({"spec": {"tags": [str(i) for i in range(400)]}}, None, "")
    assert cause.text() == ('spec: Invalid value: "object": \'operation cancelled: actual cost limit exceeded\': '
                            f"call cost exceeds limit for rule: {PAIRS.replace('x == y', 'x == y || 0 < 0')}")


def test_the_objects_budget_runs_out() -> None:
    root = crdrules.build(_tags(12))
    causes = root.validate({"spec": {"tags": [str(i) for i in range(400)]}}, None, "")
    assert len(causes) == 10  # nine over the per-call limit, then the budget is spent
    assert causes[-1].text() == ('spec: Invalid value: "object": validation failed due to running out of cost '
                                 "budget, no further validation rules will be run")


def test_cheap_rules_are_not_counted() -> None:
    root = crdrules.build({"type": "object", "properties": {"n": {"type": "integer"}},
                           "x-kubernetes-validations": [{"rule": "self.n > 0"}]})
    assert root is not None and not root.budgeted


def _policy(expression: str, failure: str = "Fail") -> compiled.Policy:
    return compiled.Policy.compile({"metadata": {"name": "p", "uid": "u", "generation": 1}, "spec": {
        "failurePolicy": failure, "validations": [{"expression": expression}]}})


def test_a_policy_expression_over_the_per_call_limit_fails() -> None:
    expression = "object.data.all(k, object.data.exists(j, object.data[j] == object.data[k]))"
    policy = _policy(expression)
    assert policy.costly
    small = {"object": {"data": {str(i): "v" for i in range(10)}}}
    assert asyncio.run(evaluate.evaluate(policy, small)).decisions == []
    big = {"object": {"data": {str(i): "v" * 100 for i in range(400)}}}
    [decision] = asyncio.run(evaluate.evaluate(policy, big)).decisions
    assert decision.error and decision.message == (
        f"expression '{expression}' resulted in error: operation cancelled: actual cost limit exceeded")
    assert asyncio.run(evaluate.evaluate(_policy(expression, "Ignore"), big)).decisions == []


def test_a_policy_out_of_budget() -> None:
    expression = "object.data.all(k, object.data.exists(j, object.data[j] == object.data[k]))"
    policy = compiled.Policy.compile({"metadata": {"name": "p"}, "spec": {
        "failurePolicy": "Fail", "validations": [{"expression": expression}] * 11}})
    big = {"object": {"data": {str(i): "v" * 100 for i in range(400)}}}
    [decision] = asyncio.run(evaluate.evaluate(policy, big)).decisions
    assert decision.message == evaluate.OUT_OF_BUDGET


def test_a_simple_policy_is_not_counted() -> None:
    assert not _policy("object.spec.replicas <= 5").costly
