"""What NetworkPolicy v1 allows, as a pure function of the cluster's policies, pods and
namespaces (simulated pods too): the source's egress and the destination's ingress each decide,
and a connection goes through only when both allow it.

Per direction, as upstream defines it: a pod is isolated once a policy of its namespace selects
it (`podSelector`) with that direction in its `policyTypes` (defaulted as the API server does:
Ingress, plus Egress when there are egress rules); an isolated pod lets through what at least one
of those policies' rules allows (rules and policies add up, none subtracts); a pod no policy
selects is open. A rule's peers (`from`/`to`) are pods by `podSelector` in the policy's
namespace, by `namespaceSelector`, by both at once, or addresses by `ipBlock` minus its `except`;
no peers: everyone. Its ports match by protocol (TCP unless said), by number up to `endPort`, or
by name, resolved against the destination pod's container ports; no ports: every port.

`lks.net.netpol.rules` compiles the same semantics to nftables; `lks aks network-policy check`
(`lks.arm.netpolcheck`) answers from `check`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

INGRESS, EGRESS = "Ingress", "Egress"
NAMESPACE_NAME = "kubernetes.io/metadata.name"  # the label the API server keeps on every namespace


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod as policies see it: where it lives, its labels, its IPs, its container ports
    (name, number, protocol) for named ports."""
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    ports: tuple[tuple[str, int, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        for port_name, number, proto in self.ports:
            if port_name == name and proto == protocol:
                return number
        return None


def pod_of(obj: Obj) -> Pod:
    """A Pod object as the evaluator sees it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ips = tuple(p["ip"] for p in status.get("podIPs") or () if p.get("ip")) or (
        (status["podIP"],) if status.get("podIP") else ())
    ports = tuple((p.get("name") or "", int(p["containerPort"]), p.get("protocol") or "TCP")
                  for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
                  for p in c.get("ports") or () if p.get("containerPort") is not None)
    return Pod(meta.get("namespace") or "default", meta.get("name") or "", meta.get("labels") or {}, ips, ports)


def matcher(sel: Any) -> Callable[[Mapping[str, str]], bool]:
    """A `metav1.LabelSelector` compiled to a test of labels: empty matches everything, an
    invalid one (an unknown operator, not an object) nothing (`LabelSelectorAsSelector`)."""
    if not isinstance(sel, Mapping):
        return lambda _labels: False
    pairs = tuple((sel.get("matchLabels") or {}).items())
    exprs = []
    for expr in sel.get("matchExpressions") or ():
        op = expr.get("operator") if isinstance(expr, Mapping) else None
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return lambda _labels: False
        exprs.append((expr.get("key"), op, frozenset(expr.get("values") or ())))

    def matches(labels: Mapping[str, str]) -> bool:
        for key, value in pairs:
            if labels.get(key) != value:
                return False
        for key, op, values in exprs:
            present = key in labels
            if op == "In":
                ok = present and labels[key] in values
            elif op == "NotIn":
                ok = not present or labels[key] not in values
            else:
                ok = present is (op == "Exists")
            if not ok:
                return False
        return True
    return matches


def policy_types(policy: Obj) -> list[str]:
    """`spec.policyTypes`, or its default where a policy has none (not stored yet)."""
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or ([INGRESS, EGRESS] if spec.get("egress") else [INGRESS])


def policy_key(policy: Obj) -> str:
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def selects(policy: Obj, pod: Pod, direction: str) -> bool:
    """Whether `policy` isolates `pod` in `direction`."""
    return ((policy.get("metadata") or {}).get("namespace") or "default") == pod.namespace \
        and direction in policy_types(policy) \
        and matcher((policy.get("spec") or {}).get("podSelector") or {})(pod.labels)


class Namespaces:
    """Namespace labels by name, each with its `kubernetes.io/metadata.name` (as the API server
    keeps it)."""

    def __init__(self, labels: Mapping[str, Mapping[str, str]]):
        self._labels = labels

    def labels(self, name: str) -> dict[str, str]:
        return {**(self._labels.get(name) or {}), NAMESPACE_NAME: name}


def peer_pod_matches(peer: Obj, policy_ns: str, pod: Pod, namespaces: Namespaces) -> bool:
    """Whether a selector peer (no ipBlock) matches `pod`."""
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns_sel is None and pod_sel is None:
        return False
    if ns_sel is None:
        if pod.namespace != policy_ns:
            return False
    elif not matcher(ns_sel)(namespaces.labels(pod.namespace)):
        return False
    return pod_sel is None or matcher(pod_sel)(pod.labels)


def in_block(block: Obj, ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
        if address not in ipaddress.ip_network(block.get("cidr") or "", strict=False):
            return False
        return not any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or ())
    except ValueError:  # another family, or nothing valid: no match
        return False


def peer_matches(peer: Obj, policy_ns: str, other: Pod | None, ip: str, namespaces: Namespaces) -> bool:
    """Whether a rule's peer is the other end: a pod (by selectors, or its IP by ipBlock) or
    only an address."""
    if "ipBlock" in peer and peer["ipBlock"] is not None:
        return in_block(peer["ipBlock"], ip)
    return other is not None and peer_pod_matches(peer, policy_ns, other, namespaces)


def port_matches(rule_port: Obj, dst: Pod | None, port: int, protocol: str) -> bool:
    if (rule_port.get("protocol") or "TCP") != protocol:
        return False
    want = rule_port.get("port")
    if want is None:
        return True
    if isinstance(want, str) and not want.isdigit():
        return dst is not None and dst.named_port(want, protocol) == port
    low = int(want)
    end = rule_port.get("endPort")
    return low <= port <= int(end) if end is not None else port == low


def rule_allows(rule: Obj, direction: str, policy_ns: str, other: Pod | None, ip: str, dst: Pod | None,
                port: int, protocol: str, namespaces: Namespaces) -> bool:
    peers = rule.get("from" if direction == INGRESS else "to")
    if peers and not any(peer_matches(p, policy_ns, other, ip, namespaces) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(port_matches(p, dst, port, protocol) for p in ports)


@dataclass(slots=True)
class Side:
    """One direction's decision: the policies that isolate the pod, those that let it through."""
    direction: str
    pod: str | None  # ns/name; None: not a pod (then nothing isolates it)
    selecting: list[str] = field(default_factory=list)
    allowing: list[str] = field(default_factory=list)

    @property
    def isolated(self) -> bool:
        return bool(self.selecting)

    @property
    def allowed(self) -> bool:
        return not self.selecting or bool(self.allowing)

    def as_dict(self) -> Obj:
        return {"direction": self.direction, "pod": self.pod, "isolated": self.isolated, "allowed": self.allowed,
                "selectingPolicies": self.selecting, "allowingPolicies": self.allowing}


@dataclass(slots=True)
class Verdict:
    egress: Side
    ingress: Side

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed


def _side(direction: str, subject: Pod | None, other: Pod | None, other_ip: str, dst: Pod | None, port: int,
          protocol: str, policies: Iterable[Obj], namespaces: Namespaces) -> Side:
    side = Side(direction, subject.key if subject else None)
    if subject is None:
        return side
    for policy in policies:
        if not selects(policy, subject, direction):
            continue
        key = policy_key(policy)
        side.selecting.append(key)
        rules = (policy.get("spec") or {}).get("ingress" if direction == INGRESS else "egress") or ()
        if any(rule_allows(r, direction, subject.namespace, other, other_ip, dst, port, protocol, namespaces)
               for r in rules):
            side.allowing.append(key)
    return side


def check(policies: Iterable[Obj], namespaces: Mapping[str, Mapping[str, str]] | Namespaces,
          src: Pod | str, dst: Pod | str, port: int, protocol: str = "TCP") -> Verdict:
    """Whether `src` may open a connection to `dst` on `port`/`protocol`; either end a pod or
    only an IP address (outside the cluster's pods: nothing isolates it)."""
    policies = list(policies)
    ns = namespaces if isinstance(namespaces, Namespaces) else Namespaces(namespaces)
    src_pod, dst_pod = (src if isinstance(src, Pod) else None), (dst if isinstance(dst, Pod) else None)
    src_ip = src if isinstance(src, str) else (src.ips[0] if src.ips else "")
    dst_ip = dst if isinstance(dst, str) else (dst.ips[0] if dst.ips else "")
    return Verdict(egress=_side(EGRESS, src_pod, dst_pod, dst_ip, dst_pod, port, protocol, policies, ns),
                   ingress=_side(INGRESS, dst_pod, src_pod, src_ip, dst_pod, port, protocol, policies, ns))
