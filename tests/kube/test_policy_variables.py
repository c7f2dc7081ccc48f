"""ValidatingAdmissionPolicy `variables` as upstream's composition (`lks.kube.cel.composition`,
`lks.kube.policy.evaluate`): each computed when an expression first reads it and at most once;
one that no expression reads (or only a branch not taken) is never computed, so its error fails
nothing; one that fails fails the expressions that read it with `composited variable "<name>"
fails to evaluate: <error>`; an authorizer check inside a variable is answered and the
expression run again."""

from __future__ import annotations

import pytest

from lks.kube import cel
from lks.kube.policy import compiled, evaluate

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
          "spec": {"replicas": 3}}


def _policy(validations: list[dict], variables: list[dict], **spec) -> compiled.Policy:
    return compiled.Policy.compile({"metadata": {"name": "p"}, "spec": {
        "matchConstraints": {"resourceRules": []}, "validations": validations, "variables": variables, **spec}})


async def _messages(policy: compiled.Policy, activation: dict | None = None) -> list[str]:
    result = await evaluate.evaluate(policy, activation or {"object": DEPLOY})
    return [d.message for d in result.decisions]


BAD = {"name": "bad", "expression": "object.spec.missing.x > 0"}


@pytest.mark.parametrize("validation", [
    pytest.param("variables.replicas <= 5", id="never-read"),
    pytest.param("variables.replicas <= 5 || variables.bad", id="branch-not-taken-or"),
    pytest.param("!(variables.replicas > 5 && variables.bad)", id="branch-not-taken-and"),
    pytest.param("variables.replicas > 5 ? variables.bad : true", id="branch-not-taken-ternary"),
])
async def test_a_failing_variable_nothing_reads_fails_nothing(validation):
    policy = _policy([{"expression": validation}], [BAD, {"name": "replicas", "expression": "object.spec.replicas"}])
    assert await _messages(policy) == []


async def test_a_failing_variable_fails_the_expression_that_reads_it_in_upstreams_words():
    policy = _policy([{"expression": "variables.bad"}], [BAD])
    assert await _messages(policy) == [
        "expression 'variables.bad' resulted in error: composited variable \"bad\" fails to evaluate: "
        "no such key: missing"]


async def test_a_variable_reading_a_failed_one_fails_with_its_error_wrapped():
    policy = _policy([{"expression": "variables.double"}],
                     [BAD, {"name": "double", "expression": "variables.bad && true"}])
    assert await _messages(policy) == [
        "expression 'variables.double' resulted in error: composited variable \"double\" fails to evaluate: "
        "composited variable \"bad\" fails to evaluate: no such key: missing"]


async def test_match_conditions_and_messages_read_variables_lazily():
    policy = _policy([{"expression": "variables.replicas < 2", "messageExpression": "'has ' + string(variables.replicas)"}],
                     [BAD, {"name": "replicas", "expression": "object.spec.replicas"}],
                     matchConditions=[{"name": "m", "expression": "variables.replicas > 0"}])
    assert await _messages(policy) == ["has 3"]


async def test_a_variable_is_computed_once_per_evaluation(monkeypatch):
    policy = _policy([{"expression": "variables.n > 0"}, {"expression": "variables.n < 10"},
                      {"expression": "variables.n + variables.n == 6"}],
                     [{"name": "n", "expression": "object.spec.replicas"}])
    runs = []
    program = policy.variables[0][1].program
    original = cel.Program.run

    def counting(self, activation):
        if self is program:
            runs.append(1)
        return original(self, activation)

    monkeypatch.setattr(cel.Program, "run", counting)
    assert await _messages(policy) == []
    assert len(runs) == 1
    await _messages(policy)
    assert len(runs) == 2  # a new evaluation computes it again


async def test_null_variables_and_the_whole_map():
    policy = _policy([{"expression": "variables.none == null"}, {"expression": "has(variables.none)"}],
                     [{"name": "none", "expression": "null"}])
    assert await _messages(policy) == []


async def test_an_authorizer_check_inside_a_variable_is_answered():
    asked = []

    async def check(c: cel.Check) -> cel.Decision:
        asked.append(c.resource)
        return cel.Decision("Allow" if c.resource == "pods" else "Deny")

    policy = _policy([{"expression": "variables.pods && !variables.secrets"}],
                     [{"name": "pods", "expression": "authorizer.group('').resource('pods').check('get').allowed()"},
                      {"name": "secrets", "expression": "authorizer.group('').resource('secrets').check('get').allowed()"}])
    authz = cel.Authorizer(check)
    assert await _messages(policy, {"object": DEPLOY, "authorizer": authz}) == []
    assert sorted(asked) == ["pods", "secrets"]


async def test_failure_policy_ignore_admits_a_read_failing_variable():
    policy = _policy([{"expression": "variables.bad"}], [BAD], failurePolicy="Ignore")
    assert await _messages(policy) == []
