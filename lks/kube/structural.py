"""Decoding checks kube-apiserver makes while it turns a request body into the Go struct of a type.

kube-apiserver never handles a body as a map: it unmarshals it (case-sensitively, with
``sigs.k8s.io/json``) into the typed struct, and that step alone rejects or drops things. This
module replays the step from the OpenAPI-derived schemas (``lks.kube.schema``):

- strict decoding errors: unknown fields (``unknown field "spec.foo"``, `check`) and duplicate
  fields (``duplicate field "metadata.name"``, `parse_json_strict`, `parse_yaml_strict`).
  ``fieldValidation=Strict`` makes them a 400 (`decode_error` + `strict_error`), ``Warn`` turns
  them into ``Warning`` headers (`warnings`), ``Ignore`` says nothing. Decoding drops unknown
  fields in every mode, so the stored object never has them (`prune`);
- type errors (``json: cannot unmarshal string into Go struct field PodSpec.spec.containers of
  type []v1.Container``), quantities, int-or-string, base64 ``[]byte`` and RFC 3339 times: a 400
  in every mode.

The HTTP layer parses the body, calls `check`, and words the answer with the helpers at the end;
the registry then runs the per-type rules of ``lks.kube.typevalidation``.
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from lks import safeyaml
from lks.kube import errors
from lks.kube.schema import Schema

# --- quantities (k8s.io/apimachinery/pkg/api/resource) -----------------------------------------

QUANTITY_FORMAT_MSG = ("quantities must match the regular expression "
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
QUANTITY_SUFFIX_MSG = "unable to parse quantity's suffix"
_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_NAME = {e: s for s, e in _DEC_SUFFIX.items()}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BIN_NAME = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = 10**9


class QuantityError(ValueError):
    pass


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """A parsed resource.Quantity: its exact value and the format its canonical form uses."""

    value: Fraction
    format: str = field(default="DecimalSI", compare=False)  # DecimalSI, BinarySI or DecimalExponent

    def __str__(self) -> str:
        """The canonical form upstream prints (`Quantity.String()`): "500m", "1Gi", "2"."""
        v = self.value
        if v == 0:
            return "0"
        sign, v = ("-", -v) if v < 0 else ("", v)
        if self.format == "BinarySI" and v >= 1024 and v.denominator == 1:
            n, e = int(v), 0
            while n % 1024 == 0 and e < len(_BIN_NAME) - 1:
                n, e = n // 1024, e + 1
            return f"{sign}{n}{_BIN_NAME[e]}"
        n, exp = int(v * _NANO), -9  # parse rounds up to nano, so this is exact
        while n % 10 == 0:
            n, exp = n // 10, exp + 1
        r = exp % 3  # mantissa grows until the exponent is a multiple of 3, as AsCanonicalBytes
        n, exp = n * 10**r, exp - r
        if self.format == "DecimalExponent":
            return f"{sign}{n}" + (f"e{exp}" if exp else "")
        return f"{sign}{n}{_DEC_NAME[exp]}" if exp in _DEC_NAME else f"{sign}{n}e{exp}"


@functools.lru_cache(maxsize=4096, typed=True)  # quantities repeat ("100m", "128Mi"); Quantity is frozen
def parse_quantity(text: str | int | float) -> Quantity:
    """Parse a quantity as `resource.ParseQuantity` (after `Quantity.UnmarshalJSON`, which takes
    JSON numbers too); raises QuantityError with upstream's message."""
    if isinstance(text, bool):
        raise QuantityError(QUANTITY_FORMAT_MSG)
    if isinstance(text, (int, float)):
        text = _number_text(text)
    s = text.strip()
    if not s:
        raise QuantityError(QUANTITY_FORMAT_MSG)
    positive, num, denom, suffix = _split_quantity(s)
    if suffix in _DEC_SUFFIX:
        base, exp, fmt = 10, _DEC_SUFFIX[suffix], "DecimalSI"
    elif suffix in _BIN_SUFFIX:
        base, exp, fmt = 2, _BIN_SUFFIX[suffix], "BinarySI"
    elif len(suffix) > 1 and suffix[0] in "eE" and _is_int(suffix[1:]):
        base, exp, fmt = 10, int(suffix[1:]), "DecimalExponent"
    else:
        raise QuantityError(QUANTITY_SUFFIX_MSG)
    value = Fraction(int(num + denom), 10 ** len(denom)) * Fraction(base) ** exp
    value = Fraction(math.ceil(value * _NANO), _NANO)  # upstream rounds up to the nano
    if fmt == "BinarySI" and 0 < value < 1:
        fmt = "DecimalSI"
    return Quantity(value if positive else -value, fmt)


