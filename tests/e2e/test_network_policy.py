"""NetworkPolicy enforced on a Process pool end to end (`lks.net.netpol`): a cluster made with
`--network-policy azure`, pod `web` serving HTTP in namespace `shop`, a client pod in namespace
`clients` fetching it through kubectl exec. A policy denying ingress to the shop makes the fetch
time out; one allowing the clients' namespace on the web pod's named port brings it back; an
egress deny in the clients' namespace cuts it again, and deleting it restores it.
`lks aks network-policy check` answers the same at every step and names the policies that
decide (hostile bodies to its ARM action are 400s); through a Service VIP the ingress rule sees
the pod behind it; on a cluster without network policy (`none`) nothing is enforced, and
`lks aks update --network-policy none|azure` turns enforcement off and on."""

from __future__ import annotations

import json

import pytest

from lks.net import netns
from lks.net.netpol import nft
from lks.nodes.process import ProcessRuntime

from .conftest import LKS, lks_cli, lks_json, wait_until
from .test_arm_errors import arm_error, send

pytestmark = pytest.mark.skipif(not netns.supported() or nft.binary() is None,
                                reason="network policy enforcement needs root, network namespaces and nft")

GROUP, CLUSTER = "netpol-rg", "guarded"
SERVE = ("import http.server\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        self.send_response(200); self.end_headers(); self.wfile.write(b'web')\n"
         "http.server.HTTPServer(('', 80), H).serve_forever()\n")
FETCH = ("import sys, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen(f'http://{sys.argv[1]}:{sys.argv[2]}/', timeout=2).read().decode())\n"
         "except OSError as err:\n"
         "    print('unreachable', type(err).__name__)\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-netpol-home"))
    s.start()
    try:
        lks_json(s, "group", "create", "-n", GROUP, "-l", "westeurope")
        made = lks_json(s, "aks", "create", "-g", GROUP, "-n", CLUSTER, "--node-count", "1",
                        "--workload-runtime", "Process", "--network-policy", "azure")
        assert made["networkProfile"]["networkPolicy"] == "azure"
        s.guarded = s.home / "guarded.kubeconfig"
        lks_json(s, "aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "-f", str(s.guarded))
        yield s
    finally:
        s.stop()
        prefixes = {line.strip() for f in s.home.rglob("network-namespaces") for line in f.read_text().splitlines()}
        for name in netns.listed("lks-"):  # even after a failure, nothing stays behind
            if any(name == p or name.startswith(p + "-") for p in prefixes if p):
                netns.remove(name)


def _kubectl(server: LKS, *args: str, input: str | None = None, check: bool = True):
    return server.kubectl(*args, input=input, check=check, kubeconfig=server.guarded)


def _apply(server: LKS, *objs: dict) -> None:
    _kubectl(server, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def _policy(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name},
            "spec": spec}


def _ready(server: LKS, ns: str, name: str) -> dict:
    def check():
        pod = json.loads(_kubectl(server, "get", "pod", name, "-n", ns, "-o", "json").stdout)
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
        return pod if ok else None
    return wait_until(check, timeout=60, what=f"pod {ns}/{name} ready")


@pytest.fixture(scope="module")
def web_ip(server: LKS) -> str:
    pod = {"spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                    "tolerations": [{"operator": "Exists"}]}}
    _apply(server,
           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "clients", "labels": {"team": "clients"}}},
           {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {**pod["spec"], "containers": [{
                "name": "main", "image": "python", "command": ["python3", "-c", SERVE],
                "ports": [{"name": "http", "containerPort": 80}],
                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]}},
           {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "clients"},
            "spec": {**pod["spec"], "containers": [{
                "name": "main", "image": "python", "command": ["python3", "-c", "import time; time.sleep(86400)"]}]}})
    _ready(server, "clients", "client")
    return _ready(server, "shop", "web")["status"]["podIP"]


def _fetch(server: LKS, ip: str, port: int = 80) -> str:
    return _kubectl(server, "exec", "-n", "clients", "client", "--", "python3", "-c", FETCH, ip, str(port)).stdout.strip()


def _until(server: LKS, ip: str, reachable: bool, port: int = 80) -> None:
    wait_until(lambda: (_fetch(server, ip, port) == "web") is reachable,
               what=f"web at {ip}:{port} {'reached' if reachable else 'cut off'}")


def _check(server: LKS) -> dict:
    return lks_json(server, "aks", "network-policy", "check", "-g", GROUP, "-n", CLUSTER,
                    "--from", "clients/client", "--to", "shop/web", "--port", "80")


