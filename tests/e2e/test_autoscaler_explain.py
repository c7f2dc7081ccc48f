"""The autoscaler explains itself (an lks extension): `GET …/managedClusters/{name}/autoscalerStatus/default`
through the Azure SDK's pipeline and `lks aks autoscaler explain` against `lks up --time-scale 60`
(scans every 10 s of the plane's clock, a sixth of a second). Per pending pod each pool's reasons
in the scheduler's words, per node why it stays; a pool's own utilization threshold (set with
`lks aks nodepool update --cluster-autoscaler-profile`) changes its node's verdict."""

from __future__ import annotations

import json
import re

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool

from .conftest import LKS, StaticToken, lks_cli, lks_json, wait_until

API = "api-version=2026-08-01"
LOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: load, namespace: default}
spec:
  replicas: 5
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec:
      nodeSelector: {kubernetes.azure.com/agentpool: burst}
      tolerations: [{key: workload, operator: Equal, value: burst, effect: NoSchedule}]
      containers:
      - name: c
        image: nginx
        resources: {requests: {cpu: 500m}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: huge, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: huge}}
  template:
    metadata: {labels: {app: huge}}
    spec:
      containers:
      - name: c
        image: nginx
        resources: {requests: {cpu: "64"}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-explain"), "--time-scale", "60")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aks(server):
    config = json.loads((server.home / "config.json").read_text())
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                  base_url=config["endpoint"], connection_verify=config["ca_file"])


def _status(aks: ContainerServiceClient, cluster: str = "demo") -> tuple[int, dict]:
    path = (f"/subscriptions/{aks._config.subscription_id}/resourceGroups/demo/providers/"
            f"Microsoft.ContainerService/managedClusters/{cluster}/autoscalerStatus/default?{API}")
    response = aks.send_request(HttpRequest("GET", path))
    return response.status_code, response.json()


def test_a_cluster_without_autoscaled_pools_says_so(server, aks):
    status, body = _status(aks)
    assert status == 200
    assert body["name"] == "default" and body["type"] == "Microsoft.ContainerService/managedClusters/autoscalerStatus"
    assert body["id"].lower().endswith("/managedclusters/demo/autoscalerstatus/default")
    assert body["properties"]["state"] == "NotAutoscaled"
    status, body = _status(aks, "missing")
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    table = lks_cli(server, "aks", "autoscaler", "explain", "-g", "demo", "-n", "demo", "-o", "table")
    assert table.returncode == 0, table.stderr
    assert "NotAutoscaled" in table.stdout and "No agent pool of the cluster has the cluster autoscaler" in table.stdout


@pytest.fixture(scope="module")
def loaded(server, aks):
    """Two autoscaled pools: `burst` (tainted, at its max of 1) and `big` (0..2); five pods for
    burst (three fit its node) and one asking 64 CPUs, which no pool's node has."""
    aks.agent_pools.begin_create_or_update("demo", "demo", "burst", AgentPool(
        count=1, vm_size="Standard_DS2_v2", mode="User", os_type="Linux", enable_auto_scaling=True,
        min_count=1, max_count=1, node_taints=["workload=burst:NoSchedule"])).result()
    aks.agent_pools.begin_create_or_update("demo", "demo", "big", AgentPool(
        count=0, vm_size="Standard_DS2_v2", mode="User", os_type="Linux", enable_auto_scaling=True,
        min_count=0, max_count=2)).result()
    server.kubectl("apply", "-f", "-", input=LOAD)
    return wait_until(lambda: _explained(aks, pending=3), timeout=60, what="a scan that saw the three pending pods")


def _explained(aks: ContainerServiceClient, *, pending: int) -> dict | None:
    _, body = _status(aks)
    props = body["properties"]
    return props if props["state"] == "Scanned" and len(props["pendingPods"]) == pending and props["nodes"] else None


def test_pending_pods_say_why_per_pool(loaded):
    pods = {p["name"].rsplit("-", 2)[0]: p for p in loaded["pendingPods"]}
    assert set(pods) == {"load", "huge"} and len(loaded["pendingPods"]) == 3
    huge = pods["huge"]
    assert huge["namespace"] == "default"
    assert huge["nodePools"] == [{"name": "big", "reasons": ["Insufficient cpu"]},
                                 {"name": "burst", "reasons": ["max node group size reached"]}]
    assert huge["message"] == "pod didn't trigger scale-up: 1 Insufficient cpu, 1 max node group size reached"
    load = pods["load"]
    assert load["nodePools"] == [{"name": "big", "reasons": ["node(s) didn't match Pod's node affinity/selector"]},
                                 {"name": "burst", "reasons": ["max node group size reached"]}]


def test_nodes_say_why_they_stay(loaded):
    (node,) = [n for n in loaded["nodes"] if n["nodePool"] == "burst"]
    assert node["reason"] == "NotUnderutilized" and node["removable"] is False
    assert re.fullmatch(r"cpu requested \(\d+(\.\d+)?% of allocatable\) is above the scale-down utilization "
                        r"threshold \(50%\)", node["message"]), node["message"]


def test_cli_explains_in_a_table_and_json(server, loaded):
    shown = lks_json(server, "aks", "autoscaler", "explain", "-g", "demo", "-n", "demo")
    assert shown["state"] == "Scanned" and shown["resourceGroup"] == "demo"
    assert {p["name"] for p in shown["pendingPods"]} == {p["name"] for p in loaded["pendingPods"]}
    table = lks_cli(server, "aks", "autoscaler", "explain", "-g", "demo", "-n", "demo", "-o", "table")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["Kind", "Name", "NodePool", "Reason", "Message"]
    assert any(line.startswith("Pod ") and "huge-" in line and "Insufficient cpu" in line for line in lines)
    assert any(line.startswith("Node ") and "NotUnderutilized" in line for line in lines)


def test_a_pools_own_threshold_changes_its_nodes_verdict(server, aks, loaded):
    """Three 500m pods of 1900m (79 %, DaemonSet pods aside): above the cluster's 50 % but below the
    pool's 95 %, so the node is a candidate, and what keeps it is that its pods fit no other node."""
    lks_json(server, "aks", "nodepool", "update", "-g", "demo", "--cluster-name", "demo", "-n", "burst",
             "--cluster-autoscaler-profile", "scale-down-utilization-threshold=0.95,ignore-daemonsets-utilization=true")

    def verdict() -> dict | None:
        _, body = _status(aks)
        nodes = [n for n in body["properties"].get("nodes") or () if n["nodePool"] == "burst"]
        return nodes[0] if nodes and nodes[0]["reason"] == "NoPlaceToMovePods" else None

    node = wait_until(verdict, timeout=60, what="the burst node judged against the pool's threshold")
    assert node["utilization"] < 0.8 and node["removable"] is False
    assert node["blockingPod"].startswith("default/load-")
    assert node["message"] == f"no place to move {node['blockingPod']}: it fits no other node"
