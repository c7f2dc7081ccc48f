"""LoadBalancer Services end to end (`lks.net.loadbalancer`, `lks.arm.network`): kubectl makes a
LoadBalancer Service in front of an HTTP server pod on a Process pool; it gets an EXTERNAL-IP
from `lks up --load-balancer-range` with upstream's events and finalizer, a real TCP connection
from this test process to EXTERNAL-IP:80 reaches the pod (as root: pods have network
namespaces), the node resource group shows the `kubernetes` and `kubernetes-internal` load
balancers, the public IP and the cluster's outbound IP through azure-mgmt-network, a taken address is refused with a
Warning event, a delete releases the address, and the address survives a restart."""

from __future__ import annotations

import json
import os
import socket
import urllib.request

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient

from lks.net import netns

from .conftest import LKS, StaticToken, lks_json, wait_until

POOL = "procs"
NODE_GROUP = "MC_demo_demo_eastus"
# a /24 of the loopback block of its own, so that several `lks up` on one machine never meet
RANGE_OCTET = 225 + os.getpid() % 30
RANGE = f"127.{RANGE_OCTET}.{os.getpid() % 250}.0/24"
SERVE = ("import http.server, os\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['HOSTNAME'].encode())\n"
         "http.server.HTTPServer(('', 80), H).serve_forever()\n")
rooted = pytest.mark.skipif(not netns.supported(), reason="pod network namespaces need root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-lb-home"), "--load-balancer-range", RANGE)
    s.start()
    try:
        lks_json(s, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", POOL,
                 "--workload-runtime", "Process", "--node-count", "1")
        node = wait_until(lambda: [n["metadata"]["name"] for n in json.loads(s.kubectl(
            "get", "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}", "-o", "json").stdout)["items"]],
            what="the Process node")[0]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "main", "image": "python", "command": ["python3", "-c", SERVE],
                                        "ports": [{"containerPort": 80}],
                                        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]}}
        s.kubectl("apply", "-f", "-", input=json.dumps(pod))
        yield s
    finally:
        s.stop()


def _service(server: LKS, name: str, *, annotations: dict | None = None, port: int = 80, **spec: object) -> None:
    body = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": port, "targetPort": 80}], **spec}}
    server.kubectl("apply", "-f", "-", input=json.dumps(body))


def _get(server: LKS, name: str) -> dict:
    return json.loads(server.kubectl("get", "svc", name, "-o", "json").stdout)


def _external_ip(server: LKS, name: str) -> str:
    def check():
        ingress = _get(server, name).get("status", {}).get("loadBalancer", {}).get("ingress") or []
        return ingress[0]["ip"] if ingress else None
    return wait_until(check, what=f"service {name}'s external IP")


def _events(server: LKS, name: str) -> list[tuple[str, str, str]]:
    out = json.loads(server.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                                    "-o", "json").stdout)
    return [(e["type"], e["reason"], e["message"]) for e in out["items"]]


def _network(server: LKS) -> NetworkManagementClient:
    config = json.loads((server.home / "config.json").read_text())
    return NetworkManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                   base_url=config["endpoint"], connection_verify=config["ca_file"])


def _fetch(ip: str, port: int = 80) -> str:
    with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=5) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def web_ip(server: LKS) -> str:
    _service(server, "web")
    return _external_ip(server, "web")


def test_external_ip_status_finalizer_and_events(server: LKS, web_ip: str):
    assert web_ip.startswith(f"127.{RANGE_OCTET}.")
    svc = _get(server, "web")
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": web_ip, "ipMode": "VIP"}]
    assert "service.kubernetes.io/load-balancer-cleanup" in svc["metadata"]["finalizers"]
    row = server.kubectl("get", "svc", "web", "--no-headers").stdout.split()
    assert row[1] == "LoadBalancer" and row[3] == web_ip  # kubectl's EXTERNAL-IP column
    events = _events(server, "web")
    assert ("Normal", "EnsuringLoadBalancer", "Ensuring load balancer") in events
    assert ("Normal", "EnsuredLoadBalancer", "Ensured load balancer") in events


@rooted
def test_a_connection_to_the_external_ip_reaches_the_pod(server: LKS, web_ip: str):
    def answer():
        try:
            return _fetch(web_ip)
        except OSError:
            return None  # the pod not ready yet: the load balancer has no backend
    assert wait_until(answer, timeout=60, what="an answer through the load balancer") == "web"


ECHO = ("import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 5353))\n"
        "while True:\n"
        "    data, addr = s.recvfrom(512); s.sendto(b'echo ' + data, addr)\n")


