"""A pod's resolv.conf and hosts as kubelet writes them (`lks.net.dnsconfig`)."""

from __future__ import annotations

import pytest

from lks.net import dnsconfig


@pytest.fixture
def host_resolv(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("# the node's\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n")
    return str(path)


def _pod(**spec):
    return {"metadata": {"name": "web", "namespace": "shop"}, "spec": spec}


@pytest.mark.parametrize(("spec", "want"), [
    pytest.param({}, "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                     "nameserver 10.0.0.10\noptions ndots:5\n", id="ClusterFirst"),
    pytest.param({"dnsPolicy": "Default"}, "search corp.example\nnameserver 192.0.2.53\noptions edns0\n", id="Default"),
    pytest.param({"hostNetwork": True}, "search corp.example\nnameserver 192.0.2.53\noptions edns0\n",
                 id="ClusterFirst-hostNetwork-is-Default"),
    pytest.param({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"},
                 "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                 "nameserver 10.0.0.10\noptions ndots:5\n", id="ClusterFirstWithHostNet"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
                                                     "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
                 "search a.example\nnameserver 1.1.1.1\noptions ndots:2 edns0\n", id="None"),
    pytest.param({"dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "1"}]}},
                 "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                 "nameserver 10.0.0.10\nnameserver 1.1.1.1\noptions ndots:1\n", id="dnsConfig-merged"),
])
def test_resolv_conf(spec, want, host_resolv):
    assert dnsconfig.resolv_conf(_pod(**spec), dns_service_ip="10.0.0.10", host_path=host_resolv) == want


def test_hosts_with_subdomain_and_aliases():
    pod = _pod(hostname="h", subdomain="sub", hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo", "bar"]}])
    out = dnsconfig.hosts(pod, pod_ip="10.244.0.7")
    assert out.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.244.0.7\th.sub.shop.svc.cluster.local\th\n" in out
    assert out.endswith("\n# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n")
