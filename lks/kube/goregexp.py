"""Whether a regular expression compiles under Go's `regexp` (RE2 syntax), and if not, the
error Go gives: CRD schemas' `pattern`s are Go regular expressions, and kube-apiserver refuses
one that `regexp.Compile` refuses, quoting its error (`error parsing regexp: missing closing ]:
`[a-z``).

Python's `re` is no judge: it accepts what RE2 refuses (lookarounds, backreferences) and
refuses what RE2 accepts (`\\pL`, `\\z`, `\\Q…\\E`). So this walks the expression the way Go's
parser does, far enough to find the errors it reports, in the order it meets them.
"""

from __future__ import annotations

_PERL_CLASSES = set("dDsSwW")
_ASSERTIONS = set("bBAz")
_CONTROL = set("afnrtv")
_REPEAT_MAX = 1000


class _Error(Exception):
    def __init__(self, code: str, expr: str):
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


def compile_error(pattern: str) -> str | None:
    """Go's `regexp.Compile(pattern)` error text, or None when Go compiles it."""
    try:
        _Parser(pattern).parse()
    except _Error as err:
        return str(err)
    return None


class _Parser:
    def __init__(self, text: str):
        self.t = text
        self.i = 0

    def parse(self) -> None:
        """Walk the whole expression; raises `_Error` at the first thing Go refuses."""
        t = self.t
        opens = 0
        operand = False
        repeated = ""
        while self.i < len(t):
            c = t[self.i]
            start = self.i
            if c == "(":
                try:
                    self._group()
                except _FlagsOnly:
                    continue
                opens += 1
                operand, repeated = False, ""
                continue
            if c == "|":
                self.i += 1
                operand, repeated = False, ""
                continue
            if c == ")":
                if opens == 0:
                    raise _Error("unexpected )", t)
                opens -= 1
                self.i += 1
                operand, repeated = True, ""
                continue
            count = self._repeat_count() if c == "{" else None
            if c in "*+?" or count is not None:
                end = count[2] if count is not None else self.i + 1
                if count is not None:
                    lo, hi, _ = count
                    if lo > _REPEAT_MAX or (hi is not None and (hi > _REPEAT_MAX or hi < lo)):
                        raise _Error("invalid repeat count", t[start:end])
                self.i = end
                if self.i < len(t) and t[self.i] == "?":  # non-greedy
                    self.i += 1
                op = t[start:self.i]
                if repeated:
                    raise _Error("invalid nested repetition operator", repeated + op)
                if not operand:
                    raise _Error("missing argument to repetition operator", op)
                repeated = op
                continue
            if c == "[":
                self._class()
            elif c == "\\":
                self._escape()
            else:
                self.i += 1
            operand, repeated = True, ""
        if opens:
            raise _Error("missing closing )", t)

    def _group(self) -> None:
        t, i = self.t, self.i
        if t.startswith("(?", i):
            if t.startswith("(?P<", i) or t.startswith("(?<", i):
                begin = i + (4 if t[i + 2] == "P" else 3)
                end = t.find(">", begin)
                if end < 0:
                    raise _Error("invalid named capture", t[i:])
                name = t[begin:end]
                if not name or not all(ch.isalnum() or ch == "_" for ch in name):
                    raise _Error("invalid named capture", t[i:end + 1])
                self.i = end + 1
                return
            j = i + 2
            while j < len(t) and t[j] in "imsU-":
                j += 1
            if j < len(t) and t[j] in ":)":
                if t[j] == ")":  # a flag group opens nothing; undo the caller's count
                    self.i = j + 1
                    raise _FlagsOnly
                self.i = j + 1
                return
            raise _Error("invalid or unsupported Perl syntax", t[i:j + 1])
        self.i = i + 1

    def _repeat_count(self) -> tuple[int, int | None, int] | None:
        t, i = self.t, self.i + 1
        j = i
        while j < len(t) and t[j].isdigit():
            j += 1
        if j == i:
            return None
        lo = int(t[i:j])
        hi: int | None = lo
        if j < len(t) and t[j] == ",":
            j += 1
            k = j
            while j < len(t) and t[j].isdigit():
                j += 1
            hi = int(t[k:j]) if j > k else None
        if j >= len(t) or t[j] != "}":
            return None
        return lo, hi, j + 1

    def _escape(self) -> str:
        """Consume one escape at `self.i`; the character it stands for ("" for a class)."""
        t, i = self.t, self.i
        if i + 1 >= len(t):
            raise _Error("trailing backslash at end of expression", "")
        c = t[i + 1]
        if c in "1234567" and not (i + 2 < len(t) and t[i + 2] in "01234567"):  # a backreference
            raise _Error("invalid escape sequence", t[i:i + 2])
        if c in "01234567":
            j = i + 1
            while j < len(t) and j < i + 4 and t[j] in "01234567":
                j += 1
            self.i = j
            return chr(int(t[i + 1:j], 8))
        if c == "x":
            if t.startswith("{", i + 2):
                end = t.find("}", i + 3)
                digits = t[i + 3:end] if end > 0 else ""
                if end < 0 or not digits or not all(d in "0123456789abcdefABCDEF" for d in digits) \
                        or int(digits, 16) > 0x10FFFF:
                    raise _Error("invalid escape sequence", t[i:(end + 1 if end > 0 else len(t))])
                self.i = end + 1
                return chr(int(digits, 16))
            digits = t[i + 2:i + 4]
            if len(digits) < 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _Error("invalid escape sequence", t[i:i + 2 + len(digits)])
            self.i = i + 4
            return chr(int(digits, 16))
        if c in "pP":
            if t.startswith("{", i + 2):
                end = t.find("}", i + 3)
                if end < 0:
                    raise _Error("invalid character class range", t[i:])
                self.i = end + 1
            else:
                if i + 2 >= len(t):
                    raise _Error("invalid character class range", t[i:])
                self.i = i + 3
            return ""
        if c == "Q":
            end = t.find("\\E", i + 2)
            self.i = len(t) if end < 0 else end + 2
            return ""
        if c in _PERL_CLASSES or c in _ASSERTIONS:
            self.i = i + 2
            return ""
        if c in _CONTROL:
            self.i = i + 2
            return {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}[c]
        if c.isascii() and not c.isalnum():  # punctuation, and `\_`, stand for themselves
            self.i = i + 2
            return c
        raise _Error("invalid escape sequence", t[i:i + 2])

    def _class(self) -> None:
        t, start = self.t, self.i
        i = start + 1
        if i < len(t) and t[i] == "^":
            i += 1
        first = True
        while True:
            if i >= len(t):
                raise _Error("missing closing ]", t[start:])
            c = t[i]
            if c == "]" and not first:
                self.i = i + 1
                return
            first = False
            if t.startswith("[:", i):
                end = t.find(":]", i + 2)
                if end >= 0:
                    i = end + 2
                    continue
            lo_at = i
            lo, i = self._class_char(i)
            if i + 1 < len(t) and t[i] == "-" and t[i + 1] != "]":
                hi, i = self._class_char(i + 1)
                if lo and hi and hi < lo:
                    raise _Error("invalid character class range", t[lo_at:i])

    def _class_char(self, i: int) -> tuple[str, int]:
        if self.t[i] == "\\":
            self.i = i
            ch = self._escape()
            return ch, self.i
        return self.t[i], i + 1


class _FlagsOnly(Exception):
    """A `(?i)` group: flags for what follows, no group to close."""
