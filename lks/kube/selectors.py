"""Label and field selectors, parsed and matched as `k8s.io/apimachinery` does.

Label selectors support every operator: `=`, `==`, `!=`, `in`, `notin`, exists (`key`) and
does-not-exist (`!key`). Field selectors support `=`, `==` and `!=` on the fields a resource
type declares (`lks.kube.fields`). A bad selector is a 400 BadRequest with upstream's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lks.kube import errors


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too
        return self.key not in labels or labels[self.key] not in self.values


class LabelSelector:
    def __init__(self, requirements: list[Requirement]):
        self.requirements = requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and _LABEL_KEY_NAME.match(name) is not None
    if prefix:
        ok = ok and len(prefix) <= 253 and _DNS1123_SUBDOMAIN.match(prefix) is not None
    if not ok:
        raise errors.bad_request(
            f"unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise errors.bad_request(
            f"unable to parse requirement: invalid label value: \"{value}\": a valid label must be an empty "
            "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def parse_labels(text: str | None) -> LabelSelector:
    """Parse `?labelSelector=`; raises a 400 APIError when malformed."""
    if not text or not text.strip():
        return LabelSelector([])
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise errors.bad_request(f"unable to parse requirement: found unexpected characters in '{text}'")
    reqs: list[Requirement] = []
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            i += 1
            key = peek()
            if key is None or key in "!=(),":
                raise errors.bad_request(f"unable to parse requirement: missing key after '!' in '{text}'")
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 1
        else:
            key = tok
            if key in ("=", "==", "!=", "(", ")", ","):
                raise errors.bad_request(f"unable to parse requirement: found '{key}', expected: identifier")
            _check_key(key)
            i += 1
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                i += 1
                value = peek()
                if value is None or value == ",":
                    value = ""  # `key=` selects an empty value
                else:
                    i += 1
                _check_value(value)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            elif op in ("in", "notin"):
                i += 1
                if peek() != "(":
                    raise errors.bad_request(f"unable to parse requirement: found '{peek()}', expected: '('")
                i += 1
                values: set[str] = set()
                while True:
                    tok = peek()
                    if tok is None:
                        raise errors.bad_request("unable to parse requirement: found '', expected: ')'")
                    i += 1
                    if tok == ")":
                        break
                    if tok == ",":
                        continue
                    _check_value(tok)
                    values.add(tok)
                if not values and op == "in":
                    raise errors.bad_request("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
                reqs.append(Requirement(key, op, frozenset(values)))
            else:
                raise errors.bad_request(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise errors.bad_request(f"unable to parse requirement: found '{tokens[i]}', expected: ','")
            i += 1
    return LabelSelector(reqs)


def from_label_selector_object(sel: Mapping | None) -> LabelSelector:
    """A `metav1.LabelSelector` (`matchLabels`, `matchExpressions`) as a matcher."""
    if not sel:
        return LabelSelector([])
    reqs = [Requirement(k, "=", frozenset([v])) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or ())))
    return LabelSelector(reqs)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    value: str
    equal: bool


class FieldSelector:
    def __init__(self, requirements: list[FieldRequirement]):
        self.requirements = requirements

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def matches(self, fields: Callable[[str], str | None]) -> bool:
        for r in self.requirements:
            if (fields(r.field) == r.value) != r.equal:
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value an `=` requirement pins `field` to, if any (lets a list narrow its range)."""
        for r in self.requirements:
            if r.field == field and r.equal:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_fields(text: str | None, supported: Callable[[str], bool]) -> FieldSelector:
    """Parse `?fieldSelector=`; unknown fields are a 400 like upstream's
    `field label not supported: <field>`."""
    if not text or not text.strip():
        return FieldSelector([])
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+)(!=|==|=)(.*)$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3))
        if not supported(field):
            raise errors.bad_request(f'field label not supported: {field}')
        reqs.append(FieldRequirement(field, value, op != "!="))
    return FieldSelector(reqs)
