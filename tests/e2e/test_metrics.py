"""The metrics API end to end with kubectl: `kubectl top pods|nodes` on the demo cluster, whose
simulated pods use what their `lks.dev/simulate-*` annotations say (`--containers`, `-A`,
`--sort-by`), a Process pod that burns cpu shows its real usage, and reading metrics takes the
RBAC that `system:aggregated-metrics-reader` aggregates into `view`."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until, with_process_pool

POOL = "procs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-metrics-home"), POOL)
    yield s
    s.stop()


def _pod(name: str, ns: str, pool: str, containers: list[dict], notes: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}, "annotations": notes or {}},
            "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": pool}, "terminationGracePeriodSeconds": 1,
                     "containers": containers}}


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()[1:]]


@pytest.fixture(scope="module")
def simulated(server: LKS) -> str:
    ns = "metrics"
    server.kubectl("create", "namespace", ns)
    pods = [
        _pod("big", ns, "nodepool1", [{"name": "app", "image": "nginx"}, {"name": "side", "image": "nginx"}],
             {"lks.dev/simulate-cpu": "800m", "lks.dev/simulate-memory": "256Mi",
              "lks.dev/simulate-cpu.side": "200m", "lks.dev/simulate-memory.side": "64Mi"}),
        _pod("small", ns, "nodepool1", [{"name": "app", "image": "nginx"}],
             {"lks.dev/simulate-cpu": "50m", "lks.dev/simulate-memory": "32Mi"}),
    ]
    server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    server.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/big", "pod/small", "--timeout=60s")
    return ns


def test_kubectl_top_pods_shows_the_simulated_usage(server: LKS, simulated: str) -> None:
    out = server.kubectl("top", "pods", "-n", simulated, "--sort-by=cpu").stdout
    assert _rows(out) == [["big", "1000m", "320Mi"], ["small", "50m", "32Mi"]]
    out = server.kubectl("top", "pods", "-n", simulated, "--sort-by=memory", "--containers").stdout
    assert _rows(out) == [["big", "app", "800m", "256Mi"], ["big", "side", "200m", "64Mi"],
                          ["small", "app", "50m", "32Mi"]]
    out = server.kubectl("top", "pod", "small", "-n", simulated).stdout
    assert _rows(out) == [["small", "50m", "32Mi"]]
    out = server.kubectl("top", "pods", "-n", simulated, "-l", "app=big").stdout
    assert [r[0] for r in _rows(out)] == ["big"]
    every = _rows(server.kubectl("top", "pods", "-A").stdout)
    namespaces = {r[0] for r in every}
    assert {simulated, "kube-system"} <= namespaces  # the add-ons' pods use their share of requests
    assert [simulated, "big", "1000m", "320Mi"] in every
    out = server.kubectl("get", "podmetrics", "-n", simulated).stdout  # metrics-server's Table
    assert out.split("\n")[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
    assert _rows(out) == [["big", "1", "320Mi", "15s"], ["small", "50m", "32Mi", "15s"]]
    got = json.loads(server.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{simulated}/pods/big").stdout)
    assert got["kind"] == "PodMetrics" and got["window"] == "15s"
    assert got["containers"][0] == {"name": "app", "usage": {"cpu": "800m", "memory": "256Mi"}}


def test_kubectl_top_nodes_sums_the_pods_and_the_nodes_own(server: LKS, simulated: str) -> None:
    rows = {r[0]: r for r in _rows(server.kubectl("top", "nodes").stdout)}
    nodes = json.loads(server.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert set(rows) == {n["metadata"]["name"] for n in nodes}
    big = json.loads(server.kubectl("get", "pod", "big", "-n", simulated, "-o", "json").stdout)
    row = rows[big["spec"]["nodeName"]]
    assert int(row[1].rstrip("m")) >= 1000 and row[2].endswith("%") and int(row[3].rstrip("Mi")) >= 320
    out = server.kubectl("top", "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}").stdout
    assert len(_rows(out)) == 1


def test_a_process_pod_burning_cpu_shows_its_real_usage(server: LKS) -> None:
    pod = _pod("burn", "default", POOL, [{"name": "main", "image": "busybox",
                                          "command": ["sh", "-c", "while :; do :; done"]}])
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))
    server.kubectl("wait", "--for=condition=Ready", "pod/burn", "--timeout=60s")

    def busy() -> list[str] | None:
        res = server.kubectl("top", "pod", "burn", check=False)
        rows = _rows(res.stdout) if res.returncode == 0 else []
        return rows[0] if rows and int(rows[0][1].rstrip("m")) >= 200 else None  # a shared machine's share of a core

    row = wait_until(busy, timeout=30, what="the burning pod's cpu in kubectl top")
    assert row[0] == "burn" and row[2].endswith("Mi")
    server.kubectl("delete", "pod", "burn", "--wait=true")


def test_reading_metrics_takes_rbac_that_view_aggregates(server: LKS, simulated: str) -> None:
    role = json.loads(server.kubectl("get", "clusterrole", "system:aggregated-metrics-reader", "-o", "json").stdout)
    assert role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    res = server.kubectl("top", "pods", "-n", simulated, "--as=jane", check=False)
    assert res.returncode != 0 and 'cannot list resource "pods" in API group "metrics.k8s.io"' in res.stderr
    server.kubectl("create", "rolebinding", "jane-view", "-n", simulated, "--clusterrole=view", "--user=jane")

    def allowed() -> bool:
        res = server.kubectl("top", "pods", "-n", simulated, "--as=jane", check=False)
        return res.returncode == 0 and "big" in res.stdout

    wait_until(allowed, timeout=30, what="jane reading metrics through view")
    apiservice = json.loads(server.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json").stdout)
    assert apiservice["spec"]["service"] == {"name": "metrics-server", "namespace": "kube-system", "port": 443}
