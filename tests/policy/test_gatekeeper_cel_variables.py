"""K8sNativeValidation `variables` as upstream's composition evaluates them: each at most once per
evaluation and only when read (a lazy map), in declaration order with the ones before it in scope,
a failing one failing the expressions that read it; one constraint's values never another's."""

from __future__ import annotations

from typing import Any

import pytest

from lks.kube import cel
from lks.policy.gatekeeper import engines


def _review(obj: dict) -> dict:
    return {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": obj, "namespace": "team",
            "name": obj["metadata"]["name"], "operation": "CREATE"}


def _pod(*images: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team", "labels": labels or {}},
            "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}}


@pytest.fixture
def runs(monkeypatch):
    """How many times each expression ran (by its text as the engine compiled it)."""
    counts: dict[str, int] = {}
    run = cel.Program.run

    def counted(self: cel.Program, activation: Any) -> Any:
        counts[self.expression] = counts.get(self.expression, 0) + 1
        return run(self, activation)

    monkeypatch.setattr(cel.Program, "run", counted)
    return counts


class _Binding:
    """The review's interpreter context, counting what is bound to it (each binding discards the
    interpreter's environment: the object under review is converted again)."""

    def __init__(self, real: Any):
        self.real, self.bound = real, []

    def add_variable(self, name: str, value: Any) -> None:
        self.bound.append(name)
        self.real.add_variable(name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def bindings(monkeypatch, runs) -> list[str]:
    """The names bound to the review's activations, in order."""
    bound: list[str] = []
    activation, run = cel.activation, cel.Program.run

    def counting(*args: Any) -> cel.Activation:
        act = activation(*args)
        act.context = _Binding(act.context)
        act.context.bound = bound
        bound.append(f"<activation {len([b for b in bound if b.startswith('<activation')])}>")
        return act

    def unwrapped(self: cel.Program, act: Any) -> Any:  # the interpreter takes only its own context
        ctx = act.context
        act.context = ctx.real if isinstance(ctx, _Binding) else ctx
        try:
            return run(self, act)
        finally:
            act.context = ctx

    monkeypatch.setattr(cel, "activation", counting)
    monkeypatch.setattr(cel.Program, "run", unwrapped)
    return bound


def _ran(counts: dict[str, int], fragment: str) -> int:
    return sum(n for expression, n in counts.items() if fragment in expression)


TEMPLATE = {
    "variables": [
        {"name": "containers", "expression": "variables.anyObject.spec.containers // v1-containers"},
        # refers to the one before it
        {"name": "bad", "expression": "variables.containers.filter(c, c.image.endsWith(':latest')) // v1-bad"},
        {"name": "names", "expression": "variables.bad.map(c, c.name) // v1-names"},
        {"name": "unused", "expression": "variables.anyObject.spec.containers.size() // v1-unused"},
    ],
    "validations": [
        {"expression": "size(variables.bad) == 0", "messageExpression": "'latest: ' + variables.names.join(', ')"},
        {"expression": "variables.bad.all(c, c.name != 'forbidden')"},
        {"expression": "size(variables.names) < 3", "message": "too many"},
    ],
}


def test_a_variable_read_by_several_expressions_is_evaluated_once(runs):
    program = engines.CELProgram(TEMPLATE)
    assert program.violations(_review(_pod("nginx:latest", "redis:latest")), None, {}) == [
        {"msg": "latest: c0, c1", "details": {}}]
    # `bad` is read by three validations, a messageExpression and `names`; `containers` by `bad`
    assert _ran(runs, "v1-containers") == 1
    assert _ran(runs, "v1-bad") == 1
    assert _ran(runs, "v1-names") == 1
    assert _ran(runs, "v1-unused") == 0  # never read: never evaluated


def test_constraints_sharing_a_review_bind_nothing_per_variable(bindings, runs):
    program = engines.CELProgram(TEMPLATE)
    review, shared = _review(_pod("nginx:latest", "redis")), {}
    for i in range(25):  # 25 constraints (parameters of their own: a review alike is not evaluated again)
        assert program.violations(review, {"n": i}, {}, shared) == [{"msg": "latest: c0", "details": {}}]
    assert _ran(runs, "v1-bad") == 25
    # the object and the rest bound once for the 25 evaluations (per activation: the checks', and
    # the messages' at the first violation): values are not bound one by one
    per_activation: list[list[str]] = []
    for name in bindings:
        if name.startswith("<activation"):
            per_activation.append([])
        else:
            per_activation[-1].append(name)
    assert per_activation and all(len(names) == len(set(names)) for names in per_activation), bindings
    assert len(per_activation) <= 2, bindings


def test_each_constraint_evaluates_its_own_variables_over_the_shared_review(runs):
    template = {"variables": [{"name": "wanted", "expression": "variables.params.label // v1-wanted"},
                              {"name": "has", "expression": "variables.wanted in variables.anyObject.metadata.labels"}],
                "validations": [{"expression": "variables.has", "messageExpression": "'missing ' + variables.wanted"}]}
    program = engines.CELProgram(template)
    review, shared = _review(_pod("nginx", labels={"app": "x"})), {}
    assert program.violations(review, {"label": "app"}, {}, shared) == []
    assert program.violations(review, {"label": "owner"}, {}, shared) == [{"msg": "missing owner", "details": {}}]
    other = _review(_pod("nginx", labels={"app": "y"}))  # (the same review again: known compliant, not evaluated)
    assert program.violations(other, {"label": "app"}, {}, {}) == []
    assert _ran(runs, "v1-wanted") == 3  # once per evaluation, not remembered from the one before


def test_variables_are_not_evaluated_when_a_match_condition_excludes_the_object(runs):
    template = {**TEMPLATE, "matchConditions": [
        {"name": "has-latest", "expression": "variables.anyObject.spec.containers.exists(c, c.image == 'x')"}]}
    assert engines.CELProgram(template).violations(_review(_pod("nginx:latest")), None, {}) == []
    assert _ran(runs, "// v1-") == 0


def test_a_failing_variable_fails_the_expressions_that_read_it_and_only_them():
    template = {"variables": [{"name": "port", "expression": "variables.anyObject.spec.missing.port"},
                              {"name": "double", "expression": "variables.port * 2"},
                              {"name": "fine", "expression": "1"}],
                "validations": [{"expression": "variables.double > 0"},
                                {"expression": "variables.fine == 1 || variables.port > 0"},
                                {"expression": "variables.fine == 2 && variables.port > 0", "message": "short"}]}
    out = engines.CELProgram(template).violations(_review(_pod("nginx")), None, {})
    assert out == [
        {"msg": "expression 'variables.double > 0' resulted in error: composited variable \"double\" fails to "
                "evaluate: composited variable \"port\" fails to evaluate: no such key: missing", "details": {}},
        {"msg": "short", "details": {}},  # `port` not reached: && short-circuits
    ]


def test_null_variables_and_the_variables_map_as_a_whole():
    template = {"variables": [{"name": "nothing", "expression": "null"},
                              {"name": "two", "expression": "2"}],
                "validations": [{"expression": "variables.nothing == null"},
                                {"expression": "has(variables.two) && variables['two'] == 2"},
                                {"expression": "!has(variables.three)"},
                                {"expression": "'variables.two' == 'variables.' + 'two'"}]}
    assert engines.CELProgram(template).violations(_review(_pod("nginx")), None, {}) == []
