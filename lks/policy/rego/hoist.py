"""Iteration moved out of call arguments, for rego-cpp (part of the v0 -> v1 translation).

rego-cpp 1.5.2 cannot iterate inside a call's arguments: `lower(xs[_])` fails to evaluate and
`lower(xs[i])` with `i` unbound is silently empty. So each such reference moves into an
assignment of its own before its statement (`t := xs[_]; lower(t)`: the same query). Under `not`
OPA itself evaluates every reference among a call's arguments (a user function's or a built-in's)
and an operator's operands (`>`, `!=`, `+` ...; not `==`, which is unification) before the
negation, so an undefined one fails the statement where rego-cpp would make it true: those are
all moved too, as are references used as an index (`not o[input.k]`); iteration in a negated
built-in call or operator is refused. `v0._Translator` mixes this in and calls
`_hoist_query` on every rule body and `_hoist_comprehensions` on every rule value.
"""

from __future__ import annotations

from .lexer import CLOSERS, IDENT, NL, OPENERS, PUNCT, Token

# identifiers that are never variables (in an index `[x]` they do not iterate)
_KEYWORDS = frozenset({"true", "false", "null", "not", "some", "every", "with", "as"})
_NOT_VARS = _KEYWORDS | {"input", "data"}
# the infix operators that are calls to OPA (`==` and `=` are unification, see `_hoist_operands`)
_OPERATORS = frozenset({"!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "&", "|"})


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
        # `not ... with input as x`: a hoisted reference would read the input without the `with`
        modified = negated and any(x.kind == IDENT and x.text == "with" for x in toks[s:e])
        bound = None
        if negated:
            bound = {x.text for x in toks[head:head_end] + toks[query:s] if x.kind == IDENT}
            if not modified:
                self._hoist_operands(s, e, bound)
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
                    # OPA evaluates every reference among a call's arguments before a `not` (its
                    # compiler's RewriteDynamicTerms), so an undefined one fails the statement
                    # rather than making it true: the same, by hoisting them all. Iteration in a
                    # user function's arguments is hoisted too; in a built-in's, refused.
                    user = self._user_function(k)
                    for ref, cut in self._refs(call + 1, close, every=negated and (user or not modified)):
                        if negated and not user:
                            if self._iterates(ref, cut, bound):
                                raise self._error(ref, "iteration inside the arguments of a call under `not` is "
                                                  "not supported: assign the element first", "rego_compile_error")
                            if modified:
                                continue
                        self._hoist(ref, cut, s)
                    k = close + 1
                    continue
            k += 1

    def _hoist_operands(self, s: int, e: int, bound: set[str]) -> None:
        """`not a > b`, `not a != b`, `not a + 1 == b`: the operators are calls to OPA, whose
        referenced operands it evaluates before the `not`, as a call's arguments. `==` and `=`
        themselves are unification, whose sides it leaves under the `not` (`not input.x == 1`
        is true when input.x is undefined), and so does a lone reference (`not input.x`)."""
        toks = self.toks
        sides: list[tuple[int, int]] = []
        start, depth, operators = s + 1, 0, False
        for k in range(s + 1, e):
            t = toks[k]
            if t.kind != PUNCT:
                continue
            if t.text in OPENERS:
                depth += 1
            elif t.text in CLOSERS:
                depth -= 1
            elif depth == 0 and t.text in ("==", "="):
                sides.append((start, k))
                start = k + 1
            elif depth == 0 and t.text in _OPERATORS:
                operators = True
        sides.append((start, e))
        for a, b in sides:
            if len(sides) > 1 and not any(toks[k].kind == PUNCT and toks[k].text in _OPERATORS for k in range(a, b)) \
                    or len(sides) == 1 and not operators:
                # a side of `==` or a lone term stays (a call's arguments are the caller's), but
                # not the references indexing it (`not o[input.k]`)
                self._hoist_indexes(a, b, s, bound)
                continue
            for ref, cut in self._depth0_refs(a, b):
                if self._iterates(ref, cut, bound):
                    raise self._error(ref, "iteration inside an operator's operands under `not` is not supported: "
                                      "assign the element first", "rego_compile_error")
                self._hoist(ref, cut, s)

    def _hoist_indexes(self, a: int, b: int, s: int, bound: set[str]) -> None:
        """Hoist the references used as an index (`o[input.k]`) in toks[a:b], before statement s."""
        toks = self.toks
        k = a
        while k < b:
            t = toks[k]
            if t.kind == PUNCT and t.text in OPENERS:
                close = self._match(k)
                prev = self._prev(k)
                if t.text == "[" and prev is not None and prev.ends_operand() and prev.text != "|" \
                        and self._comprehension_bar(k, close) is None:
                    for ref, cut in self._depth0_refs(k + 1, close):
                        if not self._iterates(ref, cut, bound):
                            self._hoist(ref, cut, s)
                    k = close + 1
                    continue
            k += 1

    def _depth0_refs(self, a: int, b: int) -> list[tuple[int, int]]:
        """The references that are operands themselves in toks[a:b] (not inside a call or literal)."""
        toks = self.toks
        found, depth = [], 0
        for ref, cut in self._refs(a, b, every=True):
            depth = sum(1 if x.text in OPENERS else -1 for x in toks[a:ref] if x.kind == PUNCT
                        and (x.text in OPENERS or x.text in CLOSERS))
            if depth == 0:
                found.append((ref, cut))
        return found

    def _iterates(self, ref: int, cut: int, bound: set[str] | None) -> bool:
        """Whether the reference toks[ref:cut+1] has an index that is an unbound variable."""
        toks = self.toks
        for k in range(ref, cut):
            if toks[k].kind == PUNCT and toks[k].text == "[":
                inner = [x for x in toks[k + 1 : self._match(k)] if not x.trivia and x.kind != NL]
                if len(inner) == 1 and inner[0].kind == IDENT and inner[0].text not in _NOT_VARS \
                        and (inner[0].text == "_" or bound is None or inner[0].text not in bound):
                    return True
        return False

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

