"""EndpointSlice rules of upstream's `pkg/apis/discovery/validation`: a known address type that
never changes, addresses of that type (at least one per endpoint, at most 100), and port
protocols Kubernetes knows.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import IMMUTABLE, dns_label, items

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]  # sets.List: sorted
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_MAX_ADDRESSES = 100
_LEADING_ZEROS = re.compile(r"(^|\.)0+(?=[0-9])")


def _ip(value: str, version: int) -> bool:
    """ParseIPSloppy (leading zeros allowed) of the given family."""
    try:
        return ipaddress.ip_address(_LEADING_ZEROS.sub(lambda m: m.group(1), value) if version == 4 else value).version \
            == version
    except ValueError:
        return False


def _address(value: Any, kind: str, path: str) -> list[Cause]:
    if kind == "IPv4" and not (isinstance(value, str) and _ip(value, 4)):
        return [field.invalid(path, value, "must be a valid IPv4 address")]
    if kind == "IPv6" and not (isinstance(value, str) and _ip(value, 6)):
        return [field.invalid(path, value, "must be a valid IPv6 address")]
    return []


def validate_endpoint_slice(obj: dict) -> list[Cause]:
    kind = obj.get("addressType") or ""
    causes: list[Cause] = []
    for i, endpoint in enumerate(items(obj, "endpoints")):
        path = f"endpoints[{i}].addresses"
        addresses = items(endpoint, "addresses")
        if not addresses:
            causes.append(field.required(path, "must contain at least 1 address"))
        elif len(addresses) > _MAX_ADDRESSES:
            causes.append(field.too_many(path, len(addresses), _MAX_ADDRESSES))
        else:
            causes += [c for j, a in enumerate(addresses) for c in _address(a, kind, f"{path}[{j}]")]
    if not kind:
        causes.append(field.required("addressType"))
    elif kind not in ADDRESS_TYPES:
        causes.append(field.not_supported("addressType", kind, ADDRESS_TYPES))
    names: set[str] = set()
    for i, port in enumerate(items(obj, "ports")):
        port = port if isinstance(port, dict) else {}
        name = port.get("name") or ""
        if name:
            causes += dns_label(name, f"ports[{i}].name")
        if name in names:
            causes.append(field.duplicate(f"ports[{i}].name", name))
        names.add(name)
        protocol = port.get("protocol") or "TCP"  # defaulted
        if protocol not in _PROTOCOLS:
            causes.append(field.not_supported(f"ports[{i}].protocol", protocol, _PROTOCOLS))
    return causes


def validate_endpoint_slice_update(new: dict, old: dict) -> list[Cause]:
    causes = validate_endpoint_slice(new)
    if new.get("addressType") != old.get("addressType"):
        causes.append(field.invalid("addressType", new.get("addressType"), IMMUTABLE))
    return causes
