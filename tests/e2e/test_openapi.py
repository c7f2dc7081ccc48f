"""OpenAPI end to end: `kubectl explain` (v3, and v2 over protobuf) and `kubectl create -f` with
the default `--validate=strict`, which asks /openapi/v3 whether the server validates fields."""

from __future__ import annotations

import json

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: "25%"}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 500m, memory: 128Mi}
"""


def test_explain_a_field(kubectl):
    out = kubectl("explain", "pods.spec.containers").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "A single application container that you want to run within a pod." in out
    assert "  image\t<string>" in out and "  ports\t<[]ContainerPort>" in out
    assert "  resources\t<ResourceRequirements>" in out


def test_explain_a_kind(kubectl):
    out = kubectl("explain", "deployments", "--api-version=apps/v1").stdout
    assert "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n" in out
    assert "Deployment enables declarative updates for Pods and ReplicaSets." in out
    for field in ("apiVersion\t<string>", "metadata\t<ObjectMeta>", "spec\t<DeploymentSpec>",
                  "status\t<DeploymentStatus>"):
        assert f"  {field}" in out


def test_explain_recursive_and_special_types(kubectl):
    out = kubectl("explain", "deployment", "--recursive").stdout
    assert "      rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "        maxSurge\t<IntOrString>" in out
    assert "    selector\t<LabelSelector> -required-" in out
    out = kubectl("explain", "pod.spec.containers.resources.limits").stdout
    assert "FIELD: limits <map[string]Quantity>" in out


def test_explain_over_openapi_v2_protobuf(kubectl):
    # the v2 renderer fetches /openapi/v2 accepting only the protobuf encoding
    out = kubectl("explain", "pods.spec.containers", "--output=plaintext-openapiv2").stdout
    assert "RESOURCE: containers <[]Object>" in out
    assert "List of containers belonging to the pod." in out


def test_create_with_strict_validation_uses_openapi_v3(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "-f", "-", "-v=6", input=CONFIGMAP)
    assert "configmap/settings created" in res.stdout
    assert "/openapi/v3/api/v1?hash=" in res.stderr  # kubectl checked PATCH's parameters there
    assert "fieldValidation=Strict" in res.stderr  # and so left validation to the server
    assert "/openapi/v2" not in res.stderr
    got = json.loads(kubectl("get", "cm", "settings", "-n", namespace, "-o", "json").stdout)
    assert got["data"] == {"color": "blue"}


def test_create_deployment_with_strict_validation(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    assert "deployment.apps/web created" in res.stdout
    got = json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 2
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


LIST = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed}
  data: {x: z}
"""


def test_lists_are_validated_client_side_with_openapi_v2(kubectl, namespace):
    """kubectl cannot ask the server to validate a v1 List, so it validates each item itself
    against /openapi/v2, which client-go only accepts in its protobuf encoding."""
    res = kubectl("create", "-n", namespace, "-f", "-", "-v=6", input=LIST)
    assert "configmap/listed created" in res.stdout and "/openapi/v2" in res.stderr
    res = kubectl("create", "-n", namespace, "-f", "-", check=False,
                  input=LIST.replace("listed", "bad").replace("data: {x: z}", "data: {x: z}\n  bogus: 1"))
    assert res.returncode != 0
    assert 'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' in res.stderr


def test_raw_documents(kubectl, lks):
    root = json.loads(kubectl("get", "--raw", "/openapi/v3").stdout)
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/clusters/") and "/openapi/v3/apis/apps/v1?hash=" in url
    res = kubectl("get", "--raw", "/openapi/v3/apis/nothing/v1", check=False)
    assert res.returncode != 0 and "the server could not find the requested resource" in res.stderr
    v2 = json.loads(kubectl("get", "--raw", "/openapi/v2").stdout)
    assert v2["swagger"] == "2.0" and "io.k8s.api.core.v1.Pod" in v2["definitions"]


WIDGET_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.openapi.lks.dev
spec:
  group: openapi.lks.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              color: {type: string, description: The colour of the widget.}
              size: {type: integer}
"""

WIDGET = """apiVersion: openapi.lks.dev/v1
kind: Widget
metadata:
  name: w
spec: {color: %s, size: 3}
"""


def test_custom_resources_are_explained_and_validated(kubectl, namespace):
    kubectl("create", "-f", "-", input=WIDGET_CRD)
    try:
        kubectl("wait", "--for=condition=Established", "crd/widgets.openapi.lks.dev", "--timeout=20s")
        out = kubectl("explain", "widgets.spec").stdout
        assert "GROUP:      openapi.lks.dev\nKIND:       Widget\nVERSION:    v1" in out
        assert "What the widget should be." in out and "The colour of the widget." in out
        assert "  color\t<string>" in out and "  size\t<integer>" in out
        res = kubectl("create", "-n", namespace, "-f", "-", "-v=6", input=WIDGET % "red")
        assert "widget.openapi.lks.dev/w created" in res.stdout
        assert "/openapi/v3/apis/openapi.lks.dev/v1?hash=" in res.stderr and "fieldValidation=Strict" in res.stderr
        # client-side apply: no strategic merge patch for custom resources, so a JSON merge patch
        kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % "red")
        kubectl("apply", "-n", namespace, "-f", "-", input=WIDGET % "blue")
        got = json.loads(kubectl("get", "widget", "w", "-n", namespace, "-o", "json").stdout)
        assert got["spec"] == {"color": "blue", "size": 3}
    finally:
        kubectl("delete", "crd", "widgets.openapi.lks.dev", "--wait=false", check=False)
