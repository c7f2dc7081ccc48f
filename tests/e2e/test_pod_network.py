"""Pod networking of Process pools end to end (`lks.net.podnet`): each pod in its own network
namespace, driven by kubectl. Two pods listen on port 80 side by side, a pod on another node
reaches both by pod IP, a pod of another cluster reaches neither; kubelet's resolv.conf and
hosts, and the cluster's DNS answering on its service IP; hostNetwork pods keep the host's network; probes go into the pod's namespace; nothing
is left in `ip netns` after a pod, after kill -9 and a restart, or after the service stops."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lks.net import netns

from .conftest import LKS, lks_json, wait_until

pytestmark = pytest.mark.skipif(not netns.supported(), reason="pod network namespaces need root")

POOL, GROUP, OTHER = "procs", "net-rg", "other"
SERVE = ("import http.server, os\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['HOSTNAME'].encode())\n"
         "http.server.HTTPServer(('', 80), H).serve_forever()\n")
FETCH = ("import sys, urllib.request\n"
         "for ip in sys.argv[1:]:\n"
         "    try:\n"
         "        print(ip, urllib.request.urlopen(f'http://{ip}:80/', timeout=3).read().decode())\n"
         "    except OSError as err:\n"
         "        print(ip, 'unreachable', type(err).__name__)\n")


def _ours(home: Path) -> list[str]:
    """The namespaces the service of `home` made that still exist (by its state files)."""
    prefixes = {line.strip() for f in home.rglob("network-namespaces") for line in f.read_text().splitlines()}
    return [n for n in netns.listed("lks-") if any(n == p or n.startswith(p + "-") for p in prefixes if p)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-podnet-home"))
    s.start()
    try:
        lks_json(s, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", POOL,
                 "--workload-runtime", "Process", "--node-count", "2")
        lks_json(s, "group", "create", "-n", GROUP, "-l", "westeurope")
        lks_json(s, "aks", "create", "-g", GROUP, "-n", OTHER, "--node-count", "1", "--workload-runtime", "Process",
                 "--pod-cidr", "10.245.0.0/16")
        s.other = s.home / "other.kubeconfig"
        lks_json(s, "aks", "get-credentials", "-g", GROUP, "-n", OTHER, "-f", str(s.other))
        yield s
    finally:
        s.stop()
        for name in _ours(s.home):  # even after a failure, nothing stays behind
            netns.remove(name)


def _nodes(server: LKS, kubeconfig: Path | None = None, pool: str = POOL) -> list[str]:
    out = server.kubectl("get", "nodes", "-l", f"kubernetes.azure.com/agentpool={pool}", "-o", "json",
                         kubeconfig=kubeconfig)
    return sorted(n["metadata"]["name"] for n in json.loads(out.stdout)["items"])


def _run(server: LKS, name: str, node: str, command: list[str], *, kubeconfig: Path | None = None,
         restart: str = "Never", **spec: object) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeName": node, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "main", "image": "python", "command": command}], **spec}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod), kubeconfig=kubeconfig)


def _pod(server: LKS, name: str, kubeconfig: Path | None = None) -> dict:
    return json.loads(server.kubectl("get", "pod", name, "-o", "json", kubeconfig=kubeconfig).stdout)


def _ready(server: LKS, name: str) -> dict:
    def check():
        pod = _pod(server, name)
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
        return pod if ok else None
    return wait_until(check, what=f"pod {name} ready")


def _output(server: LKS, name: str, kubeconfig: Path | None = None) -> str:
    wait_until(lambda: _pod(server, name, kubeconfig)["status"].get("phase") in ("Succeeded", "Failed"),
               what=f"pod {name} done")
    return server.kubectl("logs", name, kubeconfig=kubeconfig).stdout


def _web(server: LKS, name: str, node: str) -> dict:
    _run(server, name, node, ["python3", "-c", SERVE], restart="Always",
         containers=[{"name": "main", "image": "python", "command": ["python3", "-c", SERVE],
                      "ports": [{"containerPort": 80}],
                      "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}])
    return _ready(server, name)


@pytest.fixture(scope="module")
def webs(server: LKS) -> dict[str, str]:
    """Two servers on port 80 of one node: name -> pod IP."""
    node = _nodes(server)[0]
    return {name: _web(server, name, node)["status"]["podIP"] for name in ("web-a", "web-b")}


def test_two_pods_on_port_80_side_by_side_reached_by_pod_ip_across_nodes(server: LKS, webs: dict[str, str]):
    a, b = webs["web-a"], webs["web-b"]
    assert a != b and a.startswith("10.244.") and b.startswith("10.244.")
    _run(server, "client", _nodes(server)[1], ["python3", "-c", FETCH, a, b])
    assert _output(server, "client").splitlines() == [f"{a} web-a", f"{b} web-b"]


def test_a_pod_of_another_cluster_cannot_reach_them(server: LKS, webs: dict[str, str]):
    node = _nodes(server, server.other, pool="nodepool1")[0]
    _run(server, "stranger", node, ["python3", "-c", FETCH, *webs.values()], kubeconfig=server.other)
    out = _output(server, "stranger", server.other).splitlines()
    assert [line.split()[:2] for line in out] == [[ip, "unreachable"] for ip in webs.values()]


def test_pod_sees_its_own_address_and_kubelets_resolv_conf_and_hosts(server: LKS):
    script = "ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf /etc/hosts"
    _run(server, "files", _nodes(server)[0], ["sh", "-c", script], hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo", "bar"]}],
         dnsConfig={"options": [{"name": "timeout", "value": "2"}]})
    out = _output(server, "files")
    ip = _pod(server, "files")["status"]["podIP"]
    assert f"inet {ip}/24" in out
    assert "default via 10.244." in out
    assert ("search default.svc.cluster.local svc.cluster.local cluster.local" in out
            and "nameserver 10.0.0.10\noptions ndots:5 timeout:2\n" in out)
    assert "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n" in out
    assert f"{ip}\tfiles\n" in out and "# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n" in out


def test_cluster_dns_answers_inside_the_pod(server: LKS):
    script = "import socket; print(socket.gethostbyname('kubernetes.default'))"  # through the search path
    _run(server, "resolver", _nodes(server)[0], ["python3", "-c", script])
    ip = json.loads(server.kubectl("get", "service", "kubernetes", "-o", "json").stdout)["spec"]["clusterIP"]
    assert _output(server, "resolver").strip() == ip


def test_the_kubeconfig_endpoint_is_reachable_from_a_pod(server: LKS):
    script = ("import ssl, sys, urllib.request\n"
              "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
              "print(urllib.request.urlopen(sys.argv[1] + '/readyz', context=ctx, timeout=5).read().decode())\n")
    _run(server, "endpoint", _nodes(server)[0], ["python3", "-c", script, server.endpoint])
    assert _output(server, "endpoint").strip() == "ok"


def test_host_network_pod_keeps_the_hosts_network(server: LKS):
    _run(server, "hostnet", _nodes(server)[0], ["readlink", "/proc/self/ns/net"], hostNetwork=True)
    assert _output(server, "hostnet").strip() == os.readlink("/proc/self/ns/net")
    status = _pod(server, "hostnet")["status"]
    assert status["podIP"] == status["hostIP"]


def test_node_says_its_pods_get_namespaces(server: LKS):
    out = server.kubectl("describe", "node", _nodes(server)[0]).stdout
    assert "lks.dev/pod-network: namespaces" in out


def test_a_deleted_pods_namespace_goes(server: LKS):
    _run(server, "brief", _nodes(server)[0], ["sleep", "600"], restart="Always")
    uid = _ready(server, "brief")["metadata"]["uid"]
    assert [n for n in netns.listed("lks-") if n.endswith(uid)]
    server.kubectl("delete", "pod", "brief", "--wait")
    wait_until(lambda: not [n for n in netns.listed("lks-") if n.endswith(uid)], what="pod namespace removed")


def test_after_kill_9_a_restart_sweeps_and_pods_get_their_network_again(server: LKS, webs: dict[str, str]):
    before = set(_ours(server.home))
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.log.close()
    server.start()
    # the killed service's namespaces were swept: the pods run in new ones, with their addresses
    for name, ip in webs.items():
        wait_until(lambda name=name: _pod(server, name)["status"]["containerStatuses"][0]["restartCount"] >= 1
                   and _ready(server, name), what=f"{name} restarted")
        assert _ready(server, name)["status"]["podIP"] == ip
    server.kubectl("delete", "pod", "client", "--wait")
    _run(server, "client", _nodes(server)[1], ["python3", "-c", FETCH, *webs.values()])
    assert _output(server, "client").splitlines() == [f"{ip} {name}" for name, ip in webs.items()]
    live = {p["metadata"]["uid"] for p in json.loads(server.kubectl("get", "pods", "-o", "json").stdout)["items"]
            if not p["spec"].get("hostNetwork")}
    now = set(_ours(server.home))
    pods = {n for n in now if any(n.endswith(uid) for uid in live)}
    assert len(now - pods) == 2  # the two clusters' namespaces, and no pod's that is gone
    assert before  # there was something to sweep


def _bridges(server: LKS) -> int:
    """The node bridges of both clusters (in the clusters' own namespaces)."""
    clusters = [n for n in _ours(server.home) if n.count("-") == 1]
    out = "".join(subprocess.run(["ip", "-n", n, "-o", "link", "show", "type", "bridge"], capture_output=True,
                                 text=True).stdout for n in clusters)
    return len(out.splitlines())


def test_a_node_scaled_away_takes_its_bridge(server: LKS):
    before = _bridges(server)
    assert before >= 2  # both Process nodes of demo run pods (and so have their bridges)
    lks_json(server, "aks", "nodepool", "scale", "-g", "demo", "--cluster-name", "demo", "-n", POOL,
             "--node-count", "1")
    wait_until(lambda: len(_nodes(server)) == 1, what="one node left")
    wait_until(lambda: _bridges(server) == before - 1, what="the bridge gone")


def test_nothing_left_after_the_service_stops(server: LKS):
    assert _ours(server.home)
    server.stop()
    assert _ours(server.home) == []
    assert "lks" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
