"""The registry of the Kubernetes CEL functions lks adds to the `cel` package, and the values
they trade in.

A function is registered per receiver type with `@function(name, type)`; overloads of one name
(`indexOf` on strings and on lists) share one callable that dispatches on its first argument,
as cel-go picks an overload. `cel` callbacks can only return CEL values, so the opaque types of
the Kubernetes libraries travel as CEL values with a mark: quantity, URL, IP, CIDR and format
as strings `"\0kind\0text"` (`tagged`; strings are what the interpreter converts fastest, maps
cost it several times more), the authorizer's builders as maps with a `TYPE` key (`opaque`).
Their text is canonical so that `==` compares them as upstream's `Equal` does.

An error raised in a callback reaches Python again only as the interpreter's RuntimeError text,
so the callback records it in `failure` and `lks.kube.cel.Program.run` raises the recorded one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

TYPE = "\x00cel-type"  # no JSON object a user sends has a key with a NUL in it
TAG = "\x00"  # nor starts a string with one

# Exceptions from callbacks are expected (they are CEL evaluation errors, reported by the caller):
# the `cel` package's own log line for each would only be noise.
logging.getLogger("cel").setLevel(logging.CRITICAL)


class EvalError(Exception):
    """An evaluation error; str(err) is cel-go's text ("no such key: x")."""


class Failure:
    """The first exception a callback raised during the current evaluation (one evaluation at a
    time: the interpreter calls back synchronously on the caller's thread)."""

    error: BaseException | None = None


failure = Failure()

Receiver = type | str | None  # a Python type, an opaque kind, or None: any first argument
_OVERLOADS: dict[str, list[tuple[Receiver, Callable[..., Any]]]] = {}
FUNCTIONS: dict[str, Callable[..., Any]] = {}


def opaque(kind: str, **fields: Any) -> dict[str, Any]:
    return {TYPE: kind, **fields}


def tagged(kind: str, text: str) -> str:
    return f"{TAG}{kind}{TAG}{text}"


def text_of(value: str) -> str:
    """The text of a tagged value."""
    return value[value.index(TAG, 1) + 1:]


def kind_of(value: Any) -> str | None:
    if type(value) is str:
        return value[1:value.index(TAG, 1)] if value[:1] == TAG else None
    return value.get(TYPE) if type(value) is dict else None


def function(name: str, receiver: Receiver = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` as `name` for first arguments of `receiver`."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        overloads = _OVERLOADS.setdefault(name, [])
        overloads.append((receiver, fn))
        FUNCTIONS[name] = _dispatcher(name, overloads)
        return fn
    return register


def _matches(receiver: Receiver, value: Any) -> bool:
    if receiver is None:
        return True
    if isinstance(receiver, str):
        return kind_of(value) == receiver
    if receiver is int:
        return type(value) is int
    if receiver is dict:
        return type(value) is dict and TYPE not in value
    if receiver is str:
        return type(value) is str and value[:1] != TAG
    return isinstance(value, receiver)


def _dispatcher(name: str, overloads: list[tuple[Receiver, Callable[..., Any]]]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            first = args[0] if args else None
            for receiver, fn in overloads:
                if _matches(receiver, first):
                    return fn(*args)
            raise EvalError("no such overload")
        except BaseException as err:
            if failure.error is None:
                failure.error = err if isinstance(err, EvalError) else EvalError(_message(err))
            raise
    call.__name__ = name
    return call


def _message(err: BaseException) -> str:
    if isinstance(err, TypeError):  # a wrong number or type of arguments
        return "no such overload"
    return str(err)


def cel_equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality on Python values: numbers by value, but a bool is no number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def require(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise EvalError("no such overload")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