def _is_int(s: str) -> bool:
    body = s[1:] if s[:1] in "+-" else s
    return body.isdigit() and body.isascii()


def _split_quantity(s: str) -> tuple[bool, str, str, str]:
    """`parseQuantityString`: sign, numerator digits, denominator digits, suffix."""
    pos, end, positive = 0, len(s), True
    if s[0] in "+-":
        positive, pos = s[0] == "+", 1
    while pos < end and s[pos] == "0":
        pos += 1
    start = pos
    while pos < end and "0" <= s[pos] <= "9":
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and "0" <= s[pos] <= "9":
            pos += 1
        denom = s[start:pos]
    suffix_start = pos
    while pos < end and s[pos] in "eEinumkKMGTP":
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and "0" <= s[pos] <= "9":
        pos += 1
    if pos < end:
        raise QuantityError(QUANTITY_FORMAT_MSG)
    return positive, num, denom, s[suffix_start:]


# Quantities `parse_quantity` accepts, in their usual spellings (a fast path for decoding)
_QUANTITY_OK = re.compile(r"[+-]?[0-9]*(?:\.[0-9]*)?(?:[numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]+)?\Z")


def _number_text(n: int | float) -> str:
    """The JSON literal a number most likely came from (Go reports literals verbatim)."""
    if isinstance(n, int):
        return str(n)
    return repr(n) if math.isfinite(n) else str(n)


# --- base64 and times, as the Go decoder reports them ------------------------------------------

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str | None:
    """The error `base64.StdEncoding.Decode` gives for `text`, or None when it decodes."""
    src = text.encode()
    try:  # what strict binascii accepts Go accepts too; only what it refuses needs Go's byte walk
        binascii.a2b_base64(src, strict_mode=True)
        return None
    except binascii.Error:
        pass
    si, n = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return f"illegal base64 data at input byte {si - j}"
            c = src[si]
            si += 1
            if c in _B64:
                j += 1
                continue
            if c in (10, 13):  # newlines are skipped
                continue
            if c != 61 or j < 2:  # "=" may only pad the 3rd and 4th characters
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if src[si] != 61:
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            return f"illegal base64 data at input byte {si}" if si < n else None


RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_CHUNKS = {
    RFC3339: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"), ("", "Z07:00")],
    RFC3339_MICRO: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"),
                    ("", ".000000"), ("", "Z07:00")],
}
# (name, lowest, highest); the day is checked against its month once everything parsed
_RANGES = {"01": ("month", 1, 12), "02": ("day", 0, 99), "15": ("hour", 0, 23),
           "04": ("minute", 0, 59), "05": ("second", 0, 59)}


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def time_error(value: str, layout: str = RFC3339) -> str | None:
    """The error Go's `time.Parse(layout, value)` gives, or None when it parses."""
    q = go_quote
    rest, nums = value, {}
    chunks = _CHUNKS[layout]
    for i, (prefix, std) in enumerate(chunks):
        if prefix:
            if not rest.startswith(prefix):
                return f"parsing time {q(value)} as {q(layout)}: cannot parse {q(rest)} as {q(prefix)}"
            rest = rest[len(prefix):]
        hold, bad = rest, False
        if std == "2006":
            bad = not _digits(rest[:4]) or len(rest) < 4
            if not bad:
                nums[std], rest = int(rest[:4]), rest[4:]
        elif std in _RANGES:
            width = 2 if _digits(rest[1:2]) else 1
            bad = not _digits(rest[:1]) or (width == 1 and std != "15")  # only the hour may have 1 digit
            if not bad:
                nums[std], rest = int(rest[:width]), rest[width:]
                name, lo, hi = _RANGES[std]
                if not lo <= nums[std] <= hi:
                    return f"parsing time {q(value)}: {name} out of range"
            if not bad and std == "05" and chunks[i + 1][1] != ".000000" and rest[:1] in (".", ",") \
                    and _digits(rest[1:2]):
                k = 2  # a fraction the layout does not have is still accepted after the seconds
                while _digits(rest[k:k + 1]):
                    k += 1
                rest = rest[k:]
        elif std == ".000000":
            bad = len(rest) < 7 or rest[0] not in ".," or not _digits(rest[1:7])
            if not bad:
                rest = rest[7:]
        elif rest[:1] == "Z":
            rest = rest[1:]
        else:  # Z07:00
            bad = len(rest) < 6 or rest[3] != ":" or rest[0] not in "+-" \
                or not _digits(rest[1:3]) or not _digits(rest[4:6])
            if not bad:
                if int(rest[1:3]) > 24:
                    return f"parsing time {q(value)}: time zone offset hour out of range"
                if int(rest[4:6]) > 60:
                    return f"parsing time {q(value)}: time zone offset minute out of range"
                rest = rest[6:]
        if bad:
            return f"parsing time {q(value)} as {q(layout)}: cannot parse {q(hold)} as {q(std)}"
    if rest:
        return f"parsing time {q(value)}: extra text: {q(rest)}"
    year, month, day = nums["2006"], nums["01"], nums["02"]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    if not 1 <= day <= days:
        return f"parsing time {q(value)}: day out of range"
    return None