def test_ingress_deny_then_allow_by_namespace_then_egress_deny(server: LKS, web_ip: str):
    assert _fetch(server, web_ip) == "web"
    assert _check(server)["allowed"] is True

    _apply(server, _policy("shop", "deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    _until(server, web_ip, reachable=False)
    answer = _check(server)
    assert answer["allowed"] is False and answer["enforced"] is True
    assert answer["decidingPolicies"] == ["shop/deny-ingress"]
    assert answer["ingress"]["selectingPolicies"] == ["shop/deny-ingress"] and answer["egress"]["isolated"] is False

    _apply(server, _policy("shop", "allow-clients", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "clients"}}}],
                     "ports": [{"port": "http"}]}]}))
    _until(server, web_ip, reachable=True)
    answer = _check(server)
    assert answer["allowed"] is True and answer["decidingPolicies"] == ["shop/allow-clients"]

    _apply(server, _policy("clients", "deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}))
    _until(server, web_ip, reachable=False)
    answer = _check(server)
    assert answer["allowed"] is False and answer["decidingPolicies"] == ["clients/deny-egress"]
    assert answer["ingress"]["allowed"] is True and answer["egress"]["allowed"] is False

    by_ip = lks_json(server, "aks", "network-policy", "check", "-g", GROUP, "-n", CLUSTER,
                     "--from", "clients/client", "--to", web_ip, "--port", "80")
    assert by_ip["to"] == "shop/web" and by_ip["ingress"]["allowingPolicies"] == ["shop/allow-clients"]

    _kubectl(server, "delete", "networkpolicy", "-n", "clients", "deny-egress")
    _until(server, web_ip, reachable=True)


@pytest.mark.skipif(not hasattr(ProcessRuntime, "_service_proxy"), reason="no Service VIPs in the pod network")
def test_through_a_service_vip_ingress_sees_the_pod_and_its_port(server: LKS, web_ip: str):
    """The VIP is DNATed before the forward hook: the allowing rule names the pod's port (`http`,
    80), not the Service's (8080), and still lets the connection through; without it, denied."""
    _apply(server, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": "http"}]}})
    vip = json.loads(_kubectl(server, "get", "service", "web", "-n", "shop", "-o", "json").stdout)["spec"]["clusterIP"]
    _until(server, vip, reachable=True, port=8080)  # allow-clients (from the test before) lets it through
    allow = json.loads(_kubectl(server, "get", "networkpolicy", "allow-clients", "-n", "shop", "-o", "json").stdout)
    _kubectl(server, "delete", "networkpolicy", "-n", "shop", "allow-clients")
    _until(server, vip, reachable=False, port=8080)
    _apply(server, _policy("shop", "allow-clients", allow["spec"]))
    _until(server, vip, reachable=True, port=8080)


def test_check_table_and_errors(server: LKS, web_ip: str):
    res = lks_cli(server, "aks", "network-policy", "check", "-g", GROUP, "-n", CLUSTER, "--from", "clients/client",
                  "--to", "shop/web", "--port", "81", "-o", "table")
    assert res.returncode == 0, res.stderr
    assert "Ingress" in res.stdout and "Egress" in res.stdout
    res = lks_cli(server, "aks", "network-policy", "check", "-g", GROUP, "-n", CLUSTER, "--from", "clients/nobody",
                  "--to", "shop/web", "--port", "80")
    assert res.returncode != 0 and "The pod 'clients/nobody' was not found" in res.stderr
    res = lks_cli(server, "aks", "network-policy", "check", "-g", GROUP, "-n", CLUSTER, "--from", "clients/client",
                  "--to", "shop/web", "--port", "0")
    assert res.returncode != 0 and "InvalidParameter" in res.stderr


HOSTILE = [
    pytest.param(b"[]", "port", id="a-list"),
    pytest.param(b'"x"', "port", id="a-string"),
    pytest.param(b'{"from": "clients/client", "to": "shop/web", "port": "abc"}', "port", id="port-not-a-number"),
    pytest.param(b'{"from": "clients/client", "to": "shop/web", "port": 70000}', "port", id="port-too-big"),
    pytest.param(b'{"from": "clients/client", "to": "shop/web", "port": true}', "port", id="port-a-boolean"),
    pytest.param(b'{"from": "clients/client", "to": "shop/web", "port": 80, "protocol": "ICMP"}', "protocol",
                 id="protocol-unknown"),
    pytest.param(b'{"from": {"a": 1}, "to": "shop/web", "port": 80}', "from", id="from-an-object"),
    pytest.param(b'{"from": "clients/", "to": "shop/web", "port": 80}', "from", id="from-no-name"),
    pytest.param(b'{"from": "clients/client", "to": "' + b"x" * 5000 + b'", "port": 80}', "to", id="to-huge"),
]


@pytest.mark.parametrize(("body", "target"), HOSTILE)
def test_hostile_bodies_are_arm_errors(server: LKS, web_ip: str, body: bytes, target: str):
    config = json.loads((server.home / "config.json").read_text())
    path = (f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/"
            f"Microsoft.ContainerService/managedClusters/{CLUSTER}/networkPolicyCheck?api-version=2026-08-01")
    status, resp, raw = send(config, "POST", path, body, headers={"Content-Type": "application/json"})
    error = arm_error(resp, raw)
    assert (status, error["code"], error.get("target")) == (400, "InvalidParameter", target), error


def test_a_cluster_without_network_policy_enforces_nothing(server: LKS):
    server.kubectl("create", "namespace", "shop")
    server.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"containers": [{"name": "main", "image": "nginx"}]}}))
    server.kubectl("apply", "-f", "-", input=json.dumps(_policy("shop", "deny", {"podSelector": {}})))
    answer = lks_json(server, "aks", "network-policy", "check", "-g", "demo", "-n", "demo",
                      "--from", "10.1.2.3", "--to", "shop/web", "--port", "80")
    assert answer["enforced"] is False and answer["networkPolicy"] == "none"
    assert answer["allowed"] is True and answer["policyAllowed"] is False


def test_network_policy_none_by_update_stops_enforcing_and_back(server: LKS, web_ip: str):
    """`lks aks update --network-policy none` takes the tables away (a deny policy no longer
    holds), `--network-policy azure` brings enforcement back."""
    _apply(server, _policy("shop", "deny-all-again", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
        "cidr": "192.0.2.0/24"}}]}]}))
    _kubectl(server, "delete", "networkpolicy", "-n", "shop", "allow-clients")
    _until(server, web_ip, reachable=False)
    updated = lks_json(server, "aks", "update", "-g", GROUP, "-n", CLUSTER, "--network-policy", "none")
    assert updated["networkProfile"]["networkPolicy"] == "none"
    _until(server, web_ip, reachable=True)
    assert _check(server)["enforced"] is False
    lks_json(server, "aks", "update", "-g", GROUP, "-n", CLUSTER, "--network-policy", "azure")
    _until(server, web_ip, reachable=False)
