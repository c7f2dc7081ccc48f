"""Answers for the cluster's zones, as CoreDNS's kubernetes plugin gives them (AKS's Corefile:
`kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa
ip6.arpa; ttl 30 }`), following the Kubernetes DNS specification:

- `svc.ns.svc.cluster.local`: A/AAAA of a Service's cluster IPs, or of a headless Service's ready
  endpoints (EndpointSlices); `host.svc.ns.svc...` one endpoint (its `hostname`, else its IP
  with dashes); `_port._proto.svc.ns.svc...` SRV for named ports; ExternalName: a CNAME.
- `1-2-3-4.ns.pod.cluster.local`: the address itself (`pods insecure`) when the namespace exists.
- PTR for Service IPs and endpoint IPs; other reverse names fall through (forwarded).
- NXDOMAIN and NODATA carry CoreDNS's SOA in the authority section; answers are authoritative.

`answer()` returns None for what is not ours; `server.py` forwards those (`forward.py`).
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename
import dns.rrset

from lks.net.dns import records as recs

T = dns.rdatatype
IN = dns.rdataclass.IN
TTL = 30  # AKS's Corefile says `ttl 30` (CoreDNS's own default is 5)
SCHEMA_VERSION = "1.1.0"  # dns-version.<zone> TXT: the DNS specification's version
_REVERSE = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))


class NameError_(Exception):
    """The name does not exist (NXDOMAIN): CoreDNS's errNoItems / errNsNotExposed / errInvalidRequest."""


@dataclass(slots=True)
class Target:
    """One thing a name stands for (CoreDNS's msg.Service): an address or, for ExternalName, a name."""
    host: str
    port: int
    name: str  # the record's own name in the zone (an SRV target)

    @property
    def kind(self) -> int:
        try:
            return T.A if ipaddress.ip_address(self.host).version == 4 else T.AAAA
        except ValueError:
            return T.CNAME


