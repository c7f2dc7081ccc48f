"""Gatekeeper's mutation `location` language (`pkg/mutation/path`): dot-separated field names,
quoted when they hold other characters (`metadata.labels."app.kubernetes.io/name"`), and keyed
list selectors `[name: main]`, `[containerPort: 80]` or the glob `[name: *]`. `parse` gives the
nodes the mutators walk (`mutators`) and the schema check compares (`schema`); errors are worded
as Gatekeeper's parser words them.
"""

from __future__ import annotations

from dataclasses import dataclass

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class PathError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Field:
    """An object's field."""

    name: str

    def __str__(self) -> str:
        return _quote(self.name)


@dataclass(frozen=True, slots=True)
class Keyed:
    """The elements of a list of objects with `key` equal to `value` (or all: `glob`)."""

    key: str
    value: str | int | None = None
    glob: bool = False

    def __str__(self) -> str:
        if self.glob:
            return f"[{_quote(self.key)}: *]"
        value = _quote(self.value) if isinstance(self.value, str) else str(self.value)
        return f"[{_quote(self.key)}: {value}]"


Node = Field | Keyed


def render(nodes: tuple[Node, ...]) -> str:
    out = ""
    for i, n in enumerate(nodes):
        out += ("." if isinstance(n, Field) and i else "") + str(n)
    return out


def _quote(s: str) -> str:
    if not s:
        return '""'
    if any(c in s for c in "'\"\t\n \\*[]:.") or s[0].isdigit():
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def _tokens(text: str) -> list[tuple[str, str]]:
    """(type, literal) as Gatekeeper's scanner gives them, ending with EOF."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            out.append(("EOF", ""))
            return out
        c = text[i]
        if c.isdigit() and c.isascii():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            out.append(("INT", text[i:j]))
            i = j
        elif c in _IDENT_CHARS:
            j = i
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            out.append(("IDENT", text[i:j]))
            i = j
        elif c in "'\"":
            j, lit = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                lit.append(text[j])
                j += 1
            if j >= n:
                out.append(("ERROR", "".join(lit)))
                out.append(("EOF", ""))
                return out
            out.append(("IDENT", "".join(lit)))
            i = j + 1
        else:
            kind = {".": "SEPARATOR", "[": "LBRACKET", "]": "RBRACKET", "*": "GLOB", ":": "COLON"}.get(c, "ERROR")
            out.append((kind, c))
            i += 1


def _show(tok: tuple[str, str]) -> str:
    return f'{tok[0]}: "{tok[1]}"'


def parse(text: str) -> tuple[Node, ...]:
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str]:
        return toks[min(pos + 1, len(toks) - 1)]

    nodes: list[Node] = []
    while toks[pos][0] == "IDENT":
        nodes.append(Field(toks[pos][1]))
        if peek()[0] == "LBRACKET":
            pos += 1
            if peek()[0] != "IDENT":
                raise PathError(f"unexpected token: expected keyField in listSpec, got: {_show(peek())}")
            pos += 1
            key = toks[pos][1]
            if peek()[0] != "COLON":
                raise PathError(f"unexpected token: expected ':' following keyField {key}, got: {_show(peek())}")
            pos += 1
            kind, lit = peek()
            if kind == "GLOB":
                node = Keyed(key, glob=True)
            elif kind == "IDENT":
                node = Keyed(key, lit)
            elif kind == "INT":
                value = int(lit)
                if value >= 2 ** 63:
                    raise PathError(f"invalid integer: overflow in integer string: {lit}: parsing key value for "
                                    f"key: {key}")
                node = Keyed(key, value)
            else:
                raise PathError(f"unexpected token: expected key value or glob in listSpec, got: {_show(peek())}")
            pos += 1
            if peek()[0] != "RBRACKET":
                raise PathError(f"unexpected token: expected ']' following listSpec, got: {_show(peek())}")
            pos += 1
            nodes.append(node)
        if peek()[0] == "SEPARATOR":
            pos += 1
            if peek()[0] == "EOF":
                raise PathError("trailing separators are forbidden")
            pos += 1
        elif peek()[0] == "EOF":
            pos += 1
        else:
            raise PathError(f"unexpected token: expected '.' or eof, got: {_show(peek())}")
    if toks[pos][0] != "EOF":
        raise PathError(f"unexpected token: expected field name or eof, got: {_show(toks[pos])}")
    return tuple(nodes)
