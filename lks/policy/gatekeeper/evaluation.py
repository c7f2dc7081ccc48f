"""The constraints that match one review, evaluated together: what the webhook and the audit call.

Each constraint's answer is its template program's `violations(review, parameters, inventory,
shared)`, but the Rego ones go to rego-cpp in one query (`lks.policy.rego.batch`: its fixed cost
per query is paid once per review, not once per constraint); CEL ones run one by one, sharing
the review's activation through `shared`. An answer is the constraint's violations (which may be
shared with other constraints and kept for the next audit: read, never changed) or the error its
program raised (the caller logs it and goes on, as Gatekeeper does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lks.policy.gatekeeper import engines

Obj = dict[str, Any]


def violations(entries: Sequence[tuple[engines.Program, Any]], review: Obj, inventory: Obj | None,
               shared: Obj) -> list[list[Obj] | Exception]:
    """The answer of every (program, parameters) in `entries`, in their order."""
    out: list[list[Obj] | Exception | None] = [None] * len(entries)
    rego = [i for i, (p, _) in enumerate(entries) if isinstance(p, engines.RegoProgram)]
    if len(rego) > 1:
        from lks.policy.rego import batch  # beside RegoProgram's own import: the engine is optional

        answers = batch.violations([(entries[i][0].program, entries[i][1]) for i in rego], review, inventory,
                                   shared)
        for i, answer in zip(rego, answers, strict=True):
            out[i] = answer
    for i, (program, parameters) in enumerate(entries):
        if out[i] is None:
            try:
                out[i] = program.violations(review, parameters, inventory, shared)
            except Exception as err:  # a program that fails is its constraint's error, not the caller's
                out[i] = err
    return out  # type: ignore[return-value]
