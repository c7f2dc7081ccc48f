"""The OData `$filter` subset Microsoft Graph's directory answers and `az ad` sends: `eq`/`ne`
comparisons, `startswith(prop,'x')`, `coll/any(c:c eq 'x')`, `and`/`or`/`not` and parentheses,
with Graph's case-insensitive property names and string matches. `parse` turns a filter into
a predicate over an object's Graph JSON; `lks.identity.graph` applies it to its listings.

Errors are Graph's: a clause that does not parse is `BadRequest` "Invalid filter clause", a
property the resource cannot be filtered by is `Request_UnsupportedQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w.]*)"
                    r"|(?P<punct>[()/,:]))")
MAX_DEPTH = 100  # Microsoft.OData's default recursion limit of a $filter
_FUNCTIONS = {"startswith": str.startswith, "endswith": str.endswith}


class FilterError(ValueError):
    """A filter Graph refuses: `code` and `message` of its 400 answer."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse(text: str, *, properties: frozenset[str], resource: str) -> Predicate:
    """A predicate for `text`; `properties` (lower case) are those of `resource` (Graph's type
    name, e.g. `ServicePrincipal`) that may be filtered on."""
    return _Parser(text, properties, resource).parse()


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _field(obj: dict[str, Any], name: str) -> Any:
    """The value of property `name`, matched without regard to case as Graph does."""
    if name in obj:
        return obj[name]
    wanted = name.lower()
    return next((v for k, v in obj.items() if k.lower() == wanted), None)


class _Parser:
    def __init__(self, text: str, properties: frozenset[str], resource: str):
        self.text = text
        self.properties = properties
        self.resource = resource
        self.tokens: list[tuple[str, Any, int]] = []
        pos = 0
        end = len(text.rstrip())
        while pos < end:
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self._syntax(pos)
            kind = m.lastgroup or ""
            raw, start = m.group(kind), m.start(kind)
            value: Any = raw
            if kind == "str":
                value = raw[1:-1].replace("''", "'")
            elif kind == "num":
                value = float(raw) if "." in raw else int(raw)
            elif kind == "name" and raw.lower() in ("true", "false", "null"):
                kind, value = "lit", {"true": True, "false": False, "null": None}[raw.lower()]
            self.tokens.append((kind, value, start))
            pos = m.end()
        self.at = 0
        self.depth = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self._syntax(0)
        predicate = self._or()
        if self.at < len(self.tokens):
            raise self._syntax(self.tokens[self.at][2])
        return predicate

    # -- grammar ------------------------------------------------------------------------------

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._word("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def _unary(self) -> Predicate:
        if self._word("not"):
            inner = self._nested(self._unary)
            return lambda o: not inner(o)
        if self._punct("("):
            inner = self._nested(self._or)
            self._expect(")")
            return inner
        kind, value, pos = self._next()
        if kind != "name":
            raise self._syntax(pos)
        if value.lower() in _FUNCTIONS and self._punct("("):
            prop = self._property()
            self._expect(",")
            needle = self._literal()
            self._expect(")")
            func = _FUNCTIONS[value.lower()]
            if not isinstance(needle, str):
                raise self._syntax(pos)
            return lambda o: isinstance(v := _field(o, prop), str) and func(v.lower(), needle.lower())
        prop = self._checked(value)
        if self._punct("/"):
            return self._any(prop)
        op = self._operator()
        expected = _fold(self._literal())
        if op == "eq":
            return lambda o: _fold(_field(o, prop)) == expected
        return lambda o: _fold(_field(o, prop)) != expected

    def _nested(self, parse: Callable[[], Predicate]) -> Predicate:
        """`parse` one level deeper, within OData's recursion limit (a hostile filter cannot
        exhaust Python's stack)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError("BadRequest", "Invalid filter clause: The recursion limit has been exceeded.")
        try:
            return parse()
        finally:
            self.depth -= 1

    def _any(self, prop: str) -> Predicate:
        """`prop/any(c:c eq 'x')`: some member of the collection matches."""
        kind, value, pos = self._next()
        if kind != "name" or value.lower() != "any":
            raise self._syntax(pos)
        self._expect("(")
        var = self._name()
        self._expect(":")
        if self._name() != var:
            raise self._syntax(self.tokens[self.at - 1][2])
        op = self._operator()
        expected = _fold(self._literal())
        self._expect(")")

        def matches(o: dict[str, Any]) -> bool:
            items = _field(o, prop) or []
            return any((_fold(i) == expected) == (op == "eq") for i in items)
        return matches

    # -- tokens -------------------------------------------------------------------------------

    def _next(self) -> tuple[str, Any, int]:
        if self.at >= len(self.tokens):
            raise self._syntax(len(self.text))
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _word(self, word: str) -> bool:
        if self.at < len(self.tokens):
            kind, value, _ = self.tokens[self.at]
            if kind == "name" and value.lower() == word:
                self.at += 1
                return True
        return False

    def _punct(self, p: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at][:2] == ("punct", p):
            self.at += 1
            return True
        return False

    def _expect(self, p: str) -> None:
        kind, value, pos = self._next()
        if (kind, value) != ("punct", p):
            raise self._syntax(pos)

    def _name(self) -> str:
        kind, value, pos = self._next()
        if kind != "name":
            raise self._syntax(pos)
        return value

    def _property(self) -> str:
        return self._checked(self._name())

    def _checked(self, name: str) -> str:
        if name.lower() not in self.properties:
            raise FilterError("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified "
                              f"for property '{name}' of resource '{self.resource}'.")
        return name

    def _operator(self) -> str:
        kind, value, pos = self._next()
        if kind != "name" or value.lower() not in ("eq", "ne"):
            raise self._syntax(pos)
        return value.lower()

    def _literal(self) -> Any:
        kind, value, pos = self._next()
        if kind not in ("str", "num", "lit"):
            raise self._syntax(pos)
        return value

    def _syntax(self, pos: int) -> FilterError:
        return FilterError("BadRequest", f"Invalid filter clause: Syntax error at position {pos} in '{self.text}'.")