def go_quote(s: str) -> str:
    """Go's `strconv.Quote` (also `%q`)."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


# --- Go types from the schema ------------------------------------------------------------------

# Kinds of Go types the decoder treats differently. "any" covers interface{}, RawExtension and the
# other types with their own UnmarshalJSON that accept arbitrary JSON.
_SPECIAL = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": ("quantity", "resource.Quantity"),
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ("intstr", "intstr.IntOrString"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": ("time", "v1.Time"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": ("microtime", "v1.MicroTime"),
    "io.k8s.apimachinery.pkg.runtime.RawExtension": ("any", "runtime.RawExtension"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": ("any", "v1.FieldsV1"),
}
_ANY_DEF_PREFIX = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"  # JSON, JSONSchemaProps*
_RESOURCE_LISTS = {"limits", "requests", "capacity", "allocatable", "hard", "used", "overhead",
                   "allocatedResources"}
# String fields whose Go type is a named string type; the schemas do not say, messages do.
_NAMED = {
    ("PodSpec", "restartPolicy"): "v1.RestartPolicy", ("PodSpec", "dnsPolicy"): "v1.DNSPolicy",
    ("PodSpec", "preemptionPolicy"): "v1.PreemptionPolicy",
    ("Container", "imagePullPolicy"): "v1.PullPolicy",
    ("Container", "terminationMessagePolicy"): "v1.TerminationMessagePolicy",
    ("ContainerPort", "protocol"): "v1.Protocol", ("ServicePort", "protocol"): "v1.Protocol",
    ("ServiceSpec", "type"): "v1.ServiceType", ("ServiceSpec", "sessionAffinity"): "v1.ServiceAffinity",
    ("ServiceSpec", "externalTrafficPolicy"): "v1.ServiceExternalTrafficPolicy",
    ("ServiceSpec", "internalTrafficPolicy"): "v1.ServiceInternalTrafficPolicy",
    ("ServiceSpec", "ipFamilyPolicy"): "v1.IPFamilyPolicy", ("Secret", "type"): "v1.SecretType",
    ("Toleration", "operator"): "v1.TolerationOperator", ("Toleration", "effect"): "v1.TaintEffect",
    ("Taint", "effect"): "v1.TaintEffect", ("PodStatus", "phase"): "v1.PodPhase",
    ("PersistentVolumeClaimSpec", "volumeMode"): "v1.PersistentVolumeMode",
    ("DeploymentStrategy", "type"): "v1.DeploymentStrategyType",
    ("StatefulSetSpec", "podManagementPolicy"): "v1.PodManagementPolicyType",
    ("StatefulSetUpdateStrategy", "type"): "v1.StatefulSetUpdateStrategyType",
    ("DaemonSetUpdateStrategy", "type"): "v1.DaemonSetUpdateStrategyType",
    ("CronJobSpec", "concurrencyPolicy"): "v1.ConcurrencyPolicy", ("JobSpec", "completionMode"): "v1.CompletionMode",
    ("LabelSelectorRequirement", "operator"): "v1.LabelSelectorOperator",
    ("ObjectMeta", "uid"): "types.UID", ("OwnerReference", "uid"): "types.UID",
    # list elements
    ("PersistentVolumeClaimSpec", "accessModes"): "v1.PersistentVolumeAccessMode",
    ("NamespaceSpec", "finalizers"): "v1.FinalizerName", ("ServiceSpec", "ipFamilies"): "v1.IPFamily",
    ("Capabilities", "add"): "v1.Capability", ("Capabilities", "drop"): "v1.Capability",
}


@dataclass(eq=False, slots=True)
class _T:
    kind: str  # struct map list string int float bool bytes quantity intstr time microtime any
    go: str  # the Go type as messages print it: "v1.PodSpec", "[]v1.Container", "int32"
    struct: str = ""  # struct: its name in "Go struct field <name>.<path>"
    props: dict | None = None  # struct: property schemas, compiled on first use into fields
    fields: dict[str, _T] = field(default_factory=dict)
    elem: _T | None = None  # list and map
    bits: int = 64  # int
    open: bool = False  # struct keeping unknown fields (x-kubernetes-preserve-unknown-fields)


_ANY = _T("any", "interface {}")


class _Types:
    """The Go types of one schema set (a catalog's `schemas`), compiled lazily and cached."""

    def __init__(self, defs: dict[str, dict]):
        self.defs = defs
        self.named: dict[str, _T] = {}
        self.def_of_node = {id(node): name for name, node in defs.items()}
        self.other_roots: dict[int, tuple[dict, _T]] = {}

    def root(self, schema: Schema) -> _T:
        name = self.def_of_node.get(id(schema.node))
        if name:
            return self.of_def(name)
        hit = self.other_roots.get(id(schema.node))  # e.g. a custom resource's schema
        if hit is None or hit[0] is not schema.node:
            hit = self.other_roots[id(schema.node)] = (schema.node, self.of(schema.node, "", ""))
        return hit[1]

    def of_def(self, name: str) -> _T:
        t = self.named.get(name)
        if t is not None:
            return t
        if name in _SPECIAL:
            kind, go = _SPECIAL[name]
            t = _T(kind, go)
        elif name.startswith(_ANY_DEF_PREFIX) or name not in self.defs:
            t = _ANY
        else:
            node = self.defs[name]
            parts = name.split(".")
            if "properties" in node:
                t = _T("struct", f"{parts[-2]}.{parts[-1]}", struct=parts[-1], props=node["properties"],
                       open=bool(node.get("x-kubernetes-preserve-unknown-fields")))
            else:
                self.named[name] = _ANY  # guards against a definition referring to itself
                t = self.of(node, parts[-1], "")
        self.named[name] = t
        return t

    def of(self, node: dict, owner: str, prop: str) -> _T:
        ref = node.get("$ref")
        if ref:
            return self.of_def(ref.rsplit("/", 1)[-1])
        if node.get("x-kubernetes-int-or-string"):
            return _T("intstr", "intstr.IntOrString")
        t = node.get("type")
        types = [x for x in t if x != "null"] if isinstance(t, list) else [t] if t else []
        kind = types[0] if len(types) == 1 else None
        if kind == "object":
            if "properties" in node:
                return _T("struct", "struct {...}", props=node["properties"],
                          open=bool(node.get("x-kubernetes-preserve-unknown-fields")))
            extra = node.get("additionalProperties")
            if isinstance(extra, dict) and not node.get("x-kubernetes-preserve-unknown-fields"):
                elem = self.of(extra, owner, prop)
                go = "v1.ResourceList" if elem.kind == "quantity" and prop in _RESOURCE_LISTS \
                    else f"map[string]{elem.go}"
                return _T("map", go, elem=elem)
            return _ANY
        if kind == "array":
            items = node.get("items")
            elem = self.of(items, owner, prop) if isinstance(items, dict) else _ANY
            return _T("list", f"[]{elem.go}", elem=elem)
        if kind == "string":
            if node.get("format") == "byte":
                return _T("bytes", "[]uint8")
            return _T("string", _NAMED.get((owner, prop), "string"))
        if kind == "integer":
            bits = 32 if node.get("format") == "int32" else 64
            return _T("int", f"int{bits}", bits=bits)
        if kind == "number":
            return _T("float", "float64")
        if kind == "boolean":
            return _T("bool", "bool")
        return _ANY

    def field(self, t: _T, key: str) -> _T | None:
        f = t.fields.get(key)
        if f is None and t.props is not None and key in t.props:
            f = t.fields[key] = self.of(t.props[key], t.struct, key)
        return f


_TYPES: dict[int, tuple[dict, _Types]] = {}


def _types(defs: dict) -> _Types:
    hit = _TYPES.get(id(defs))
    if hit is None or hit[0] is not defs:
        if len(_TYPES) >= 32:  # a few catalogs plus clusters' CRD-extended copies
            _TYPES.pop(next(iter(_TYPES)))
        hit = _TYPES[id(defs)] = (defs, _Types(defs))  # holding defs keeps its id unique
    return hit[1]


# --- the walk ----------------------------------------------------------------------------------

def _what(v: Any) -> str:
    """How Go's decoder names a JSON value it cannot store."""
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "object" if isinstance(v, dict) else "array"


_ZERO = {"struct": dict, "string": str, "int": int, "float": float, "bool": bool}


class _Walk:
    __slots__ = ("types", "prune", "unknown", "saved", "fatal")

    def __init__(self, types: _Types, prune: bool):
        self.types, self.prune = types, prune
        self.unknown: list[str] = []
        self.saved: list[str] = []  # type errors the decoder saves and reports if nothing worse happens
        self.fatal: list[str] = []  # errors of types' own UnmarshalJSON, which stop the decoder

    def type_error(self, what: str, go: str, gopath: str, struct: str) -> None:
        where = f"Go struct field {struct}.{gopath}" if struct or gopath else "Go value"
        self.saved.append(f"json: cannot unmarshal {what} into {where} of type {go}")

    def value(self, v: Any, t: _T, path: str, gopath: str, struct: str) -> None:
        kind = t.kind
        if kind == "struct":
            if not isinstance(v, dict):
                return self.type_error(_what(v), t.go, gopath, struct)
            for key in list(v) if self.prune else v:
                sub = path + "." + key if path else key
                ft = self.types.field(t, key)
                if ft is None:
                    if not t.open:
                        self.unknown.append(sub)
                        if self.prune:
                            del v[key]
                    continue
                item = v[key]
                if item is None:
                    if self.prune:
                        del v[key]  # null leaves the Go field unset, so it is not stored
                    continue
                self.value(item, ft, sub, gopath + "." + key if gopath else key, t.struct)
        elif kind == "map":
            if not isinstance(v, dict):
                return self.type_error(_what(v), t.go, gopath, struct)
            elem = t.elem
            for key, item in v.items():
                if item is None:
                    if self.prune and elem.kind == "string":
                        v[key] = ""  # Go stores the zero value under the key
                    continue
                if elem.kind != "any":
                    self.value(item, elem, f"{path}.{key}", gopath, struct)
        elif kind == "list":
            if not isinstance(v, list):
                return self.type_error(_what(v), t.go, gopath, struct)
            elem = t.elem
            if elem.kind != "any":
                for i, item in enumerate(v):
                    if item is not None:
                        self.value(item, elem, f"{path}[{i}]", gopath, struct)
                    elif self.prune and elem.kind in _ZERO:
                        v[i] = _ZERO[elem.kind]()  # Go decodes a null element as the zero value
        elif kind == "string":
            if not isinstance(v, str):
                self.type_error(_what(v), t.go, gopath, struct)
        elif kind == "int":
            self.integer(v, t.go, t.bits, gopath, struct)
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.type_error(_what(v), t.go, gopath, struct)
        elif kind == "bool":
            if not isinstance(v, bool):
                self.type_error(_what(v), t.go, gopath, struct)
        elif kind == "bytes":
            if isinstance(v, str):
                err = base64_error(v)
                if err:
                    self.saved.append(err)
            elif not isinstance(v, list):  # Go also takes an array of byte values
                self.type_error(_what(v), t.go, gopath, struct)
        elif kind == "quantity":
            if isinstance(v, str) and _QUANTITY_OK.match(v.strip()) or \
                    isinstance(v, (int, float)) and not isinstance(v, bool):
                return  # the usual spellings, and any JSON number, parse
            try:
                parse_quantity(v if isinstance(v, str) else "{")
            except QuantityError as err:
                self.fatal.append(str(err))
        elif kind == "intstr":
            if not isinstance(v, str):
                before = len(self.saved)
                self.integer(v, "int32", 32, gopath, struct)
                self.fatal.extend(self.saved[before:])  # IntOrString.UnmarshalJSON returns it
                del self.saved[before:]
        elif kind in ("time", "microtime"):
            if not isinstance(v, str):
                self.type_error(_what(v), "string", gopath, struct)
                self.fatal.append(self.saved.pop())
            else:
                err = time_error(v, RFC3339 if kind == "time" else RFC3339_MICRO)
                if err:
                    self.fatal.append(err)

    def integer(self, v: Any, go: str, bits: int, gopath: str, struct: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return self.type_error(_what(v), go, gopath, struct)
        limit = 1 << (bits - 1)
        if isinstance(v, float) or not -limit <= v < limit:
            self.type_error(f"number {_number_text(v)}", go, gopath, struct)


def check(obj: Any, schema: Schema) -> tuple[list[str], list[str]]:
    """Decode-time problems of `obj` against `schema`: (unknown field paths, type errors).

    Unknown field paths are worded as upstream's strict errors use them ("spec.containers[0].foo");
    `unknown_field_errors` makes the messages. Type errors are complete messages, first the one
    upstream reports (it stops at the first; a quantity, int-or-string or time error wins over an
    earlier plain type error). Built-in types only: a custom resource is decoded without Go types,
    so only its unknown fields (with `x-kubernetes-preserve-unknown-fields`) mean anything.
    """
    walk = _Walk(_types(schema.defs), prune=False)
    walk.value(obj, _types(schema.defs).root(schema), "", "", "")
    return walk.unknown, walk.fatal + walk.saved


def prune(obj: Any, schema: Schema) -> None:
    """Do in place what decoding does to a body: drop unknown fields and null fields (Go leaves
    them unset), and make null list elements and string map values zero values.

    Run it for every write whose strict errors did not fail the request: the stored object of
    kube-apiserver never carries unknown fields, whatever `fieldValidation` says. The rules of
    ``lks.kube.typevalidation`` expect an object that went through `check` and `prune`.
    """
    walk = _Walk(_types(schema.defs), prune=True)
    walk.value(obj, _types(schema.defs).root(schema), "", "", "")


# --- duplicate fields --------------------------------------------------------------------------

class _Repeated(dict):
    """A JSON object that repeated keys (only such objects are built as this class): its keys in
    document order, whether each occurrence repeats an earlier one, and which holds the value."""

    __slots__ = ("occurrences",)


def _no_constants(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def parse_json_strict(body: bytes | str) -> tuple[Any, list[str]]:
    """Parse JSON and report repeated keys as upstream's strict decoder words them:
    ``duplicate field "metadata.name"`` (the last value wins, as with orjson).

    A clean body costs one extra len() per object over plain `json.loads`; only a body with
    repeated keys is walked again to find their paths. Still slower than orjson, so use it only
    when the request asked for Strict or Warn. Unlike upstream it also reports keys repeated
    inside unknown fields and raw extensions. Raises ValueError on malformed JSON.
    """
    repeats: list[bool] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        repeats.append(True)
        last = {key: i for i, (key, _) in enumerate(pairs)}
        seen: set[str] = set()
        occurrences = []
        for i, (key, _) in enumerate(pairs):
            occurrences.append((key, key in seen, last[key] == i))
            seen.add(key)
        marked = _Repeated(obj)
        marked.occurrences = occurrences
        return marked

    obj = json.loads(body, object_pairs_hook=pairs_hook, parse_constant=_no_constants)
    found: list[str] = []
    if repeats:
        obj = _collect_repeats(obj, "", found)
    return obj, [f"duplicate field {go_quote(p)}" for p in found]


def _collect_repeats(v: Any, path: str, found: list[str]) -> Any:
    """Note the paths of repeated keys in document order (Go reports a repeat where it reads it)
    and turn marked objects into plain dicts."""
    if isinstance(v, dict):
        occurrences = v.occurrences if isinstance(v, _Repeated) else [(k, False, True) for k in v]
        v = dict(v)
        for key, repeated, holds_value in occurrences:
            sub = f"{path}.{key}" if path else key
            if repeated and sub not in found:
                found.append(sub)
            if holds_value and isinstance(v[key], (dict, list)):
                v[key] = _collect_repeats(v[key], sub, found)
    elif isinstance(v, list):
        for i, item in enumerate(v):
            if isinstance(item, (dict, list)):
                v[i] = _collect_repeats(item, f"{path}[{i}]", found)
    return v


class _StrictLoader(safeyaml.Loader):
    """Safe YAML that notes repeated keys as go-yaml v2 does (`UnmarshalStrict`) and keeps the
    last value (as the non-strict conversion kube-apiserver decodes)."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self.repeated: list[str] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key; the constructor reports it
                continue
            if repeated:
                self.repeated.append(f"line {value_node.start_mark.line + 1}: key {_go_sharp_v(key)} "
                                     "already set in map")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _go_sharp_v(key: Any) -> str:
    """`%#v` of a decoded YAML key."""
    if isinstance(key, str):
        return go_quote(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def parse_yaml_strict(body: bytes | str) -> tuple[Any, list[str]]:
    """Parse a YAML body (``application/yaml``) and report repeated keys as one strict error,
    worded as ``yaml.YAMLToJSONStrict`` does::

        yaml: unmarshal errors:
          line 5: key "name" already set in map

    Integral floats become ints, as YAML-to-JSON conversion makes them. Raises yaml.YAMLError
    on malformed YAML, and on excessive aliasing (`lks.safeyaml`).
    """
    loader = _StrictLoader(body)
    obj = safeyaml.construct(loader, body)
    # go-yaml reports depth first, which is line order: inner mappings finish before their key
    repeated = sorted(loader.repeated, key=lambda r: int(r.split(":", 1)[0][5:]))
    found = ["yaml: unmarshal errors:\n" + "\n".join("  " + r for r in repeated)] if repeated else []
    return _json_numbers(obj), found


def _json_numbers(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return int(v)
    if isinstance(v, dict):
        for key, item in v.items():
            v[key] = _json_numbers(item)
    elif isinstance(v, list):
        v[:] = [_json_numbers(x) for x in v]
    return v


# --- wording the answer ------------------------------------------------------------------------

def unknown_field_errors(paths: list[str]) -> list[str]:
    return [f"unknown field {go_quote(p)}" for p in paths]


def strict_error(messages: list[str]) -> str:
    """`runtime.NewStrictDecodingError(...).Error()`: duplicates and unknown fields in one line."""
    return "strict decoding error: " + ", ".join(messages)


def decode_error(kind: str, version: str, message: str) -> errors.APIError:
    """The 400 of a create or update body that does not decode (`transformDecodeError`): a type
    error, or the `strict_error` of a Strict request, e.g. ``Pod in version "v1" cannot be handled
    as a Pod: strict decoding error: unknown field "spec.foo"``."""
    return errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {message}')


def warnings(messages: list[str]) -> list[str]:
    """``Warning`` header texts of a Warn request (`addStrictDecodingWarnings`): one per strict
    error, a YAML duplicates error split into its lines."""
    out: list[str] = []
    for msg in messages:
        for prefix in ("yaml: unmarshal errors:\n", "error converting YAML to JSON: yaml: unmarshal errors:\n"):
            if msg.startswith(prefix):
                out.extend(line.strip() for line in msg[len(prefix):].split("\n"))
                break
        else:
            out.append(msg)
    return out


def patch_strict_error(value: str, messages: list[str]) -> errors.APIError:
    """The 422 of a JSON or merge patch whose result has strict errors (upstream's patch handler):
    field "patch", the value the patched object's JSON (or `go_sprint` of a strategic merge patch)."""
    cause = errors.Cause(reason="FieldValueInvalid", field="patch",
                         message=f"Invalid value: {go_quote(value)}: {strict_error(messages)}")
    return errors.APIError(422, "Invalid", f' "" is invalid: patch: {cause["message"]}',
                           details={"causes": [dict(cause)]})


def go_sprint(v: Any) -> str:
    """Go's `%+v` of a decoded JSON value (``map[a:1 b:[x y]]``), as the strategic merge patch error
    shows the patch."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_g(v)
    return str(v)


def _go_g(f: float) -> str:
    """Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e6 (Go's 'g')."""
    if not math.isfinite(f):
        return "+Inf" if f > 0 else "-Inf" if f < 0 else "NaN"
    if f == 0:
        return "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    text = "".join(map(str, digits))
    x = len(text) + exp - 1  # decimal exponent of the first digit
    minus = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    return minus + format(Decimal(repr(abs(f))), "f")
