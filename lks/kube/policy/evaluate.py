"""One policy evaluated for one binding and one param (upstream's `validating.validator`):
matchConditions first (any false: the policy does not apply), then every
validation (a false one denies with its messageExpression, message, or `failed expression: ...`),
and the audit annotations. Errors become decisions according to the policy's failurePolicy:
Fail denies, Ignore admits. `lks.kube.admission.validatingpolicy` applies the decisions with the
binding's validationActions.

The activation is converted for CEL once per binding and param and shared by every expression
of the policy; `variables` are upstream's lazy composition (`lks.kube.cel.composition`): each
is computed when an expression first reads it, once, and one no expression reads never runs
(its error fails nothing). A policy whose expressions could exceed the runtime cost limits (`Policy.costly`) has each expression's cost estimated with the
request's sizes before it runs (`lks.kube.cel.cost`): over `PerCallLimit` it fails as cel-go's
`operation cancelled: actual cost limit exceeded`, and once the binding's budget is spent nothing
further runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lks.kube import cel
from lks.kube.cel import authorizer, composition
from lks.kube.cel import cost as celcost
from lks.kube.policy.compiled import Expr, Policy

MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes


@dataclass(slots=True)
class Decision:
    deny: bool
    message: str = ""
    reason: str = ""
    error: bool = False  # an evaluation error (failurePolicy Fail), not a false validation
    index: int = 0  # of the validation


@dataclass(slots=True)
class Result:
    decisions: list[Decision] = field(default_factory=list)  # acted on as the binding's actions say
    failures: list[Decision] = field(default_factory=list)  # audit annotation errors: always denied
    annotations: list[tuple[str, str]] = field(default_factory=list)  # (key, value) to publish


class _Failed(Exception):
    pass


class _OutOfBudget(Exception):
    pass


OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"


class _Budget:
    """What is left of one binding's runtime cost budget (celconfig.RuntimeCELCostBudget), and
    the values the expressions' costs are estimated on (lks.kube.cel.cost)."""

    __slots__ = ("remaining", "values")

    def __init__(self, values: Mapping[str, Any]):
        self.remaining = celcost.RUNTIME_BUDGET
        self.values = values

    def charge(self, expr: Expr) -> None:
        spent = expr.runtime_cost(self.values)
        if spent > celcost.PER_CALL_LIMIT:
            self.remaining -= celcost.PER_CALL_LIMIT
            if self.remaining < 0:
                raise _OutOfBudget
            raise _Failed(f"expression '{expr.source}' resulted in error: operation cancelled: actual cost limit "
                          "exceeded")
        self.remaining -= spent
        if self.remaining < 0:
            raise _OutOfBudget


async def _run(expr: Expr, ctx: cel.Activation, state: composition.Variables | None,
               budget: _Budget | None = None) -> Any:
    if expr.program is None:
        raise _Failed(f"compilation error: {expr.error}")
    if budget is not None:
        budget.charge(expr)
    while True:  # an authorizer check (in the expression or a variable it reads) answered, then again
        try:
            return state.run(expr.program) if state is not None else expr.program.run(ctx)
        except authorizer.Pending as pending:
            await ctx.authorizer.resolve(pending.check)
        except cel.EvalError as err:
            raise _Failed(f"expression '{expr.source}' resulted in error: {err}") from err


async def evaluate(policy: Policy, activation: Mapping[str, Any]) -> Result:
    fail = policy.failure_policy != "Ignore"
    try:
        return await _evaluate(policy, activation, fail)
    except _OutOfBudget:
        return Result([Decision(True, OUT_OF_BUDGET, error=True)]) if fail else Result()


def _variables(policy: Policy, ctx: cel.Activation, budget: _Budget | None,
               computed: dict[str, Any]) -> composition.Variables:
    """The evaluation's lazy `variables` (upstream's composition): each computed when an
    expression first reads it, and its cost counted then; `computed`: their values so far, by
    name (the sizes the cost estimates read)."""

    def evaluate(item: Expr | cel.Program) -> Any:
        if not isinstance(item, Expr):  # one of the policy's other expressions
            return item.run(ctx)
        if item.program is None:
            raise cel.EvalError(f"compilation error: {item.error}")
        if budget is not None:
            try:
                budget.charge(item)
            except _Failed:
                raise cel.EvalError("operation cancelled: actual cost limit exceeded") from None
        value = computed[_name(item, policy)] = item.program.run(ctx)
        return value

    return composition.Variables({composition.PREFIX + name: expr for name, expr in policy.variables}, evaluate)


def _name(expr: Expr, policy: Policy) -> str:
    return next(name for name, e in policy.variables if e is expr)


async def _evaluate(policy: Policy, activation: Mapping[str, Any], fail: bool) -> Result:
    state: composition.Variables | None = None
    computed: dict[str, Any] = {}
    # the estimated cost is counted only for policies that could exceed a limit (lks.kube.cel.cost)
    budget = _Budget({**activation, "variables": computed}) if policy.costly else None
    if policy.variables:
        # every variable's name bound to null, for a null one (what the resolver's None falls through to)
        ctx = cel.Activation({**activation, **{composition.PREFIX + n: None for n, _ in policy.variables}},
                             policy.functions)
        state = _variables(policy, ctx, budget, computed)
        ctx.context.set_variable_resolver(state.resolve)
    else:
        ctx = cel.Activation(activation, policy.functions)

    errors = []
    for _, expr in policy.match_conditions:
        try:
            if await _run(expr, ctx, state) is False:
                return Result()
        except _Failed as err:
            errors.append(str(err))
    if errors:
        if not fail:
            return Result()
        message = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        return Result([Decision(True, message, error=True)])

    out = Result()
    for i, v in enumerate(policy.validations):
        try:
            ok = await _run(v.expr, ctx, state, budget)
        except _Failed as err:
            if fail:
                out.decisions.append(Decision(True, str(err), error=True, index=i))
            continue
        if ok is True:
            continue
        out.decisions.append(Decision(True, await _message(v, ctx, state, budget), v.reason, index=i))

    for key, expr in policy.audit_annotations:
        try:
            value = await _run(expr, ctx, state, budget)
        except _Failed as err:
            if fail:
                out.failures.append(Decision(True, str(err), error=True))
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            if fail:
                out.failures.append(Decision(True, (
                    f"valueExpression '{expr.source}' resulted in unsupported return type: {_cel_type(value)}. "
                    "Return type must be either string or null."), error=True))
            continue
        if value.strip():
            out.annotations.append((key, value.strip()))
    return out


async def _message(v: Any, ctx: cel.Activation, state: composition.Variables | None, budget: _Budget | None) -> str:
    """messageExpression's string if it gives a usable one, else message, else the expression."""
    if v.message_expr is not None:
        try:
            text = await _run(v.message_expr, ctx, state, budget)
        except _Failed:
            text = None
        if isinstance(text, str):
            text = text.strip()
            if text and len(text.encode()) <= MAX_MESSAGE_BYTES and "\n" not in text:
                return text
    if v.message:
        return v.message
    return f"failed expression: {v.expr.source.strip()}"


def _cel_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, (list, tuple)):
        return "list(dyn)"
    if isinstance(value, dict):
        return "map(string, dyn)"
    if isinstance(value, bytes):
        return "bytes"
    return type(value).__name__
