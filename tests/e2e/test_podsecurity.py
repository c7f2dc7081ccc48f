"""Pod Security admission and Priority admission through kubectl and the Python client against
a real `lks up`: namespace labels, enforce (403), warn (kubectl's `Warning:` lines), workloads
warned by their template, the existing-pods warning of a new enforce level, and the fields a
plain `kubectl run` pod gets (priority 0, PreemptLowerPriority) from Priority admission."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import wait_until

RESTRICTED_MESSAGE = (
    'pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
    '(container "x" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
    '(container "x" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
    '"x" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "x" must set '
    'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


def test_kubectl_run_in_a_restricted_namespace_is_refused(kubectl, namespace):
    kubectl("label", "ns", namespace, "pod-security.kubernetes.io/enforce=restricted")
    res = kubectl("run", "x", "--image=busybox", "-n", namespace, check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == f"Error from server (Forbidden): {RESTRICTED_MESSAGE}"


def test_the_python_client_sees_the_403(api, core, namespace):
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(namespace, {"metadata": {"name": "x"},
                                               "spec": {"containers": [{"name": "x", "image": "busybox"}]}})
    assert caught.value.status == 403
    body = json.loads(caught.value.body)
    assert body["reason"] == "Forbidden" and body["message"] == RESTRICTED_MESSAGE


def test_warn_prints_kubectl_warnings_and_workloads_are_warned(kubectl, namespace):
    kubectl("label", "ns", namespace, "pod-security.kubernetes.io/warn=baseline")
    res = kubectl("run", "p", "--image=busybox", "-n", namespace, "--privileged")
    assert ('Warning: would violate PodSecurity "baseline:latest": privileged '
            '(container "p" must not set securityContext.privileged=true)') in res.stderr
    res = kubectl("create", "deployment", "web", "--image=nginx", "--port=80", "-n", namespace)
    assert "Warning" not in res.stderr  # nothing in its template breaks baseline
    kubectl("label", "ns", namespace, "pod-security.kubernetes.io/warn=restricted", "--overwrite")
    res = kubectl("create", "deployment", "web2", "--image=nginx", "-n", namespace)
    assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in res.stderr


def test_controllers_pods_are_enforced_too(kubectl, namespace):
    """A Deployment is only warned; the pods its ReplicaSet makes are refused (FailedCreate)."""
    kubectl("label", "ns", namespace, "pod-security.kubernetes.io/enforce=restricted")
    kubectl("create", "deployment", "web", "--image=nginx", "-n", namespace)

    def failed() -> list[str]:
        events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        return [e["message"] for e in events if e["reason"] == "FailedCreate"]

    (message, *_) = wait_until(failed, what="a FailedCreate event")
    assert message.startswith('Error creating: pods "web-')
    assert 'is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in message
    assert json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"] == []


def test_invalid_labels_are_refused(kubectl, namespace):
    res = kubectl("label", "ns", namespace, "pod-security.kubernetes.io/enforce=bogus", check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        f'The Namespace "{namespace}" is invalid: '
        "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"bogus\": "
        "must be one of privileged, baseline, restricted")


def test_a_new_enforce_level_warns_about_existing_pods(kubectl, namespace):
    kubectl("run", "priv", "--image=busybox", "-n", namespace, "--privileged")
    res = kubectl("label", "ns", namespace, "pod-security.kubernetes.io/enforce=baseline")
    assert (f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
            '"baseline:latest"') in res.stderr
    assert "Warning: priv: privileged" in res.stderr


def test_kubectl_run_pods_get_priority_as_a_real_cluster(kubectl, namespace):
    kubectl("run", "x", "--image=busybox", "-n", namespace)
    spec = json.loads(kubectl("get", "pod", "x", "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["enableServiceLinks"] is True
    # a controller's pods too (their writes share options with its status updates)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", namespace)
    pods = wait_until(lambda: [p for p in json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web",
                                                             "-o", "json").stdout)["items"]] or None,
                      what="the deployment's pods")
    assert all(p["spec"]["priority"] == 0 and p["spec"]["preemptionPolicy"] == "PreemptLowerPriority" for p in pods)


def test_system_priority_classes_exist_and_stay(kubectl, api):
    out = kubectl("get", "priorityclasses", "-o", "json").stdout
    values = {i["metadata"]["name"]: i["value"] for i in json.loads(out)["items"]}
    assert values["system-node-critical"] == 2000001000 and values["system-cluster-critical"] == 2000000000
    res = kubectl("delete", "priorityclass", "system-cluster-critical", check=False)
    assert res.returncode != 0
    assert ('priorityclasses.scheduling.k8s.io "system-cluster-critical" is forbidden: '
            "this is a system priority class and cannot be deleted") in res.stderr
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_pod("default", {
            "metadata": {"name": "nope"},
            "spec": {"priorityClassName": "foo", "containers": [{"name": "c", "image": "busybox"}]}})
    assert caught.value.status == 403
    assert json.loads(caught.value.body)["message"] == 'pods "nope" is forbidden: no PriorityClass with name foo was found'
