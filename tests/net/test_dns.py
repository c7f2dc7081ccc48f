"""Cluster DNS against a cluster on the memory store: dnspython queries over loopback UDP and
TCP (and `dig`, when installed, for the wire format), answers as CoreDNS's kubernetes plugin
gives them, following watch events."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from lks.kube.cluster import Cluster
from lks.net import dns as clusterdns
from lks.net import netns
from lks.net.dns import ClusterDNS, forward, server

ZONE = "cluster.local."




class Upstream(asyncio.DatagramProtocol):
    """A stub resolver on loopback: `example.test` has one address, every other name NXDOMAIN."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        name = query.question[0].name.to_text()
        if name in ("example.test.", "db.example.test.") and query.question[0].rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.1"))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, int]]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[:2]
    transport.close()


@pytest.fixture
async def dns_(cluster: Cluster, upstream) -> AsyncIterator[tuple[ClusterDNS, int]]:
    d = ClusterDNS(cluster, upstreams=[upstream])
    await d.start()
    listener = await d.serve("127.0.0.1", 0)
    yield d, listener.port
    await d.stop()


async def _objects(cluster: Cluster) -> None:
    core = lambda r: cluster.registry("", "v1", r)  # noqa: E731
    slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    if (await core("namespaces").cache()).objects.get(core("namespaces").key(None, "web")) is None:
        await core("namespaces").create(None, {"metadata": {"name": "web"}})
    await core("services").create("web", {"metadata": {"name": "api"}, "spec": {
        "clusterIP": "10.0.0.50", "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                            {"name": "dns", "port": 53, "protocol": "UDP"}]}})
    await core("services").create("web", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
    await core("services").create("web", {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.test"}})
    await core("services").create("web", {"metadata": {"name": "alias"}, "spec": {
        "type": "ExternalName", "externalName": "api.web.svc.cluster.local"}})
    await slices.create("web", {
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.0.5"], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["10.244.0.6"], "conditions": {"ready": True}},
            {"addresses": ["10.244.0.7"], "conditions": {"ready": False}},
        ]})
    await caught_up(cluster)


async def caught_up(cluster: Cluster) -> None:
    """Until the watch caches have applied every write so far (the store's current revision)."""
    revision = await cluster.store.current_revision()
    for _ in range(1000):
        caches = [await cluster.registry(g, "v1", r).cache() for g, r in
                  (("", "services"), ("", "namespaces"), ("discovery.k8s.io", "endpointslices"))]
        if all(c.revision >= revision for c in caches):
            return
        await asyncio.sleep(0.001)
    raise AssertionError("caches did not catch up")


async def query(port: int, name: str, rdtype: str, *, tcp: bool = False, payload: int | None = None) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=payload is not None, payload=payload or 512)
    if tcp:
        return await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=5)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=5)


def addresses(response: dns.message.Message, rdtype: str = "A") -> set[str]:
    return {r.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for r in rrset}


def soa(response: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in response.authority for r in rrset]


async def test_service_records(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    r = await query(port, "api.web.svc.cluster.local", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and not r.flags & dns.flags.RA
    assert addresses(r) == {"10.0.0.50"} and r.answer[0].ttl == 30
    r = await query(port, "API.Web.svc.Cluster.Local", "A")  # case-insensitive, answered in the query's case
    assert r.answer[0].name.to_text() == "API.Web.svc.Cluster.Local."
    # no IPv6 on the Service: NODATA, with the SOA
    r = await query(port, "api.web.svc.cluster.local", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert soa(r)[0].startswith("ns.dns.cluster.local. hostmaster.cluster.local. ")
    assert soa(r)[0].endswith(" 7200 1800 86400 30") and r.authority[0].ttl == 30
    # SRV for a named port, with the target's address in the additional section
    r = await query(port, "_http._tcp.api.web.svc.cluster.local", "SRV")
    assert [x.to_text() for x in r.answer[0]] == ["0 100 80 api.web.svc.cluster.local."]
    assert addresses(r) == set() and {x.to_text() for s in r.additional for x in s} == {"10.0.0.50"}
    r = await query(port, "_api._tcp.api.web.svc.cluster.local", "SRV")
    assert r.rcode() == dns.rcode.NXDOMAIN
    # every port: SRV for the Service name itself
    r = await query(port, "api.web.svc.cluster.local", "SRV")
    assert sorted(x.port for x in r.answer[0]) == [53, 80] and {x.weight for x in r.answer[0]} == {50}


async def test_headless_and_endpoint_hostnames(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    r = await query(port, "db.web.svc.cluster.local", "A")
    assert addresses(r) == {"10.244.0.5", "10.244.0.6"}  # only ready endpoints
    r = await query(port, "db-0.db.web.svc.cluster.local", "A")
    assert addresses(r) == {"10.244.0.5"}
    r = await query(port, "10-244-0-6.db.web.svc.cluster.local", "A")
    assert addresses(r) == {"10.244.0.6"}
    r = await query(port, "_pg._tcp.db.web.svc.cluster.local", "SRV")
    assert sorted(x.to_text() for x in r.answer[0]) == [
        "0 50 5432 10-244-0-6.db.web.svc.cluster.local.", "0 50 5432 db-0.db.web.svc.cluster.local."]
    assert sorted(s.name.to_text() for s in r.additional) == [
        "10-244-0-6.db.web.svc.cluster.local.", "db-0.db.web.svc.cluster.local."]
    r = await query(port, "nope.db.web.svc.cluster.local", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_follows_watch_events(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    # asked before and after: a kept answer never outlives a change
    assert addresses(await query(port, "db.web.svc.cluster.local", "A")) == {"10.244.0.5", "10.244.0.6"}
    obj = d.records.slices[("web", "db")]["db-1"]
    body = {**obj, "endpoints": [{"addresses": ["10.244.0.9"], "conditions": {"ready": True}}]}
    await slices.update("web", "db-1", body)
    await caught_up(cluster)
    assert addresses(await query(port, "db.web.svc.cluster.local", "A")) == {"10.244.0.9"}
    # a headless Service without a ready endpoint does not exist (CoreDNS: NXDOMAIN)
    from lks.kube import deletion
    await slices.delete("web", "db-1", deletion.DeleteOptions())
    await caught_up(cluster)
    r = await query(port, "db.web.svc.cluster.local", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and soa(r)
    await cluster.registry("", "v1", "services").delete("web", "api", deletion.DeleteOptions())
    await caught_up(cluster)
    assert (await query(port, "api.web.svc.cluster.local", "A")).rcode() == dns.rcode.NXDOMAIN


async def test_nxdomain_nodata_and_odd_names(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    for name in ("missing.web.svc.cluster.local", "api.nons.svc.cluster.local", "x.cluster.local",
                 "a.b.c.d.api.web.svc.cluster.local"):
        r = await query(port, name, "A")
        assert r.rcode() == dns.rcode.NXDOMAIN, name
        assert r.flags & dns.flags.AA and r.authority[0].rdtype == dns.rdatatype.SOA
        assert r.authority[0].name.to_text() == ZONE
    for name in ("cluster.local", "svc.cluster.local", "web.svc.cluster.local", "web.pod.cluster.local"):
        r = await query(port, name, "A")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and soa(r), name
    r = await query(port, "api.web.svc.cluster.local", "MX")  # exists, no such type: NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and soa(r)
    r = await query(port, "cluster.local", "SOA")
    assert r.answer[0].rdtype == dns.rdatatype.SOA
    r = await query(port, "cluster.local", "NS")
    assert [x.to_text() for x in r.answer[0]] == ["ns.dns.cluster.local."]
    assert addresses(await query(port, "ns.dns.cluster.local", "A")) == {"10.0.0.10"}
    r = await query(port, "dns-version.cluster.local", "TXT")
    assert [x.to_text() for x in r.answer[0]] == ['"1.1.0"'] and r.answer[0].ttl == 28800
    assert (await query(port, "cluster.local", "AXFR", tcp=True)).rcode() == dns.rcode.REFUSED


async def test_pods_insecure(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    assert addresses(await query(port, "10-244-1-7.web.pod.cluster.local", "A")) == {"10.244.1.7"}
    r = await query(port, "fd00--7.web.pod.cluster.local", "AAAA")
    assert addresses(r, "AAAA") == {"fd00::7"}
    assert (await query(port, "10-244-1-7.nons.pod.cluster.local", "A")).rcode() == dns.rcode.NXDOMAIN
    assert (await query(port, "not-an-ip.web.pod.cluster.local", "A")).rcode() == dns.rcode.NXDOMAIN


async def test_ptr(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    r = await query(port, dns.reversename.from_address("10.0.0.50").to_text(), "PTR")
    assert [x.to_text() for x in r.answer[0]] == ["api.web.svc.cluster.local."] and r.flags & dns.flags.AA
    r = await query(port, dns.reversename.from_address("10.244.0.5").to_text(), "PTR")
    assert [x.to_text() for x in r.answer[0]] == ["db-0.db.web.svc.cluster.local."]
    # not ours: falls through to the upstream (the stub says NXDOMAIN, without our SOA)
    r = await query(port, dns.reversename.from_address("10.99.0.1").to_text(), "PTR")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.flags & dns.flags.AA


async def test_external_name(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    r = await query(port, "ext.web.svc.cluster.local", "CNAME")
    assert [x.to_text() for x in r.answer[0]] == ["db.example.test."]
    r = await query(port, "ext.web.svc.cluster.local", "A")  # the CNAME, completed upstream
    assert [s.rdtype for s in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert addresses(r) == {"192.0.2.1"}
    r = await query(port, "alias.web.svc.cluster.local", "A")  # a CNAME into the zone, completed here
    assert r.answer[0].rdtype == dns.rdatatype.CNAME and addresses(r) == {"10.0.0.50"}
    assert (await query(port, "_x._tcp.ext.web.svc.cluster.local", "SRV")).rcode() == dns.rcode.NXDOMAIN


async def test_forwarding(cluster: Cluster, dns_, upstream) -> None:
    d, port = dns_
    r = await query(port, "example.test", "A")
    assert addresses(r) == {"192.0.2.1"} and r.flags & dns.flags.RA
    assert addresses(await query(port, "example.test", "A", tcp=True)) == {"192.0.2.1"}
    # no upstream, or none answering: SERVFAIL, as CoreDNS's forward answers
    d.server.forwarder = forward.Forwarder([])
    assert (await query(port, "example.test", "A")).rcode() == dns.rcode.SERVFAIL
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[:2]
    closed.close()
    d.server.forwarder = forward.Forwarder([dead], timeout=0.5)
    assert (await query(port, "example.test", "A")).rcode() == dns.rcode.SERVFAIL


def test_upstreams_from_env() -> None:
    assert forward.upstreams_from_env("none") == []
    assert forward.upstreams_from_env("127.0.0.1:5353, ::1,[::1]:54") == [
        ("127.0.0.1", 5353), ("::1", 53), ("::1", 54)]


async def test_truncation_and_tcp(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)
    slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    await cluster.registry("", "v1", "services").create("web", {"metadata": {"name": "big"}, "spec": {
        "clusterIP": "None", "ports": [{"port": 80}]}})
    await slices.create("web", {
        "metadata": {"name": "big-1", "labels": {"kubernetes.io/service-name": "big"}},
        "addressType": "IPv4", "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [f"10.244.1.{i}"]} for i in range(1, 101)]})
    await caught_up(cluster)
    r = await query(port, "big.web.svc.cluster.local", "A")
    assert r.flags & dns.flags.TC and 0 < len(addresses(r)) < 100
    assert len(r.to_wire()) <= 512
    r = await query(port, "big.web.svc.cluster.local", "A", payload=4096)  # EDNS: room for all
    assert not r.flags & dns.flags.TC and len(addresses(r)) == 100
    r = await query(port, "big.web.svc.cluster.local", "A", tcp=True)
    assert not r.flags & dns.flags.TC and len(addresses(r)) == 100
    # what a stub resolver does: UDP, then TCP after TC
    q = dns.message.make_query("big.web.svc.cluster.local", "A")
    r, used_tcp = await dns.asyncquery.udp_with_fallback(q, "127.0.0.1", port=port, timeout=5)
    assert used_tcp and len(addresses(r)) == 100


async def test_garbage(cluster: Cluster, dns_) -> None:
    d, port = dns_
    assert server.Server(d.zone).answer(b"\x12\x34\x01\x00" + b"\x00\x01" + b"\xff" * 20, tcp=False)[:2] == b"\x12\x34"
    assert server.Server(d.zone).answer(b"\x01", tcp=False) is None
    q = dns.message.make_query("cluster.local", "SOA")
    q.question = []
    assert dns.message.from_wire(server.Server(d.zone).answer(q.to_wire(), tcp=False)).rcode() == dns.rcode.FORMERR
    q = dns.message.make_query("cluster.local", "SOA")
    q.set_opcode(dns.opcode.UPDATE)
    assert dns.message.from_wire(server.Server(d.zone).answer(q.to_wire(), tcp=False)).rcode() == dns.rcode.NOTIMP
    # the server still answers afterwards
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
    t.sendto(b"\x00" * 3)
    t.close()
    assert (await query(port, "cluster.local", "SOA")).answer


@pytest.mark.skipif(not shutil.which("dig"), reason="dig (bind9-dnsutils) is not installed")
async def test_dig_wire_format(cluster: Cluster, dns_) -> None:
    d, port = dns_
    await _objects(cluster)

    async def dig(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=5", *args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return " ".join(out.decode().split())  # dig aligns columns with tabs or spaces

    out = await dig("api.web.svc.cluster.local", "A")
    assert "status: NOERROR" in out and "flags: qr aa rd;" in out
    assert "api.web.svc.cluster.local. 30 IN A 10.0.0.50" in out
    out = await dig("+noall", "+answer", "_pg._tcp.db.web.svc.cluster.local", "SRV")
    assert "IN SRV 0 50 5432 db-0.db.web.svc.cluster.local." in out
    out = await dig("missing.web.svc.cluster.local")
    assert "status: NXDOMAIN" in out
    assert "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local." in out
    out = await dig("+noall", "+answer", "-x", "10.0.0.50")
    assert "50.0.0.10.in-addr.arpa. 30 IN PTR api.web.svc.cluster.local." in out
    out = await dig("+noall", "+answer", "ext.web.svc.cluster.local", "CNAME")
    assert "IN CNAME db.example.test." in out
    out = await dig("+tcp", "+noall", "+answer", "10-244-1-7.web.pod.cluster.local")
    assert "10-244-1-7.web.pod.cluster.local. 30 IN A 10.244.1.7" in out


async def test_serve_hook(cluster: Cluster, monkeypatch) -> None:
    """What the pod network calls: the cluster's DNS on a given address (here loopback), until
    the control plane stops it."""
    monkeypatch.setenv("LKS_DNS_UPSTREAM", "none")
    await clusterdns.start(cluster)
    listener = await clusterdns.serve(cluster, "127.0.0.1", 0)
    try:
        await _objects(cluster)
        r = await query(listener.port, "api.web.svc.cluster.local", "A")
        assert r.rcode() == dns.rcode.NOERROR and addresses(r) == {"10.0.0.50"}
        assert (await query(listener.port, "example.test", "A")).rcode() == dns.rcode.SERVFAIL
        assert clusterdns.get(cluster.id).server.listeners == [listener]
    finally:
        await clusterdns.stop(cluster.id)
    assert clusterdns.get(cluster.id) is None
    with pytest.raises((OSError, dns.exception.Timeout)):
        await dns.asyncquery.tcp(dns.message.make_query("cluster.local", "SOA"), "127.0.0.1",
                                 port=listener.port, timeout=1)


@pytest.mark.skipif(not netns.supported(), reason="needs root and network namespaces")
async def test_serve_in_a_network_namespace(cluster: Cluster, monkeypatch) -> None:
    """The DNS service IP inside a namespace of its own (as the pod network has it): sockets
    made there and handed over; a client in the namespace asks 10.0.0.10:53."""
    monkeypatch.setenv("LKS_DNS_UPSTREAM", "none")
    name = "lks-dnstest-" + os.urandom(3).hex()

    def setup() -> tuple[socket.socket, socket.socket, socket.socket]:
        netns.create(name)
        with netns.entered(name):
            ipr = netns.rtnl()
            try:
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.link("set", index=lo, state="up")
                ipr.addr("add", index=lo, address="10.0.0.10", prefixlen=32)
            finally:
                ipr.close()
            return (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_STREAM),
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    udp, tcp, client = await netns.run(setup)
    try:
        await clusterdns.start(cluster)
        listener = await clusterdns.serve(cluster, "10.0.0.10", 53, sockets=(udp, tcp))
        assert listener.port == 53
        await _objects(cluster)
        q = dns.message.make_query("api.web.svc.cluster.local", "A")
        r = await asyncio.to_thread(dns.query.udp, q, "10.0.0.10", port=53, timeout=5, sock=client)
        assert addresses(r) == {"10.0.0.50"}
    finally:
        client.close()
        await clusterdns.stop(cluster.id)
        await netns.run(lambda: netns.remove(name))
