"""One policy evaluated for one binding and one param (upstream's `validating.validator`):
matchConditions first (any false: the policy does not apply), then `variables` in order, every
validation (a false one denies with its messageExpression, message, or `failed expression: ...`),
and the audit annotations. Errors become decisions according to the policy's failurePolicy:
Fail denies, Ignore admits. `lks.kube.admission.validatingpolicy` applies the decisions with the
binding's validationActions.

The activation is converted for CEL once per binding and param and shared by every expression
of the policy; `variables` are looked up as they are computed. A policy whose expressions could
exceed the runtime cost limits (`Policy.costly`) has each expression's cost estimated with the
request's sizes before it runs (`lks.kube.cel.cost`): over `PerCallLimit` it fails as cel-go's
`operation cancelled: actual cost limit exceeded`, and once the binding's budget is spent nothing
further runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lks.kube import cel
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


async def _run(expr: Expr, ctx: cel.Activation, var_errors: Mapping[str, str], budget: _Budget | None = None) -> Any:
    if expr.program is None:
        raise _Failed(f"compilation error: {expr.error}")
    for name, why in var_errors.items():
        if f"variables.{name}" in expr.source:
            raise _Failed(f"expression '{expr.source}' resulted in error: {why}")
    if budget is not None:
        budget.charge(expr)
    try:
        return await expr.program.run_async(ctx)
    except cel.EvalError as err:
        raise _Failed(f"expression '{expr.source}' resulted in error: {err}") from err


async def evaluate(policy: Policy, activation: Mapping[str, Any]) -> Result:
    fail = policy.failure_policy != "Ignore"
    try:
        return await _evaluate(policy, activation, fail)
    except _OutOfBudget:
        return Result([Decision(True, OUT_OF_BUDGET, error=True)]) if fail else Result()


async def _evaluate(policy: Policy, activation: Mapping[str, Any], fail: bool) -> Result:
    ctx = cel.Activation(activation, policy.functions)
    variables: dict[str, Any] = {}
    if policy.variables:  # a resolver is asked for every name: only when there are variables
        ctx.context.set_variable_resolver(lambda name: variables if name == "variables" else None)
    var_errors: dict[str, str] = {}
    # the estimated cost is counted only for policies that could exceed a limit (lks.kube.cel.cost)
    budget = _Budget({**activation, "variables": variables}) if policy.costly else None

    # variables first (matchConditions may use them), each seeing the ones before it
    for name, expr in policy.variables:
        try:
            variables[name] = await _run(expr, ctx, var_errors, budget)
        except _Failed as err:
            var_errors[name] = f"composited variable \"{name}\" fails to evaluate: {err}"

    errors = []
    for _, expr in policy.match_conditions:
        try:
            if await _run(expr, ctx, var_errors) is False:
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
            ok = await _run(v.expr, ctx, var_errors, budget)
        except _Failed as err:
            if fail:
                out.decisions.append(Decision(True, str(err), error=True, index=i))
            continue
        if ok is True:
            continue
        out.decisions.append(Decision(True, await _message(v, ctx, var_errors, budget), v.reason, index=i))

    for key, expr in policy.audit_annotations:
        try:
            value = await _run(expr, ctx, var_errors, budget)
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


async def _message(v: Any, ctx: cel.Activation, var_errors: Mapping[str, str], budget: _Budget | None) -> str:
    """messageExpression's string if it gives a usable one, else message, else the expression."""
    if v.message_expr is not None:
        try:
            text = await _run(v.message_expr, ctx, var_errors, budget)
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
