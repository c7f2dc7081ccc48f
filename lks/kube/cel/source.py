"""CEL source text before the `cel` package parses it: a small lexer, the rewriting of the
optional-field syntax its parser lacks (`a.?b`, `a[?k]`), and the check cel-go's type checker
makes that the Rust parser does not: every identifier names a declared variable or function
(upstream's `undeclared reference to 'x' (in container '')`).

Errors are rendered as cel-go renders them (`ERROR: <input>:1:5: message`, then the source line
and a caret), which is the text kube-apiserver quotes in CRD and policy compile failures.
`lks.kube.cel` compiles the rewritten text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''
        |"(?:\\.|[^\\"\n])*"|'(?:\\.|[^\\'\n])*'))
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+\.[0-9]+|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?[uU]?)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||\.\?|\[\?|\{\?|[-+*/%!<>?:.,\[\](){}])
""", re.VERBOSE | re.DOTALL)

KEYWORDS = frozenset({"true", "false", "null", "in"})
# names that are always in scope: type denotations (`type(x) == int`)
TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type",
                        "type", "dyn", "optional_type"})
# macros whose first argument declares a variable: `l.all(x, x > 0)` (and `l.all(i, v, ...)`)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter", "bind", "transformList", "transformMap",
                    "transformMapEntry"})
# what the Rust interpreter provides itself
NATIVE_FUNCTIONS = frozenset({
    "has", "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
    "bytes", "bool", "dyn", "type", "duration", "timestamp", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    "optional.of", "optional.none", "optional.ofNonZeroValue", "hasValue", "value", "orValue", "or",
    "cel.bind", *MACROS,
})

# the function names the rewriting introduces
OPT_SELECT, OPT_INDEX, STRING, MATCHES = "_optSelect", "_optIndex", "_string", "_matches"
PAIRS, TO_MAP, MERGE_MAPS = "_pairs", "_toMap", "_mergeMaps"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # str, num, ident, op, end
    text: str
    pos: int


class SyntaxProblem(Exception):
    """A character the lexer cannot take: the parser will report it; the caller compiles as is."""


def tokens(text: str) -> list[Token]:
    out, pos, n = [], 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SyntaxProblem(pos)
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", n))
    return out


def _ends_operand(tok: Token) -> bool:
    return tok.kind in ("str", "num") or (tok.kind == "ident" and tok.text != "in") or tok.text in (")", "]", "}")


def rewrite(text: str, toks: list[Token]) -> str:
    """`a.?b` -> `a._optSelect("b")` and `a[?k]` -> `a._optIndex(k)`: member calls bind exactly as
    selection does, and the functions (lks.kube.cel.optional) give upstream's optional results.
    `string(x)` -> `_string(x)`, which also converts the Kubernetes types (`string(ip(s))`);
    `matches` -> `_matches` (lks.kube.cel.regex: the pattern compiled once, not at every call)."""
    if any(t.text in _MACRO_NAMES for t in toks):
        text = _expand(text)
        toks = tokens(text)
    if not any(t.text in (".?", "[?", "string", "matches") for t in toks):
        return text
    out, last, closers = [], 0, []  # closers: for each open "[", whether it closes an `[?` index
    for i, t in enumerate(toks):
        if t.text == "string" and toks[i + 1].text == "(" and not (i and toks[i - 1].text in (".", ".?")):
            out += [text[last:t.pos], STRING]
            last = t.pos + len(t.text)
        elif t.text == "matches" and t.kind == "ident" and toks[i + 1].text == "(" and not (i and toks[i - 1].text == ".?"):
            out += [text[last:t.pos], MATCHES]
            last = t.pos + len(t.text)
        elif t.text == ".?" and toks[i + 1].kind == "ident":
            out += [text[last:t.pos], f'.{OPT_SELECT}("{toks[i + 1].text}")']
            last = toks[i + 1].pos + len(toks[i + 1].text)
        elif t.text == "[?" and i and _ends_operand(toks[i - 1]):
            out += [text[last:t.pos], f".{OPT_INDEX}("]
            last = t.pos + 2
            closers.append(True)
        elif t.text in ("[", "[?"):
            closers.append(False)
        elif t.text == "]" and closers:
            if closers.pop():
                out += [text[last:t.pos], ")"]
                last = t.pos + 1
    out.append(text[last:])
    return "".join(out)


# -- macros the interpreter lacks, expanded into ones it has ------------------------------------

_MACRO_NAMES = frozenset({"bind", "all", "exists", "exists_one", "transformList", "transformMap",
                          "transformMapEntry"})
_P = "__lks_pair"  # the expansions' own variable (names with two leading underscores are CEL's escapes)


def _expand(text: str) -> str:
    """`cel.bind(x, init, e)` -> `[init].map(x, e)[0]`, and the two-variable comprehensions
    (`l.all(i, v, p)`, `exists`, `exists_one`, `transformList`, `transformMap`,
    `transformMapEntry`) -> one-variable ones over `_pairs()` of the list or map, each pair's
    parts bound by one-element comprehensions. One construct per pass, outermost first."""
    for _ in range(64):  # nesting deeper than this is left to the parser to refuse
        found = _next_macro(text, tokens(text))
        if found is None:
            return text
        start, end, replacement = found
        text = text[:start] + replacement + text[end:]
    return text


