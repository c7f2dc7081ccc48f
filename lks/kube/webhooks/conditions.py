"""A webhook's `matchConditions` (upstream's `webhook/matchconditions`): CEL expressions over
`object`, `oldObject`, `request` and `authorizer`, compiled once with the configuration
(`lks.kube.cel`). Any condition false skips the webhook, whatever the others did; otherwise an
error fails as the webhook's failurePolicy says (Fail: a 403 naming the errors; Ignore: the
webhook is skipped); all true calls it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lks.kube import cel

Obj = dict[str, Any]

NAMES = frozenset(("object", "oldObject", "request", "authorizer"))  # no params, as upstream's webhooks


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    expression: str
    program: cel.Program | None
    error: str = ""  # why it did not compile (stored before a check existed)


def compile(conditions: list[Obj]) -> tuple[Condition, ...]:
    out = []
    for c in conditions:
        expression = c.get("expression") or ""
        try:
            out.append(Condition(c.get("name") or "", expression, cel.compile(expression, NAMES)))
        except cel.CompileError as err:
            out.append(Condition(c.get("name") or "", expression, None, f"compilation failed: {err}"))
    return tuple(out)


def compile_error(expression: str) -> str | None:
    """Why `expression` does not compile as a match condition (None: it does)."""
    try:
        cel.compile(expression, NAMES)
    except cel.CompileError as err:
        return f"compilation failed: {err}"
    return None


async def match(conditions: tuple[Condition, ...], variables: Callable[[], Awaitable[Obj]]) -> tuple[bool, str]:
    """(whether the webhook applies, the errors when some condition failed to evaluate)."""
    activation = cel.activation(await variables(), [c.program for c in conditions if c.program is not None])
    errors: list[str] = []
    for c in conditions:
        if c.program is None:
            errors.append(f"compilation error: {c.error}")
            continue
        try:
            value = await c.program.run_async(activation)
        except cel.EvalError as err:
            errors.append(f"expression '{c.expression}' resulted in error: {err}")
            continue
        if value is False:
            return False, ""
        if value is not True:
            errors.append(f"expression '{c.expression}' resulted in error: no such overload")
    if errors:
        return True, errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    return True, ""
