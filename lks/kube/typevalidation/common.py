"""Rules shared by several types, as upstream's `apimachinery/pkg/util/validation`,
`apis/meta/v1/validation` and the helpers of `pkg/apis/core/validation` define them: names, label
selectors, ports, IPs and CIDRs, int-or-percent values, immutability.

Functions named `is_*` return upstream's detail messages (empty when valid); the others return
field errors (`field.py`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"
_QUALIFIED_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QUALIFIED_REGEX_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_PERCENT_RE = re.compile(r"^[0-9]+%$")
_PORT_NAME_RE = re.compile(r"^[-a-z0-9]+$")
PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' "
               "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def get(obj: Any, *keys: str, default: Any = None) -> Any:
    """obj[k1][k2]... or `default` when a level is missing, null or not an object."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def items(obj: Any, *keys: str) -> list:
    """A list field, [] when absent (Go's nil slice)."""
    v = get(obj, *keys)
    return v if isinstance(v, list) else []


def mapping(obj: Any, *keys: str) -> dict:
    """A map field, {} when absent (Go's nil map)."""
    v = get(obj, *keys)
    return v if isinstance(v, dict) else {}


def is_qualified_name(value: str) -> list[str]:
    """`validation.IsQualifiedName` (a label key)."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a valid label key " + _QUALIFIED_REGEX_MSG
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    msgs = []
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            msgs.append("prefix part must be non-empty")
        else:
            msgs += ["prefix part " + m for m in validation.dns_subdomain(parts[0])]
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    if not _QUALIFIED_RE.match(name):
        msgs.append("name part " + _QUALIFIED_REGEX_MSG)
    return msgs


def is_label_value(value: str) -> list[str]:
    """`validation.IsValidLabelValue`."""
    msgs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        msgs.append(validation.LABEL_VALUE_MSG)
    return msgs


_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
def qualified_name(value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in is_qualified_name(value)]


def dns_label(value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in validation.dns_label(value)]


def dns_subdomain(value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in validation.dns_subdomain(value)]


def name_errors(rule: validation.NameRule, value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in rule(value)]


def labels(value: Any, path: str) -> list[Cause]:
    """`ValidateLabels`: keys are qualified names, values label values."""
    return validation.validate_labels(value, path)


def label_selector(sel: Any, path: str) -> list[Cause]:
    """`ValidateLabelSelector` (strict: label values must be valid)."""
    if not isinstance(sel, Mapping):
        return []
    causes = labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(items(sel, "matchExpressions")):
        p = f"{path}.matchExpressions[{i}]"
        op, values = get(expr, "operator", default=""), items(expr, "values")
        if op in ("In", "NotIn"):
            if not values:
                causes.append(field.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(field.forbidden(f"{p}.values",
                                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(field.invalid(f"{p}.operator", op, "not a valid selector operator"))
        causes += qualified_name(get(expr, "key", default=""), f"{p}.key")
        for j, v in enumerate(values):
            causes += [field.invalid(f"{p}.values[{j}]", v, m) for m in is_label_value(str(v))]
    return causes


def selector_matches(sel: Any, lbls: Mapping[str, str] | None) -> bool | None:
    """Whether a LabelSelector matches labels; None when it cannot be made a selector.
    A missing selector matches nothing, an empty one everything (`LabelSelectorAsSelector`)."""
    if not isinstance(sel, Mapping):
        return False
    lbls = lbls or {}
    for key, value in mapping(sel, "matchLabels").items():
        if lbls.get(key) != value:
            return False
    for expr in items(sel, "matchExpressions"):
        key, op, values = get(expr, "key"), get(expr, "operator"), items(expr, "values")
        if op == "In":
            ok = key in lbls and lbls[key] in values
        elif op == "NotIn":
            ok = key not in lbls or lbls[key] not in values
        elif op == "Exists":
            ok = key in lbls
        elif op == "DoesNotExist":
            ok = key not in lbls
        else:
            return None
        if not ok:
            return False
    return True


def label_selector_value(sel: Any) -> Any:
    """A *metav1.LabelSelector as Go's JSON shows it (matchLabels before matchExpressions)."""
    if not isinstance(sel, Mapping):
        return None
    out = field.GoStruct()
    if sel.get("matchLabels"):
        out["matchLabels"] = sel["matchLabels"]
    if sel.get("matchExpressions"):
        out["matchExpressions"] = [field.GoStruct((k, e[k]) for k in ("key", "operator", "values") if e.get(k))
                                   for e in sel["matchExpressions"] if isinstance(e, Mapping)]
    return out


