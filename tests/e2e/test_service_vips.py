"""Service virtual IPs of Process pools end to end (`lks.net.proxy`, kube-proxy's nftables mode),
driven by kubectl: a Deployment `web` of two HTTP servers behind a Service; a third pod reaches
it by its DNS name and its ClusterIP (both backends answer), through a node's InternalIP at its
NodePort, sticks to one backend with ClientIP session affinity, reaches the `kubernetes`
Service's IP; with the Deployment scaled to zero the connection is refused (REJECT)."""

from __future__ import annotations

import json

import pytest

from lks.net import netns
from lks.net.proxy import nft

from .conftest import LKS, lks_json, wait_until

pytestmark = pytest.mark.skipif(not netns.supported() or nft.available() is not None,
                                reason="Service VIPs need root, network namespaces and nft")

POOL = "procs"
SERVE = ("import http.server, os\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['HOSTNAME'].encode())\n"
         "    def log_message(self, *args):\n"
         "        pass\n"
         "http.server.HTTPServer(('', 80), H).serve_forever()\n")
SELECT = {"nodeSelector": {"kubernetes.azure.com/agentpool": POOL}, "tolerations": [{"operator": "Exists"}],
          "terminationGracePeriodSeconds": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-vips-home"))
    s.start()
    try:
        lks_json(s, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", POOL,
                 "--workload-runtime", "Process", "--node-count", "2")
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {**SELECT, "containers": [{
                "name": "web", "image": "python", "command": ["python3", "-c", SERVE], "ports": [{"containerPort": 80}],
                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]}}}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {
            "type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}
        client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"}, "spec": {
            **SELECT, "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}
        for obj in (deployment, service, client):
            s.kubectl("apply", "-f", "-", input=json.dumps(obj))
        s.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        s.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
        yield s
    finally:
        s.stop()


def _sh(server: LKS, script: str) -> str:
    return server.kubectl("exec", "client", "--", "sh", "-c", script, check=False).stdout


def _fetch(server: LKS, url: str, n: int = 10) -> list[str]:
    """Who answers `n` GETs of `url` from the client pod (one line each, "" for a failure)."""
    out = _sh(server, f"for i in $(seq {n}); do wget -qO- -T 3 -t 1 {url}; echo; done")
    return out.splitlines()


def _backends(server: LKS) -> set[str]:
    pods = json.loads(server.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"] for p in pods}


def _service(server: LKS) -> dict:
    return json.loads(server.kubectl("get", "service", "web", "-o", "json").stdout)


def test_the_service_name_and_cluster_ip_reach_both_backends(server: LKS):
    backends = _backends(server)
    assert len(backends) == 2
    assert set(_fetch(server, "http://web.default.svc.cluster.local", 16)) == backends
    assert set(_fetch(server, f"http://{_service(server)['spec']['clusterIP']}", 16)) == backends


def test_node_port_on_a_nodes_internal_ip(server: LKS):
    node = json.loads(server.kubectl("get", "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}",
                                     "-o", "json").stdout)["items"][0]
    ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    port = _service(server)["spec"]["ports"][0]["nodePort"]
    assert set(_fetch(server, f"http://{ip}:{port}", 16)) == _backends(server)


def test_client_ip_session_affinity_keeps_one_backend(server: LKS):
    server.kubectl("patch", "service", "web", "-p", json.dumps({"spec": {"sessionAffinity": "ClientIP"}}))
    ip = _service(server)["spec"]["clusterIP"]
    # once the rules have it, every answer comes from one backend
    answers = wait_until(lambda: (a := _fetch(server, f"http://{ip}", 12)) and len(set(a)) == 1 and a,
                         what="one backend answering")
    assert answers[0] in _backends(server)
    server.kubectl("patch", "service", "web", "-p", json.dumps({"spec": {"sessionAffinity": "None"}}))


def test_the_kubernetes_service_ip_reaches_the_api(server: LKS):
    ip = json.loads(server.kubectl("get", "service", "kubernetes", "-o", "json").stdout)["spec"]["clusterIP"]
    assert _sh(server, f"wget -qO- -T 5 -t 1 --no-check-certificate https://{ip}/readyz") == "ok"


def test_scaled_to_zero_the_connection_is_refused(server: LKS):
    server.kubectl("scale", "deployment", "web", "--replicas=0")
    ip = _service(server)["spec"]["clusterIP"]
    out = wait_until(lambda: (o := _sh(server, f"wget -O- -T 3 -t 1 http://{ip}/ 2>&1")) and "refused" in o and o,
                     what="connection refused")
    assert "Connection refused" in out
