"""Kubernetes' IP and CIDR libraries (`library/ip.go`, `library/cidr.go`): `ip("10.0.0.1")`,
`isIP`, `ip.isCanonical`, `cidr("10.0.0.0/8")`, `isCIDR` and their methods. Parsing is the strict
one upstream uses (no leading zeros, no IPv4-mapped IPv6, no zones); values are kept in canonical
text, so `==` compares addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from lks.kube.cel.library import EvalError, function, kind_of, opaque

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> Address:
    """`netip.ParseAddr` with upstream's extra refusals; raises ValueError."""
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    addr = ipaddress.ip_address(text)  # refuses leading zeros in IPv4 already
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return addr


def parse_cidr(text: str) -> Network:
    addr, slash, bits = text.partition("/")
    if not slash or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise ValueError(f"netip.ParsePrefix({text!r}): bad bits after slash: {bits!r}")
    parse_ip(addr)
    return ipaddress.ip_network(text, strict=False)


def _ip(value: dict[str, Any]) -> Address:
    return ipaddress.ip_address(value["text"])


def _net(value: dict[str, Any]) -> Network:
    return ipaddress.ip_network(value["text"], strict=False)


def make_ip(addr: Address) -> dict[str, Any]:
    return opaque("ip", text=str(addr))


@function("ip", str)
def ip(text: str) -> dict[str, Any]:
    try:
        return make_ip(parse_ip(text))
    except ValueError as err:
        raise EvalError(f"IP Address {text!r} parse error during conversion from string: {err}") from None


@function("isIP", str)
def is_ip(text: str) -> bool:
    try:
        parse_ip(text)
    except ValueError:
        return False
    return True


@function("ip.isCanonical", str)
def is_canonical(text: str) -> bool:
    try:
        return str(parse_ip(text)) == text
    except ValueError as err:
        raise EvalError(f"IP Address {text!r} parse error during conversion from string: {err}") from None


@function("family", "ip")
def family(value: dict[str, Any]) -> int:
    return _ip(value).version


@function("isUnspecified", "ip")
def is_unspecified(value: dict[str, Any]) -> bool:
    return _ip(value).is_unspecified


@function("isLoopback", "ip")
def is_loopback(value: dict[str, Any]) -> bool:
    return _ip(value).is_loopback


@function("isLinkLocalMulticast", "ip")
def is_link_local_multicast(value: dict[str, Any]) -> bool:
    a = _ip(value)
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    return a.packed[0] == 0xFF and a.packed[1] & 0x0F == 0x02


@function("isLinkLocalUnicast", "ip")
def is_link_local_unicast(value: dict[str, Any]) -> bool:
    return _ip(value).is_link_local


@function("isGlobalUnicast", "ip")
def is_global_unicast(value: dict[str, Any]) -> bool:
    """Go's `IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or broadcast."""
    a = _ip(value)
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local)


@function("cidr", str)
def cidr(text: str) -> dict[str, Any]:
    try:
        parse_cidr(text)
    except ValueError as err:
        raise EvalError(f"network address {text!r} parse error during conversion from string: {err}") from None
    return opaque("cidr", text=text)


@function("isCIDR", str)
def is_cidr(text: str) -> bool:
    try:
        parse_cidr(text)
    except ValueError:
        return False
    return True


@function("containsIP", "cidr")
def contains_ip(value: dict[str, Any], other: Any) -> bool:
    addr = _ip(other) if kind_of(other) == "ip" else _ip(ip(other)) if isinstance(other, str) else None
    if addr is None:
        raise EvalError("no such overload: containsIP")
    net = _net(value)
    return addr.version == net.version and addr in net


@function("containsCIDR", "cidr")
def contains_cidr(value: dict[str, Any], other: Any) -> bool:
    sub = _net(other) if kind_of(other) == "cidr" else _net(cidr(other)) if isinstance(other, str) else None
    if sub is None:
        raise EvalError("no such overload: containsCIDR")
    net = _net(value)
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net


@function("ip", "cidr")
def cidr_ip(value: dict[str, Any]) -> dict[str, Any]:
    return make_ip(ipaddress.ip_address(value["text"].partition("/")[0]))


@function("masked", "cidr")
def masked(value: dict[str, Any]) -> dict[str, Any]:
    return opaque("cidr", text=str(_net(value)))


@function("prefixLength", "cidr")
def prefix_length(value: dict[str, Any]) -> int:
    return _net(value).prefixlen
