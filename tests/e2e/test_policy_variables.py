"""ValidatingAdmissionPolicy variables are lazy, as upstream's composition, end to end: a policy
applied with kubectl whose variable `broken` always fails to evaluate, read only when a
ConfigMap has more than two keys. Through the kubernetes client, a small ConfigMap is admitted
(the failing variable is never read, so its error fails nothing) and a big one is refused with
upstream's `composited variable "broken" fails to evaluate` words. The binding selects this
test's namespace only, so the shared server's other tests do not see the policy."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from .conftest import wait_until

VALIDATION = "variables.keys <= 2 || variables.broken"


def _policy(name: str) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail",
                     "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                             "operations": ["CREATE"], "resources": ["configmaps"]}]},
                     "variables": [{"name": "broken", "expression": "object.data.missing.size() > 0"},
                                   {"name": "keys", "expression": "size(object.data)"}],
                     "validations": [{"expression": VALIDATION}]}}


def _binding(name: str, policy: str, namespace: str) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": ["Deny"], "matchResources": {"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": namespace}}}}}


def _configmap(name: str, keys: int) -> dict:
    return {"metadata": {"name": name}, "data": {f"k{i}": "v" for i in range(keys)}}


@pytest.fixture
def policy(kubectl, namespace):
    name = f"lazy-{namespace}"
    kubectl("apply", "-f", "-", input=json.dumps(_policy(name)))
    kubectl("apply", "-f", "-", input=json.dumps(_binding(name, name, namespace)))
    yield name
    kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
    kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def _refused(core, namespace: str, keys: int) -> ApiException | None:
    try:
        core.create_namespaced_config_map(namespace, _configmap("probe", keys), dry_run="All")
    except ApiException as err:
        return err
    return None


def test_an_unread_failing_variable_fails_nothing_and_a_read_one_fails_in_upstreams_words(core, namespace, policy):
    err = wait_until(lambda: _refused(core, namespace, 3), timeout=15, what="policy in force")
    assert err.status == 422
    message = json.loads(err.body)["message"]
    assert message == (
        f'configmaps "probe" is forbidden: ValidatingAdmissionPolicy \'{policy}\' with binding \'{policy}\' '
        f"denied request: expression '{VALIDATION}' resulted in error: composited variable \"broken\" fails to "
        "evaluate: no such key: missing")
    created = core.create_namespaced_config_map(namespace, _configmap("small", 2))
    assert created.metadata.name == "small"