class Zone:
    """The `cluster.local` zone (and the reverse zones) of one cluster."""

    def __init__(self, records: recs.Records, *, domain: str = "cluster.local", ttl: int = TTL,
                 dns_ips: tuple[str, ...] = ()):
        self.records = records
        self.origin = dns.name.from_text(domain)
        self.domain = self.origin.to_text(omit_final_dot=True).lower()
        self.ttl = ttl
        self.dns_ips = dns_ips  # the kube-dns Service's IPs: ns.dns.<zone>

    def answer(self, request: dns.message.Message) -> dns.message.Message | None:
        """The response to `request`, or None when another server (upstream) should answer."""
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            return None
        question = request.question[0]
        qname, qtype = question.name, question.rdtype
        if qname.is_subdomain(self.origin):
            return self._cluster(request, qname, qtype)
        if any(qname.is_subdomain(z) for z in _REVERSE):
            return self._reverse(request, qname, qtype)
        return None

    # -- the cluster zone ---------------------------------------------------------------------

    def _cluster(self, request: dns.message.Message, qname: dns.name.Name, qtype: int) -> dns.message.Message:
        answer: list[dns.rrset.RRset] = []
        extra: list[dns.rrset.RRset] = []
        try:
            if qtype in (T.A, T.AAAA):
                answer = self._address(qname, qtype, depth=0)
            elif qtype == T.SRV:
                answer, extra = self._srv(qname)
            elif qtype == T.TXT:
                answer = self._txt(qname)
            elif qtype == T.CNAME:
                answer = [self._rrset(qname, T.CNAME, dns.rdtypes.ANY.CNAME.CNAME(IN, T.CNAME, _fqdn(t.host)))
                          for t in self._targets(qname, qtype) if t.kind == T.CNAME]
            elif qtype == T.SOA:
                if qname == self.origin:
                    answer = [self._soa()]
            elif qtype in (T.AXFR, T.IXFR):
                return self._reply(request, dns.rcode.REFUSED, authority=False)
            elif qtype == T.NS and qname == self.origin:
                ns = dns.name.from_text("ns.dns", self.origin)
                answer = [self._rrset(qname, T.NS, dns.rdtypes.ANY.NS.NS(IN, T.NS, ns))]
                extra = [self._address_rrset(ns, ip) for ip in self.dns_ips]
            elif qtype == T.PTR:
                self._targets(qname, T.A)  # a forward name: NODATA, or NXDOMAIN when it does not exist
            else:  # what the zone never holds: NODATA or NXDOMAIN, told apart by an A lookup
                self._address(qname, T.A, depth=0)
        except NameError_:
            if not self.records.synced:
                return self._reply(request, dns.rcode.SERVFAIL)
            return self._reply(request, dns.rcode.NXDOMAIN)
        if not answer:
            return self._reply(request, dns.rcode.NOERROR)
        response = self._reply(request, dns.rcode.NOERROR, authority=False)
        response.answer.extend(answer)
        response.additional.extend(extra)
        return response

    def _address(self, qname: dns.name.Name, qtype: int, *, depth: int) -> list[dns.rrset.RRset]:
        out: list[dns.rrset.RRset] = []
        seen: set[str] = set()
        targets = self._targets(qname, qtype)
        random.shuffle(targets)  # the loadbalance plugin
        for t in targets:
            kind = t.kind
            if kind == T.CNAME:
                target = _fqdn(t.host)
                if target == qname or depth > 7:  # a loop, or a chain too long
                    continue
                cname = self._rrset(qname, T.CNAME, dns.rdtypes.ANY.CNAME.CNAME(IN, T.CNAME, target))
                if target.is_subdomain(self.origin):  # ours: complete it, or leave it out
                    try:
                        rest = self._address(target, qtype, depth=depth + 1)
                    except NameError_:
                        continue
                    if rest:
                        out += [cname, *rest]
                    continue
                out.append(cname)  # the server completes it from upstream
            elif kind == qtype and t.host not in seen:
                seen.add(t.host)
                out.append(self._address_rrset(qname, t.host))
        return _merge(out)

    def _srv(self, qname: dns.name.Name) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        targets = [t for t in self._targets(qname, T.SRV) if t.kind != T.CNAME]
        weight = max(1, math.floor(100 / len(targets))) if targets else 0
        records, extra, seen = [], [], set()
        for t in targets:
            if t.port == -1:  # no declared ports
                continue
            target = dns.name.from_text(t.name)
            if (t.name, t.port) not in seen:
                seen.add((t.name, t.port))
                records.append(self._rrset(qname, T.SRV, dns.rdtypes.IN.SRV.SRV(IN, T.SRV, 0, weight, t.port, target)))
            if (t.name, t.host) not in seen:
                seen.add((t.name, t.host))
                extra.append(self._address_rrset(target, t.host))
        return _merge(records), _merge(extra)

    def _txt(self, qname: dns.name.Name) -> list[dns.rrset.RRset]:
        if qname.relativize(self.origin).to_text().lower() == "dns-version":
            rr = dns.rrset.from_rdata(qname, 28800, dns.rdtypes.ANY.TXT.TXT(IN, T.TXT, [SCHEMA_VERSION.encode()]))
            return [rr]
        self._targets(qname, T.TXT)  # exists: NODATA; otherwise NXDOMAIN
        return []

    def _targets(self, qname: dns.name.Name, qtype: int) -> list[Target]:
        """CoreDNS's Services/Records: what `qname` stands for; NameError_ when nothing."""
        labels = [label.decode().lower() for label in qname.relativize(self.origin).labels]
        if labels == ["ns", "dns"]:  # the zone's name server: the kube-dns Service
            return [Target(ip, 0, qname.to_text()) for ip in self.dns_ips]
        if labels in ([], ["@"], ["svc"], ["pod"]):
            return []
        kind = labels[-1]
        if kind not in ("svc", "pod"):
            raise NameError_
        if len(labels) == 1:
            return []
        namespace = labels[-2]
        if namespace not in self.records.namespaces:
            raise NameError_
        if len(labels) == 2:
            return []
        if len(labels) > 5 or (kind == "pod" and len(labels) > 3):
            raise NameError_
        if kind == "pod":
            return self._pod(namespace, labels[-3])
        endpoint = port = protocol = ""
        if len(labels) == 4:
            endpoint = labels[0]
        elif len(labels) == 5:
            port, protocol = labels[0].removeprefix("_"), labels[1].removeprefix("_")
        return self._service(namespace, labels[-3], endpoint, port, protocol)

    def _pod(self, namespace: str, name: str) -> list[Target]:
        """`pods insecure`: any well-formed address in an existing namespace."""
        text = name.replace("-", ".") if name.count("-") == 3 and "--" not in name else name.replace("-", ":")
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise NameError_ from None
        return [Target(text, 0, "")]

    def _service(self, namespace: str, name: str, endpoint: str, port: str, protocol: str) -> list[Target]:
        service = self.records.services.get((namespace, name))
        if service is None:
            raise NameError_
        spec = service.get("spec") or {}
        base = f"{name}.{namespace}.svc.{self.domain}."
        found = False
        out: list[Target] = []
        if spec.get("type") == "ExternalName":
            if endpoint or port or protocol:
                raise NameError_
            target = Target(spec.get("externalName") or "", 0, base)
            if target.host and target.kind == T.CNAME:
                return [target]
            raise NameError_
        if recs.headless(service) or endpoint:
            for slice_ in self.records.slices.get((namespace, name), {}).values():
                ports = [(p.get("port", -1), p.get("name") or "", p.get("protocol") or "")
                         for p in slice_.get("ports") or []] or [(-1, "", "")]
                for ep in recs.ready_endpoints(slice_):
                    for ip in ep.get("addresses") or []:
                        host = _hostname(ep, ip)
                        if endpoint and endpoint != host.lower():
                            continue
                        for number, pname, pproto in ports:
                            if _match(port, pname) and _match(protocol, pproto):
                                found = True
                                out.append(Target(ip, number, f"{host}.{base}"))
        else:
            for p in spec.get("ports") or []:
                if _match(port, p.get("name") or "") and _match(protocol, p.get("protocol") or "TCP"):
                    found = True
                    out += [Target(ip, p.get("port", -1), base) for ip in recs.cluster_ips(service)]
        if not found:
            raise NameError_
        return out

    # -- reverse zones ------------------------------------------------------------------------

    def _reverse(self, request: dns.message.Message, qname: dns.name.Name, qtype: int) -> dns.message.Message | None:
        if qtype != T.PTR:
            return None  # never ours: falls through to the next server
        try:
            ip = str(ipaddress.ip_address(dns.reversename.to_address(qname)))
        except (dns.exception.SyntaxError, ValueError):
            return None
        names = [f"{name}.{ns}.svc.{self.domain}." for ns, name in sorted(self.records.service_ips.get(ip, ()))][:1]
        if not names:
            for ns, service, slice_name in sorted(self.records.endpoint_ips.get(ip, ())):
                slice_ = self.records.slices.get((ns, service), {}).get(slice_name)
                for ep in recs.ready_endpoints(slice_):
                    if ip in (ep.get("addresses") or []):
                        names.append(f"{_hostname(ep, ip)}.{service}.{ns}.svc.{self.domain}.")
        if not names:
            return None
        response = self._reply(request, dns.rcode.NOERROR, authority=False)
        response.answer.extend(_merge([self._rrset(qname, T.PTR, dns.rdtypes.ANY.PTR.PTR(IN, T.PTR, dns.name.from_text(n)))
                                       for n in dict.fromkeys(names)]))
        return response

    # -- building messages --------------------------------------------------------------------

    def _reply(self, request: dns.message.Message, rcode: int, *, authority: bool = True) -> dns.message.Message:
        response = dns.message.make_response(request, our_payload=max(512, request.payload or 512))
        response.flags |= dns.flags.AA
        response.set_rcode(rcode)
        if authority and rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL):
            response.authority.append(self._soa())
        return response

    def _soa(self) -> dns.rrset.RRset:
        """CoreDNS's SOA: serial = when the data last changed (unix time), TTL min(ttl, 300)."""
        soa = dns.rdtypes.ANY.SOA.SOA(IN, T.SOA, dns.name.from_text("ns.dns", self.origin),
                                      dns.name.from_text("hostmaster", self.origin),
                                      self.records.modified & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl)
        return dns.rrset.from_rdata(self.origin, min(self.ttl, 300), soa)

    def _rrset(self, name: dns.name.Name, rdtype: int, rdata) -> dns.rrset.RRset:
        return dns.rrset.from_rdata(name, self.ttl, rdata)

    def _address_rrset(self, name: dns.name.Name, ip: str) -> dns.rrset.RRset:
        if ipaddress.ip_address(ip).version == 4:
            return self._rrset(name, T.A, dns.rdtypes.IN.A.A(IN, T.A, ip))
        return self._rrset(name, T.AAAA, dns.rdtypes.IN.AAAA.AAAA(IN, T.AAAA, ip))


def _hostname(endpoint: dict, ip: str) -> str:
    """An endpoint's DNS label: its hostname, else its IP with dashes (CoreDNS's endpointHostname)."""
    if endpoint.get("hostname"):
        return endpoint["hostname"]
    if "." in ip:
        return ip.replace(".", "-")
    host = ip.replace(":", "-")
    return host + "0" if host.endswith("-") else host


def _match(wanted: str, have: str) -> bool:
    return not wanted or wanted.lower() == have.lower()


def _fqdn(host: str) -> dns.name.Name:
    return dns.name.from_text(host if host.endswith(".") else host + ".")


def _merge(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """Records of one name and type in one RRset, in their order."""
    merged: dict[tuple, dns.rrset.RRset] = {}
    for rrset in rrsets:
        key = (rrset.name, rrset.rdtype)
        if key in merged:
            merged[key].union_update(rrset)
        else:
            merged[key] = rrset
    return list(merged.values())
