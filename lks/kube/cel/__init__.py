"""The Kubernetes CEL environment: `compile(expression, variables)` gives a `Program` whose
`run(activation)` evaluates it to a plain Python value, with the libraries kube-apiserver adds to
CEL (strings, lists, sets, regex, quantity, URL, IP/CIDR, format, authorizer, optional fields) on
top of the `cel` package's interpreter.

Compiling checks what the interpreter's parser does not (every identifier is declared) and
renders errors as cel-go does; programs are cached by expression, since many policies and CRD
rules share them. Callers: CRD validation rules (`lks.kube.crdvalidation`), admission policies
and webhook match conditions. `run` converts the activation once; to evaluate several programs
over one activation, build it once with `activation()`.

The interpreter neither types nor costs expressions: `parser` (an AST), `checker` (types, from
`types` and `signatures`) and `cost` (cel-go's estimate) do, at compile time, for the callers
that need them (CRD rules, admission policy type checking and budgets).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import cel as _cel

from lks.kube.cel import (  # noqa: F401  (each registers its functions)
    authorizer,
    formats,
    ips,
    lists,
    optional,
    quantity,
    regex,
    semver,
    source,
    strings,
    urls,
)
from lks.kube.cel.authorizer import Authorizer, Check, Decision  # noqa: F401  (re-exported)
from lks.kube.cel.library import FUNCTIONS, EvalError, failure

__all__ = ["CompileError", "EvalError", "Program", "Activation", "compile", "activation", "Authorizer", "Check",
           "Decision"]

DEFAULT_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "authorizer", "variables",
                     "self", "oldSelf")


class CompileError(Exception):
    """An expression that does not compile; str(err) is cel-go's text (`ERROR: <input>:1:1: ...`)."""


class Activation:
    """Variables converted once for the interpreter, to run several programs over."""

    __slots__ = ("context", "authorizer")

    def __init__(self, variables: Mapping[str, Any], functions: Mapping[str, Any] = FUNCTIONS):
        values = dict(variables)
        given = values.get("authorizer")
        self.authorizer = given if isinstance(given, Authorizer) else None
        if self.authorizer is not None:
            values["authorizer"] = self.authorizer.value()
        self.context = _cel.Context(values, functions=dict(functions))


def activation(variables: Mapping[str, Any], programs: Iterable[Program] = ()) -> Activation:
    """Variables to run several programs over: with only the functions `programs` call, when
    given (the interpreter's environment costs time per function)."""
    programs = list(programs)
    if not programs:
        return Activation(variables)
    functions: dict[str, Any] = {}
    for program in programs:
        functions.update(program._functions)
    return Activation(variables, functions)


class Program:
    """A compiled expression. `run` is synchronous; `run_async` also answers `authorizer` checks
    (which need the cluster's asynchronous authorizer) by evaluating again once each is known."""

    __slots__ = ("expression", "variables", "_program", "_functions")

    def __init__(self, expression: str, program: Any, variables: frozenset[str]):
        self.expression = expression
        self.variables = variables  # the declared variables it references
        self._program = program
        used = set(program.functions())  # a qualified name (`sets.contains`) is listed by its last part
        self._functions = {name: fn for name, fn in FUNCTIONS.items() if name.rpartition(".")[2] in used}

    def references(self, name: str) -> bool:
        return name in self.variables

    def run(self, activation: Mapping[str, Any] | Activation) -> Any:
        """The value of the expression; raises EvalError (cel-go's text) when evaluation fails."""
        if not isinstance(activation, Activation):
            activation = Activation(activation, self._functions)
        failure.error = None
        token = authorizer.current.set(activation.authorizer)
        try:
            return self._program.execute(activation.context)
        except Exception as err:
            raised, failure.error = failure.error, None
            if isinstance(raised, authorizer.Pending):
                raise raised from None
            raise (raised if isinstance(raised, EvalError) else EvalError(_message(err))) from None
        finally:
            authorizer.current.reset(token)

    async def run_async(self, activation: Mapping[str, Any] | Activation) -> Any:
        if not isinstance(activation, Activation):
            activation = Activation(activation, self._functions)
        while True:
            try:
                return self.run(activation)
            except authorizer.Pending as pending:
                await activation.authorizer.resolve(pending.check)


def _message(err: Exception) -> str:
    """cel-go's words for the interpreter's errors."""
    if isinstance(err, KeyError):
        return f"no such key: {err.args[0] if err.args else ''}"
    if isinstance(err, ZeroDivisionError):
        return "modulus by zero" if "modulo" in str(err) or "remainder" in str(err) else "division by zero"
    if isinstance(err, OverflowError):
        return "integer overflow"
    if isinstance(err, TypeError) or (isinstance(err, RuntimeError) and "Undefined" in str(err)):
        return "no such overload"
    text = str(err)
    wrapped = _FUNCTION_ERROR.fullmatch(text)  # a native function's own words, without the advice
    return wrapped.group(1) if wrapped else text


_FUNCTION_ERROR = re.compile(r"Function '[^']*' error: (.*?)\.? Check function arguments and their types\.", re.DOTALL)


def compile(expression: str, variables: Iterable[str] = DEFAULT_VARIABLES) -> Program:  # noqa: A001 (upstream's name)
    """Compile `expression` with `variables` declared; raises CompileError."""
    return _compile(expression, frozenset(variables))


@functools.lru_cache(maxsize=4096)
def _compile(expression: str, variables: frozenset[str]) -> Program:
    try:
        toks = source.tokens(expression)
    except source.SyntaxProblem:
        toks = None  # the parser reports what the lexer could not read
    text = source.rewrite(expression, toks) if toks else expression
    try:
        program = _cel.compile(text)
    except ValueError as err:
        raise CompileError(source.parse_error(_parse_failure(expression) or str(err))) from None
    if toks:
        bad = source.undeclared(toks, variables, FUNCTIONS)
        if bad:
            raise CompileError("\n".join(
                source.render(expression, t.pos, f"undeclared reference to '{_name(toks, t)}' (in container '')")
                for t in bad))
    return Program(expression, program, variables & set(program.variables()))


def _parse_failure(expression: str) -> str | None:
    """The parser's complaint about what the user wrote (positions before any rewriting)."""
    try:
        _cel.compile(expression)
    except ValueError as err:
        return str(err)
    return None


def _name(toks: list[source.Token], t: source.Token) -> str:
    """The name an undeclared token stands for (a member call is reported at its parenthesis)."""
    if t.text == "(":
        return toks[toks.index(t) - 1].text
    return t.text
