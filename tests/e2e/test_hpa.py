"""The HorizontalPodAutoscaler end to end with kubectl against a real `lks up`: `kubectl autoscale`
on a Deployment of simulated pods whose usage annotation says 150m of their 100m request scales
it to its maximum at the first look (one 15 s sync period after the HPA is made, as upstream's),
`kubectl get hpa` shows `cpu: 150%/50%`, and the HPA's conditions and Events say why."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-hpa-home"))
    s.start()
    yield s
    s.stop()


def _deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"lks.dev/simulate-cpu": "150m"}},
                "spec": {"containers": [{"name": "app", "image": "nginx",
                                         "resources": {"requests": {"cpu": "100m"}}}]}}}}


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
    events = json.loads(server.kubectl("get", "events", "--field-selector",
                                       "involvedObject.kind=HorizontalPodAutoscaler", "-o", "json").stdout)["items"]
    assert [e["message"] for e in events if e["reason"] == "SuccessfulRescale"] == [
        "New size: 2; reason: cpu resource utilization (percentage of request) above target"]
