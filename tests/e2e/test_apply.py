"""kubectl with default flags: apply (client- and server-side), re-apply, prune, replace, patch of
each type, diff, and the Python client's dynamic client; defaults as upstream fills them."""

from __future__ import annotations

import json

from kubernetes import dynamic

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web, set: demo}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports: [{{containerPort: 80}}]
"""

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels: {{set: demo}}
data: {{k: "{value}"}}
"""


def _get(kubectl, ns: str, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-n", ns, "-o", "json").stdout)


def test_client_side_apply_reapply_and_defaults(kubectl, namespace):
    out = kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY.format(replicas=2, image="nginx:1.27"))
    assert "deployment.apps/web created" in out.stdout
    dep = _get(kubectl, namespace, "deploy", "web")
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    spec = dep["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always" and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["schedulerName"] == "default-scheduler" and pod["terminationGracePeriodSeconds"] == 30
    c = pod["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent" and c["terminationMessagePath"] == "/dev/termination-log"
    assert c["ports"][0]["protocol"] == "TCP"
    out = kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY.format(replicas=3, image="nginx:1.28"))
    assert "deployment.apps/web configured" in out.stdout
    dep = _get(kubectl, namespace, "deploy", "web")
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert dep["metadata"]["generation"] == 2
    out = kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY.format(replicas=3, image="nginx:1.28"))
    assert "deployment.apps/web unchanged" in out.stdout


def test_apply_prune(kubectl, namespace):
    both = CM.format(name="a", value="1") + "---\n" + CM.format(name="b", value="2")
    kubectl("apply", "-n", namespace, "-l", "set=demo", "-f", "-", input=both)
    out = kubectl("apply", "-n", namespace, "-l", "set=demo", "--prune", "-f", "-", input=CM.format(name="a", value="1"))
    assert "configmap/b pruned" in out.stdout
    names = kubectl("get", "cm", "-n", namespace, "-l", "set=demo", "-o", "name").stdout.split()
    assert names == ["configmap/a"]


def test_server_side_apply_and_conflicts(kubectl, namespace):
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=DEPLOY.format(replicas=2, image="nginx"))
    assert "serverside-applied" in out.stdout
    dep = _get(kubectl, namespace, "deploy", "web", "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    kubectl("scale", "deploy", "web", "--replicas=5", "-n", namespace)
    res = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", check=False,
                  input=DEPLOY.format(replicas=2, image="nginx"))
    assert res.returncode != 0
    assert "conflict" in res.stderr.lower() and ".spec.replicas" in res.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-",
            input=DEPLOY.format(replicas=2, image="nginx"))
    assert _get(kubectl, namespace, "deploy", "web")["spec"]["replicas"] == 2


def test_replace_patch_types_and_diff(kubectl, namespace):
    kubectl("create", "-n", namespace, "-f", "-", input=CM.format(name="p", value="1"))
    cm = _get(kubectl, namespace, "cm", "p")
    cm["data"]["k"] = "2"
    kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(cm))
    kubectl("patch", "cm", "p", "-n", namespace, "-p", '{"data":{"s":"strategic"}}')
    kubectl("patch", "cm", "p", "-n", namespace, "--type=merge", "-p", '{"data":{"m":"merge"}}')
    kubectl("patch", "cm", "p", "-n", namespace, "--type=json", "-p", '[{"op":"add","path":"/data/j","value":"json"}]')
    assert _get(kubectl, namespace, "cm", "p")["data"] == {"k": "2", "s": "strategic", "m": "merge", "j": "json"}
    res = kubectl("diff", "-n", namespace, "-f", "-", check=False, input=CM.format(name="p", value="3"))
    assert res.returncode == 1 and '+  k: "3"' in res.stdout
    assert _get(kubectl, namespace, "cm", "p")["data"]["k"] == "2"  # diff is a dry run


def test_strict_validation_rejects_unknown_fields(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "-f", "-", check=False,
                  input=CM.format(name="u", value="1") + "bogus: true\n")
    assert res.returncode != 0 and 'unknown field "bogus"' in res.stderr
    res = kubectl("create", "-n", namespace, "-f", "-", "--validate=warn",
                  input=CM.format(name="u", value="1") + "bogus: true\n")
    assert 'unknown field "bogus"' in res.stderr and "configmap/u created" in res.stdout


def test_dynamic_client(api, namespace):
    dyn = dynamic.DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dyn"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    made = deployments.create(body=body, namespace=namespace)
    assert made.spec.replicas == 1
    got = deployments.get(name="dyn", namespace=namespace)
    assert got.metadata.uid == made.metadata.uid
    listed = deployments.get(namespace=namespace)
    assert [i.metadata.name for i in listed.items] == ["dyn"]
    applied = deployments.server_side_apply(body={**body, "spec": {**body["spec"], "replicas": 3}},
                                            namespace=namespace, field_manager="tests", force_conflicts=True)
    assert applied.spec.replicas == 3
    deployments.delete(name="dyn", namespace=namespace)
