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
    apps = client.AppsV1Api(api)
    dep = apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"replicas": 7},
    })
    assert not dep.status or not dep.status.replicas
    patched = apps.patch_namespaced_deployment_status("d", namespace, {"spec": {"replicas": 9}, "status": {"replicas": 3}})
    assert patched.status.replicas == 3 and patched.spec.replicas == 1
    assert patched.metadata.generation == 1
    again = apps.patch_namespaced_deployment("d", namespace, {"status": {"replicas": 0}, "spec": {"replicas": 2}})
    assert again.status.replicas == 3 and again.spec.replicas == 2 and again.metadata.generation == 2
