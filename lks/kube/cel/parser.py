"""CEL source text to an abstract syntax tree, for the type checker (`lks.kube.cel.checker`) and
the cost estimator (`lks.kube.cel.cost`); the `cel` package's interpreter parses again for itself.

A recursive descent over the tokens of `lks.kube.cel.source`, with cel-go's grammar and operator
precedence (`?:`, `||`, `&&`, relations and `in`, `+ -`, `* / %`, unary `! -`, member access,
calls, indexing, optional `.?`/`[?`, list and map literals). Each node keeps the offset cel-go
reports errors at: an operator's token, a selection's `.`, an index's `[`, a call's `(`.
Macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`, `cel.bind` and the two-variable
comprehensions) stay `Call` nodes with `macro` set: the checker knows how each binds its names.
A text this parser cannot read raises `ParseError`; callers then rely on the interpreter's own
parser, which words syntax errors as cel-go does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lks.kube.cel import source

__all__ = ["Node", "Lit", "Ident", "Select", "Index", "Call", "ListLit", "MapLit", "ParseError", "parse"]


class ParseError(Exception):
    pass


@dataclass(eq=False, slots=True)
class Node:
    pos: int


@dataclass(eq=False, slots=True)
class Lit(Node):
    kind: str  # int, uint, double, string, bytes, bool, null
    value: Any = None


@dataclass(eq=False, slots=True)
class Ident(Node):
    name: str


@dataclass(eq=False, slots=True)
class Select(Node):
    operand: Node
    field: str
    optional: bool = False  # `a.?b`
    test: bool = False  # inside `has()`


@dataclass(eq=False, slots=True)
class Index(Node):
    operand: Node
    index: Node
    optional: bool = False  # `a[?k]`


@dataclass(eq=False, slots=True)
class Call(Node):
    function: str  # operators by cel-go's names: `_+_`, `!_`, `_[_]`, `@in`, `_?_:_`
    args: list[Node]
    target: Node | None = None  # the receiver of a member call
    macro: bool = False


@dataclass(eq=False, slots=True)
class ListLit(Node):
    items: list[Node]
    optional: frozenset[int] = frozenset()  # the indices of `?x` elements (present when x has a value)


@dataclass(eq=False, slots=True)
class MapLit(Node):
    entries: list[tuple[Node, Node]] = field(default_factory=list)
    optional: frozenset[int] = frozenset()  # the indices of `?k: v` entries


_RELATIONS = {"<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "==": "_==_", "!=": "_!=_", "in": "@in"}
_ADDITIVE = {"+": "_+_", "-": "_-_"}
_MULTIPLICATIVE = {"*": "_*_", "/": "_/_", "%": "_%_"}
MACROS = {"has": (1,), "all": (2, 3), "exists": (2, 3), "exists_one": (2, 3), "map": (2, 3), "filter": (2,),
          "transformList": (3, 4), "transformMap": (3, 4), "transformMapEntry": (3, 4)}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'",
            '"': '"', "`": "`", "?": "?"}


def parse(text: str) -> Node:
    try:
        toks = source.tokens(text)
    except source.SyntaxProblem as err:
        raise ParseError(str(err)) from None
    p = _Parser(toks)
    try:
        node = p.expr()
    except (ValueError, IndexError) as err:  # a bad escape in a string literal
        raise ParseError(str(err)) from None
    except RecursionError:
        raise ParseError("expression nests too deeply") from None
    if p.peek().kind != "end":
        raise ParseError(f"unexpected {p.peek().text!r}")
    return node


class _Parser:
    def __init__(self, toks: list[source.Token]):
        self.toks, self.i, self.depth = toks, 0, 0

    def peek(self, ahead: int = 0) -> source.Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self, text: str | None = None) -> source.Token:
        tok = self.peek()
        if text is not None and tok.text != text:
            raise ParseError(f"expected {text!r} at {tok.pos}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > 250:  # cel-go's recursion limit, roughly
            raise ParseError("expression nests too deeply")
        cond = self.binary(0)
        if self.peek().text == "?":
            op = self.take()
            yes = self.binary(0)
            self.take(":")
            no = self.expr()
            cond = Call(op.pos, "_?_:_", [cond, yes, no])
        self.depth -= 1
        return cond

    _LEVELS = ({"||": "_||_"}, {"&&": "_&&_"}, _RELATIONS, _ADDITIVE, _MULTIPLICATIVE)

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        left = self.binary(level + 1)
        while self.peek().kind in ("op", "ident") and self.peek().text in ops:
            op = self.take()
            right = self.binary(level + 1)
            left = Call(op.pos, ops[op.text], [left, right])
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok.text in ("!", "-"):
            ops = []
            while self.peek().text == tok.text:
                ops.append(self.take())
            operand = self.member()
            if tok.text == "-" and len(ops) % 2 == 1 and isinstance(operand, Lit) and operand.kind in ("int", "double") \
                    and operand.pos == ops[-1].pos + 1:
                operand.value, operand.pos = -operand.value, ops[-1].pos  # a negative literal
                ops.pop()
            for op in reversed(ops):
                operand = Call(op.pos, "!_" if op.text == "!" else "-_", [operand])
            return operand
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok.text in (".", ".?"):
                self.take()
                name = self.take()
                if name.kind != "ident":
                    raise ParseError(f"expected a name at {name.pos}")
                if tok.text == "." and self.peek().text == "(":
                    open_ = self.take()
                    args = self.arguments(")")
                    node = self.call(open_.pos, name.text, args, node)
                else:
                    node = Select(tok.pos, node, name.text, optional=tok.text == ".?")
            elif tok.text in ("[", "[?"):
                self.take()
                index = self.expr()
                self.take("]")
                node = Index(tok.pos, node, index, optional=tok.text == "[?")
            elif tok.text in ("{", "{?") and isinstance(node, (Ident, Select)):
                raise ParseError("message construction is not supported")  # no protobuf types here
            else:
                return node

    def call(self, pos: int, name: str, args: list[Node], target: Node | None) -> Node:
        if target is not None and name in MACROS and len(args) in MACROS[name] and name != "has":
            return Call(pos, name, args, target, macro=True)
        if target is None and name == "has" and len(args) == 1:
            if not isinstance(args[0], Select):
                raise ParseError("invalid argument to has() macro")
            args[0].test = True
            return Call(pos, name, args, macro=True)
        if target is not None and name == "bind" and isinstance(target, Ident) and target.name == "cel" \
                and len(args) == 3:
            return Call(pos, "cel.bind", args, macro=True)
        return Call(pos, name, args, target)

    def arguments(self, close: str) -> list[Node]:
        args: list[Node] = []
        while self.peek().text != close:
            args.append(self.expr())
            if self.peek().text != ",":
                break
            self.take()
        self.take(close)
        return args

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Lit(tok.pos, "bool", tok.text == "true")
            if tok.text == "null":
                return Lit(tok.pos, "null")
            if tok.text == "in":
                raise ParseError(f"unexpected 'in' at {tok.pos}")
            if self.peek().text == "(":
                open_ = self.take()
                return self.call(open_.pos, tok.text, self.arguments(")"), None)
            return Ident(tok.pos, tok.text)
        if tok.text == ".":  # a name from the root container: `.self`
            name = self.take()
            if name.kind != "ident":
                raise ParseError(f"expected a name at {name.pos}")
            return Ident(name.pos, name.text)
        if tok.text == "(":
            node = self.expr()
            self.take(")")
            return node
        if tok.text in ("[?", "{?"):  # a literal whose first element is optional: `[?x, y]`
            self.toks.insert(self.i, source.Token("op", "?", tok.pos + 1))
            tok = source.Token("op", tok.text[0], tok.pos)
        if tok.text == "[":
            items, optional = self.list_items()
            return ListLit(tok.pos, items, optional)
        if tok.text == "{":
            entries, optional = self.map_entries()
            return MapLit(tok.pos, entries, optional)
        if tok.kind == "num":
            return _number(tok)
        if tok.kind == "str":
            return _string(tok)
        raise ParseError(f"unexpected {tok.text!r} at {tok.pos}")

    def list_items(self) -> tuple[list[Node], frozenset[int]]:
        items: list[Node] = []
        optional = set()
        while self.peek().text != "]":
            if self.peek().text == "?":  # an optional element `[?x]` inside a literal
                self.take()
                optional.add(len(items))
            items.append(self.expr())
            if self.peek().text != ",":
                break
            self.take()
        self.take("]")
        return items, frozenset(optional)

    def map_entries(self) -> tuple[list[tuple[Node, Node]], frozenset[int]]:
        entries: list[tuple[Node, Node]] = []
        optional = set()
        while self.peek().text != "}":
            if self.peek().text == "?":
                self.take()
                optional.add(len(entries))
            key = self.expr()
            self.take(":")
            entries.append((key, self.expr()))
            if self.peek().text != ",":
                break
            self.take()
        self.take("}")
        return entries, frozenset(optional)


def _number(tok: source.Token) -> Lit:
    text = tok.text
    unsigned = text[-1] in "uU"
    if unsigned:
        text = text[:-1]
    if text[:2] in ("0x", "0X"):
        return Lit(tok.pos, "uint" if unsigned else "int", int(text, 16))
    if unsigned:
        return Lit(tok.pos, "uint", int(text))
    if any(c in text for c in ".eE"):
        return Lit(tok.pos, "double", float(text))
    return Lit(tok.pos, "int", int(text))


def _string(tok: source.Token) -> Lit:
    text, prefix = tok.text, ""
    while text[0] not in "'\"":
        prefix += text[0].lower()
        text = text[1:]
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    if "r" not in prefix:
        body = _unescape(body)
    return Lit(tok.pos, "bytes" if "b" in prefix else "string", body)


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX" and i + 3 < len(body) + 1:
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif nxt == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif nxt == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        elif nxt.isdigit():
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(nxt)
            i += 2
    return "".join(out)
