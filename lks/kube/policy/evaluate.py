"""One policy evaluated for one binding and one param (upstream's `validating.validator`):
matchConditions first (any false: the policy does not apply), then `variables` in order, every
validation (a false one denies with its messageExpression, message, or `failed expression: ...`),
and the audit annotations. Errors become decisions according to the policy's failurePolicy:
Fail denies, Ignore admits. `lks.kube.admission.validatingpolicy` applies the decisions with the
binding's validationActions.

The activation is converted for CEL once per binding and param and shared by every expression
of the policy; `variables` are looked up as they are computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lks.kube import cel
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


async def _run(expr: Expr, ctx: cel.Activation, var_errors: Mapping[str, str]) -> Any:
    if expr.program is None:
        raise _Failed(f"compilation error: {expr.error}")
    for name, why in var_errors.items():
        if f"variables.{name}" in expr.source:
            raise _Failed(f"expression '{expr.source}' resulted in error: {why}")
    try:
        return await expr.program.run_async(ctx)
    except cel.EvalError as err:
        raise _Failed(f"expression '{expr.source}' resulted in error: {err}") from err


async def evaluate(policy: Policy, activation: Mapping[str, Any]) -> Result:
    fail = policy.failure_policy != "Ignore"
    ctx = cel.Activation(activation, policy.functions)
    variables: dict[str, Any] = {}
    if policy.variables:  # a resolver is asked for every name: only when there are variables
        ctx.context.set_variable_resolver(lambda name: variables if name == "variables" else None)
    var_errors: dict[str, str] = {}

    # variables first (matchConditions may use them), each seeing the ones before it
    for name, expr in policy.variables:
        try:
            variables[name] = await _run(expr, ctx, var_errors)
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
            ok = await _run(v.expr, ctx, var_errors)
        except _Failed as err:
            if fail:
                out.decisions.append(Decision(True, str(err), error=True, index=i))
            continue
        if ok is True:
            continue
        out.decisions.append(Decision(True, await _message(v, ctx, var_errors), v.reason, index=i))

    for key, expr in policy.audit_annotations:
        try:
            value = await _run(expr, ctx, var_errors)
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


async def _message(v: Any, ctx: cel.Activation, var_errors: Mapping[str, str]) -> str:
    """messageExpression's string if it gives a usable one, else message, else the expression."""
    if v.message_expr is not None:
        try:
            text = await _run(v.message_expr, ctx, var_errors)
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
