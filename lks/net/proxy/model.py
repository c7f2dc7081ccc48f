"""What the Service proxy programs, read from API objects the way kube-proxy reads them: each port
of a Service (`ServicePort`) with the endpoints its EndpointSlices give for it, and the nodes
(their InternalIP, pod CIDR). Pure functions; `rules.py` turns these into nftables rules.

kube-proxy's choices, kept: headless and ExternalName Services get nothing; an endpoint is used
when ready (no condition: ready), and only when a policy has no ready endpoint at all its
serving-and-terminating ones; a slice's port is matched to the Service's by name and protocol;
endpoints are deduplicated by address and port across slices; `ipMode: Proxy` load-balancer
IPs are left to the load balancer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds: spec.sessionAffinityConfig.clientIP.timeoutSeconds' default


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""  # the endpoint's nodeName ("": not known)
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True, slots=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp / udp / sctp, as nft writes it
    port: int
    family: int  # 4 or 6
    cluster_ip: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    affinity: int = 0  # ClientIP session affinity's timeout in seconds (0: none)
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_local: bool = False  # externalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def base(self) -> str:
        """kube-proxy's name of the port: namespace/service/protocol/port name."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    ip: str  # InternalIP ("": none yet)
    pod_cidr: str  # spec.podCIDR ("": none yet)


def family(ip: str) -> int:
    return 6 if ":" in ip else 4


def service_ports(service: Obj, slices: Iterable[Obj], *, skip_ips: frozenset[str] = frozenset()) -> list[ServicePort]:
    """The ports of `service` kube-proxy programs, one per port and cluster IP family, with their
    endpoints from `slices` (the Service's EndpointSlices). Cluster IPs in `skip_ips` are answered
    by lks itself (cluster DNS): no rules."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") in (None, "", "None"):
        return []
    meta = service["metadata"]
    ips = [ip for ip in spec.get("clusterIPs") or [spec["clusterIP"]] if ip and ip != "None" and ip not in skip_ips]
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    external = spec.get("type") in ("NodePort", "LoadBalancer")
    lb_ips = [i["ip"] for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
              if i.get("ip") and i.get("ipMode") != "Proxy"]
    slices = [s for s in slices if s.get("addressType") in ("IPv4", "IPv6")]
    out = []
    for p in spec.get("ports") or []:
        protocol = str(p.get("protocol") or "TCP").lower()
        for ip in ips:
            fam = family(ip)
            out.append(ServicePort(
                namespace=meta["namespace"], name=meta["name"], port_name=str(p.get("name") or ""),
                protocol=protocol, port=int(p["port"]), family=fam, cluster_ip=ip,
                node_port=int(p.get("nodePort") or 0) if external else 0,
                external_ips=tuple(i for i in spec.get("externalIPs") or [] if family(i) == fam),
                lb_ips=tuple(i for i in lb_ips if family(i) == fam),
                affinity=affinity,
                internal_local=spec.get("internalTrafficPolicy") == "Local",
                external_local=external and spec.get("externalTrafficPolicy") == "Local",
                endpoints=tuple(_endpoints(slices, p.get("name") or "", protocol, fam)),
            ))
    return out


def _endpoints(slices: list[Obj], port_name: str, protocol: str, fam: int) -> list[Endpoint]:
    found: dict[tuple[str, int], Endpoint] = {}
    want = f"IPv{fam}"
    for s in slices:
        if s.get("addressType") != want:
            continue
        port = next((int(sp["port"]) for sp in s.get("ports") or []
                     if (sp.get("name") or "") == port_name and str(sp.get("protocol") or "TCP").lower() == protocol
                     and sp.get("port")), None)
        if port is None:
            continue
        for ep in s.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready", True) is not False
            serving = cond.get("serving", ready) is not False
            terminating = cond.get("terminating") is True
            for ip in ep.get("addresses") or []:
                found.setdefault((ip, port), Endpoint(ip, port, ep.get("nodeName") or "", ready, serving, terminating))
    return sorted(found.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port))


def usable(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """The endpoints a traffic policy sends to: the ready ones, else (none ready) the serving
    terminating ones (kube-proxy's ProxyTerminatingEndpoints)."""
    endpoints = list(endpoints)
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]


def node(obj: Obj) -> Node:
    ip = next((a.get("address") or "" for a in (obj.get("status") or {}).get("addresses") or []
               if a.get("type") == "InternalIP"), "")
    return Node(obj["metadata"]["name"], ip, (obj.get("spec") or {}).get("podCIDR") or "")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A container port with a hostPort (the CNI portmap plugin's mapping)."""
    uid: str
    node: str
    host_ip: str  # the node's IP, or the hostIP asked for
    host_port: int
    protocol: str
    pod_ip: str
    port: int


def host_ports(pod: Obj, node_ip: str) -> list[HostPort]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    pod_ip = status.get("podIP")
    if not pod_ip or spec.get("hostNetwork") or not node_ip or status.get("phase") in ("Succeeded", "Failed"):
        return []
    out = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if not p.get("hostPort"):
                continue
            host_ip = p.get("hostIP") or ""
            host_ip = node_ip if host_ip in ("", "0.0.0.0", "::") else host_ip
            if family(host_ip) != family(pod_ip):
                continue
            out.append(HostPort(pod["metadata"]["uid"], spec.get("nodeName") or "", host_ip, int(p["hostPort"]),
                                str(p.get("protocol") or "TCP").lower(), pod_ip, int(p["containerPort"])))
    return out
