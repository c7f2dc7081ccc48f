"""A tokenizer for Rego source, the ground `v0.py` translates on.

It keeps every character: whitespace, comments and newlines are tokens too, so that joining the
texts of the tokens gives the source back and a translation can edit a few tokens and keep every
other byte (and so every line number) where it was. Strings (`"..."` with escapes, raw
`` `...` ``) and comments are single tokens, so braces inside them never count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RegoError

# token kinds
WS, NL, COMMENT, IDENT, NUMBER, STRING, PUNCT = "ws", "nl", "comment", "ident", "number", "string", "punct"

_PATTERNS = [
    (NL, r"\r?\n"),
    (WS, r"[ \t\r\f]+"),
    (COMMENT, r"#[^\n]*"),
    (IDENT, r"[A-Za-z_][A-Za-z0-9_]*"),
    (NUMBER, r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"),
    (STRING, r'"(?:[^"\\\n]|\\.)*"'),
    (STRING, r"`[^`]*`"),
    (PUNCT, r":=|==|!=|<=|>=|[{}\[\]().,;:=<>+\-*/%|&!]"),
]
_TOKEN = re.compile("|".join(f"(?P<t{i}>{p})" for i, (_, p) in enumerate(_PATTERNS)))
_KINDS = [k for k, _ in _PATTERNS]

OPENERS = {"{": "}", "[": "]", "(": ")"}
CLOSERS = {"}", "]", ")"}


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    line: int  # 1-based line of the token's first character

    @property
    def trivia(self) -> bool:
        """Whitespace or a comment: never changes a statement's meaning (newlines do)."""
        return self.kind in (WS, COMMENT)

    def ends_operand(self) -> bool:
        """Whether an expression may end with this token (so a `{` after it opens a body)."""
        return self.kind in (IDENT, NUMBER, STRING) or self.text in CLOSERS


def tokenize(source: str, filename: str) -> list[Token]:
    """Split `source` into tokens; an unterminated string or a stray character is a parse error."""
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            what = "non-terminated string" if source[pos] in "\"`" else f"illegal token {source[pos]!r}"
            raise RegoError(f"{filename}:{line}: rego_parse_error: {what}")
        kind = _KINDS[int(m.lastgroup[1:])]
        text = m.group()
        tokens.append(Token(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return tokens
