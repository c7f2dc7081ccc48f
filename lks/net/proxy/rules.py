"""The nftables rules of one cluster's Service proxy, in the shape of kube-proxy's nftables mode
(pkg/proxy/nftables): one table, `inet lks-proxy`, whose base chains look a packet up in verdict
maps keyed `daddr . meta l4proto . th dport` (`service-ips`, `service-nodeports`, `hostports`),
a chain per Service port (`service-…`, random choice among endpoints with `numgen random mod
N`), one per endpoint (`endpoint-…`: masquerade mark for hairpin traffic, session affinity with
`update @affinity-…`, DNAT), `external-…` chains for NodePort, external and load-balancer IPs
(masquerade, or with `externalTrafficPolicy: Local` the node's own endpoints), a filter that
REJECTs connections to a Service without endpoints, and masquerading of marked packets.

Where it differs from kube-proxy, it is because one network namespace is every node's "host"
here (`lks.net.podnet`): NodePort elements are keyed by each node's InternalIP, so that a node's
`externalTrafficPolicy: Local` choice is its own; `internalTrafficPolicy: Local` picks the
client's node by its pod CIDR (`internal-…` chain); and the no-endpoint REJECT is in the
prerouting hook, since the namespace has no route to the Service CIDR a FORWARD hook would see.

Everything here is pure: a `Piece` is what one Service or one pod contributes (chains, map
elements, sets); `full` writes a whole table in one transaction, `update` the difference
between two states. `proxier.py` feeds them and runs `nft`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from lks.net.proxy import model

TABLE = "inet lks-proxy"
MASQ_MARK = "0x4000"  # kube-proxy's masquerade bit
NAME_MAX = 112  # kube-proxy's longest chain-name base (128 less the longest prefix)
FAMILIES = {4: ("ip", "ipv4_addr", ""), 6: ("ip6", "ipv6_addr", "-v6")}  # nft word, key type, suffix

Key = tuple[str, str]  # (map or set, element key)


@dataclass(slots=True)
class Piece:
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> its rules
    elements: dict[Key, str | None] = field(default_factory=dict)  # -> verdict (None: a set's)
    sets: dict[str, str] = field(default_factory=dict)  # name -> declaration

    def merge(self, other: Piece) -> None:
        self.chains.update(other.chains)
        self.elements.update(other.elements)
        self.sets.update(other.sets)


def _hashed(name: str) -> str:
    """kube-proxy's hashAndTruncate: a hash of the name before it, truncated to fit."""
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]
    name = f"{digest}-{name}"
    return name if len(name) <= NAME_MAX else name[:NAME_MAX - 3] + "..."


def _base(sp: model.ServicePort) -> str:
    return sp.base if sp.family == 4 else sp.base + "/v6"  # a dual-stack Service's two families apart


def _endpoint_base(sp: model.ServicePort, ep: model.Endpoint) -> str:
    return f"{_base(sp)}__{ep.ip.replace(':', '.')}/{ep.port}"


def service_chain(sp: model.ServicePort) -> str:
    return "service-" + _hashed(_base(sp))


def endpoint_chain(sp: model.ServicePort, ep: model.Endpoint) -> str:
    return "endpoint-" + _hashed(_endpoint_base(sp, ep))


def affinity_set(sp: model.ServicePort, ep: model.Endpoint) -> str:
    return "affinity-" + _hashed(_endpoint_base(sp, ep))


def _local_chain(sp: model.ServicePort, node: str) -> str:
    return "local-" + _hashed(f"{_base(sp)}__{node}")


def _external_chain(sp: model.ServicePort, node: str = "") -> str:
    return "external-" + _hashed(f"{_base(sp)}__{node}" if node else _base(sp))


def _key(ip: str, protocol: str, port: int) -> str:
    return f"{ip} . {protocol} . {port}"


def _map(name: str, fam: int) -> str:
    return name + FAMILIES[fam][2]


# -- the base chains ----------------------------------------------------------------------------

