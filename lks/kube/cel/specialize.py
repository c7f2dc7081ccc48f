"""Expressions rewritten for the `cel` package's interpreter, where reading a value costs what
it holds: a field selection below a top-level variable copies the selected value whole
(`object.spec.containers` copies the Pod's spec, then its containers), a variable changed
between evaluations rebuilds the interpreter's environment (every value copied again), and a
Python value costs ~3 µs per string, list or map to convert. Two rewrites of the source text,
for callers that run many expressions over one object (Gatekeeper's constraints):

- `hoist`: each chain of field selections from a root (`object.spec.containers`) is read as a
  top-level name of its own, bound once per object to the value at the end of the chain (a
  `has()` test: to whether the last field is there). `bind` gives those values; a chain the object
  does not have (or that runs through a value that is not a map) stays unbound, so the rewritten
  expression fails exactly where the original would, and the caller runs the original to get
  the original's words.
- `substitute`: a value fixed for many evaluations (a constraint's parameters) written into the
  text as a CEL literal, so that no variable changes from one constraint to the next.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from lks.kube.cel import source

HAS, VALUE = "has", "value"
Path = tuple[str, str, tuple[str, ...]]  # (kind: HAS or VALUE, root, fields)
_MISSING = object()


class NotLiteral(ValueError):
    """A value CEL has no literal for (a float that is not finite, an int past int64)."""


def literal(value: Any) -> str:
    """`value` (JSON's types) as CEL source."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise NotLiteral(value)
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotLiteral(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are a subset of CEL's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(str(k))}: {literal(v)}" for k, v in value.items()) + "}"
    raise NotLiteral(value)


def _chains(toks: list[source.Token], roots: Iterable[str]) -> list[tuple[int, int, tuple[str, ...], bool]]:
    """Each chain of field selections from a root: (index of the root token, index of the last
    token, the fields, whether it is the whole argument of `has()`)."""
    roots = frozenset(roots)
    out = []
    toks = toks + [source.Token("end", "", toks[-1].pos)] * 4  # lookahead past the end
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text not in roots or (i and toks[i - 1].text in (".", ".?")):
            continue
        if toks[i + 1].text == "(":  # a function of the same name
            continue
        fields: list[str] = []
        j = i
        while toks[j + 1].text == "." and toks[j + 2].kind == "ident" and toks[j + 3].text != "(":
            fields.append(toks[j + 2].text)
            j += 2
        tested = i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text == "has" and toks[j + 1].text == ")" \
            and not (i >= 3 and toks[i - 3].text in (".", ".?"))
        out.append((i, j, tuple(fields), tested))
    return out


def hoist(text: str, roots: Iterable[str], name: Mapping[Path, str] | None = None,
          names: dict[Path, str] | None = None) -> tuple[str, dict[Path, str]]:
    """`text` with the chains from `roots` read as top-level names; returns the text and the
    names it uses (path -> name). `names`: the names given so far (new paths are added to it), so
    that every expression of a caller reads one path by one name."""
    names = names if names is not None else {}
    try:
        toks = source.tokens(text)
    except source.SyntaxProblem:
        return text, {}
    if _binds(toks, roots):
        return text, {}
    used: dict[Path, str] = {}
    out, last = [], 0
    for i, j, fields, tested in _chains(toks, roots):
        root = toks[i].text
        if tested and len(fields) >= 2:  # has(r.a.b): whether b is in r.a
            path: Path = (HAS, root, fields)
            start, end = toks[i - 2].pos, toks[j + 1].pos + 1
        elif fields and not tested:
            path = (VALUE, root, fields)
            start, end = toks[i].pos, toks[j].pos + len(toks[j].text)
        else:
            continue
        name = names.setdefault(path, f"lksPath{len(names)}_{path[0]}_{'_'.join(fields)}"[:200])
        used[path] = name
        out += [text[last:start], name]
        last = end
    out.append(text[last:])
    return "".join(out), used


def substitute(text: str, roots: Iterable[str], value: Any) -> str:
    """`text` with `roots` (names of one value) replaced by `value` as a literal: `r.f` by the
    field's own literal when `value` has it, `has(r.f)` by whether it does. Raises NotLiteral."""
    try:
        toks = source.tokens(text)
    except source.SyntaxProblem:
        raise NotLiteral(text) from None
    if _binds(toks, roots):
        raise NotLiteral(text)
    out, last = [], 0
    for i, j, fields, tested in _chains(toks, roots):
        if tested and len(fields) == 1 and isinstance(value, dict):
            out += [text[last:toks[i - 2].pos], "true" if fields[0] in value else "false"]
            last = toks[j + 1].pos + 1
        elif fields and not (tested and len(fields) == 1) and isinstance(value, dict) and fields[0] in value:
            out += [text[last:toks[i].pos], f"({literal(value[fields[0]])})"]
            last = toks[i + 2].pos + len(fields[0])
        else:
            out += [text[last:toks[i].pos], f"({literal(value)})"]
            last = toks[i].pos + len(toks[i].text)
    out.append(text[last:])
    return "".join(out)


def _binds(toks: list[source.Token], names: Iterable[str]) -> bool:
    """Whether a macro binds one of `names` as its own variable (`l.all(object, ...)`): then
    the name means something else in places, and the text is left as it is."""
    names = frozenset(names)
    for i, t in enumerate(toks[:-3]):
        if t.kind == "ident" and t.text in source.MACROS and toks[i + 1].text == "(" and toks[i + 2].text in names:
            return True
    return False


def bind(paths: Mapping[str, Path], values: Mapping[str, Any]) -> dict[str, Any]:
    """The value at each path (by the name it is read as) over `values` (the roots' values); a
    path the values do not have is left out."""
    out: dict[str, Any] = {}
    for name, (kind, root, fields) in paths.items():
        value = values.get(root, _MISSING)
        last = len(fields) - 1 if kind == HAS else len(fields)
        for f in fields[:last]:
            value = value.get(f, _MISSING) if type(value) is dict else _MISSING
        if kind == HAS:
            if type(value) is dict:
                out[name] = fields[-1] in value
        elif value is not _MISSING:
            out[name] = value
    return out