def _next_macro(text: str, toks: list[Token]) -> tuple[int, int, str] | None:
    """The first construct to expand: where it starts and ends in `text`, and its expansion."""
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text not in _MACRO_NAMES or toks[i + 1].text != "(":
            continue
        found = _arguments(toks, i + 1)
        if found is None:
            continue
        close, parts = found
        args = [text[toks[p[0]].pos:toks[p[-1]].pos + len(toks[p[-1]].text)] for p in parts]
        if t.text == "bind":
            if i >= 2 and toks[i - 1].text == "." and toks[i - 2].text == "cel" and len(args) == 3:
                return toks[i - 2].pos, toks[close].pos + 1, f"[{args[1]}].map({args[0]}, {args[2]})[0]"
            continue
        two = len(parts) >= 3 and all(len(p) == 1 and toks[p[0]].kind == "ident" for p in parts[:2])
        if i and toks[i - 1].text == "." and two and (len(args) == 3 or t.text.startswith("transform")):
            return toks[i - 1].pos, toks[close].pos + 1, _two_variables(t.text, args)
    return None


def _two_variables(macro: str, args: list[str]) -> str:
    a, b = args[0], args[1]

    def bound(body: str, inner: str = "all", last: str = "") -> str:
        return f"[{_P}[0]].{inner}({a}, [{_P}[1]].{inner}({b}, {body}){last}){last}"

    if macro in ("all", "exists", "exists_one"):
        return f".{PAIRS}().{macro}({_P}, {bound(args[2])})"
    value = bound(args[-1], "map", "[0]")
    keep = f".filter({_P}, {bound(args[2])})" if len(args) == 4 else ""
    if macro == "transformList":
        return f".{PAIRS}(){keep}.map({_P}, {value})"
    if macro == "transformMap":
        return f".{PAIRS}(){keep}.map({_P}, [{_P}[0], {value}]).{TO_MAP}()"
    return f".{PAIRS}(){keep}.map({_P}, {value}).{MERGE_MAPS}()"


def _arguments(toks: list[Token], open_: int) -> tuple[int, list[list[int]]] | None:
    """The index of the `)` matching `toks[open_]` and the token indices of each argument."""
    depth, parts, current = 0, [], []
    for j in range(open_, len(toks)):
        text = toks[j].text
        if toks[j].kind == "end":
            return None
        if text in ("(", "[", "{", "[?", "{?"):
            depth += 1
            if depth == 1:
                continue
        elif text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return j, parts + [current] if current else parts
        elif text == "," and depth == 1:
            parts.append(current)
            current = []
            continue
        current.append(j)
    return None


def undeclared(toks: list[Token], variables: Iterable[str], functions: Iterable[str]) -> list[Token]:
    """The identifiers that name no variable, comprehension variable or function, as cel-go's
    checker finds them (in source order)."""
    variables, functions = set(variables), set(functions) | NATIVE_FUNCTIONS
    bound = {toks[i + 2].text for i, t in enumerate(toks[:-3])
             if t.kind == "ident" and t.text in MACROS and toks[i + 1].text == "(" and toks[i + 2].kind == "ident"
             and toks[i + 3].text == ","}
    bound |= {toks[i + 4].text for i, t in enumerate(toks[:-5])  # the second variable: `all(i, v, ...)`
              if t.kind == "ident" and t.text in _MACRO_NAMES - {"bind"} and toks[i + 1].text == "("
              and toks[i + 2].kind == "ident" and toks[i + 3].text == "," and toks[i + 4].kind == "ident"
              and toks[i + 5].text == ","}
    bad, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t.kind != "ident" or t.text in KEYWORDS:
            i += 1
            continue
        member = i > 0 and toks[i - 1].text in (".", ".?")
        if member:
            if toks[i + 1].text == "(" and t.text not in functions:
                bad.append(toks[i + 1])
            i += 1
            continue
        # a qualified function name (`sets.contains(`, `format.dns1123Label(`): the longest that is known
        j, name, qualified = i, t.text, None
        while toks[j + 1].text == "." and toks[j + 2].kind == "ident":
            j += 2
            name += "." + toks[j].text
            if toks[j + 1].text == "(" and name in functions:
                qualified = j
        if qualified is not None:
            i = qualified + 1
            continue
        if toks[i + 1].text == "(":
            if t.text not in functions:
                bad.append(t)
        elif t.text not in variables and t.text not in bound and t.text not in TYPE_NAMES:
            bad.append(t)
        i += 1
    return bad


def render(text: str, pos: int, message: str) -> str:
    """One error as cel-go's `Error.ToDisplayString`: location, message, source line, caret."""
    line_no = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:end if end >= 0 else len(text)].replace("\t", " ")
    col = pos - start
    return f"ERROR: <input>:{line_no}:{col + 1}: {message}\n | {line}\n | {'.' * col}^"


def parse_error(message: str) -> str:
    """The Rust parser's error (`Failed to parse expression '...': ERROR: ...| 1 +`) in cel-go's
    layout: the same ANTLR messages, with the snippet lines indented by one space."""
    at = message.find("ERROR: ")
    body = message[at:] if at >= 0 else message
    return "\n".join(" " + line if line.startswith("|") else line for line in body.split("\n"))