def nonnegative(value: Any, path: str) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [field.invalid(path, value, NEGATIVE)]
    return []


def immutable(new: Any, old: Any, path: str, shown: Any = None) -> list[Cause]:
    """`ValidateImmutableField`; `shown` is the new value as Go renders it when it differs."""
    if new != old:
        return [field.invalid(path, new if shown is None else shown, IMMUTABLE)]
    return []


def is_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_port_name(name: str) -> list[str]:
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not _PORT_NAME_RE.match(name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        msgs.append("must not begin or end with a hyphen")
    return msgs


def port_num_or_name(port: Any, path: str) -> list[Cause]:
    """`ValidatePortNumOrName` of an int-or-string port."""
    if isinstance(port, str):
        return [field.invalid(path, port, m) for m in is_port_name(port)]
    return [field.invalid(path, port, m) for m in is_port_num(port)]


def percent_value(v: Any) -> int | None:
    if isinstance(v, str) and _PERCENT_RE.match(v):
        return int(v[:-1])
    return None


def int_or_percent_value(v: Any) -> int:
    """`getIntOrPercentValue`: the number of a percentage, an int as is, else 0."""
    pct = percent_value(v)
    if pct is not None:
        return pct
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def positive_int_or_percent(v: Any, path: str) -> list[Cause]:
    """`ValidatePositiveIntOrPercent`."""
    if isinstance(v, str):
        return [] if _PERCENT_RE.match(v) else [field.invalid(path, v, PERCENT_MSG)]
    return nonnegative(v, path)


def not_more_than_100_percent(v: Any, path: str) -> list[Cause]:
    pct = percent_value(v)
    return [field.invalid(path, v, "must not be greater than 100%")] if pct is not None and pct > 100 else []


def ip_errors(value: str, path: str) -> list[Cause]:
    """`validation.IsValidIP`: strict parsing and canonical form."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value) and all(int(p) < 256 for p in value.split(".")):
            return [field.invalid(path, value, "must not have leading 0s")]
        return [field.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return [field.invalid(path, value, "must not be an IPv4-mapped IPv6 address")]
    if str(ip) != value:
        return [field.invalid(path, value, f'must be in canonical form ("{ip}")')]
    return []


def cidr_errors(value: str, path: str) -> list[Cause]:
    """`validation.IsValidCIDR`."""
    addr, slash, bits = value.partition("/")
    try:
        net = ipaddress.ip_network(value, strict=False)
        ip = ipaddress.ip_address(addr)
    except ValueError:
        loose = slash and bits.isdigit() and re.fullmatch(r"[0-9]+(\.[0-9]+){3}", addr)
        if loose and all(int(p) < 256 for p in addr.split(".")) and int(bits) <= 32:
            return [field.invalid(path, value, "must not have leading 0s in IP or prefix length")]
        return [field.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    if not slash:
        return [field.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    if bits != str(int(bits)):
        return [field.invalid(path, value, "must not have leading 0s in IP or prefix length")]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return [field.invalid(path, value, "must not have an IPv4-mapped IPv6 address")]
    if net.network_address != ip:
        return [field.invalid(path, value, "must not have bits set beyond the prefix length")]
    if str(net) != value:
        return [field.invalid(path, value, f'must be in canonical form ("{net}")')]
    return []


CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def is_config_key(key: str) -> list[str]:
    """`validation.IsConfigMapKey`."""
    msgs = ["must be no more than 253 characters"] if len(key) > 253 else []
    if not key or any(not (c.isascii() and (c.isalnum() or c in "-._")) for c in key):
        msgs.append(CONFIG_KEY_MSG)
    if key == ".":
        msgs.append("must not be '.'")
    elif key == "..":
        msgs.append("must not be '..'")
    elif key.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs
