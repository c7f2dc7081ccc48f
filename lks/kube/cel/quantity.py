"""Kubernetes' quantity library (`library/quantity.go`): `quantity("1Gi")`, `isQuantity`, and the
methods of a quantity. A quantity is a tagged value holding its exact value (a fraction), so
that `quantity("1Gi") == quantity("1024Mi")` as upstream's `Equal`."""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

from lks.kube.cel.library import EvalError, function, kind_of, require, tagged, text_of
from lks.kube.structural import QuantityError, parse_quantity

_INT64 = 2**63


def make(value: Fraction) -> str:
    return tagged("quantity", str(value))


@functools.lru_cache(maxsize=1024)
def value_of(q: str) -> Fraction:
    return Fraction(text_of(q))


@function("quantity", str)
def quantity(text: str) -> str:
    try:
        return make(parse_quantity(text).value)
    except QuantityError as err:
        raise EvalError(str(err)) from None


@function("isQuantity", str)
def is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def _operand(other: Any, name: str, ints: bool = False) -> Fraction:
    """The other side of an operation: a quantity (or an int, for `add` and `sub`)."""
    if kind_of(other) == "quantity":
        return value_of(other)
    if not ints:
        raise EvalError("no such overload")
    return Fraction(require(other, int, name))


@function("sign", "quantity")
def sign(q: str) -> int:
    v = value_of(q)
    return (v > 0) - (v < 0)


@function("isInteger", "quantity")
def is_integer(q: str) -> bool:
    v = value_of(q)
    return v.denominator == 1 and -_INT64 <= v < _INT64


@function("asInteger", "quantity")
def as_integer(q: str) -> int:
    if not is_integer(q):
        raise EvalError("cannot convert value to integer")
    return int(value_of(q))


@function("asApproximateFloat", "quantity")
def as_approximate_float(q: str) -> float:
    return float(value_of(q))


@function("add", "quantity")
def add(q: str, other: Any) -> str:
    return make(value_of(q) + _operand(other, "add", ints=True))


@function("sub", "quantity")
def sub(q: str, other: Any) -> str:
    return make(value_of(q) - _operand(other, "sub", ints=True))


@function("isGreaterThan", "quantity")
def is_greater_than(q: str, other: Any) -> bool:
    return value_of(q) > _operand(other, "isGreaterThan")


@function("isLessThan", "quantity")
def is_less_than(q: str, other: Any) -> bool:
    return value_of(q) < _operand(other, "isLessThan")


@function("compareTo", "quantity")
def compare_to(q: str, other: Any) -> int:
    a, b = value_of(q), _operand(other, "compareTo")
    return (a > b) - (a < b)
