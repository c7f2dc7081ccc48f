"""The application routing add-on end to end (`lks.net.ingress`): `lks aks approuting enable`
turns on `ingressProfile.webAppRouting` (the Azure SDK reads it back with its identity), kubectl
shows what AKS installs (app-routing-system, the IngressClass, the nginx Deployment and its
LoadBalancer Service with an EXTERNAL-IP); an Ingress applied with kubectl routes two paths to
two Services of Process pods, real HTTP requests from this test to EXTERNAL-IP with a Host header
reach them with ingress-nginx's headers, TLS from a Secret made with `kubectl create secret tls`
answers by SNI, an unmatched request is nginx's 404, and `disable` takes the add-on away."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedClusterIngressProfileNginx

from lks import pki
from lks.net import netns

from .conftest import LKS, StaticToken, lks_cli, lks_json, wait_until

POOL = "procs"
# a /24 of the loopback block of its own, so that several `lks up` on one machine never meet
RANGE = f"127.{224 + os.getpid() % 30}.{(os.getpid() // 30) % 250}.0/24"
SERVE = ("import http.server, json, os\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        body = json.dumps({'pod': os.environ['HOSTNAME'], 'path': self.path,\n"
         "                           'host': self.headers['Host'], 'xff': self.headers['X-Forwarded-For'],\n"
         "                           'proto': self.headers['X-Forwarded-Proto']}).encode()\n"
         "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
         "        self.wfile.write(body)\n"
         "http.server.HTTPServer(('', 80), H).serve_forever()\n")
rooted = pytest.mark.skipif(not netns.supported(), reason="pod network namespaces and ports 80/443 need root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-approuting-home"), "--load-balancer-range", RANGE)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def enabled(server: LKS) -> dict:
    return lks_json(server, "aks", "approuting", "enable", "-g", "demo", "-n", "demo")


def _get(server: LKS, *args: str) -> dict:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def _external_ip(server: LKS) -> str:
    def ip():
        ingress = (_get(server, "service", "nginx", "-n", "app-routing-system").get("status") or {}).get(
            "loadBalancer", {}).get("ingress") or []
        return ingress[0]["ip"] if ingress else None
    return wait_until(ip, what="the nginx Service's EXTERNAL-IP")


def test_enable_installs_what_aks_shows(server: LKS, enabled: dict) -> None:
    routing = enabled["ingressProfile"]["webAppRouting"]
    assert routing["enabled"] is True
    assert routing["nginx"] == {"defaultIngressControllerType": "AnnotationControlled"}
    assert routing["identity"]["resourceId"].endswith("/userAssignedIdentities/webapprouting-demo")
    config = json.loads((server.home / "config.json").read_text())
    clusters = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                      base_url=config["endpoint"], connection_verify=config["ca_file"]).managed_clusters
    sdk = clusters.get("demo", "demo")
    assert sdk.ingress_profile.web_app_routing.enabled is True
    assert sdk.ingress_profile.web_app_routing.identity.client_id == routing["identity"]["clientId"]
    sdk.ingress_profile.web_app_routing.nginx = ManagedClusterIngressProfileNginx(default_ingress_controller_type="Sideways")
    with pytest.raises(HttpResponseError) as err:
        clusters.begin_create_or_update("demo", "demo", sdk).result()
    assert err.value.status_code == 400 and err.value.error.code == "InvalidParameter"
    assert err.value.error.target == "ingressProfile.webAppRouting.nginx.defaultIngressControllerType"
    again = lks_cli(server, "aks", "approuting", "enable", "-g", "demo", "-n", "demo")
    assert again.returncode != 0 and "App Routing is already enabled." in again.stderr
    updated = lks_json(server, "aks", "approuting", "update", "-g", "demo", "-n", "demo", "--nginx", "external")
    assert updated["ingressProfile"]["webAppRouting"]["nginx"] == {"defaultIngressControllerType": "External"}
    assert updated["ingressProfile"]["webAppRouting"]["identity"] == routing["identity"]  # kept

    ic = _get(server, "ingressclass", "webapprouting.kubernetes.azure.com")
    assert ic["spec"]["controller"] == "webapprouting.kubernetes.azure.com/nginx"
    assert ic["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aks-app-routing-operator"
    deploy = _get(server, "deployment", "nginx", "-n", "app-routing-system")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"][1:3] == [
        "--ingress-class=webapprouting.kubernetes.azure.com",
        "--controller-class=webapprouting.kubernetes.azure.com/nginx"]
    svc = _get(server, "service", "nginx", "-n", "app-routing-system")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["annotations"]["lks.dev/served-in-process"] == "true"
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "ingress-controller"
    def nic_table():
        out = server.kubectl("get", "nginxingresscontroller", check=False).stdout.split()
        return out if out[-4:] == ["default", "webapprouting.kubernetes.azure.com", "nginx", "True"] else None
    assert wait_until(nic_table, what="kubectl get nginxingresscontroller")[:4] == [
        "NAME", "INGRESSCLASS", "CONTROLLERNAMEPREFIX", "AVAILABLE"]
    ip = _external_ip(server)
    assert ip.startswith(RANGE.rsplit(".", 1)[0] + ".")
    # lks's listener is the load balancer: kube-proxy sends nothing for it to the stand-in pods
    assert _get(server, "service", "nginx", "-n", "app-routing-system")["status"]["loadBalancer"]["ingress"] == [
        {"ip": ip, "ipMode": "Proxy"}]
    table = server.kubectl("get", "service", "nginx", "-n", "app-routing-system").stdout
    assert ip in table and "LoadBalancer" in table


@pytest.fixture(scope="module")
def routed(server: LKS, enabled: dict, tmp_path_factory: pytest.TempPathFactory) -> str:
    lks_json(server, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", POOL,
             "--workload-runtime", "Process", "--node-count", "1")
    node = _get(server, "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}")["items"][0]["metadata"]["name"]
    for name in ("alpha", "beta"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "main", "image": "python", "command": ["python3", "-c", SERVE],
                                        "ports": [{"containerPort": 80}],
                                        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]}}
        server.kubectl("apply", "-f", "-", input=json.dumps(pod))
        server.kubectl("create", "service", "clusterip", name, "--tcp=80:80")
    ca = pki.create_ca("app-routing-test")
    cert = pki.create_serving_cert(ca, ["secure.example.test"])
    d = tmp_path_factory.mktemp("tls")
    (d / "tls.crt").write_bytes(cert.cert_pem)
    (d / "tls.key").write_bytes(cert.key_pem)
    (d / "ca.crt").write_bytes(ca.cert_pem)
    server.kubectl("create", "secret", "tls", "secure-tls", f"--cert={d / 'tls.crt'}", f"--key={d / 'tls.key'}")
    paths = [{"path": "/alpha", "pathType": "Prefix", "backend": {"service": {"name": "alpha", "port": {"number": 80}}}},
             {"path": "/beta", "pathType": "Prefix", "backend": {"service": {"name": "beta", "port": {"number": 80}}}}]
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop"},
               "spec": {"ingressClassName": "webapprouting.kubernetes.azure.com",
                        "tls": [{"hosts": ["secure.example.test"], "secretName": "secure-tls"}],
                        "rules": [{"host": "shop.example.test", "http": {"paths": paths}},
                                  {"host": "secure.example.test", "http": {"paths": paths}}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(ingress))
    for name in ("alpha", "beta"):
        server.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
    return str(d / "ca.crt")


def _answer(ip: str, host: str, path: str, *, tls_ca: str | None = None) -> dict | None:
    """The backend's JSON answer through the ingress; None while there is none (not listening
    yet, no ready endpoint)."""
    try:
        status, _, body = _request(ip, host, path, tls_ca=tls_ca)
    except OSError:
        return None
    return json.loads(body) if status == 200 else None


def _request(ip: str, host: str, path: str, *, tls_ca: str | None = None) -> tuple[int, dict, bytes]:
    if tls_ca is None:
        conn = http.client.HTTPConnection(ip, 80, timeout=10)
    else:
        ctx = ssl.create_default_context(cafile=tls_ca)
        sock = socket.create_connection((ip, 443), timeout=10)
        conn = http.client.HTTPSConnection(host, 443, timeout=10, context=ctx)
        conn.sock = ctx.wrap_socket(sock, server_hostname=host)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@rooted
def test_ingress_routes_two_paths_to_two_services(server: LKS, routed: str) -> None:
    ip = _external_ip(server)
    alpha = wait_until(lambda: _answer(ip, "shop.example.test", "/alpha/x?y=1"), what="the ingress answering from alpha")
    assert alpha == {"pod": "alpha", "path": "/alpha/x?y=1", "host": "shop.example.test", "xff": "127.0.0.1",
                     "proto": "http"}
    status, headers, body = _request(ip, "shop.example.test", "/beta")
    assert status == 200 and json.loads(body)["pod"] == "beta" and headers["Server"] == "nginx"
    ing = wait_until(lambda: (_get(server, "ingress", "shop").get("status") or {}).get("loadBalancer", {}).get(
        "ingress"), what="the Ingress's status")
    assert ing == [{"ip": ip}]
    assert ip in server.kubectl("get", "ingress", "shop").stdout


@rooted
def test_unmatched_is_404_and_tls_host_redirects(server: LKS, routed: str) -> None:
    ip = _external_ip(server)
    status, headers, body = _request(ip, "shop.example.test", "/gamma")
    assert status == 404 and b"<center><h1>404 Not Found</h1></center>" in body and headers["Server"] == "nginx"
    assert _request(ip, "nobody.example.test", "/alpha")[0] == 404
    status, headers, _ = _request(ip, "secure.example.test", "/alpha")
    assert status == 308 and headers["Location"] == "https://secure.example.test/alpha"


@rooted
def test_tls_with_a_secret(server: LKS, routed: str) -> None:
    ip = _external_ip(server)
    body = wait_until(lambda: _answer(ip, "secure.example.test", "/beta/s", tls_ca=routed),
                      what="HTTPS through the ingress")
    assert body | {"xff": None} == {"pod": "beta", "path": "/beta/s", "host": "secure.example.test",
                                               "xff": None, "proto": "https"}


@rooted
def test_a_second_cluster_created_with_app_routing_has_its_own_address(server: LKS, routed: str) -> None:
    lks_json(server, "group", "create", "-n", "second-rg", "-l", "westeurope")
    created = lks_json(server, "aks", "create", "-g", "second-rg", "-n", "second", "--node-count", "1",
                       "--enable-app-routing")
    assert created["ingressProfile"]["webAppRouting"]["enabled"] is True
    kubeconfig = server.home / "second.kubeconfig"
    lks_json(server, "aks", "get-credentials", "-g", "second-rg", "-n", "second", "-f", str(kubeconfig))

    def second_ip():
        svc = json.loads(server.kubectl("get", "service", "nginx", "-n", "app-routing-system", "-o", "json",
                                        kubeconfig=kubeconfig, check=False).stdout or "{}")
        return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    other = wait_until(second_ip, what="the second cluster's EXTERNAL-IP")[0]["ip"]
    first = _external_ip(server)
    assert other != first
    # each cluster's Ingresses on its own address
    assert _answer(first, "shop.example.test", "/alpha")["pod"] == "alpha"
    assert wait_until(lambda: _status(other, "shop.example.test", "/alpha") == 404, what="the second ingress")


def _status(ip: str, host: str, path: str) -> int | None:
    try:
        return _request(ip, host, path)[0]
    except OSError:
        return None


@rooted
def test_served_again_after_a_restart(server: LKS, routed: str) -> None:
    ip = _external_ip(server)
    server.restart()
    assert _external_ip(server) == ip  # kept in the Service's status and the frontends' store
    assert wait_until(lambda: _answer(ip, "shop.example.test", "/beta"), timeout=60,
                      what="the ingress answering after the restart")["pod"] == "beta"


@rooted
def test_an_internal_controller_serves_inside_the_cluster_network(server: LKS, routed: str) -> None:
    public = _external_ip(server)
    lks_json(server, "aks", "approuting", "update", "-g", "demo", "-n", "demo", "--nginx", "Internal")

    def internal():
        ip = _external_ip(server)
        return ip if ip != public else None
    ip = wait_until(internal, what="the internal load balancer's address")
    assert ip.startswith("10.224.")  # the node subnet: only the cluster's network has it
    fetch = ("import sys, time, urllib.request\n"
             "for _ in range(100):\n"
             "    try:\n"
             "        req = urllib.request.Request(f'http://{sys.argv[1]}/alpha', headers={'Host': 'shop.example.test'})\n"
             "        print(urllib.request.urlopen(req, timeout=3).read().decode()); break\n"
             "    except OSError as err:\n"
             "        print(err, file=sys.stderr); time.sleep(0.2)\n")
    node = _get(server, "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}")["items"][0]["metadata"]["name"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "inside"},
           "spec": {"nodeName": node, "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "main", "image": "python", "command": ["python3", "-c", fetch, ip]}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_until(lambda: _get(server, "pod", "inside")["status"].get("phase") in ("Succeeded", "Failed"),
               what="the pod inside done", timeout=60)
    assert json.loads(server.kubectl("logs", "inside").stdout)["pod"] == "alpha"
    assert _status(public, "shop.example.test", "/alpha") is None  # nothing on the public address now


def test_disable_removes_the_add_on(server: LKS, enabled: dict) -> None:  # last: the others need it on
    out = lks_json(server, "aks", "approuting", "disable", "-g", "demo", "-n", "demo", "--yes")
    assert out["ingressProfile"]["webAppRouting"]["enabled"] is False
    assert "identity" not in out["ingressProfile"]["webAppRouting"]
    wait_until(lambda: server.kubectl("get", "ingressclass", "webapprouting.kubernetes.azure.com",
                                      check=False).returncode != 0, what="the IngressClass gone")
    wait_until(lambda: server.kubectl("get", "namespace", "app-routing-system", check=False).returncode != 0,
               what="app-routing-system gone", timeout=60)
