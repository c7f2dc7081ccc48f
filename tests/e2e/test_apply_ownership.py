"""Field ownership as kubectl sees it on kube-apiserver: managedFields that clients write
(kubectl's client-side to server-side apply upgrade, `patch --type=json`), managers that share
fields by applying the same values, and server-side apply through /status and /scale."""

from __future__ import annotations

import json

from .conftest import raw

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels: {labels}
data: {data}
"""

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
"""

STATUS = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 7}
status:
  conditions:
  - {type: Audited, status: "True", reason: Checked, message: by an auditor}
"""


def _get(kubectl, ns: str, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-n", ns, "-o", "json", "--show-managed-fields").stdout)


def _owners(obj: dict) -> dict[tuple[str, str, str], dict]:
    return {(m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
            for m in obj["metadata"].get("managedFields") or []}


def _cm(name: str, labels: dict, data: dict) -> str:
    return CM.format(name=name, labels=json.dumps(labels), data=json.dumps(data))


def test_client_side_to_server_side_apply_upgrade(kubectl, namespace):
    for manager in ([], ["--field-manager=deployer"]):
        name = f"mig{len(manager)}"
        kubectl("apply", "-n", namespace, *manager, "-f", "-", input=_cm(name, {"a": "1", "b": "2"}, {"k1": "v1", "k2": "v2"}))
        # kubectl upgrades the client-side entries with a JSON patch of managedFields, then applies:
        # no conflict with its own earlier entry, and what the new configuration leaves out goes
        out = kubectl("apply", "--server-side", "-n", namespace, *manager, "-f", "-",
                      input=_cm(name, {"a": "1"}, {"k1": "v1"}))
        assert "serverside-applied" in out.stdout
        cm = _get(kubectl, namespace, "cm", name)
        assert cm["data"] == {"k1": "v1"} and cm["metadata"]["labels"] == {"a": "1"}
        applier = "deployer" if manager else "kubectl"
        owners = _owners(cm)
        assert owners[(applier, "Apply", "")] == {"f:data": {"f:k1": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}
        assert not [k for k in owners if k[1] == "Update"]


def test_json_patch_of_managed_fields_takes_effect(kubectl, namespace):
    kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=_cm("owned", {"a": "1"}, {"k": "v"}))
    entry = {"manager": "importer", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:k": {}}}}
    out = kubectl("patch", "cm", "owned", "-n", namespace, "--type=json",
                  "-p", json.dumps([{"op": "replace", "path": "/metadata/managedFields", "value": [entry]}]))
    assert "no change" not in out.stdout
    assert _get(kubectl, namespace, "cm", "owned")["metadata"]["managedFields"] == [entry]
    # an entry no object may hold is refused, as object metadata validation refuses it
    too_long = [{"op": "replace", "path": "/metadata/managedFields", "value": [{**entry, "manager": "m" * 129}]}]
    res = kubectl("patch", "cm", "owned", "-n", namespace, "--type=json", "-p", json.dumps(too_long), check=False)
    assert res.returncode != 0
    assert ('ConfigMap "owned" is invalid: metadata.managedFields[0].manager: Too long: may not be more than '
            "128 bytes") in res.stderr
    # [{}] resets: tracking stops, and later ordinary writes do not start it again
    kubectl("patch", "cm", "owned", "-n", namespace, "--type=json",
            "-p", json.dumps([{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]))
    assert "managedFields" not in _get(kubectl, namespace, "cm", "owned")["metadata"]
    kubectl("label", "cm", "owned", "-n", namespace, "b=2")
    assert "managedFields" not in _get(kubectl, namespace, "cm", "owned")["metadata"]


def test_managers_applying_the_same_values_share_them(kubectl, namespace):
    config = _cm("shared", {"team": "x"}, {"k": "v"})
    kubectl("apply", "--server-side", "--field-manager=first", "-n", namespace, "-f", "-", input=config)
    kubectl("apply", "--server-side", "--field-manager=second", "-n", namespace, "-f", "-", input=config)
    kubectl("apply", "--server-side", "--field-manager=third", "--force-conflicts", "-n", namespace, "-f", "-",
            input=config)
    owners = _owners(_get(kubectl, namespace, "cm", "shared"))
    fields = {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:team": {}}}}
    assert {m: owners.get((m, "Apply", "")) for m in ("first", "second", "third")} == {
        "first": fields, "second": fields, "third": fields}
    # a co-owner keeps a field that another owner stops applying
    kubectl("apply", "--server-side", "--field-manager=first", "-n", namespace, "-f", "-",
            input=_cm("shared", {}, {}))
    cm = _get(kubectl, namespace, "cm", "shared")
    assert cm["data"] == {"k": "v"} and cm["metadata"]["labels"] == {"team": "x"}
    # and a different value from one of them is a conflict with the others
    res = kubectl("apply", "--server-side", "--field-manager=second", "-n", namespace, "-f", "-", check=False,
                  input=_cm("shared", {"team": "y"}, {"k": "v"}))
    assert res.returncode != 0 and 'conflict with "third": .metadata.labels.team' in res.stderr


def test_server_side_apply_through_status(kubectl, namespace):
    kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=DEPLOY)
    out = kubectl("apply", "--server-side", "--subresource=status", "--field-manager=auditor", "-n", namespace,
                  "-f", "-", input=STATUS)
    assert "serverside-applied" in out.stdout
    dep = _get(kubectl, namespace, "deploy", "web")
    assert dep["spec"]["replicas"] == 2  # /status leaves the spec alone
    assert {"type": "Audited", "status": "True", "reason": "Checked", "message": "by an auditor"} in [
        {k: c.get(k) for k in ("type", "status", "reason", "message")} for c in dep["status"]["conditions"]]
    assert _owners(dep)[("auditor", "Apply", "status")] == {"f:status": {"f:conditions": {
        'k:{"type":"Audited"}': {".": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}}}}
    # the other patch types take the same path
    kubectl("patch", "deploy", "web", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", '{"status":{"observedGeneration":1}}')


def test_server_side_apply_through_scale(api, kubectl, namespace):
    kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=DEPLOY)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale?fieldManager=autoscaler"
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 4}}

    def apply(body: dict, query: str = "") -> tuple[int, dict]:
        resp = raw(api, "PATCH", path + query, json.dumps(body).encode(),
                   **{"Content-Type": "application/apply-patch+yaml"})
        return resp.status, json.loads(resp.data)

    status, answer = apply(scale)  # kubectl's apply owns spec.replicas
    assert (status, answer["message"]) == (409, 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas')
    status, answer = apply(scale, "&force=true")
    assert status == 200 and answer["kind"] == "Scale" and answer["spec"]["replicas"] == 4
    dep = _get(kubectl, namespace, "deploy", "web")
    owners = _owners(dep)
    assert dep["spec"]["replicas"] == 4
    assert owners[("autoscaler", "Apply", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owners[("kubectl", "Apply", "")]["f:spec"]
    status, answer = apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
    assert (status, answer["message"]) == (400, "invalid object type: apps/v1, Kind=Deployment")
