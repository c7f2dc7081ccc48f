"""Iteration moved out of call arguments, for rego-cpp (part of the v0 -> v1 translation).

rego-cpp 1.5.2 cannot iterate inside a call's arguments: `lower(xs[_])` fails to evaluate and
`lower(xs[i])` with `i` unbound is silently empty. So each such reference moves into an
assignment of its own before its statement (`t := xs[_]; lower(t)`: the same query). Under `not`
that would change the meaning, except for a user function's arguments, which OPA itself
evaluates before the negation (so an undefined one fails the statement): those are all moved;
iteration in a negated built-in call is refused. `v0._Translator` mixes this in and calls
`_hoist_query` on every rule body and `_hoist_comprehensions` on every rule value.
"""

from __future__ import annotations

from .lexer import CLOSERS, IDENT, NL, OPENERS, PUNCT, Token

# identifiers that are never variables (in an index `[x]` they do not iterate)
_KEYWORDS = frozenset({"true", "false", "null", "not", "some", "every", "with", "as"})
_NOT_VARS = _KEYWORDS | {"input", "data"}


class Hoisting:
    """Mixin of `v0._Translator`: uses its tokens, insertions and navigation helpers."""

    toks: list[Token]
    before: dict[int, str]
    functions: set[str]
    aliases: set[str]
    hoisted: int

    def _hoist_query(self, a: int, b: int, head: int, head_end: int) -> None:
        """Move iteration out of the call arguments of each statement of toks[a:b]."""
        toks = self.toks
        start, depth, prev = a, 0, None
        for k in range(a, b + 1):
            t = toks[k] if k < b else None
            if t is not None and t.trivia:
                continue
            if t is not None and t.kind == PUNCT and t.text in OPENERS:
                depth += 1
            elif t is not None and t.kind == PUNCT and t.text in CLOSERS:
                depth -= 1
            boundary = t is None or (depth == 0 and (
                (t.kind == NL and prev is not None and prev.ends_operand()) or (t.kind == PUNCT and t.text == ";")))
            if boundary:
                if t is not None and t.kind == NL and self._is(self._next(k + 1, skip_nl=True), "("):
                    # rego-cpp reads `x.y` NEWLINE `(a - b) > 1` as a call x.y(a - b): end the line
                    self.before[k] = ";" + self.before.get(k, "")
                if self._next(start, skip_nl=True) < k:
                    self._hoist_statement(self._next(start, skip_nl=True), k, a, head, head_end)
                start = k + 1
            if t is not None and t.kind != NL:
                prev = t

    def _hoist_comprehensions(self, a: int, b: int, head: int) -> None:
        """The queries of the comprehensions in a rule's value (`x := {c | c := lower(xs[_])}`)."""
        k = a
        while k < b:
            t = self.toks[k]
            if t.kind == PUNCT and t.text in "{[":
                close = self._match(k)
                bar = self._comprehension_bar(k, close)
                if bar is not None:
                    self._hoist_query(bar + 1, close, head, head)
                    k = close + 1
                    continue
            k += 1

    def _comprehension_bar(self, open_: int, close: int) -> int | None:
        depth = 0
        for k in range(open_ + 1, close):
            t = self.toks[k]
            if t.kind == PUNCT and t.text in OPENERS:
                depth += 1
            elif t.kind == PUNCT and t.text in CLOSERS:
                depth -= 1
            elif depth == 0 and t.kind == PUNCT and t.text == "|":
                return k
        return None

    def _hoist_statement(self, s: int, e: int, query: int, head: int, head_end: int) -> None:
        toks = self.toks
        if toks[s].kind == IDENT and toks[s].text == "every":
            return
        negated = toks[s].kind == IDENT and toks[s].text == "not"
        k = s
        while k < e:
            t = toks[k]
            if t.kind == PUNCT and t.text in OPENERS:
                close = self._match(k)
                bar = self._comprehension_bar(k, close) if t.text in "{[" else None
                if bar is not None:
                    self._hoist_query(bar + 1, close, head, head_end)
                    k = close + 1
                    continue
            elif t.kind == IDENT and not self._after_dot(k):
                call = self._call_paren(k)
                if call is not None:
                    close = self._match(call)
                    # OPA evaluates the arguments of a user function's call before a `not` (so
                    # an undefined one fails the statement): the same, by hoisting them all
                    user = negated and self._user_function(k)
                    for ref, cut in self._refs(call + 1, close, every=user):
                        if negated and not user:
                            var = self._bracket_var(cut)
                            bound = {x.text for x in toks[head:head_end] + toks[query:s] if x.kind == IDENT}
                            if var == "_" or var not in bound:
                                raise self._error(ref, "iteration inside the arguments of a call under `not` is "
                                                  "not supported: assign the element first", "rego_compile_error")
                            continue
                        self._hoist(ref, cut, s)
                    k = close + 1
                    continue
            k += 1

    def _user_function(self, k: int) -> bool:
        name = self.toks[k].text
        return name in self.functions or name in self.aliases or name == "data"

    def _after_dot(self, k: int) -> bool:
        prev = self._prev(k)
        return prev is not None and prev.kind == PUNCT and prev.text == "."

    def _call_paren(self, k: int) -> int | None:
        """If the identifier at k names a call (`f(`, `a.b(`), the index of its `(`."""
        toks = self.toks
        j = self._next(k + 1)
        while self._is(j, ".") and self._next(j + 1) < len(toks) and toks[self._next(j + 1)].kind == IDENT:
            j = self._next(self._next(j + 1) + 1)
        return j if self._is(j, "(") else None

    def _bracket_var(self, close: int) -> str:
        j = close - 1
        while self.toks[j].trivia:
            j -= 1
        return self.toks[j].text

    def _refs(self, a: int, b: int, *, every: bool = False) -> list[tuple[int, int]]:
        """References in toks[a:b] with a variable index (`xs[_]`, `o[k]`), as (first token, last
        `]`); with `every`, all references with a field or index (up to their end)."""
        toks = self.toks
        found = []
        k = a
        while k < b:
            t = toks[k]
            if t.kind == PUNCT and t.text in OPENERS:
                close = self._match(k)
                if t.text in "{[" and self._comprehension_bar(k, close) is not None:
                    k = close + 1
                    continue
            elif t.kind == IDENT and not self._after_dot(k) and t.text not in _KEYWORDS \
                    and self._call_paren(k) is None:
                j, cut = self._next(k + 1), None
                while self._is(j, ".") or self._is(j, "["):
                    if self._is(j, "."):
                        j = self._next(j + 1)
                        if every:
                            cut = j
                        j = self._next(j + 1)
                        continue
                    close = self._match(j)
                    inner = [x for x in toks[j + 1 : close] if not x.trivia and x.kind != NL]
                    if every or (len(inner) == 1 and inner[0].kind == IDENT and inner[0].text not in _NOT_VARS):
                        cut = close
                    j = self._next(close + 1)
                if cut is not None:
                    found.append((k, cut))
                    k = cut + 1
                    continue
            k += 1
        return found

    def _hoist(self, ref: int, cut: int, statement: int) -> None:
        self.hoisted += 1
        var = f"lks_it{self.hoisted}"
        text = "".join(t.text for t in self.toks[ref : cut + 1] if t.kind != NL)
        for t in self.toks[ref + 1 : cut + 1]:
            t.text = "\n" * t.text.count("\n")
        self.toks[ref].text = var
        self.before[statement] = self.before.get(statement, "") + f"{var} := {text}; "

