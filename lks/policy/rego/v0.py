"""Rego v0 to v1, token by token, for rego-cpp (which reads only v1).

Gatekeeper's templates (the whole public gatekeeper-library, Azure Policy's built-ins) are v0,
and rego-cpp does not refuse v0: it reads `violation[{"msg": msg}] { ... }` as a v1 partial
*object* and answers silently wrong. So every module goes through here first: rule heads are
rewritten (`name[x] {` -> `name contains x if {`, `if` before every body, a second body of the
same head becomes a rule of its own) and a few body tokens change (`re_match` -> `regex.match`,
`data.inventory` -> an input field, v1 keywords used as names renamed), and rego-cpp's own gaps
are worked around: iteration inside call arguments (`hoist.py`), sprintf's arguments and missing
verbs. Everything else, comments and strings included, is copied byte for byte, so line numbers
hold (`Module.lines` maps the few that move). What cannot be translated faithfully is refused with
a RegoError naming the construct.

`program.py` compiles what this produces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import hoist
from .errors import RegoError
from .lexer import CLOSERS, IDENT, NL, OPENERS, PUNCT, STRING, Token, tokenize

V1_KEYWORDS = frozenset({"contains", "if", "in", "every"})
# v0 built-ins that v1 (and so rego-cpp) dropped: the same function under its v1 name ...
RENAMED_BUILTINS = {"re_match": "regex.match"}
# ... or none: a template calling one of these is refused rather than evaluated without it.
UNSUPPORTED_BUILTINS = {
    "any": "deprecated built-in any (use `x in xs` or a comprehension)",
    "all": "deprecated built-in all (use `every`)",
    "set_diff": "deprecated built-in set_diff (use a - b)",
    "cast_array": "deprecated built-in cast_array",
    "cast_set": "deprecated built-in cast_set",
    "cast_string": "deprecated built-in cast_string",
    "cast_boolean": "deprecated built-in cast_boolean",
    "cast_null": "deprecated built-in cast_null",
    "cast_object": "deprecated built-in cast_object",
    "net.cidr_overlap": "deprecated built-in net.cidr_overlap (use net.cidr_contains)",
    "external_data": "external_data (external data providers) is not supported",
    "http.send": "http.send is not supported",
}
# a fmt verb: flags, width, precision, verb letter
_VERB = re.compile(r"%[-+# 0]*\d*(?:\.\d+)?([a-zA-Z%])")
# variables v0 allowed to shadow these (dropped) built-ins: `all := {"all"}` (psp capabilities)
_SHADOWING_NAMES = frozenset({"any", "all"})
# data.inventory (Gatekeeper's synced objects) travels in the input: rego-cpp compiles `data` into
# a bundle, and the inventory changes far more often than the template.
INVENTORY_FIELD = "data.inventory"
# rego-cpp 1.5.2's sprintf prints a string argument that it folded at compile time (a constant
# passed to a user function) with its quotes, and unescaped: `"hi "x""`. A string rebuilt by
# trim() prints right, so every sprintf's arguments go through this (appended to the module);
# but trim() also drops rego-cpp's escaping, so a string holding a backslash, a quote or a
# control character is left as it is (it would print as invalid JSON).
SPRINTF_ARGS = "lks_sprintf_args"
_SPRINTF_HELPERS = f"""
{SPRINTF_ARGS}(args) := [lks_sprintf_arg(v) | some v in args]
lks_sprintf_arg(v) := trim(v, "") if {{ is_string(v); not regex.match(`[\\\\"[:cntrl:]]`, v) }}
else := v
"""


@dataclass
class Module:
    """One module, translated: v1 source and what the compiler needs to know about it."""

    filename: str
    source: str
    package: str
    lines: list[int]  # line of the translated source (0-based) -> line of the original (1-based)
    functions: set[str] = field(default_factory=set)  # names defined with arguments
    arities: dict[str, set[int]] = field(default_factory=dict)  # function name -> its numbers of arguments
    rules: set[str] = field(default_factory=set)  # names of every rule and function
    calls: list[tuple[str, int]] = field(default_factory=list)  # (dotted name, original line)
    aliases: set[str] = field(default_factory=set)  # names bound by `import ... [as x]`
    uses_inventory: bool = False


def translate(source: str, filename: str, *, v1: bool = False) -> Module:
    """Translate a v0 module (or check a v1 one: `v1=True`, or `import rego.v1` in it)."""
    return _Translator(source, filename, v1=v1).run()


class _Translator(hoist.Hoisting):
    def __init__(self, source: str, filename: str, *, v1: bool) -> None:
        self.filename = filename
        self.toks = tokenize(source, filename)
        self.v1 = v1
        self.keywords: set[str] = set(V1_KEYWORDS) if v1 else set()
        self.before: dict[int, str] = {}  # token index -> text inserted before it
        self.package = ""
        self.module: Module | None = None
        self.head_tokens: set[int] = set()  # tokens already rewritten by a head
        self.sprintf = False  # whether the module calls sprintf (and needs its helpers)
        self.functions: set[str] = set()
        self.arities: dict[str, set[int]] = {}
        self.rules: set[str] = set()
        self.bodies: list[tuple[int, int, int, int]] = []  # (first, end, head start, head end)
        self.values: list[tuple[int, int, int]] = []  # rule values: (first, end, head start)
        self.hoisted = 0
        self.aliases: set[str] = set()

    # --- navigation -------------------------------------------------------------------------

    def _error(self, i: int, what: str, code: str = "rego_parse_error") -> RegoError:
        line = self.toks[min(i, len(self.toks) - 1)].line if self.toks else 1
        return RegoError(f"{self.filename}:{line}: {code}: {what}")

    def _next(self, i: int, *, skip_nl: bool = False) -> int:
        """Index of the first token at or after i that matters (len(toks) at the end)."""
        toks = self.toks
        while i < len(toks) and (toks[i].trivia or (skip_nl and toks[i].kind == NL)):
            i += 1
        return i

    def _prev(self, i: int) -> Token | None:
        i -= 1
        while i >= 0 and (self.toks[i].trivia or self.toks[i].kind == NL):
            i -= 1
        return self.toks[i] if i >= 0 else None

    def _text(self, i: int) -> str:
        return self.toks[i].text if i < len(self.toks) else ""

    def _is(self, i: int, text: str) -> bool:
        return i < len(self.toks) and self.toks[i].text == text and self.toks[i].kind in (IDENT, PUNCT)

    def _match(self, i: int) -> int:
        """Index of the bracket closing the one at i."""
        stack = [OPENERS[self.toks[i].text]]
        j = i + 1
        while j < len(self.toks):
            t = self.toks[j]
            if t.kind == PUNCT:
                if t.text in OPENERS:
                    stack.append(OPENERS[t.text])
                elif t.text in CLOSERS:
                    if t.text != stack.pop():
                        raise self._error(j, f"unexpected {t.text} token")
                    if not stack:
                        return j
            j += 1
        raise self._error(i, f"unclosed {self.toks[i].text}")

    def _term_end(self, i: int) -> int:
        """End of the value term starting at i: a newline, a body's `{`, `if` or `else`."""
        prev: Token | None = None
        j = i
        while j < len(self.toks):
            t = self.toks[j]
            if t.trivia:
                j += 1
                continue
            if t.kind == NL:
                if prev is not None and prev.ends_operand():
                    return j
                j += 1
                continue
            if t.kind == PUNCT and t.text in OPENERS:
                if t.text == "{" and prev is not None and prev.ends_operand():
                    return j
                j = self._match(j)
            elif t.kind == PUNCT and t.text in CLOSERS:
                raise self._error(j, f"unexpected {t.text} token")
            elif t.kind == PUNCT and t.text == ";":
                return j
            elif t.kind == IDENT and t.text in ("if", "else") and prev is not None and prev.ends_operand():
                return j
            prev = self.toks[j]
            j += 1
        return j

    def _line_end(self, i: int) -> int:
        """End of a one-line statement (package, import): the first newline outside brackets."""
        j = i
        while j < len(self.toks) and self.toks[j].kind != NL:
            if self.toks[j].kind == PUNCT and self.toks[j].text in OPENERS:
                j = self._match(j)
            j += 1
        return j

    # --- statements -------------------------------------------------------------------------

    def run(self) -> Module:
        toks = self.toks
        if any(t.kind == IDENT and t.text == "import" for t in toks):
            self._scan_imports()
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.trivia or t.kind == NL or (t.kind == PUNCT and t.text == ";"):
                i += 1
            elif t.kind == IDENT and t.text == "package":
                end = self._line_end(i)
                self.package = "".join(x.text for x in toks[i + 1 : end] if not x.trivia)
                i = end
            elif t.kind == IDENT and t.text == "import":
                i = self._line_end(i)
            else:
                i = self._rule(i)
        if not self.package:
            raise self._error(0, "missing package declaration")
        self.module = Module(self.filename, "", self.package, [], self.functions, self.arities, self.rules,
                             aliases=self.aliases)
        self._rewrite_body_tokens()
        for body in self.bodies:
            self._hoist_query(*body)
        for first, end, head in self.values:
            self._hoist_comprehensions(first, end, head)
        self.module.source, self.module.lines = self._emit()
        return self.module

    def _scan_imports(self) -> None:
        """Record the module's keyword imports (which make it partly v1) and import aliases."""
        toks = self.toks
        for i, t in enumerate(toks):
            if not (t.kind == IDENT and t.text == "import" and (i == 0 or toks[i - 1].kind == NL)):
                continue
            parts = [x.text for x in toks[i + 1 : self._line_end(i)] if not x.trivia]
            path = "".join(parts)
            if path == "rego.v1":
                self.v1 = True
                self.keywords |= V1_KEYWORDS
            elif path == "future.keywords":
                self.keywords |= V1_KEYWORDS
            elif path.startswith("future.keywords."):
                self.keywords.add(path.rsplit(".", 1)[1])
            elif len(parts) >= 3 and parts[-2] == "as":
                self.aliases.add(parts[-1])
            elif parts:
                self.aliases.add(parts[-1].strip('"[]'))

    def _rule(self, i: int) -> int:
        """Translate the rule starting at i; return the index after it."""
        toks = self.toks
        start = i
        if self._is(i, "default"):
            i = self._next(i + 1)
            self.rules.add(toks[i].text)
            return self._term_end(i)
        if toks[i].kind != IDENT:
            raise self._error(i, f"unexpected {toks[i].text} token")
        name = toks[i].text
        self.rules.add(name)
        i = self._next(i + 1)
        dots, brackets = 0, []
        while self._is(i, ".") or self._is(i, "["):
            if self._is(i, "."):
                dots += 1
                i = self._next(i + 1)
                if i >= len(toks) or toks[i].kind != IDENT:
                    raise self._error(i, "unexpected token in rule head reference")
                i = self._next(i + 1)
            else:
                close = self._match(i)
                brackets.append((i, close))
                i = self._next(close + 1)
        function = self._is(i, "(")
        if function:
            self.functions.add(name)
            close = self._match(i)
            self.arities.setdefault(name, set()).add(self._arity(i, close))
            i = self._next(close + 1)
        has_contains = "contains" in self.keywords and self._is(i, "contains")
        if has_contains:
            i = self._term_end(self._next(i + 1))
        assign = self._is(i, "=") or self._is(i, ":=")
        if assign:
            value = self._next(i + 1)
            i = self._term_end(value)
            self.values.append((value, i, start))
        if brackets and not has_contains and not assign and not function and not self.v1:
            # v0 partial set: name[x] -> name contains x
            if dots or len(brackets) > 1 or brackets[-1][1] != self._prev_index(i):
                raise self._error(start, f"rule head {name!r} with a multi-part reference is not supported")
            open_, close = brackets[-1]
            toks[open_].text, toks[close].text = " contains ", ""
            self.head_tokens.update((open_, close))
        head_end = i
        return self._bodies(start, head_end)

    def _arity(self, open_: int, close: int) -> int:
        """The number of arguments between the brackets at open_ and close."""
        count, seen, j = 0, False, open_ + 1
        while j < close:
            t = self.toks[j]
            if t.kind == PUNCT and t.text in OPENERS:
                j = self._match(j)
                seen = True
            elif t.kind == PUNCT and t.text == ",":
                count += 1
                seen = False
            elif not t.trivia and t.kind != NL:
                seen = True
            j += 1
        return count + seen

    def _prev_index(self, i: int) -> int:
        i -= 1
        while i >= 0 and (self.toks[i].trivia or self.toks[i].kind == NL):
            i -= 1
        return i

    def _bodies(self, start: int, head_end: int) -> int:
        """Put `if` before each body, split extra bodies into rules of their own, then `else`s."""
        toks = self.toks
        i = self._next(head_end)
        has_if = self._is(i, "if") and "if" in self.keywords
        if has_if:
            j = self._next(i + 1, skip_nl=True)
            if not self._is(j, "{"):  # v1 one-expression body: `p if x > 1`
                i = self._term_end(j)
        count = 0
        while True:
            j = self._next(i, skip_nl=True)
            if self._is(j, "if") and "if" in self.keywords:
                has_if = True
                j = self._next(j + 1, skip_nl=True)
            if self._is(j, "{"):
                if count and not self.v1:
                    head = "".join(t.text for t in toks[start:head_end]).strip()
                    self.before[j] = f"\n{head} if "
                elif not has_if and not self.v1:
                    self.before[j] = "if "
                count += 1
                has_if = False
                i = self._match(j) + 1
                self.bodies.append((j + 1, i - 1, start, head_end))
            elif self._is(j, "else") and count:
                k = self._next(j + 1)
                if self._is(k, "=") or self._is(k, ":="):
                    k = self._term_end(self._next(k + 1))
                k2 = self._next(k, skip_nl=True)
                if self._is(k2, "if") and "if" in self.keywords:
                    k2 = self._next(k2 + 1, skip_nl=True)
                elif self._is(k2, "{") and not self.v1:
                    self.before[k2] = "if "
                if not self._is(k2, "{"):  # `else := value`: no body
                    i = k
                    continue
                i = self._match(k2) + 1
                self.bodies.append((k2 + 1, i - 1, start, head_end))
            else:
                return i

    # --- bodies -----------------------------------------------------------------------------

    def _rewrite_body_tokens(self) -> None:
        """Built-ins renamed or refused, data.inventory moved to the input, keywords as names."""
        toks = self.toks
        module = self.module
        for i, t in enumerate(toks):
            if t.kind != IDENT or i in self.head_tokens:
                continue
            prev = self._prev(i)
            if prev is not None and prev.kind == PUNCT and prev.text == ".":
                continue  # a field: x.contains, input.review.object.data
            if t.text == "data" and self._data_ref(i):
                continue
            # a call: dotted name then `(`
            j, parts = i, [t.text]
            k = self._next(j + 1)
            while self._is(k, ".") and self._next(k + 1) < len(toks) and toks[self._next(k + 1)].kind == IDENT:
                j = self._next(k + 1)
                parts.append(toks[j].text)
                k = self._next(j + 1)
            dotted = ".".join(parts)
            if self._is(k, "(") and not self._is(self._prev_index(i), "import"):
                if dotted in UNSUPPORTED_BUILTINS:
                    raise self._error(i, UNSUPPORTED_BUILTINS[dotted], "rego_type_error")
                if dotted in RENAMED_BUILTINS:
                    t.text = RENAMED_BUILTINS[dotted]
                    dotted = t.text
                module.calls.append((dotted, t.line))
                if dotted == "sprintf":
                    self._wrap_sprintf_args(k)
                if t.text == "contains":
                    continue
            if t.text in V1_KEYWORDS and t.text not in self.keywords:
                t.text += "_"  # a v0 name that v1 made a keyword
            elif t.text in _SHADOWING_NAMES:
                t.text += "_"  # a variable named as a v0 built-in rego-cpp refuses to compile

    def _wrap_sprintf_args(self, open_: int) -> None:
        """sprintf(format, args) -> sprintf(format, lks_sprintf_args(args)); see SPRINTF_ARGS."""
        close = self._match(open_)
        j = open_ + 1
        while j < close:
            t = self.toks[j]
            if t.kind == PUNCT and t.text in OPENERS:
                j = self._match(j)
            elif t.kind == PUNCT and t.text == ",":
                args = self._next(j + 1, skip_nl=True)
                self.before[args] = self.before.get(args, "") + f"{SPRINTF_ARGS}("
                self.before[close] = ")" + self.before.get(close, "")
                self.sprintf = True
                self._pad_sprintf_args(self._next(open_ + 1, skip_nl=True), args)
                return
            j += 1

    def _pad_sprintf_args(self, fmt: int, args: int) -> None:
        """OPA (Go) prints a verb without an argument as `%!v(MISSING)`; rego-cpp fails the
        whole evaluation. With a literal format and a literal array, pad the array as Go prints."""
        toks = self.toks
        if toks[fmt].kind != STRING or not self._is(args, "["):
            return
        end = self._match(args)
        verbs = [m.group(1) for m in _VERB.finditer(toks[fmt].text) if m.group(1) != "%"]
        items, depth, seen = 0, 0, False
        for t in toks[args + 1 : end]:
            if t.trivia or t.kind == NL:
                continue
            if t.kind == PUNCT and t.text in OPENERS:
                depth += 1
            elif t.kind == PUNCT and t.text in CLOSERS:
                depth -= 1
            if depth == 0 and t.kind == PUNCT and t.text == ",":
                items += seen
                seen = False
            else:
                seen = True
        items += seen
        missing = "".join(f', "%!{v}(MISSING)"' for v in verbs[items:])
        if missing and set(verbs[items:]) <= {"v", "s"}:  # a string fits only these verbs
            self.before[end] = missing + self.before.get(end, "")

    def _data_ref(self, i: int) -> bool:
        """Rewrite `data.inventory` / `data["inventory"]`; refuse other data references."""
        toks = self.toks
        k = self._next(i + 1)
        if self._is(k, "."):
            n = self._next(k + 1)
            name = toks[n].text if n < len(toks) and toks[n].kind == IDENT else None
            if name == "inventory":
                t = toks[n]
                toks[i].text, toks[k].text, t.text = "input", "", f'["{INVENTORY_FIELD}"]'
                self.module.uses_inventory = True
                return True
            if name == "lib":
                return True
        elif self._is(k, "[") and k + 1 < len(toks) and toks[self._next(k + 1)].kind == STRING:
            s = toks[self._next(k + 1)]
            if s.text.strip('"`') == "inventory":
                toks[i].text, s.text = "input", f'"{INVENTORY_FIELD}"'
                self.module.uses_inventory = True
                return True
            if s.text.strip('"`') == "lib":
                return True
        prev_i = self._prev_index(i)
        if self._is(prev_i, "import"):
            return False
        raise self._error(
            i, "invalid data reference: templates may read only data.inventory and data.lib", "rego_type_error"
        )

    # --- output -----------------------------------------------------------------------------

    def _emit(self) -> tuple[str, list[int]]:
        out: list[str] = []
        lines = [1]
        for i, t in enumerate(self.toks):
            ins = self.before.get(i)
            if ins:
                out.append(ins)
                lines += [t.line] * ins.count("\n")
            out.append(t.text)
            for n in range(t.text.count("\n")):
                lines.append(t.line + n + 1)
        if self.sprintf:
            out.append(_SPRINTF_HELPERS)
            lines += [lines[-1]] * _SPRINTF_HELPERS.count("\n")
        return "".join(out), lines
