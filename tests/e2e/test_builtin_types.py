"""Built-in types as kube-apiserver treats them, through kubectl and the Python client: Secret
`stringData`, Table rows kubectl sorts, template hashes across `rollout undo`, and the input
upstream's validation refuses."""

from __future__ import annotations

import base64
import json
import os

import pytest
from kubernetes import client as k8s_client
from kubernetes import dynamic as k8s_dynamic
from kubernetes.client.exceptions import ApiException

from .conftest import raw


def _get(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


# --- Secret stringData (issue 12, item 9) -----------------------------------------------------

def test_secret_string_data_is_merged_into_data(kubectl, namespace):
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode(), "b": base64.b64encode(b"kept").decode()},
        "stringData": {"a": "new", "c": "see"}}))
    secret = _get(kubectl, "secret", "s", "-n", namespace)
    assert "stringData" not in secret
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"a": "new", "b": "kept", "c": "see"}
    # updates too: a merge patch and an apply each go through the same conversion
    kubectl("patch", "secret", "s", "-n", namespace, "-p", '{"stringData": {"b": "patched"}}')
    kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"d": "applied"}}))
    secret = _get(kubectl, "secret", "s", "-n", namespace)
    assert "stringData" not in secret
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["b"] == "patched" and decoded["d"] == "applied"


def test_secret_string_data_keys_are_validated_as_data(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "stringData": {"bad key": "x"}}))
    assert res.returncode != 0
    assert 'The Secret "bad" is invalid: data[bad key]: Invalid value: "bad key": a valid config key' in res.stderr
    big = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"}, "stringData": {"k": "x" * (1024 * 1024 + 1)}}
    res = kubectl("create", "-n", namespace, "-f", "-", check=False, input=json.dumps(big))
    assert 'The Secret "big" is invalid: data: Too long: ' in res.stderr


# --- Tables (item 11) -------------------------------------------------------------------------

def test_sort_by_prints_names(kubectl, namespace):
    for name in ("cm-b", "cm-c", "cm-a"):
        kubectl("create", "configmap", name, "-n", namespace)
    out = kubectl("get", "configmaps", "-n", namespace, "--sort-by=.metadata.name", "--no-headers").stdout
    names = [line.split()[0] for line in out.splitlines()]
    assert [n for n in names if n.startswith("cm-")] == ["cm-a", "cm-b", "cm-c"]


def test_table_rows_embed_typed_objects(api, namespace, core):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for query, kind, version in (("includeObject=Object", "ConfigMap", "v1"),
                                 ("", "PartialObjectMetadata", "meta.k8s.io/v1")):
        resp = raw(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps?{query}", Accept=accept)
        row = next(r for r in json.loads(resp.data)["rows"] if r["cells"][0] == "one")
        assert (row["object"]["kind"], row["object"]["apiVersion"]) == (kind, version)


# --- template hashes across kubectl round trips (item 10) --------------------------------------

def _replica_sets(kubectl, namespace: str, app: str) -> list[tuple[str, str, str | None, int]]:
    items = _get(kubectl, "rs", "-n", namespace, "-l", f"app={app}")["items"]
    return sorted((rs["metadata"]["name"], rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                   rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision-history"),
                   rs["spec"]["replicas"]) for rs in items)


def test_rollout_undo_reuses_the_replica_set(kubectl, namespace):
    """A template sent without `resources` comes back from `rollout undo` with `resources: {}`
    (client-go serializes the non-pointer struct): still the same template, the same set."""
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    first = _replica_sets(kubectl, namespace, "web")
    assert len(first) == 1
    original = first[0][0]
    kubectl("set", "resources", "deploy/web", "-n", namespace, "--limits=cpu=200m")
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    kubectl("rollout", "undo", "deploy/web", "-n", namespace)
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    sets = _replica_sets(kubectl, namespace, "web")
    assert len(sets) == 2, sets
    back = next(s for s in sets if s[0] == original)
    assert back[1:] == ("3", "1", 1)
    kubectl("rollout", "undo", "deploy/web", "-n", namespace)  # and forth again: revision 2 becomes 4
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    sets = _replica_sets(kubectl, namespace, "web")
    assert len(sets) == 2 and next(s for s in sets if s[0] != original)[1:] == ("4", "2", 1)


# --- input upstream's validation refuses (item 16) --------------------------------------------

def _template(**spec) -> dict:
    return {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


_PV = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}
_INVALID = [
    pytest.param("v1", "Pod", {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                        "securityContext": {"sysctls": [{"name": "bad sysctl", "value": "1"}]}}},
                 'spec.securityContext.sysctls[0].name: Invalid value: "bad sysctl": must have at most 253 characters '
                 "and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
                 id="pod-sysctl-name"),
    pytest.param("v1", "ReplicationController", {"spec": {"replicas": -1, "selector": {"app": "x"},
                                                          "template": _template()}},
                 "spec.replicas: Invalid value: -1: must be greater than or equal to 0", id="rc-negative-replicas"),
    pytest.param("v1", "ReplicationController", {"spec": {"selector": {"app": "x"},
                                                          "template": _template(restartPolicy="Never")}},
                 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
                 id="rc-restart-policy"),
    pytest.param("v1", "PersistentVolume", {"spec": {**_PV, "persistentVolumeReclaimPolicy": "Sometimes"}},
                 'spec.persistentVolumeReclaimPolicy: Unsupported value: "Sometimes": supported values: "Delete", '
                 '"Recycle", "Retain"', id="pv-reclaim-policy"),
    pytest.param("v1", "PersistentVolume", {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}},
                 "spec: Required value: must specify a volume type", id="pv-no-source"),
    pytest.param("v1", "PersistentVolume", {"spec": {**_PV, "capacity": {"storage": "0"}}},
                 'spec.capacity[storage]: Invalid value: "0": must be greater than zero', id="pv-zero-capacity"),
    pytest.param("v1", "ResourceQuota", {"spec": {"hard": {"pods": "-1"}}},
                 'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0', id="quota-negative"),
    pytest.param("v1", "ResourceQuota", {"spec": {"hard": {"pods": "1500m"}}},
                 'spec.hard[pods]: Invalid value: "1500m": must be an integer', id="quota-fraction"),
    pytest.param("v1", "Endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 0}]}]},
                 "subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                 id="endpoints-port"),
    pytest.param("networking.k8s.io/v1", "NetworkPolicy", {"spec": {"podSelector": {}, "policyTypes": ["Sideways"]}},
                 'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
                 id="netpol-policy-type"),
    pytest.param("networking.k8s.io/v1", "NetworkPolicy",
                 {"spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16",
                                                                                  "except": ["10.1.0.0/24"]}}]}]}},
                 'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset '
                 "of `cidr`", id="netpol-except"),
    pytest.param("scheduling.k8s.io/v1", "PriorityClass", {"value": 2000000000},
                 "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
                 id="priorityclass-value"),
    pytest.param("storage.k8s.io/v1", "StorageClass", {"provisioner": "x.io/y", "reclaimPolicy": "Recycle"},
                 'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
                 id="storageclass-reclaim"),
    pytest.param("discovery.k8s.io/v1", "EndpointSlice", {"addressType": "IPv4", "endpoints": [{"addresses": ["::1"]}]},
                 'endpoints[0].addresses[0]: Invalid value: "::1": must be a valid IPv4 address',
                 id="endpointslice-address"),
    pytest.param("v1", "LimitRange", {"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"},
                                                           "max": {"cpu": "1"}}]}},
                 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
                 id="limitrange-min-max"),
    pytest.param("v1", "LimitRange", {"spec": {"limits": [{"type": "Node"}]}},
                 'spec.limits[0].type: Invalid value: "Node": must be a standard limit type or fully qualified',
                 id="limitrange-type"),
    pytest.param("networking.k8s.io/v1", "IngressClass", {"spec": {"controller": "nginx"}},
                 'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")',
                 id="ingressclass-controller"),
    pytest.param("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                 {"webhooks": [{"name": "check.example.com", "sideEffects": "Some", "admissionReviewVersions": ["v1"],
                                "clientConfig": {"url": "https://hook.example.com/check"}}]},
                 'webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
                 id="webhook-side-effects"),
    pytest.param("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                 {"webhooks": [{"name": "mutate", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                                "clientConfig": {"url": "http://hook.example.com/mutate"}}]},
                 'webhooks[0].name: Invalid value: "mutate": should be a domain with at least three segments '
                 "separated by dots", id="webhook-name"),
    pytest.param("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                 {"webhooks": [{"name": "m.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                                "clientConfig": {"url": "http://hook.example.com/mutate"}}]},
                 "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; "
                 "desired format: https://host[/path]", id="webhook-https"),
    pytest.param("apps/v1", "ControllerRevision", {"revision": -1, "data": {}},
                 "revision: Invalid value: -1: must be greater than or equal to 0", id="controllerrevision-revision"),
]


