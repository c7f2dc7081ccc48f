"""DeleteOptions as kube-apiserver reads them: from the body when there is one (kubectl and the
client libraries send them there), else from the query; dry runs, preconditions and hostile
bodies, for single and collection deletes."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import raw


def _raw(api, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    resp = raw(api, method, path, body, **{"Content-Type": "application/json"})
    return resp.status, json.loads(resp.data)


def _names(core, namespace: str, kind: str = "pods") -> list[str]:
    items = core.list_namespaced_pod(namespace).items if kind == "pods" else \
        core.list_namespaced_config_map(namespace).items
    return sorted(i.metadata.name for i in items if i.metadata.name != "kube-root-ca.crt")


def test_kubectl_server_dry_run_deletes_nothing(kubectl, core, namespace):
    for name in ("a", "b"):
        kubectl("run", name, "--image=nginx", "-l", "app=dry", "-n", namespace)
    out = kubectl("delete", "pod", "a", "--dry-run=server", "-n", namespace, "--wait=false")
    assert "(server dry run)" in out.stdout
    out = kubectl("delete", "pods", "-l", "app=dry", "--dry-run=server", "-n", namespace, "--wait=false")
    assert out.stdout.count("(server dry run)") == 2
    assert _names(core, namespace) == ["a", "b"]
    assert all(p.metadata.deletion_timestamp is None for p in core.list_namespaced_pod(namespace).items)
    kubectl("delete", "pods", "-l", "app=dry", "-n", namespace, "--wait=false")
    assert all(p.metadata.deletion_timestamp for p in core.list_namespaced_pod(namespace).items)


def test_python_client_body_dry_run_and_preconditions(core, namespace):
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "keep"}, "data": {"k": "v"}})
    core.delete_namespaced_config_map("keep", namespace, body=client.V1DeleteOptions(dry_run=["All"]))
    assert core.read_namespaced_config_map("keep", namespace).metadata.uid == cm.metadata.uid

    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "keep", namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-it")))
    status = json.loads(err.value.body)
    assert err.value.status == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "keep": the UID in the precondition (not-it) does not match '
        f"the UID in record ({cm.metadata.uid}). The object might have been deleted and then recreated")
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "keep", namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")))
    assert err.value.status == 409
    assert json.loads(err.value.body)["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "keep": the ResourceVersion in the precondition (1) does not '
        f"match the ResourceVersion in record ({cm.metadata.resource_version}). The object might have been modified")
    assert core.read_namespaced_config_map("keep", namespace)

    right = client.V1Preconditions(uid=cm.metadata.uid, resource_version=cm.metadata.resource_version)
    core.delete_namespaced_config_map("keep", namespace, body=client.V1DeleteOptions(preconditions=right))
    assert _names(core, namespace, "configmaps") == []


def test_collection_delete_honours_body_dry_run(api, core, namespace):
    for name in ("c1", "c2"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"set": "x"}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="set=x",
                                                 body=client.V1DeleteOptions(dry_run=["All"]))
    assert _names(core, namespace, "configmaps") == ["c1", "c2"]
    status, _ = _raw(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=set%3Dx",
                     b'{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1","dryRun":["All"]}')
    assert status == 200 and _names(core, namespace, "configmaps") == ["c1", "c2"]
    # without a body the query says it
    status, _ = _raw(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=set%3Dx&dryRun=All")
    assert status == 200 and _names(core, namespace, "configmaps") == ["c1", "c2"]
    core.delete_collection_namespaced_config_map(namespace, label_selector="set=x", body=client.V1DeleteOptions())
    assert _names(core, namespace, "configmaps") == []


_BAD_BODIES = [  # body, status, message
    (b'{"kind":"Pod","apiVersion":"v1"}', 400,
     'no kind "Pod" is registered for version "v1" in scheme '
     '"k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme/register.go:28"'),
    (b'{"gracePeriodSeconds":"soon"}', 400,
     "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64"),
    (b'{"dryRun":["Maybe"]}', 422,
     'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Maybe"}: supported values: "All"'),
    (b'{"propagationPolicy":"Orphan","orphanDependents":true}', 422,
     'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Orphan": '
     "orphanDependents and deletionPropagation cannot be both set"),
]


def test_bad_delete_bodies_are_refused(api, core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "target"}})
    for body, code, message in _BAD_BODIES:
        for path in (f"/api/v1/namespaces/{namespace}/configmaps/target", f"/api/v1/namespaces/{namespace}/configmaps"):
            status, answer = _raw(api, "DELETE", path, body)
            assert (status, answer["message"]) == (code, message), body
    assert _names(core, namespace, "configmaps") == ["target"]


def test_query_is_read_only_without_a_body(api, core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "q"}})
    status, answer = _raw(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/q?gracePeriodSeconds=soon")
    assert (status, answer["message"]) == (400, 'strconv.ParseInt: parsing "soon": invalid syntax')
    status, _ = _raw(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/q?dryRun=All")
    assert status == 200 and _names(core, namespace, "configmaps") == ["q"]
    # a body is the whole of the options, as upstream: the query's dryRun is not read then
    status, _ = _raw(api, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/q?dryRun=All", b"{}")
    assert status == 200 and _names(core, namespace, "configmaps") == []