@rooted
def test_udp_datagrams_reach_the_pod_and_come_back(server: LKS):
    node = json.loads(server.kubectl("get", "pod", "web", "-o", "json").stdout)["spec"]["nodeName"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo", "labels": {"app": "echo"}},
           "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "main", "image": "python", "command": ["python3", "-c", ECHO]}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "echo"},
                    "ports": [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(svc))
    ip = _external_ip(server, "echo")

    def answer():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(1)
            client.sendto(b"ping", (ip, 53))
            try:
                return client.recvfrom(512)[0]
            except OSError:
                return None  # the pod not running yet: the datagram went nowhere
    assert wait_until(answer, timeout=60, what="a UDP answer through the load balancer") == b"echo ping"


def test_node_resource_group_shows_the_load_balancers_and_public_ip(server: LKS, web_ip: str):
    _service(server, "inside", annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
    private_ip = _external_ip(server, "inside")
    assert private_ip == "10.224.255.254"
    server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "udp-only"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "none"}, "allocateLoadBalancerNodePorts": False,
                 "ports": [{"name": "u", "port": 5000, "protocol": "UDP"}]}}))
    _external_ip(server, "udp-only")
    udp_frontend = ("a" + _get(server, "udp-only")["metadata"]["uid"].replace("-", ""))[:32]
    assert "nodePort" not in _get(server, "udp-only")["spec"]["ports"][0]  # allocateLoadBalancerNodePorts: false
    uid = _get(server, "web")["metadata"]["uid"]
    frontend = ("a" + uid.replace("-", ""))[:32]
    network = _network(server)
    lb = network.load_balancers.get(NODE_GROUP, "kubernetes")
    assert lb.sku.name == "Standard" and lb.location == "eastus"
    config = next(c for c in lb.frontend_ip_configurations if c.name == frontend)
    assert config.public_ip_address.id.endswith(f"/publicIPAddresses/kubernetes-{frontend}")
    rule = next(r for r in lb.load_balancing_rules if r.name == f"{frontend}-TCP-80")
    assert (rule.frontend_port, rule.backend_port, rule.protocol) == (80, 80, "Tcp")
    assert rule.probe.id.endswith(f"/probes/{frontend}-TCP-80")
    assert any(p.name == f"{frontend}-TCP-80" for p in lb.probes)
    udp_rule = next(r for r in lb.load_balancing_rules if r.name == f"{udp_frontend}-UDP-5000")
    assert udp_rule.protocol == "Udp" and udp_rule.probe is None
    pools = {p.name: p for p in lb.backend_address_pools}
    assert len(pools["kubernetes"].backend_ip_configurations) == 4  # 3 nodepool1 + 1 procs
    assert pools["kubernetes"].backend_ip_configurations[0].id.endswith("/ipConfigurations/ipconfig1")
    outbound_rule = lb.outbound_rules[0]  # AKS's managed outbound IP, on the same load balancer
    assert outbound_rule.name == "aksOutboundRule" and outbound_rule.backend_address_pool.id == pools[
        "aksOutboundBackendPool"].id
    outbound = [p for p in network.public_ip_addresses.list(NODE_GROUP)
                if (p.tags or {}).get("aks-managed-type") == "aks-slb-managed-outbound-ip"]
    assert len(outbound) == 1 and outbound[0].ip_address.startswith(f"127.{RANGE_OCTET}.")
    assert outbound[0].ip_address != web_ip
    assert outbound_rule.frontend_ip_configurations[0].id.endswith(f"/frontendIPConfigurations/{outbound[0].name}")
    pip = network.public_ip_addresses.get(NODE_GROUP, f"kubernetes-{frontend}")
    assert pip.ip_address == web_ip
    assert pip.tags["k8s-azure-service"] == "default/web" and pip.tags["k8s-azure-cluster-name"] == "kubernetes"
    assert f"kubernetes-{frontend}" in {p.name for p in network.public_ip_addresses.list(NODE_GROUP)}
    internal = network.load_balancers.get(NODE_GROUP, "kubernetes-internal")
    assert [c.private_ip_address for c in internal.frontend_ip_configurations] == [private_ip]
    digits = json.loads(server.kubectl("get", "pod", "web", "-o", "json").stdout)["spec"]["nodeName"].split("-")[2]
    assert internal.frontend_ip_configurations[0].subnet.id.endswith(
        f"/resourceGroups/{NODE_GROUP}/providers/Microsoft.Network/virtualNetworks/aks-vnet-{digits}/subnets/aks-subnet")
    assert {b.name for b in network.load_balancers.list_all()} >= {"kubernetes", "kubernetes-internal"}
    with pytest.raises(ResourceNotFoundError) as missing:
        network.load_balancers.get(NODE_GROUP, "nope")
    assert missing.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as no_group:
        list(network.public_ip_addresses.list("no-such-group"))
    assert no_group.value.error.code == "ResourceGroupNotFound"


def test_a_taken_address_is_refused_and_a_delete_releases(server: LKS, web_ip: str):
    wanted = RANGE.rsplit(".", 1)[0] + ".77"
    _service(server, "pinned", annotations={"service.beta.kubernetes.io/azure-load-balancer-ipv4": wanted}, port=8080)
    assert _external_ip(server, "pinned") == wanted
    _service(server, "thief", loadBalancerIP=wanted, port=8081)
    failed = wait_until(lambda: [m for t, r, m in _events(server, "thief") if r == "SyncLoadBalancerFailed"],
                        what="the refusal")
    assert failed[0] == ("Error syncing load balancer: failed to ensure load balancer: the IP address "
                         f"{wanted} is already in use by service default/pinned")
    uid = _get(server, "pinned")["metadata"]["uid"]
    server.kubectl("delete", "svc", "pinned", "--wait=true")
    assert ("Normal", "DeletedLoadBalancer", "Deleted load balancer") in _events(server, "pinned")
    with pytest.raises(ResourceNotFoundError):
        _network(server).public_ip_addresses.get(NODE_GROUP, "kubernetes-" + ("a" + uid.replace("-", ""))[:32])
    assert _external_ip(server, "thief") == wanted  # free again: the next try takes it


def test_the_address_survives_a_restart(server: LKS, web_ip: str):
    server.restart()
    assert _external_ip(server, "web") == web_ip
    _service(server, "after", port=8082)
    assert _external_ip(server, "after") not in (web_ip, "")
    if netns.supported():
        assert wait_until(lambda: _try(web_ip), timeout=60, what="an answer after the restart") == "web"


def _try(ip: str) -> str | None:
    try:
        return _fetch(ip)
    except OSError:
        return None