def _base_commands() -> list[str]:
    t = TABLE
    cmds = [f'add table {t} {{ comment "rules for Service virtual IPs (kube-proxy nftables mode)" ; }}']
    hooks = [("nat-prerouting", "nat", "prerouting", "dstnat"), ("nat-output", "nat", "output", "-100"),
             ("nat-postrouting", "nat", "postrouting", "srcnat"),
             ("filter-prerouting", "filter", "prerouting", "-110"), ("filter-output", "filter", "output", "-110"),
             ("filter-prerouting-post-dnat", "filter", "prerouting", "-90"),
             ("filter-output-post-dnat", "filter", "output", "-90")]
    for name, kind, hook, prio in hooks:
        cmds.append(f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio} ; policy accept ; }}")
    for name in ("mark-for-masquerade", "masquerading", "services", "hostports", "service-endpoints-check",
                 "nodeport-endpoints-check", "reject-chain", "cluster-ips-check"):
        cmds.append(f"add chain {t} {name}")
    for _, addr, suffix in FAMILIES.values():
        for name in ("service-ips", "service-nodeports", "hostports", "no-endpoint-services", "no-endpoint-nodeports"):
            cmds.append(f"add map {t} {name}{suffix} {{ type {addr} . inet_proto . inet_service : verdict ; }}")
        cmds.append(f"add set {t} cluster-ips{suffix} {{ type {addr} ; }}")
    rules = {
        "nat-prerouting": ["jump hostports", "jump services"],
        "nat-output": ["jump hostports", "jump services"],
        "nat-postrouting": ["jump masquerading"],
        "filter-prerouting": ["ct state new jump service-endpoints-check", "ct state new jump nodeport-endpoints-check"],
        "filter-output": ["ct state new jump service-endpoints-check", "ct state new jump nodeport-endpoints-check"],
        "filter-prerouting-post-dnat": ["ct state new jump cluster-ips-check"],
        "filter-output-post-dnat": ["ct state new jump cluster-ips-check"],
        "mark-for-masquerade": [f"meta mark set meta mark or {MASQ_MARK}"],
        "masquerading": [f"meta mark and {MASQ_MARK} == 0 return", f"meta mark set meta mark xor {MASQ_MARK}",
                         "masquerade fully-random"],
        "reject-chain": ["reject"],
    }
    for ipx, _, s in FAMILIES.values():
        lookup = f"{ipx} daddr . meta l4proto . th dport vmap"
        rules.setdefault("services", []).extend([f"{lookup} @service-ips{s}", f"{lookup} @service-nodeports{s}"])
        rules.setdefault("hostports", []).append(f"{lookup} @hostports{s}")
        rules.setdefault("service-endpoints-check", []).append(f"{lookup} @no-endpoint-services{s}")
        rules.setdefault("nodeport-endpoints-check", []).append(f"{lookup} @no-endpoint-nodeports{s}")
        # a cluster IP still addressed after DNAT: a port the Service does not have
        rules.setdefault("cluster-ips-check", []).append(f"{ipx} daddr @cluster-ips{s} reject")
    for chain, body in rules.items():
        cmds.extend(f"add rule {t} {chain} {rule}" for rule in body)
    return cmds


# -- what a Service port adds --------------------------------------------------------------------

