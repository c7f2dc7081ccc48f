"""Cluster DNS end to end: a real `lks up` serving its demo cluster's DNS on loopback
(LKS_DNS_LISTEN), Services made with kubectl, answers checked with dnspython as CoreDNS's
kubernetes plugin gives them. Forwarding is off (LKS_DNS_UPSTREAM=none): nothing leaves the host."""

from __future__ import annotations

import json
import os

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest
from kubernetes import client as k8s_client

from .conftest import LKS, wait_until

POD = """apiVersion: v1
kind: Pod
metadata: {name: db-main, namespace: %s, labels: {app: db}}
spec:
  hostname: primary
  subdomain: db
  containers: [{name: db, image: postgres}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-dns"), env={"LKS_DNS_LISTEN": "127.0.0.1:0", "LKS_DNS_UPSTREAM": "none"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def port(server: LKS) -> int:
    [state] = wait_until(lambda: list((server.home / "clusters").glob("*/dns.json")), what="dns.json")
    [[address, port]] = json.loads(state.read_text())["listen"]
    assert address == "127.0.0.1"
    return port


@pytest.fixture
def ns(server: LKS) -> str:
    name = "dns-" + os.urandom(3).hex()
    server.kubectl("create", "namespace", name)
    return name


def query(port: int, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=port, timeout=5)


def rdatas(response: dns.message.Message, rdtype: str = "A") -> set[str]:
    kind = dns.rdatatype.from_text(rdtype)
    return {r.to_text() for s in response.answer if s.rdtype == kind for r in s}


def test_kube_dns_and_services(server: LKS, port: int, ns: str) -> None:
    kube_dns = json.loads(server.kubectl("get", "svc", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert rdatas(query(port, "kube-dns.kube-system.svc.cluster.local")) == {kube_dns["spec"]["clusterIP"]}
    assert rdatas(query(port, "ns.dns.cluster.local")) == {kube_dns["spec"]["clusterIP"]}
    r = query(port, "_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV")
    assert rdatas(r, "SRV") == {"0 100 53 kube-dns.kube-system.svc.cluster.local."}

    server.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
    core = k8s_client.CoreV1Api(server.api_client())
    [svc] = core.list_namespaced_service(ns).items  # a consistent list: the watch cache (and so DNS) has it
    ip = svc.spec.cluster_ip
    r = query(port, f"web.{ns}.svc.cluster.local")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and rdatas(r) == {ip}
    assert rdatas(query(port, f"web.{ns}.svc.cluster.local", tcp=True)) == {ip}
    assert rdatas(query(port, f"_80-8080._tcp.web.{ns}.svc.cluster.local", "SRV"), "SRV") == {
        f"0 100 80 web.{ns}.svc.cluster.local."}
    r = query(port, dns.reversename.from_address(ip).to_text(), "PTR")
    assert rdatas(r, "PTR") == {f"web.{ns}.svc.cluster.local."}
    r = query(port, f"web.{ns}.svc.cluster.local", "AAAA")  # single-stack IPv4: NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA

    server.kubectl("delete", "service", "web", "-n", ns)
    server.kubectl("get", "svc", "-n", ns)  # a consistent list: the watch cache (and so DNS) has the delete
    r = query(port, f"web.{ns}.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN
    [soa] = r.authority
    assert soa.name.to_text() == "cluster.local." and soa.ttl == 30
    assert soa[0].mname.to_text() == "ns.dns.cluster.local." and soa[0].minimum == 30


def test_headless_service_and_pod_hostname(server: LKS, port: int, ns: str) -> None:
    server.kubectl("create", "service", "clusterip", "db", "--clusterip=None", "--tcp=5432:5432", "-n", ns)
    server.kubectl("apply", "-f", "-", input=POD % ns)
    server.kubectl("wait", "pod/db-main", "-n", ns, "--for=condition=Ready", "--timeout=60s")
    pod_ip = json.loads(server.kubectl("get", "pod", "db-main", "-n", ns, "-o", "json").stdout)["status"]["podIP"]
    # the endpoint slice follows the ready pod: the headless name answers its address
    wait_until(lambda: rdatas(query(port, f"db.{ns}.svc.cluster.local")) == {pod_ip}, what="headless answer")
    assert rdatas(query(port, f"primary.db.{ns}.svc.cluster.local")) == {pod_ip}
    r = query(port, f"_5432-5432._tcp.db.{ns}.svc.cluster.local", "SRV")
    assert rdatas(r, "SRV") == {f"0 100 5432 primary.db.{ns}.svc.cluster.local."}
    assert {x.to_text() for s in r.additional for x in s} == {pod_ip}
    dashed = pod_ip.replace(".", "-")
    assert rdatas(query(port, f"{dashed}.{ns}.pod.cluster.local")) == {pod_ip}
    r = query(port, dns.reversename.from_address(pod_ip).to_text(), "PTR")
    assert rdatas(r, "PTR") == {f"primary.db.{ns}.svc.cluster.local."}


def test_external_name_and_outside_names(server: LKS, port: int, ns: str) -> None:
    server.kubectl("create", "service", "externalname", "ext", "--external-name", "db.example.com", "-n", ns)
    server.kubectl("get", "svc", "-n", ns)  # a consistent list: the watch cache (and so DNS) has it
    r = query(port, f"ext.{ns}.svc.cluster.local", "CNAME")
    assert rdatas(r, "CNAME") == {"db.example.com."}
    # no upstream configured: names outside the cluster fail as CoreDNS's forward fails
    assert query(port, "example.com").rcode() == dns.rcode.SERVFAIL
    assert query(port, f"nothing.{ns}.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN
