"""Ingress and NetworkPolicy rules of upstream's `pkg/apis/networking/validation/validation.go`
(networking/v1): an Ingress has rules or a default backend, HTTP paths with a `pathType`, and
backends naming either a service (with a port name or number) or a resource; a NetworkPolicy
has valid selectors, ports, peers (one kind each) and policy types.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import (
    IMMUTABLE,
    dns_subdomain,
    get,
    is_port_name,
    is_port_num,
    items,
    label_selector,
    mapping,
)

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_BAD_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_BAD_SUFFIXES = ("/..", "/.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _wildcard_subdomain(host: str) -> list[str]:
    if host.startswith("*.") and not validation.dns_subdomain(host[2:]):
        return []
    return ["a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
            "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character "
            "(e.g. '*.example.com', regex used for validation is "
            r"'\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]


def backend(b: Any, path: str) -> list[Cause]:
    """`validateIngressBackend`."""
    b = b if isinstance(b, dict) else {}
    resource, service = b.get("resource"), b.get("service")
    if resource is not None and service is not None:
        return [field.invalid(path, "", "cannot set both resource and service backends")]
    if isinstance(resource, dict):
        causes = [field.required(f"{path}.resource.{k}") for k in ("kind", "name") if not resource.get(k)]
        if resource.get("apiGroup") is not None:
            causes += dns_subdomain(resource["apiGroup"], f"{path}.resource.apiGroup")
        return causes
    if not isinstance(service, dict):
        return [field.invalid(path, "", "resource or service backend is required")]
    name = service.get("name") or ""
    causes = [field.required(f"{path}.service.name")] if not name else \
        [field.invalid(f"{path}.service.name", name, m) for m in validation.dns1035_label(name)]
    port_name, port_number = get(service, "port", "name", default=""), get(service, "port", "number", default=0)
    if port_name and port_number:
        causes.append(field.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes += [field.invalid(f"{path}.service.port.name", port_name, m) for m in is_port_name(port_name)]
    elif port_number:
        causes += [field.invalid(f"{path}.service.port.number", port_number, m) for m in is_port_num(port_number)]
    else:
        causes.append(field.required(path, "port name or number is required"))
    return causes


def _http_path(p: dict, path: str) -> list[Cause]:
    kind, value = p.get("pathType"), p.get("path") or ""
    if kind is None:
        return [field.required(f"{path}.pathType", "pathType must be specified")]
    causes: list[Cause] = []
    if kind in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(field.invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            causes += [field.invalid(f"{path}.path", value, f"must not contain '{s}'")
                       for s in _BAD_SEQUENCES if s in value]
            causes += [field.invalid(f"{path}.path", value, f"cannot end with '{s}'")
                       for s in _BAD_SUFFIXES if value.endswith(s)]
    elif kind == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(field.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        causes.append(field.not_supported(f"{path}.pathType", kind, PATH_TYPES))
    return causes + backend(p.get("backend"), f"{path}.backend")


def validate_ingress(obj: dict) -> list[Cause]:
    """`ValidateIngressSpec` (and the class annotation check of `ValidateIngressCreate`)."""
    spec = mapping(obj, "spec")
    rules = items(spec, "rules")
    causes: list[Cause] = []
    if not rules and spec.get("defaultBackend") is None:
        causes.append(field.invalid("spec", rules or None, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        causes += backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        p = f"spec.rules[{i}]"
        host = get(rule, "host", default="")
        if host:
            if _is_ip(host):
                causes.append(field.invalid(f"{p}.host", host, "must be a DNS name, not an IP address"))
            msgs = _wildcard_subdomain(host) if "*" in host else validation.dns_subdomain(host)
            causes += [field.invalid(f"{p}.host", host, m) for m in msgs]
        http = get(rule, "http")
        if isinstance(http, dict):
            paths = items(http, "paths")
            if not paths:
                causes.append(field.required(f"{p}.http.paths"))
            for j, hp in enumerate(paths):
                causes += _http_path(hp if isinstance(hp, dict) else {}, f"{p}.http.paths[{j}]")
    for i, tls in enumerate(items(spec, "tls")):
        for j, host in enumerate(items(tls, "hosts")):
            msgs = _wildcard_subdomain(host) if "*" in host else validation.dns_subdomain(host)
            causes += [field.invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in msgs]
        secret = get(tls, "secretName", default="")
        if secret:
            causes += [field.invalid(f"spec.tls[{i}].secretName", secret, m) for m in validation.dns_subdomain(secret)]
    if spec.get("ingressClassName") is not None:
        causes += dns_subdomain(spec["ingressClassName"], "spec.ingressClassName")
    return causes


def validate_ingress_create(obj: dict) -> list[Cause]:
    causes = validate_ingress(obj)
    annotation = get(obj, "metadata", "annotations", "kubernetes.io/ingress.class")
    class_name = get(obj, "spec", "ingressClassName")
    if annotation is not None and class_name is not None and annotation != class_name:
        causes.append(field.invalid("annotations.kubernetes.io/ingress.class", annotation,
                                    "must match `ingressClassName` when both are specified"))
    return causes


# --- NetworkPolicy -----------------------------------------------------------------------------

_PROTOCOLS = ["TCP", "UDP", "SCTP"]
_POLICY_TYPES = ["Ingress", "Egress"]
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR as ParseCIDRSloppy reads it (host bits allowed), or None."""
    try:
        return ipaddress.ip_network(value, strict=False) if "/" in value else None
    except ValueError:
        return None