def service_piece(sp: model.ServicePort, *, nodes: dict[str, model.Node], pod_cidr: str) -> Piece:
    """The chains, elements and sets of one Service port (kube-proxy's syncProxyRules, per port)."""
    piece = Piece()
    ipx, _, _ = FAMILIES[sp.family]
    pod_cidr = pod_cidr if pod_cidr and model.family(pod_cidr.split("/")[0]) == sp.family else ""
    cluster_eps = model.usable(sp.endpoints)
    has_endpoints = bool(cluster_eps)
    uses_local = sp.internal_local or sp.external_local
    local_eps = {n: model.usable(e for e in sp.endpoints if e.node == n) for n in nodes} if uses_local else {}
    svc_chain = service_chain(sp)
    key = _key(sp.cluster_ip, sp.protocol, sp.port)
    reject = "goto reject-chain"
    piece.elements[(_map("cluster-ips", sp.family), sp.cluster_ip)] = None

    # internal traffic: the cluster IP
    masq_outside = [f"{ipx} daddr {sp.cluster_ip} {sp.protocol} dport {sp.port} {ipx} saddr != {pod_cidr} "
                    "jump mark-for-masquerade"] if pod_cidr else []
    if not has_endpoints:
        piece.elements[(_map("no-endpoint-services", sp.family), key)] = reject
    elif sp.internal_local:
        chain = "internal-" + _hashed(_base(sp))
        rules = list(masq_outside)
        for n, eps in sorted(local_eps.items()):
            cidr = nodes[n].pod_cidr
            if cidr and model.family(cidr.split("/")[0]) == sp.family:
                rules.append(f"{ipx} saddr {cidr} " + (f"goto {_local_chain(sp, n)}" if eps else "drop"))
        rules.append("drop")  # no local endpoints for this client: kube-proxy drops
        piece.chains[chain] = tuple(rules)
        piece.elements[(_map("service-ips", sp.family), key)] = f"goto {chain}"
    else:
        piece.elements[(_map("service-ips", sp.family), key)] = f"goto {svc_chain}"

    # external traffic: NodePort on every node's IP, external IPs, load-balancer IPs
    node_ips = {n: node.ip for n, node in nodes.items() if node.ip and model.family(node.ip) == sp.family}
    if sp.externally_accessible:
        if not has_endpoints:
            for ip in node_ips.values():
                if sp.node_port:
                    piece.elements[(_map("no-endpoint-nodeports", sp.family), _key(ip, sp.protocol, sp.node_port))] = reject
            for ip in sp.external_ips + sp.lb_ips:
                piece.elements[(_map("no-endpoint-services", sp.family), _key(ip, sp.protocol, sp.port))] = reject
        elif not sp.external_local:
            ext = _external_chain(sp)
            piece.chains[ext] = ("jump mark-for-masquerade", f"goto {svc_chain}")
            for ip in node_ips.values():
                if sp.node_port:
                    piece.elements[(_map("service-nodeports", sp.family), _key(ip, sp.protocol, sp.node_port))] = f"goto {ext}"
            for ip in sp.external_ips + sp.lb_ips:
                piece.elements[(_map("service-ips", sp.family), _key(ip, sp.protocol, sp.port))] = f"goto {ext}"
        else:
            short = ([f"{ipx} saddr {pod_cidr} goto {svc_chain}"] if pod_cidr else []) + [
                "fib saddr type local jump mark-for-masquerade", f"fib saddr type local goto {svc_chain}"]
            ext = _external_chain(sp)
            piece.chains[ext] = (*short, "drop")  # arriving from outside without a node: none is local
            for ip in sp.external_ips + sp.lb_ips:
                piece.elements[(_map("service-ips", sp.family), _key(ip, sp.protocol, sp.port))] = f"goto {ext}"
            if sp.node_port:
                for n, ip in node_ips.items():
                    chain = _external_chain(sp, n)
                    piece.chains[chain] = (*short, f"goto {_local_chain(sp, n)}" if local_eps.get(n) else "drop")
                    piece.elements[(_map("service-nodeports", sp.family), _key(ip, sp.protocol, sp.node_port))] = f"goto {chain}"

    if not has_endpoints:
        return piece
    used: dict[str, model.Endpoint] = {}
    if not sp.internal_local or sp.externally_accessible:
        piece.chains[svc_chain] = tuple(masq_outside + _to_endpoints(sp, cluster_eps))
        used.update((endpoint_chain(sp, e), e) for e in cluster_eps)
    for n, eps in local_eps.items():
        if eps:
            piece.chains[_local_chain(sp, n)] = tuple(_to_endpoints(sp, eps))
            used.update((endpoint_chain(sp, e), e) for e in eps)
    for chain, ep in used.items():
        rules = [f"{ipx} saddr {ep.ip} jump mark-for-masquerade"]  # hairpin: a pod to itself
        if sp.affinity:
            name = affinity_set(sp, ep)
            piece.sets[name] = f"{{ type {FAMILIES[sp.family][1]} ; flags dynamic,timeout ; timeout {sp.affinity}s ; }}"
            rules.append(f"update @{name} {{ {ipx} saddr }}")
        rules.append(f"meta l4proto {sp.protocol} dnat {ipx} to {_address(ep.ip, ep.port)}")
        piece.chains[chain] = tuple(rules)
    return piece


