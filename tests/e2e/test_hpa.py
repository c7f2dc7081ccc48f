"""The HorizontalPodAutoscaler end to end with kubectl against a real `lks up`: `kubectl autoscale`
on a Deployment of simulated pods whose usage annotation says 150m of their 100m request scales
it to its maximum at the first look (one 15 s sync period after the HPA is made, as upstream's),
`kubectl get hpa` shows `cpu: 150%/50%`, and the HPA's conditions and Events say why; an HPA on
a Deployment of Process pods that really burn cpu for a while scales it up, and back down once
they are idle and its (short) scale-down stabilization window has passed."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import LKS, wait_until, with_process_pool

POOL = "procs"
# about a fifth of a core for 25 s, then idle: light on a shared machine, 400 % of a 50m request
BURN = """import time
end = time.time() + 25
while time.time() < end:
    t = time.time()
    while time.time() - t < 0.02:
        pass
    time.sleep(0.08)
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-hpa-home"), POOL)
    yield s
    s.stop()


def _deployment(name: str = "web", pool: str = "nodepool1", container: dict | None = None,
                notes: dict | None = None) -> dict:
    container = container or {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"lks.dev/simulate-cpu": "150m"} if notes is None else notes},
                "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": pool},
                         "terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def test_autoscale_a_deployment_on_cpu(server: LKS) -> None:
    server.kubectl("apply", "-f", "-", input=json.dumps(_deployment()))
    server.kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=2")

    def scaled() -> bool:
        got = json.loads(server.kubectl("get", "deployment", "web", "-o", "json").stdout)
        return got["spec"]["replicas"] == 2

    wait_until(scaled, timeout=60, what="the Deployment at the HPA's maximum")

    def shown() -> list[str] | None:
        out = server.kubectl("get", "hpa", "web", "--no-headers").stdout.split()
        return out if out[2:4] == ["cpu:", "150%/50%"] else None

    row = wait_until(shown, timeout=60, what="kubectl get hpa with the current utilization")
    assert row[:2] == ["web", "Deployment/web"] and row[4:6] == ["1", "2"]
    hpa = json.loads(server.kubectl("get", "hpa.v2.autoscaling", "web", "-o", "json").stdout)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in hpa["status"]["conditions"]}
    assert conditions["ScalingActive"] == ("True", "ValidMetricFound")
    assert conditions["ScalingLimited"] == ("True", "TooManyReplicas")
    events = json.loads(server.kubectl("get", "events", "--field-selector", "involvedObject.name=web,"
                                       "involvedObject.kind=HorizontalPodAutoscaler", "-o", "json").stdout)["items"]
    assert [e["message"] for e in events if e["reason"] == "SuccessfulRescale"] == [
        "New size: 2; reason: cpu resource utilization (percentage of request) above target"]
    described = server.kubectl("describe", "hpa", "web").stdout
    assert "150% (150m) / 50%" in described and "TooManyReplicas" in described
    assert "New size: 2; reason: cpu resource utilization (percentage of request) above target" in described


def test_process_pods_that_burn_cpu_scale_up_and_back_down(server: LKS) -> None:
    container = {"name": "burn", "image": "python", "command": [sys.executable, "-c", BURN],
                 "resources": {"requests": {"cpu": "50m"}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(_deployment("burn", POOL, container, {})))
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "burn", "namespace": "default"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
                    "minReplicas": 1, "maxReplicas": 2,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(hpa))

    def replicas() -> int:
        return json.loads(server.kubectl("get", "deployment", "burn", "-o", "json").stdout)["spec"]["replicas"]

    wait_until(lambda: replicas() == 2, timeout=60, what="the burning Deployment scaled up")
    wait_until(lambda: replicas() == 1, timeout=150, interval=1, what="the idle Deployment scaled back down")
    events = json.loads(server.kubectl("get", "events", "--field-selector", "involvedObject.name=burn,"
                                       "involvedObject.kind=HorizontalPodAutoscaler", "-o", "json").stdout)["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert rescales[0] == "New size: 2; reason: cpu resource utilization (percentage of request) above target"
    assert rescales[-1] == "New size: 1; reason: All metrics below target"
