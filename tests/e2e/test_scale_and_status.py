"""The scale and status subresources through kubectl and the Python client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def test_kubectl_scale_deployment(kubectl, namespace):
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", namespace)
    kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
    dep = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["generation"] == 2
    kubectl("scale", "deployment", "web", "--current-replicas=5", "--replicas=1", "-n", namespace)
    res = kubectl("scale", "deployment", "web", "--current-replicas=5", "--replicas=2", "-n", namespace, check=False)
    assert res.returncode != 0
    scale = json.loads(kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    assert scale["status"]["selector"] == "app=web"


def test_scale_through_python_client(api, namespace):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(namespace, {
        "metadata": {"name": "rs"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    })
    s = apps.patch_namespaced_replica_set_scale("rs", namespace, {"spec": {"replicas": 4}})
    assert s.spec.replicas == 4
    assert apps.read_namespaced_replica_set("rs", namespace).spec.replicas == 4
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_replica_set_scale("rs", namespace, {"spec": {"replicas": -1}})
    assert err.value.status == 422


def test_status_subresource_ignores_spec_and_main_ignores_status(api, namespace):
    # an HPA: a type with a status subresource and no controller in lks yet to race with
    hpa = client.AutoscalingV2Api(api)
    made = hpa.create_namespaced_horizontal_pod_autoscaler(namespace, {
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 5},
        "status": {"currentReplicas": 7, "desiredReplicas": 7},
    })
    assert not made.status or not made.status.current_replicas
    patched = hpa.patch_namespaced_horizontal_pod_autoscaler_status(
        "h", namespace, {"spec": {"maxReplicas": 9}, "status": {"currentReplicas": 3, "desiredReplicas": 3}})
    assert patched.status.current_replicas == 3 and patched.spec.max_replicas == 5
    assert patched.metadata.generation == 1
    again = hpa.patch_namespaced_horizontal_pod_autoscaler(
        "h", namespace, {"status": {"currentReplicas": 0}, "spec": {"maxReplicas": 6}})
    assert again.status.current_replicas == 3 and again.spec.max_replicas == 6 and again.metadata.generation == 2
