"""The cluster autoscaler at work, with real clients against `lks up --time-scale 60` (the
management plane's clock, which the autoscaler's scan interval, delays and unneeded time read,
runs a minute a second): an autoscaled pool (1..5, added with the Azure SDK) grows to its max in
one scan for 40 pods that fit no node (kubectl), the ARM pool shows the count, the Events and the
status ConfigMap say so, and once the Deployment is scaled to zero the pool shrinks to minCount."""

from __future__ import annotations

import json
import re

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedClusterPropertiesAutoScalerProfile

from .conftest import LKS, StaticToken, wait_until

LOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: load, namespace: default}
spec:
  replicas: 40
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
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-ca"), "--time-scale", "60")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aks(server):
    config = json.loads((server.home / "config.json").read_text())
    client = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                    base_url=config["endpoint"], connection_verify=config["ca_file"])
    mc = client.managed_clusters.get("demo", "demo")
    mc.auto_scaler_profile = ManagedClusterPropertiesAutoScalerProfile(
        scan_interval="10s", scale_down_delay_after_add="0m", scale_down_unneeded_time="1m",
        new_pod_scale_up_delay="60s")  # a second: the Deployment's 40 pods are all pending by then
    client.managed_clusters.begin_create_or_update("demo", "demo", mc).result()
    client.agent_pools.begin_create_or_update("demo", "demo", "burst", AgentPool(
        count=1, vm_size="Standard_DS2_v2", mode="User", os_type="Linux", enable_auto_scaling=True,
        min_count=1, max_count=5, node_taints=["workload=burst:NoSchedule"])).result()
    return client


def _nodes(server: LKS) -> list[str]:
    out = server.kubectl("get", "nodes", "-l", "kubernetes.azure.com/agentpool=burst", "-o", "name").stdout
    return out.split()


def _events(server: LKS, reason: str) -> list[dict]:
    out = server.kubectl("get", "events", "-A", "--field-selector", f"reason={reason}", "-o", "json").stdout
    return json.loads(out)["items"]


def test_pool_grows_for_pending_pods_and_shrinks_back_to_min(server, aks):
    server.kubectl("apply", "-f", "-", input=LOAD)
    wait_until(lambda: aks.agent_pools.get("demo", "demo", "burst").count == 5, timeout=60,
               what="the pool grown to maxCount")
    wait_until(lambda: len(_nodes(server)) == 5, timeout=60, what="five burst nodes")
    vmss = _nodes(server)[0].removeprefix("node/")[:-6]
    # one scale-up 1->5 when the scan sees all 40 pending; on a loaded machine the scheduler may
    # mark them Unschedulable across two scans, and the pool then grows in steps (as upstream's)
    triggered = wait_until(lambda: _events(server, "TriggeredScaleUp"), what="TriggeredScaleUp")
    pattern = rf"pod triggered scale-up: \[\{{{vmss} (\d+)->(\d+) \(max: 5\)\}}\]"
    matches = [re.fullmatch(pattern, e["message"]) for e in triggered]
    assert all(matches), [e["message"] for e in triggered]
    steps = sorted({tuple(map(int, m.groups())) for m in matches})
    assert steps[0][0] == 1 and steps[-1][1] == 5
    assert all(a[1] == b[0] for a, b in zip(steps, steps[1:]))
    status = server.kubectl("get", "configmap", "cluster-autoscaler-status", "-n", "kube-system",
                            "-o", "jsonpath={.data.status}").stdout
    assert f"- name: {vmss}" in status and "maxSize: 5" in status and "minSize: 1" in status
    # five nodes of three 500m pods each: 15 run, the rest wait, and say why
    wait_until(lambda: len(server.kubectl("get", "pods", "-l", "app=load", "--field-selector",
                                          "status.phase=Running", "-o", "name").stdout.split()) == 15,
               timeout=60, what="15 pods running")
    refused = wait_until(lambda: _events(server, "NotTriggerScaleUp"), what="NotTriggerScaleUp")
    assert refused[0]["message"] == "pod didn't trigger scale-up: 1 max node group size reached"

    server.kubectl("scale", "deployment", "load", "--replicas=0")
    wait_until(lambda: aks.agent_pools.get("demo", "demo", "burst").count == 1, timeout=90,
               what="the pool back at minCount")
    wait_until(lambda: len(_nodes(server)) == 1, timeout=60, what="one burst node")
    marked = [e for e in _events(server, "ScaleDown") if e["message"] == "marked the node as toBeDeleted/unschedulable"]
    assert len(marked) == 4
