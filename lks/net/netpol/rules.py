"""NetworkPolicy as one nftables table, `inet lks-netpol`, for a cluster's network namespace
(`lks.net.podnet`: one bridge per node, whose bridged traffic reaches the inet hooks): the same
semantics as `lks.net.netpol.model`, compiled for the pods' current addresses.

Two base chains on the forward hook, egress first: a connection's first packet must pass its
source's egress (priority 0) and then its destination's ingress (priority 1); an `accept` ends
only its own base chain, a `drop` ends the packet. Both let established and related traffic
through first, so replies and connections made before a policy keep flowing (as Calico and
Azure NPM do). Each isolated pod IP goes through a verdict map to its pod's chain, which jumps
to the chains of the policies isolating it (any `accept` there lets it through) and ends with
`drop`; each policy rule peer is a named set of addresses (pods by selectors, or an ipBlock
with its excepts as a second set). Traffic to Service VIPs is DNATed before the forward hook,
so ingress sees the real destination pod. What the cluster network itself answers or sends
(cluster DNS on its service IP, kubelet's probes, which lks makes from inside the pod) never
crosses the forward hook: it is the node's traffic, which upstream always allows.

`script` gives the whole table as an `nft -f` transaction (the table declared, deleted and made
anew in one commit: atomic); `lks.net.netpol.controller` applies it when policies, pods or
namespace labels change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from lks.net.netpol import model

Obj = dict[str, Any]

TABLE = "lks-netpol"
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


def _family(address: str) -> str:
    return "ip6" if ":" in address else "ip"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "").replace('"', "'")[:120] + '"'


@dataclass(slots=True)
class _Table:
    sets: list[str] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)

    def add_set(self, name: str, family: str, elements: Iterable[str]) -> str:
        elements = sorted(set(elements))
        kind = "ipv6_addr" if family == "ip6" else "ipv4_addr"
        body = f"\t\ttype {kind}; flags interval;\n"
        if elements:
            body += f"\t\telements = {{ {', '.join(elements)} }}\n"
        self.sets.append(f"\tset {name} {{\n{body}\t}}\n")
        return f"@{name}"

    def add_chain(self, name: str, rules: Iterable[str], head: str = "") -> None:
        lines = ([f"\t\t{head}"] if head else []) + [f"\t\t{r}" for r in rules]
        self.chains.append(f"\tchain {name} {{\n" + "".join(line + "\n" for line in lines) + "\t}\n")

    def text(self) -> str:
        return f"table inet {TABLE} {{\n" + "".join(self.sets) + "".join(self.chains) + "}\n"


def _port_matches(rule_port: Obj, dst: model.Pod | None) -> str | None:
    """The nft match of one policy port for traffic to `dst` ('' for any; None: nothing)."""
    proto = _PROTOCOLS.get(rule_port.get("protocol") or "TCP")
    if proto is None:
        return None
    want = rule_port.get("port")
    if want is None:
        return f"meta l4proto {proto}"
    if isinstance(want, str) and not want.isdigit():
        number = dst.named_port(want, rule_port.get("protocol") or "TCP") if dst is not None else None
        return None if number is None else f"meta l4proto {proto} th dport {number}"
    end = rule_port.get("endPort")
    return f"meta l4proto {proto} th dport {int(want)}" + (f"-{int(end)}" if end is not None else "")


class Compiler:
    """One compile of the cluster's state: `pods` (with addresses), namespace labels, policies.
    Pods are indexed by namespace, so a policy looks only at its own namespace's pods and a
    peer only at the namespaces its selector takes."""

    def __init__(self, policies: Iterable[Obj], pods: Iterable[model.Pod], namespaces: Mapping[str, Mapping[str, str]]):
        self.policies = sorted(policies, key=model.policy_key)
        self.pods = sorted((p for p in pods if p.ips), key=lambda p: p.key)
        self.by_ns: dict[str, list[model.Pod]] = {}
        for pod in self.pods:
            self.by_ns.setdefault(pod.namespace, []).append(pod)
        self.namespaces = model.Namespaces(namespaces)
        self.table = _Table()
        self._peer_sets: dict[tuple[str, bytes, bytes], list[tuple[str, str]]] = {}

    def script(self) -> str:
        # pod key -> direction -> the chains of the policies isolating it
        isolating: dict[str, dict[str, list[str]]] = {}
        for i, policy in enumerate(self.policies):
            ns = _namespace(policy)
            picks = model.matcher((policy.get("spec") or {}).get("podSelector") or {})
            chosen = [p for p in self.by_ns.get(ns, ()) if picks(p.labels)]
            types = model.policy_types(policy)
            for direction in (model.EGRESS, model.INGRESS):
                selected = chosen if direction in types else []
                if not selected:
                    continue
                chain = self._policy_chain(i, policy, direction, selected)
                jump = f"jump {chain} comment {_quote(model.policy_key(policy))}"
                for pod in selected:
                    isolating.setdefault(pod.key, {}).setdefault(direction, []).append(jump)
        dispatch: dict[str, dict[str, str]] = {model.EGRESS: {}, model.INGRESS: {}}
        for n, pod in enumerate(self.pods):
            for direction, jumps in sorted((isolating.get(pod.key) or {}).items()):
                name = f"pod{n}-{_short(direction)}"
                self.table.add_chain(name, [*jumps, f"drop comment {_quote(pod.key)}"])
                for ip in pod.ips:
                    dispatch[direction][ip] = f"jump {name}"
        base = "ct state established,related accept"
        for chain, direction, priority, field_ in (("egress", model.EGRESS, 0, "saddr"),
                                                   ("ingress", model.INGRESS, 1, "daddr")):
            rules = [base]
            for family in ("ip", "ip6"):
                entries = [f"{ip} : {verdict}" for ip, verdict in dispatch[direction].items() if _family(ip) == family]
                if entries:
                    rules.append(f"{family} {field_} vmap {{ {', '.join(entries)} }}")
            self.table.add_chain(chain, rules, head=f"type filter hook forward priority {priority}; policy accept;")
        return f"table inet {TABLE}\ndelete table inet {TABLE}\n" + self.table.text()

    # -- one policy's chain ------------------------------------------------------------------

    def _policy_chain(self, index: int, policy: Obj, direction: str, selected: list[model.Pod]) -> str:
        name = f"pol{index}-{_short(direction)}"
        ns = _namespace(policy)
        spec = policy.get("spec") or {}
        rules: list[str] = []
        for r, rule in enumerate(spec.get("ingress" if direction == model.INGRESS else "egress") or ()):
            peers = rule.get("from" if direction == model.INGRESS else "to") or []
            ports = rule.get("ports") or []
            if not peers:
                rules += self._port_rules("", ports, direction, selected, None, ns)
            for k, peer in enumerate(peers):
                for match in self._peer(f"{name}-r{r}-p{k}", peer, ns, direction):
                    rules += self._port_rules(match, ports, direction, selected, peer, ns)
        self.table.add_chain(name, rules)
        return name

    def _peer_pods(self, peer: Obj, ns: str) -> list[model.Pod]:
        """The pods a selector peer takes: its namespaces first, then its pod selector there."""
        ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
        if ns_sel is None and pod_sel is None:
            return []
        if ns_sel is None:
            candidates = self.by_ns.get(ns, [])
        else:
            takes = model.matcher(ns_sel)
            candidates = [p for name, pods in self.by_ns.items() if takes(self.namespaces.labels(name)) for p in pods]
        if pod_sel is None:
            return candidates
        picks = model.matcher(pod_sel)
        return [p for p in candidates if picks(p.labels)]

    def _peer(self, name: str, peer: Obj, ns: str, direction: str) -> list[str]:
        """The nft matches (one per address family) of the other end being `peer`."""
        field_ = "saddr" if direction == model.INGRESS else "daddr"
        block = peer.get("ipBlock")
        if block is not None:
            try:
                cidr = ipaddress.ip_network(block.get("cidr") or "", strict=False)
            except ValueError:
                return []
            family = "ip6" if cidr.version == 6 else "ip"
            match = f"{family} {field_} {self.table.add_set(name, family, [str(cidr)])}"
            excepts = [str(ipaddress.ip_network(e, strict=False)) for e in block.get("except") or ()]
            if excepts:
                match += f" {family} {field_} != {self.table.add_set(name + '-x', family, excepts)}"
            return [match]
        # peers that say the same (a namespace selector many policies repeat) share their sets
        ns_sel = peer.get("namespaceSelector")
        key = (ns if ns_sel is None else "", _canonical(ns_sel), _canonical(peer.get("podSelector")))
        sets = self._peer_sets.get(key)
        if sets is None:
            by_family: dict[str, list[str]] = {}
            for pod in self._peer_pods(peer, ns):
                for ip in pod.ips:
                    by_family.setdefault(_family(ip), []).append(ip)
            sets = self._peer_sets[key] = [(family, self.table.add_set(f"{name}-{family}", family, ips))
                                           for family, ips in sorted(by_family.items())]
        return [f"{family} {field_} {ref}" for family, ref in sets]

    def _port_rules(self, peer_match: str, ports: list[Obj], direction: str, selected: list[model.Pod],
                    peer: Obj | None, ns: str) -> list[str]:
        def rule(*parts: str) -> str:
            return " ".join(p for p in (*parts, "accept") if p)

        if not ports:
            return [rule(peer_match)]
        out = [rule(peer_match, m) for p in ports if not _is_named(p) and (m := _port_matches(p, None)) is not None]
        named = [p for p in ports if _is_named(p)]
        if not named:
            return out
        # a named port is a number per destination pod: the destinations grouped by the number
        if direction == model.INGRESS:
            destinations = selected
        elif peer is None:
            destinations = self.pods
        elif peer.get("ipBlock") is not None:
            destinations = [p for p in self.pods if any(model.in_block(peer["ipBlock"], ip) for ip in p.ips)]
        else:
            destinations = self._peer_pods(peer, ns)
        for p in named:
            by_match: dict[tuple[str, str], list[str]] = {}
            for dst in destinations:
                m = _port_matches(p, dst)
                if m is not None:
                    for ip in dst.ips:
                        by_match.setdefault((_family(ip), m), []).append(ip)
            for (family, m), ips in sorted(by_match.items()):
                out.append(rule(f"{family} daddr {{ {', '.join(sorted(ips))} }}", peer_match, m))
        return out


def _canonical(selector: Any) -> bytes:
    return orjson.dumps(selector, option=orjson.OPT_SORT_KEYS)


def _namespace(policy: Obj) -> str:
    return (policy.get("metadata") or {}).get("namespace") or "default"


def _short(direction: str) -> str:
    return "in" if direction == model.INGRESS else "eg"


def _is_named(rule_port: Obj) -> bool:
    return isinstance(rule_port.get("port"), str) and not rule_port["port"].isdigit()


def script(policies: Iterable[Obj], pods: Iterable[model.Pod], namespaces: Mapping[str, Mapping[str, str]]) -> str:
    """The `nft -f` input that makes table `inet lks-netpol` say what `policies` allow."""
    return Compiler(policies, pods, namespaces).script()


def removal() -> str:
    """The `nft -f` input that takes the table away (no policy left, or enforcement off)."""
    return f"table inet {TABLE}\ndelete table inet {TABLE}\n"