@pytest.fixture(scope="module")
def dynamic(api):
    return k8s_dynamic.DynamicClient(api)


@pytest.fixture(scope="module")
def refusals_ns(api):
    """One namespace for the parametrized cases (the per-test one is named after the test id)."""
    name = "t-refusals-" + os.urandom(2).hex()
    k8s_client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.mark.parametrize(("api_version", "kind", "body", "message"), _INVALID)
def test_upstream_refuses(dynamic, refusals_ns, api_version, kind, body, message):
    resource = dynamic.resources.get(api_version=api_version, kind=kind)
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "bad"}, **body}
    with pytest.raises(ApiException) as err:
        resource.create(body=obj, namespace=refusals_ns if resource.namespaced else None, dry_run="All")
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert message in status["message"], status["message"]


def test_immutable_after_create(dynamic):
    classes = dynamic.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass")
    classes.create(body={"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "h5-sc"},
                         "provisioner": "x.io/y", "parameters": {"a": "1"}})
    try:
        with pytest.raises(ApiException) as err:
            classes.patch(name="h5-sc", body={"parameters": {"a": "2"}, "reclaimPolicy": "Retain"},
                          content_type="application/merge-patch+json")
        message = json.loads(err.value.body)["message"]
        assert "parameters: Forbidden: updates to parameters are forbidden." in message
        assert "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden." in message
    finally:
        classes.delete(name="h5-sc")


def test_negative_pod_grace_period_is_one(core, namespace):
    """Upstream does not refuse a negative grace period (old clients sent them): a Pod stores 1."""
    pod = core.create_namespaced_pod(namespace, {"metadata": {"name": "neg"}, "spec": {
        "terminationGracePeriodSeconds": -5, "containers": [{"name": "c", "image": "busybox"}]}})
    assert pod.spec.termination_grace_period_seconds == 1


def test_template_warnings(kubectl, namespace):
    """Accepted but suspect templates draw upstream's warnings, which kubectl prints."""
    res = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "warned"},
        "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {
            "metadata": {"labels": {"app": "w"}},
            "spec": {"terminationGracePeriodSeconds": -5, "nodeSelector": {"beta.kubernetes.io/os": "linux"},
                     "containers": [{"name": "c", "image": "nginx"}]}}}}))
    assert ("Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "
            '"kubernetes.io/os" instead') in res.stderr
    assert ("Warning: spec.template.spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid "
            "and will be treated as 1") in res.stderr
