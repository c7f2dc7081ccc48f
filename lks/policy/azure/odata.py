"""The OData `$filter` subset policy state queries take: comparisons `Field eq|ne 'text'|true|false|
number`, joined with `and` / `or` (and binding tighter), optionally parenthesised once per clause,
field names in any case (`ComplianceState eq 'NonCompliant' and PolicyAssignmentName eq 'a1'`).
`predicate` turns a filter into a predicate over a state record, or raises `FilterError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]
_TOKEN = re.compile(r"\s*(?:(?P<lp>\()|(?P<rp>\))|'(?P<str>(?:[^']|'')*)'|(?P<word>[A-Za-z_][\w.]*)"
                    r"|(?P<num>-?\d+(?:\.\d+)?))")


class FilterError(ValueError):
    pass


def predicate(text: str) -> Callable[[Doc], bool]:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError(f"Invalid $filter '{text}': unexpected end of expression.")
        pos += 1
        return tokens[pos - 1]

    def disjunction() -> Callable[[Doc], bool]:
        terms = [conjunction()]
        while (t := peek()) and t == ("word", "or"):
            take()
            terms.append(conjunction())
        return lambda s: any(f(s) for f in terms)

    def conjunction() -> Callable[[Doc], bool]:
        terms = [primary()]
        while (t := peek()) and t == ("word", "and"):
            take()
            terms.append(primary())
        return lambda s: all(f(s) for f in terms)

    def primary() -> Callable[[Doc], bool]:
        kind, value = take()
        if kind == "lp":
            inner = disjunction()
            if take()[0] != "rp":
                raise FilterError(f"Invalid $filter '{text}': missing ')'.")
            return inner
        if kind != "field":
            raise FilterError(f"Invalid $filter '{text}': expected a property name.")
        op_kind, op = take()
        if op_kind != "word" or op not in ("eq", "ne"):
            raise FilterError(f"Invalid $filter '{text}': only 'eq' and 'ne' comparisons are supported.")
        lit_kind, literal = take()
        if lit_kind not in ("str", "lit"):
            raise FilterError(f"Invalid $filter '{text}': expected a value after '{op}'.")
        field = value

        def test(state: Doc) -> bool:
            actual = _field(state, field)
            same = (actual.lower() == literal.lower()) if isinstance(actual, str) and isinstance(literal, str) \
                else actual == literal
            return same if op == "eq" else not same
        return test

    test = disjunction()
    if pos != len(tokens):
        raise FilterError(f"Invalid $filter '{text}': unexpected '{tokens[pos][1]}'.")
    return test


def _field(state: Doc, name: str) -> Any:
    lower = name.lower()
    return next((v for k, v in state.items() if k.lower() == lower), None)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    at = 0
    text = text.rstrip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise FilterError(f"Invalid $filter '{text}': unexpected character at position {at}.")
        at = m.end()
        if m["lp"]:
            out.append(("lp", "("))
        elif m["rp"]:
            out.append(("rp", ")"))
        elif m["str"] is not None:
            out.append(("str", m["str"].replace("''", "'")))
        elif m["num"] is not None:
            out.append(("lit", float(m["num"]) if "." in m["num"] else int(m["num"])))
        else:
            word = m["word"]
            if word.lower() in ("and", "or", "eq", "ne"):
                out.append(("word", word.lower()))
            elif word.lower() in ("true", "false"):
                out.append(("lit", word.lower() == "true"))
            else:
                out.append(("field", word))
    return out
