"""The declared signature of every CEL function and operator the checker knows: CEL's standard
declarations (cel-go `checker/decls` and `common/stdlib`, with the cross-type numeric comparisons
Kubernetes turns on) and the Kubernetes libraries' (`k8s.io/apiserver/pkg/cel/library`: lists,
strings, regex, URLs, IPs and CIDRs, quantities, semver, format, authorizer) and cel-go's
extensions (strings, sets, lists, optional).

Written as one line per overload, `name: [Receiver.](Args) -> Result` with `A`, `B`, `K`, `V`
as type parameters, and parsed once at import. `lks.kube.cel.checker` resolves calls against
them; a function lks implements but declares nothing for here checks as `dyn`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lks.kube.cel import types as t


@dataclass(frozen=True, slots=True)
class Overload:
    member: bool
    params: tuple[t.Type, ...]  # the receiver first, for a member overload
    result: t.Type


_NUMERIC = ("int", "uint", "double")
_ORDERED = ("int", "uint", "double", "string", "bytes", "bool", "google.protobuf.Timestamp",
            "google.protobuf.Duration")
_TS, _DUR = "google.protobuf.Timestamp", "google.protobuf.Duration"


def _standard() -> list[str]:
    out = ["_?_:_: (bool, A, A) -> A", "!_: (bool) -> bool", "-_: (int) -> int", "-_: (double) -> double",
           "_==_: (A, A) -> bool", "_!=_: (A, A) -> bool", "@in: (A, list(A)) -> bool", "@in: (A, map(A, B)) -> bool",
           "_[_]: (list(A), int) -> A", "_[_]: (map(K, V), K) -> V",
           "_+_: (string, string) -> string", "_+_: (bytes, bytes) -> bytes", "_+_: (list(A), list(A)) -> list(A)",
           f"_+_: ({_TS}, {_DUR}) -> {_TS}", f"_+_: ({_DUR}, {_TS}) -> {_TS}", f"_+_: ({_DUR}, {_DUR}) -> {_DUR}",
           f"_-_: ({_TS}, {_TS}) -> {_DUR}", f"_-_: ({_TS}, {_DUR}) -> {_TS}", f"_-_: ({_DUR}, {_DUR}) -> {_DUR}",
           "_%_: (int, int) -> int", "_%_: (uint, uint) -> uint"]
    for n in _NUMERIC:
        out += [f"{op}: ({n}, {n}) -> {n}" for op in ("_+_", "_-_", "_*_", "_/_")]
    for op in ("_<_", "_<=_", "_>_", "_>=_"):
        out += [f"{op}: ({n}, {n}) -> bool" for n in _ORDERED]
        out += [f"{op}: ({a}, {b}) -> bool" for a in _NUMERIC for b in _NUMERIC if a != b]
    for fn in ("size",):
        out += [f"{fn}: (string) -> int", f"{fn}: (bytes) -> int", f"{fn}: (list(A)) -> int",
                f"{fn}: (map(K, V)) -> int", f"{fn}: string.() -> int", f"{fn}: bytes.() -> int",
                f"{fn}: list(A).() -> int", f"{fn}: map(K, V).() -> int"]
    for fn in ("contains", "startsWith", "endsWith", "matches"):
        out.append(f"{fn}: string.(string) -> bool")
    out.append("matches: (string, string) -> bool")
    out += [f"int: ({a}) -> int" for a in ("int", "uint", "double", "string", _TS, _DUR)]
    out += [f"uint: ({a}) -> uint" for a in ("int", "uint", "double", "string")]
    out += [f"double: ({a}) -> double" for a in ("int", "uint", "double", "string")]
    out += [f"string: ({a}) -> string" for a in ("int", "uint", "double", "string", "bytes", "bool", _TS, _DUR)]
    out += ["string: (kubernetes.URL) -> string", "string: (net.IP) -> string", "string: (net.CIDR) -> string",
            "bytes: (bytes) -> bytes", "bytes: (string) -> bytes", "bool: (bool) -> bool", "bool: (string) -> bool",
            "dyn: (A) -> dyn", "type: (A) -> type(A)",
            f"duration: (string) -> {_DUR}", f"duration: ({_DUR}) -> {_DUR}",
            f"timestamp: (string) -> {_TS}", f"timestamp: (int) -> {_TS}", f"timestamp: ({_TS}) -> {_TS}"]
    for fn in ("getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
               "getHours", "getMinutes", "getSeconds", "getMilliseconds"):
        out += [f"{fn}: {_TS}.() -> int", f"{fn}: {_TS}.(string) -> int"]
    for fn in ("getHours", "getMinutes", "getSeconds", "getMilliseconds"):
        out.append(f"{fn}: {_DUR}.() -> int")
    return out


_KUBERNETES = """
    isSorted: list(A).() -> bool
    sum: list(A).() -> A
    min: list(A).() -> A
    max: list(A).() -> A
    indexOf: list(A).(A) -> int
    lastIndexOf: list(A).(A) -> int
    slice: list(A).(int, int) -> list(A)
    flatten: list(A).() -> list(dyn)
    flatten: list(A).(int) -> list(dyn)
    distinct: list(A).() -> list(A)
    reverse: list(A).() -> list(A)
    sort: list(A).() -> list(A)
    first: list(A).() -> optional_type(A)
    last: list(A).() -> optional_type(A)
    lists.range: (int) -> list(int)
    sets.contains: (list(A), list(A)) -> bool
    sets.equivalent: (list(A), list(A)) -> bool
    sets.intersects: (list(A), list(A)) -> bool
    charAt: string.(int) -> string
    indexOf: string.(string) -> int
    indexOf: string.(string, int) -> int
    lastIndexOf: string.(string) -> int
    lastIndexOf: string.(string, int) -> int
    lowerAscii: string.() -> string
    upperAscii: string.() -> string
    replace: string.(string, string) -> string
    replace: string.(string, string, int) -> string
    split: string.(string) -> list(string)
    split: string.(string, int) -> list(string)
    substring: string.(int) -> string
    substring: string.(int, int) -> string
    trim: string.() -> string
    reverse: string.() -> string
    join: list(string).() -> string
    join: list(string).(string) -> string
    strings.quote: (string) -> string
    format: string.(list(dyn)) -> string
    find: string.(string) -> string
    findAll: string.(string) -> list(string)
    findAll: string.(string, int) -> list(string)
    url: (string) -> kubernetes.URL
    isURL: (string) -> bool
    getScheme: kubernetes.URL.() -> string
    getHost: kubernetes.URL.() -> string
    getHostname: kubernetes.URL.() -> string
    getPort: kubernetes.URL.() -> string
    getEscapedPath: kubernetes.URL.() -> string
    getQuery: kubernetes.URL.() -> map(string, list(string))
    ip: (string) -> net.IP
    isIP: (string) -> bool
    ip.isCanonical: (string) -> bool
    family: net.IP.() -> int
    isUnspecified: net.IP.() -> bool
    isLoopback: net.IP.() -> bool
    isLinkLocalMulticast: net.IP.() -> bool
    isLinkLocalUnicast: net.IP.() -> bool
    isGlobalUnicast: net.IP.() -> bool
    cidr: (string) -> net.CIDR
    isCIDR: (string) -> bool
    containsIP: net.CIDR.(net.IP) -> bool
    containsIP: net.CIDR.(string) -> bool
    containsCIDR: net.CIDR.(net.CIDR) -> bool
    containsCIDR: net.CIDR.(string) -> bool
    ip: net.CIDR.() -> net.IP
    masked: net.CIDR.() -> net.CIDR
    prefixLength: net.CIDR.() -> int
    quantity: (string) -> kubernetes.Quantity
    isQuantity: (string) -> bool
    sign: kubernetes.Quantity.() -> int
    isInteger: kubernetes.Quantity.() -> bool
    asInteger: kubernetes.Quantity.() -> int
    asApproximateFloat: kubernetes.Quantity.() -> double
    add: kubernetes.Quantity.(kubernetes.Quantity) -> kubernetes.Quantity
    add: kubernetes.Quantity.(int) -> kubernetes.Quantity
    sub: kubernetes.Quantity.(kubernetes.Quantity) -> kubernetes.Quantity
    sub: kubernetes.Quantity.(int) -> kubernetes.Quantity
    isGreaterThan: kubernetes.Quantity.(kubernetes.Quantity) -> bool
    isLessThan: kubernetes.Quantity.(kubernetes.Quantity) -> bool
    compareTo: kubernetes.Quantity.(kubernetes.Quantity) -> int
    isSemver: (string) -> bool
    isSemver: (string, bool) -> bool
    semver: (string) -> kubernetes.Semver
    semver: (string, bool) -> kubernetes.Semver
    major: kubernetes.Semver.() -> int
    minor: kubernetes.Semver.() -> int
    patch: kubernetes.Semver.() -> int
    isGreaterThan: kubernetes.Semver.(kubernetes.Semver) -> bool
    isLessThan: kubernetes.Semver.(kubernetes.Semver) -> bool
    compareTo: kubernetes.Semver.(kubernetes.Semver) -> int
    format.named: (string) -> optional_type(kubernetes.NamedFormat)
    validate: kubernetes.NamedFormat.(string) -> optional_type(list(string))
    optional.of: (A) -> optional_type(A)
    optional.ofNonZeroValue: (A) -> optional_type(A)
    optional.none: () -> optional_type(dyn)
    hasValue: optional_type(A).() -> bool
    value: optional_type(A).() -> A
    orValue: optional_type(A).(A) -> A
    or: optional_type(A).(optional_type(A)) -> optional_type(A)
