"""Kubernetes' quantity library (`library/quantity.go`): `quantity("1Gi")`, `isQuantity`, and the
methods of a quantity. A quantity is an opaque map holding its exact value (a fraction), so that
`quantity("1Gi") == quantity("1024Mi")` as upstream's `Equal`."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from lks.kube.cel.library import EvalError, function, kind_of, opaque, require
from lks.kube.structural import QuantityError, parse_quantity

_INT64 = 2**63


def make(value: Fraction) -> dict[str, Any]:
    return opaque("quantity", value=str(value))


def value_of(q: dict[str, Any]) -> Fraction:
    return Fraction(q["value"])


@function("quantity", str)
def quantity(text: str) -> dict[str, Any]:
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
        raise EvalError(f"no such overload: {name}")
    return Fraction(require(other, int, name))


@function("sign", "quantity")
def sign(q: dict[str, Any]) -> int:
    v = value_of(q)
    return (v > 0) - (v < 0)


@function("isInteger", "quantity")
def is_integer(q: dict[str, Any]) -> bool:
    v = value_of(q)
    return v.denominator == 1 and -_INT64 <= v < _INT64


@function("asInteger", "quantity")
def as_integer(q: dict[str, Any]) -> int:
    if not is_integer(q):
        raise EvalError("cannot convert value to integer")
    return int(value_of(q))


@function("asApproximateFloat", "quantity")
def as_approximate_float(q: dict[str, Any]) -> float:
    return float(value_of(q))


@function("add", "quantity")
def add(q: dict[str, Any], other: Any) -> dict[str, Any]:
    return make(value_of(q) + _operand(other, "add", ints=True))


@function("sub", "quantity")
def sub(q: dict[str, Any], other: Any) -> dict[str, Any]:
    return make(value_of(q) - _operand(other, "sub", ints=True))


@function("isGreaterThan", "quantity")
def is_greater_than(q: dict[str, Any], other: Any) -> bool:
    return value_of(q) > _operand(other, "isGreaterThan")


@function("isLessThan", "quantity")
def is_less_than(q: dict[str, Any], other: Any) -> bool:
    return value_of(q) < _operand(other, "isLessThan")


@function("compareTo", "quantity")
def compare_to(q: dict[str, Any], other: Any) -> int:
    a, b = value_of(q), _operand(other, "compareTo")
    return (a > b) - (a < b)
