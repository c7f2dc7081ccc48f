"""Flat Azure CNI pods on Process nodes end to end (`lks.net.podnet`): pods take addresses of the
node subnet (10.224.0.0/16, each node its own block), and a pod on one node reaches a pod on the
other by pod IP, driven by kubectl."""

from __future__ import annotations

import pytest

from lks.net import netns

from .conftest import LKS, lks_json, wait_until
from .test_pod_network import FETCH, SERVE, _nodes, _ours, _output, _pod, _run

pytestmark = pytest.mark.skipif(not netns.supported(), reason="pod network namespaces need root")

GROUP, CLUSTER = "flat-rg", "flat"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-flatcni-home"))
    s.start()
    try:
        lks_json(s, "group", "create", "-n", GROUP, "-l", "westeurope")
        lks_json(s, "aks", "create", "-g", GROUP, "-n", CLUSTER, "--node-count", "2", "--workload-runtime", "Process",
                 "--network-plugin", "azure")
        s.flat = s.home / "flat.kubeconfig"
        lks_json(s, "aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "-f", str(s.flat))
        yield s
    finally:
        s.stop()
        for name in _ours(s.home):
            netns.remove(name)


def test_a_pod_reaches_a_pod_on_another_node_by_pod_ip(server: LKS):
    nodes = _nodes(server, server.flat, pool="nodepool1")
    assert len(nodes) == 2
    _run(server, "web", nodes[0], [], restart="Always", kubeconfig=server.flat,
         containers=[{"name": "main", "image": "python", "command": ["python3", "-c", SERVE],
                      "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}])
    web = wait_until(lambda: _ready_ip(server, "web"), what="pod web ready")
    assert web.startswith("10.224.")
    _run(server, "client", nodes[1], ["python3", "-c", FETCH, web], kubeconfig=server.flat)
    client = _pod(server, "client", server.flat)["status"]["podIP"]
    assert client.startswith("10.224.") and client != web
    assert _output(server, "client", server.flat).splitlines() == [f"{web} web"]


def _ready_ip(server: LKS, name: str) -> str | None:
    pod = _pod(server, name, server.flat)
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
    return pod["status"]["podIP"] if ready else None