def _policy_port(port: Any, path: str) -> list[Cause]:
    """`ValidateNetworkPolicyPort`."""
    if not isinstance(port, dict):
        return []
    causes: list[Cause] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in _PROTOCOLS:
        causes.append(field.not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, int):
        causes += [field.invalid(f"{path}.port", number, m) for m in is_port_num(number)]
        if isinstance(end, int):
            if end < number:
                causes.append(field.invalid(f"{path}.endPort", number, "must be greater than or equal to `port`"))
            causes += [field.invalid(f"{path}.endPort", end, m) for m in is_port_num(end)]
    elif isinstance(number, str):
        if end is not None:
            causes.append(field.invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        causes += [field.invalid(f"{path}.port", number, m) for m in is_port_name(number)]
    elif end is not None:
        causes.append(field.invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return causes


def _ip_block(block: dict, path: str) -> list[Cause]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [field.required(f"{path}.cidr")]
    net = _network(cidr)
    if net is None:
        return [field.invalid(f"{path}.cidr", cidr, _CIDR_MSG)]
    causes: list[Cause] = []
    for i, text in enumerate(items(block, "except")):
        p = f"{path}.except[{i}]"
        inner = _network(text) if isinstance(text, str) else None
        if inner is None:
            causes.append(field.invalid(p, text, _CIDR_MSG))
        elif inner.version != net.version or inner.network_address not in net or net.prefixlen >= inner.prefixlen:
            causes.append(field.invalid(p, text, "must be a strict subset of `cidr`"))
    return causes


def _policy_peer(peer: Any, path: str) -> list[Cause]:
    """`ValidateNetworkPolicyPeer`: exactly one kind of peer, or selectors without an ipBlock."""
    peer = peer if isinstance(peer, dict) else {}
    causes: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if isinstance(peer.get(key), dict):
            count += 1
            causes += label_selector(peer[key], f"{path}.{key}")
    if isinstance(peer.get("ipBlock"), dict):
        count += 1
        causes += _ip_block(peer["ipBlock"], f"{path}.ipBlock")
    if not count:
        causes.append(field.required(path, "must specify a peer"))
    elif count > 1 and isinstance(peer.get("ipBlock"), dict):
        causes.append(field.forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def validate_network_policy(obj: dict) -> list[Cause]:
    spec = mapping(obj, "spec")
    causes = label_selector(spec.get("podSelector"), "spec.podSelector")
    for i, rule in enumerate(items(spec, "ingress")):
        causes += [c for j, port in enumerate(items(rule, "ports"))
                   for c in _policy_port(port, f"spec.ingress[{i}].ports[{j}]")]
        causes += [c for j, peer in enumerate(items(rule, "from"))
                   for c in _policy_peer(peer, f"spec.ingress[{i}].from[{j}]")]
    for i, rule in enumerate(items(spec, "egress")):
        causes += [c for j, peer in enumerate(items(rule, "to"))
                   for c in _policy_peer(peer, f"spec.egress[{i}].to[{j}]")]
        causes += [c for j, port in enumerate(items(rule, "ports"))
                   for c in _policy_port(port, f"spec.egress[{i}].ports[{j}]")]
    types = items(spec, "policyTypes")
    if len(types) > len(_POLICY_TYPES):
        return causes + [field.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")]
    causes += [field.not_supported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES)
               for i, t in enumerate(types) if t not in _POLICY_TYPES]
    return causes


# --- IngressClass ------------------------------------------------------------------------------

_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(f"^{_HTTP_PATH_FMT}$")
_MAX_CONTROLLER = 250


def _domain_prefixed_path(value: str, path: str) -> list[Cause]:
    """`validation.IsDomainPrefixedPath`."""
    host, slash, rest = value.partition("/")
    if not slash or not rest:
        return [field.invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    causes = [field.invalid(path, host, m) for m in validation.dns_subdomain(host)]
    if not _HTTP_PATH_RE.match(rest):
        causes.append(field.invalid(path, rest, f"Invalid path (regex used for validation is '{_HTTP_PATH_FMT}')"))
    return causes


def validate_ingress_class(obj: dict) -> list[Cause]:
    controller = get(obj, "spec", "controller", default="")
    causes = [field.too_long("spec.controller", _MAX_CONTROLLER)] if len(controller) > _MAX_CONTROLLER else []
    return causes + _domain_prefixed_path(controller, "spec.controller")


def validate_ingress_class_update(new: dict, old: dict) -> list[Cause]:
    causes = validate_ingress_class(new)
    controller = get(new, "spec", "controller", default="")
    if controller != get(old, "spec", "controller", default=""):
        causes.append(field.invalid("spec.controller", controller, IMMUTABLE))
    return causes
