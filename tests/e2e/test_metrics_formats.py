"""The metrics API's two wire formats with real clients: kubectl (client-go asks for protobuf
first) gets `application/vnd.kubernetes.protobuf` as from metrics-server and shows the figures
the annotations steer, while the `kubernetes` Python client gets JSON with the same objects."""

from __future__ import annotations

import json

from kubernetes import client as k8s_client

from .conftest import LKS, wait_until


def _pods(ns: str) -> dict:
    notes = {"lks.dev/simulate-cpu": "300m", "lks.dev/simulate-memory": "96Mi"}
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "tier": "web"}, "annotations": notes},
             "spec": {"terminationGracePeriodSeconds": 1,
                      "containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "nginx"}]}}
            for name in ("m-a", "m-b")]
    return {"apiVersion": "v1", "kind": "List", "items": pods}


def test_kubectl_gets_protobuf_and_the_python_client_json(lks: LKS, api: k8s_client.ApiClient, namespace: str) -> None:
    lks.kubectl("apply", "-f", "-", input=json.dumps(_pods(namespace)))
    lks.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/m-a", "pod/m-b", "--timeout=60s")

    def listed() -> str | None:
        res = lks.kubectl("top", "pods", "-n", namespace, "-v=8", check=False)
        return res if res.returncode == 0 and len(res.stdout.strip().splitlines()) == 3 else None

    res = wait_until(listed, timeout=30, what="metrics of both pods")
    assert [line.split() for line in res.stdout.strip().splitlines()[1:]] == [["m-a", "600m", "192Mi"],
                                                                               ["m-b", "600m", "192Mi"]]
    assert "Content-Type: application/vnd.kubernetes.protobuf" in res.stderr  # kubectl decoded protobuf
    containers = lks.kubectl("top", "pod", "m-b", "-n", namespace, "--containers").stdout
    assert [line.split() for line in containers.strip().splitlines()[1:]] == [["m-b", "app", "300m", "96Mi"],
                                                                              ["m-b", "side", "300m", "96Mi"]]

    got = k8s_client.CustomObjectsApi(api).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector="tier=web")
    assert got["kind"] == "PodMetricsList" and [i["metadata"]["name"] for i in got["items"]] == ["m-a", "m-b"]
    item = got["items"][0]
    assert item["metadata"]["labels"] == {"app": "m-a", "tier": "web"} and item["window"] == "15s"
    assert item["containers"] == [{"name": "app", "usage": {"cpu": "300m", "memory": "96Mi"}},
                                  {"name": "side", "usage": {"cpu": "300m", "memory": "96Mi"}}]