def _to_endpoints(sp: model.ServicePort, eps: list[model.Endpoint]) -> list[str]:
    ipx = FAMILIES[sp.family][0]
    rules = [f"{ipx} saddr @{affinity_set(sp, e)} goto {endpoint_chain(sp, e)}" for e in eps] if sp.affinity else []
    choices = ", ".join(f"{i} : goto {endpoint_chain(sp, e)}" for i, e in enumerate(eps))
    rules.append(f"numgen random mod {len(eps)} vmap {{ {choices} }}")
    return rules


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def host_port_piece(hp: model.HostPort) -> Piece:
    """What the CNI portmap plugin does for one hostPort: DNAT hostIP:hostPort to the pod."""
    fam = model.family(hp.pod_ip)
    ipx = FAMILIES[fam][0]
    chain = "hostport-" + _hashed(f"{hp.uid}/{hp.protocol}/{hp.host_port}")
    return Piece(
        chains={chain: (f"{ipx} saddr {hp.pod_ip} jump mark-for-masquerade",
                        f"meta l4proto {hp.protocol} dnat {ipx} to {_address(hp.pod_ip, hp.port)}")},
        elements={(_map("hostports", fam), _key(hp.host_ip, hp.protocol, hp.host_port)): f"goto {chain}"})


# -- transactions -------------------------------------------------------------------------------

def full(state: Piece) -> str:
    """The whole table, replacing what was there, in one transaction."""
    t = TABLE
    cmds = [f"add table {t}", f"delete table {t}", *_base_commands()]
    cmds += [f"add set {t} {name} {decl}" for name, decl in state.sets.items()]
    cmds += [f"add chain {t} {name}" for name in state.chains]
    cmds += [f"add rule {t} {name} {rule}" for name, rules in state.chains.items() for rule in rules]
    cmds += _elements("add", state.elements)
    return "\n".join(cmds) + "\n"


def update(old: Piece, new: Piece) -> str | None:
    """The difference from `old` to `new` as one transaction ("" : none; None: a set changed
    its declaration, which takes a full replace)."""
    t = TABLE
    if any(old.sets[n] != d for n, d in new.sets.items() if n in old.sets):
        return None
    gone = {k: v for k, v in old.elements.items() if new.elements.get(k, ...) != v}
    added = {k: v for k, v in new.elements.items() if old.elements.get(k, ...) != v}
    changed = [n for n, rules in new.chains.items() if n in old.chains and old.chains[n] != rules]
    created = [n for n in new.chains if n not in old.chains]
    removed = [n for n in old.chains if n not in new.chains]
    cmds = _elements("delete", gone)
    cmds += [f"flush chain {t} {n}" for n in changed + removed]
    cmds += [f"add set {t} {n} {d}" for n, d in new.sets.items() if n not in old.sets]
    cmds += [f"add chain {t} {n}" for n in created]
    cmds += [f"add rule {t} {n} {rule}" for n in changed + created for rule in new.chains[n]]
    cmds += [f"delete chain {t} {n}" for n in removed]
    cmds += [f"delete set {t} {n}" for n in old.sets if n not in new.sets]
    cmds += _elements("add", added)
    return "\n".join(cmds) + "\n" if cmds else ""


def _elements(verb: str, elements: dict[Key, str | None]) -> list[str]:
    by_map: dict[str, list[str]] = {}
    for (name, key), verdict in elements.items():
        by_map.setdefault(name, []).append(key if verdict is None or verb == "delete" else f"{key} : {verdict}")
    return [f"{verb} element {TABLE} {name} {{ {', '.join(items)} }}" for name, items in by_map.items()]
