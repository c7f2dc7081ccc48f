"""Variable composition as upstream's (`admission/plugin/cel/composition.go`): the `variables`
of a ValidatingAdmissionPolicy or a Gatekeeper K8sNativeValidation template are a lazy map,
each variable computed the first time an expression reads it and at most once per evaluation,
with the variables before it in scope. One that fails fails every expression that reads it with
`composited variable "<name>" fails to evaluate: <error>`; one no expression reads is never
computed, so its error fails nothing.

`rewrite` turns `variables.<name>` into a top-level name once, at compile time, so that a read
reaches the interpreter's variable resolver by name; `Variables` is one evaluation's state, and
its `resolve` is that resolver. Callers: `lks.kube.policy.evaluate` (policies) and
`lks.policy.gatekeeper.engines` (templates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lks.kube.cel import authorizer, source
from lks.kube.cel.library import EvalError

PREFIX = "lksVariable_"  # + name; undeclared in what users write, so never one of their names


def rewrite(expression: str, declared: Mapping[str, str]) -> str:
    """`variables.<name>` of the `declared` variables (name -> the top-level name it is read as)
    as that top-level name; tokens, not text, so a string literal that mentions one stays as it
    is. `has(variables.x)` stays a test of the whole map."""
    try:
        toks = source.tokens(expression)
    except source.SyntaxProblem:
        return expression
    out, last = [], 0
    for i in range(len(toks) - 2):
        a, dot, b = toks[i], toks[i + 1], toks[i + 2]
        if a.kind != "ident" or a.text != "variables" or dot.text != "." or b.kind != "ident" \
                or b.text not in declared or (i and toks[i - 1].text == "."):
            continue
        if i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text == "has" and i + 3 < len(toks) \
                and toks[i + 3].text == ")":
            continue
        out.append(expression[last:a.pos])
        out.append(declared[b.text])
        last = b.pos + len(b.text)
    out.append(expression[last:])
    return "".join(out)


class Variables:
    """One evaluation's variables. `programs`: by the top-level name each is read as (in
    declaration order); `evaluate(program)` runs one program over the evaluation's activation
    (raising EvalError). `resolve` is the activation's variable resolver; `run` runs an
    expression so that a failed variable it read is its error. Errors that are not evaluation
    errors (an authorizer check to answer first, a spent cost budget) are not cached: they leave
    the resolver and are raised again by `run`, for the caller to act on and run again."""

    __slots__ = ("programs", "evaluate", "prefix", "values", "failed", "pending", "reading", "escaped")

    def __init__(self, programs: Mapping[str, Any], evaluate: Callable[[Any], Any], prefix: str = PREFIX):
        self.programs, self.evaluate, self.prefix = programs, evaluate, prefix
        self.values: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.pending: set[str] = set()  # being computed (a variable cannot read itself)
        self.reading: list[str] | None = None  # the failed variables the running expression read
        self.escaped: BaseException | None = None

    def resolve(self, name: str) -> Any:
        """The interpreter's resolver: None falls through to what the activation binds (every
        variable's name is bound to null there, so that a null variable reads as one)."""
        if self.escaped is not None:
            return None
        if name == "variables":  # read as a whole (`has(variables.x)`, `variables[k]`)
            return self.all()
        if name not in self.programs:
            return None
        try:
            return self.get(name)
        except Exception as err:  # noqa: BLE001 (raised again by `run`, out of the interpreter's callback)
            if self.escaped is None:
                self.escaped = err
            return None

    def get(self, name: str) -> Any:
        if name not in self.values and name not in self.failed and name not in self.pending:
            self.pending.add(name)
            try:
                self.values[name] = self.run(self.programs[name])
            except authorizer.Pending:
                raise
            except EvalError as err:
                if self.escaped is not None:  # not this variable's own failure: computed again later
                    raise
                self.failed[name] = f'composited variable "{name.removeprefix(self.prefix)}" fails to evaluate: {err}'
            finally:
                self.pending.discard(name)
        if name in self.failed and self.reading is not None:
            self.reading.append(name)
        return self.values.get(name)

    def all(self) -> dict[str, Any]:
        return {name.removeprefix(self.prefix): self.get(name) for name in self.programs if name not in self.pending}

    def run(self, program: Any, evaluate: Callable[[Any], Any] | None = None) -> Any:
        """`evaluate(program)` (`evaluate`: another way than the variables' own), failing with
        the error of a failed variable it read."""
        outer, self.reading = self.reading, []
        try:
            value = (evaluate or self.evaluate)(program)
        except authorizer.Pending:
            raise
        except EvalError:
            if self.escaped is None and not self.reading:
                raise
            value = None  # the variable's failure (or what escaped) is the error to report
        finally:
            read, self.reading = self.reading, outer
        if self.escaped is not None and outer is None:
            escaped, self.escaped = self.escaped, None
            raise escaped
        if self.escaped is not None:
            raise EvalError("interrupted")  # the outermost run raises what escaped
        if read:
            raise EvalError(self.failed[read[0]])
        return value
