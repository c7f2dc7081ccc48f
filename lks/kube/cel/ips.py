"""Kubernetes' IP and CIDR libraries (`library/ip.go`, `library/cidr.go`): `ip("10.0.0.1")`,
`isIP`, `ip.isCanonical`, `cidr("10.0.0.0/8")`, `isCIDR` and their methods. Parsing is the strict
one upstream uses (no leading zeros, no IPv4-mapped IPv6, no zones); values are tagged canonical
text, so `==` compares addresses."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from lks.kube.cel.library import EvalError, function, kind_of, tagged, text_of

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=1024)
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


@functools.lru_cache(maxsize=1024)  # values repeat (pod CIDRs, node IPs); parsing is the cost
def _ip(value: str) -> Address:
    return ipaddress.ip_address(text_of(value))


@functools.lru_cache(maxsize=1024)
def _net(value: str) -> Network:
    return ipaddress.ip_network(text_of(value), strict=False)


def make_ip(addr: Address) -> str:
    return tagged("ip", str(addr))


@function("ip", str)
def ip(text: str) -> str:
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
def family(value: str) -> int:
    return _ip(value).version


@function("isUnspecified", "ip")
def is_unspecified(value: str) -> bool:
    return _ip(value).is_unspecified


@function("isLoopback", "ip")
def is_loopback(value: str) -> bool:
    return _ip(value).is_loopback


@function("isLinkLocalMulticast", "ip")
def is_link_local_multicast(value: str) -> bool:
    a = _ip(value)
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    return a.packed[0] == 0xFF and a.packed[1] & 0x0F == 0x02


@function("isLinkLocalUnicast", "ip")
def is_link_local_unicast(value: str) -> bool:
    return _ip(value).is_link_local


@function("isGlobalUnicast", "ip")
def is_global_unicast(value: str) -> bool:
    """Go's `IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or broadcast."""
    a = _ip(value)
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local)


@function("cidr", str)
def cidr(text: str) -> str:
    try:
        parse_cidr(text)
    except ValueError as err:
        raise EvalError(f"network address {text!r} parse error during conversion from string: {err}") from None
    return tagged("cidr", text)


@function("isCIDR", str)
def is_cidr(text: str) -> bool:
    try:
        parse_cidr(text)
    except ValueError:
        return False
    return True


@function("containsIP", "cidr")
def contains_ip(value: str, other: Any) -> bool:
    addr = _ip(other) if kind_of(other) == "ip" else _ip(ip(other)) if isinstance(other, str) else None
    if addr is None:
        raise EvalError("no such overload")
    net = _net(value)
    return addr.version == net.version and addr in net


@function("containsCIDR", "cidr")
def contains_cidr(value: str, other: Any) -> bool:
    sub = _net(other) if kind_of(other) == "cidr" else _net(cidr(other)) if isinstance(other, str) else None
    if sub is None:
        raise EvalError("no such overload")
    net = _net(value)
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net


@function("ip", "cidr")
def cidr_ip(value: str) -> str:
    return make_ip(ipaddress.ip_address(text_of(value).partition("/")[0]))


@function("masked", "cidr")
def masked(value: str) -> str:
    return tagged("cidr", str(_net(value)))


@function("prefixLength", "cidr")
def prefix_length(value: str) -> int:
    return _net(value).prefixlen