"""

for _name in ("dns1123Label", "dns1123Subdomain", "dns1035Label", "qualifiedName", "dns1123LabelPrefix",
              "dns1123SubdomainPrefix", "dns1035LabelPrefix", "labelValue", "uri", "uuid", "byte", "date",
              "datetime"):
    _KUBERNETES += f"format.{_name}: () -> kubernetes.NamedFormat\n"


def _parse_type(text: str) -> t.Type:
    text = text.strip()
    if "(" in text and text.endswith(")"):
        head, inner = text[:-1].split("(", 1)
        params = [_parse_type(p) for p in _split(inner)]
        if head == "list":
            return t.list_of(params[0])
        if head == "map":
            return t.map_of(params[0], params[1])
        if head == "type":
            return t.type_of(params[0])
        return t.opaque(head, *params)
    if len(text) == 1 and text.isupper():
        return t.param(text)
    if text in t.TYPE_NAMES and text not in ("list", "map", "type", "optional_type"):
        return t.TYPE_NAMES[text]
    if text in (_TS, _DUR):
        return t.prim(text)
    return t.opaque(text)


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for c in text:
        if c == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (c == "(") - (c == ")")
        current += c
    return parts + [current] if current.strip() else parts


def _parse(line: str) -> tuple[str, Overload]:
    name, _, rest = line.partition(": ")
    sig, _, result = rest.rpartition(" -> ")
    receiver, _, args = sig.rpartition(".(") if ".(" in sig else ("", "", sig[1:])
    params = [_parse_type(a) for a in _split(args[:-1])]
    if receiver:
        params.insert(0, _parse_type(receiver))
    return name, Overload(bool(receiver), tuple(params), _parse_type(result))


SIGNATURES: dict[str, list[Overload]] = {}
for _line in _standard() + [ln.strip() for ln in _KUBERNETES.splitlines() if ln.strip()]:
    _fn, _overload = _parse(_line)
    SIGNATURES.setdefault(_fn, []).append(_overload)
