"""Go's `encoding/json` error texts for malformed JSON, which kube-apiserver's errors quote
(``invalid character 'n' looking for beginning of object key string``, ``unexpected end of JSON
input``). lks parses with orjson; when that fails, `syntax_error` reads the body again with the
standard library, whose errors say where, and words them as Go's scanner would.
"""

from __future__ import annotations

import json

from lks.kube.structural import go_quote

# Python's JSON error -> what Go's scanner says at the same character
_GO_JSON_ERRORS = (
    ("Expecting value", "looking for beginning of value"),
    ("Expecting property name", "looking for beginning of object key string"),
    ("Expecting ':' delimiter", "after object key"),
    ("Expecting ',' delimiter", "after object key:value pair"),
    ("Extra data", "after top-level value"),
    ("Invalid control character", "in string literal"),
    ("Invalid \\escape", "in string escape code"),
)


class _Constant(ValueError):
    """NaN or Infinity, which Python reads and Go does not."""


def _innermost(text: str) -> str:
    """The bracket of the innermost array or object open at the end of `text`."""
    stack, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            in_string, escaped = (escaped or ch != '"'), (not escaped and ch == "\\")
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def syntax_error(raw: bytes | str) -> str | None:
    """What Go's `json.Unmarshal` says of `raw` when it is not JSON, for the usual mistakes;
    None when it is."""
    def constant(name: str) -> None:
        raise _Constant(name)

    try:
        json.loads(raw, parse_constant=constant)
    except _Constant as err:
        name = str(err)
        return "invalid character 'I' in numeric literal" if name[0] == "-" else \
            f"invalid character '{name[0]}' looking for beginning of value"
    except json.JSONDecodeError as err:
        ch = err.doc[err.pos:err.pos + 1]
        if not err.doc[err.pos:].strip() or err.msg.startswith("Unterminated"):
            return "unexpected end of JSON input"
        where = next((go for py, go in _GO_JSON_ERRORS if err.msg.startswith(py)), "looking for beginning of value")
        if err.msg.startswith("Expecting ',' delimiter") and _innermost(err.doc[:err.pos]) == "[":
            where = "after array element"
        quoted = "'\\''" if ch == "'" else "'" + go_quote(ch)[1:-1].replace('\\"', '"') + "'"
        return f"invalid character {quoted} {where}"
    except ValueError:
        return "invalid character looking for beginning of value"
    except RecursionError:  # deeper than Python parses; Go's scanner stops at 10,000 levels
        return "exceeded max depth"
    return None


_FIND_KIND = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
              'Kind string "json:\\"kind,omitempty\\"" }')


def kind_of(value: object) -> str:
    """The JSON type of a decoded value, as Go's unmarshal errors name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def find_kind_error(value: object) -> str | None:
    """What Go says reading apiVersion and kind out of a decoded body (the serializer's
    `SimpleMetaFactory.Interpret`), None when it can: the body must be an object (or null), and
    the two fields strings (or null). encoding/json matches field names in any case and reports
    the first mismatch in document order."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"json: cannot unmarshal {kind_of(value)} into Go value of type {_FIND_KIND}"
    for key, field_value in value.items():
        name = key.lower()
        if name in ("apiversion", "kind") and field_value is not None and not isinstance(field_value, str):
            field = "apiVersion" if name == "apiversion" else "kind"
            return f"json: cannot unmarshal {kind_of(field_value)} into Go struct field .{field} of type string"
    return None
