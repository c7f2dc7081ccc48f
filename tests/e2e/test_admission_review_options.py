"""What admission sees of a request, end to end through kubectl and the `kubernetes` client:
`request.options` is the meta.k8s.io/v1 options object the client sent (a DELETE's whole
DeleteOptions, a PATCH's as UpdateOptions), for webhooks and ValidatingAdmissionPolicies alike;
and an update that changes nothing still goes through admission, as upstream (a validating
webhook refuses it, a mutating one makes it a real write), keeping its resourceVersion otherwise."""

from __future__ import annotations

import json
import os

import pytest
import webhookserver as ws
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from .conftest import LKS, wait_until


@pytest.fixture(scope="module")
def hook_server():
    with ws.WebhookServer() as s:
        yield s


@pytest.fixture
def namespace(lks: LKS, request) -> str:
    """A namespace of the test's own, labelled so only its webhooks and policies match it."""
    name = "ro-" + request.node.name.lower().replace("_", "-")[5:35].strip("-") + "-" + os.urandom(2).hex()
    lks.kubectl("create", "namespace", name)
    lks.kubectl("label", "namespace", name, f"options-test={name}")
    yield name
    lks.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def configure(lks: LKS):
    """Create cluster-scoped admission configuration with kubectl (deleted after the test)."""
    made: list[tuple[str, str]] = []

    def make(doc: dict) -> None:
        lks.kubectl("apply", "-f", "-", input=json.dumps(doc))
        made.append((doc["kind"].lower(), doc["metadata"]["name"]))

    yield make
    for kind, name in made:
        lks.kubectl("delete", kind, name, "--ignore-not-found")


def _hooks(hook_server: ws.WebhookServer, kind: str, name: str, path: str, namespace: str,
           operations: list[str]) -> dict:
    return ws.configuration(kind, name, [{
        "name": f"{path.strip('/')}.example.com",
        "clientConfig": {"url": hook_server.url(path), "caBundle": hook_server.ca_bundle},
        "rules": [ws.rule(operations, ["configmaps"])],
        "namespaceSelector": {"matchLabels": {"options-test": namespace}}}])


def _options(hook_server: ws.WebhookServer, path: str, operation: str, name: str) -> dict:
    reviews = [r["request"] for r in hook_server.reviews.get(path, [])]
    return [r for r in reviews if r["operation"] == operation and r["name"] == name][-1]["options"]


def test_webhooks_see_the_options_each_operation_sent(lks, api, hook_server, configure, namespace):
    hook_server.paths["/record"] = ws.allow
    configure(_hooks(hook_server, "ValidatingWebhookConfiguration", f"record-{namespace}", "/record", namespace,
                     ["CREATE", "UPDATE", "DELETE"]))
    kubectl = lks.kubectl
    kubectl("create", "configmap", "cm", "-n", namespace, "--from-literal=a=b")
    assert _options(hook_server, "/record", "CREATE", "cm") == {
        "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-create",
        "fieldValidation": "Strict"}

    kubectl("patch", "configmap", "cm", "-n", namespace, "-p", '{"data": {"a": "c"}}')
    # upstream hands admission a PATCH's options as UpdateOptions (patchToUpdateOptions)
    assert _options(hook_server, "/record", "UPDATE", "cm") == {
        "kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-patch"}

    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": namespace},
        "data": {"a": "d"}}))
    options = _options(hook_server, "/record", "UPDATE", "cm")  # `force` is not among them
    assert options == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl",
                       "fieldValidation": "Strict"}

    kubectl("delete", "configmap", "cm", "-n", namespace, "--grace-period=7", "--cascade=foreground", "--wait=false")
    assert _options(hook_server, "/record", "DELETE", "cm") == {
        "kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 7,
        "propagationPolicy": "Foreground"}

    core = k8s_client.CoreV1Api(api)
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}}, dry_run="All")
    assert _options(hook_server, "/record", "CREATE", "pre") == {
        "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]}
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}})
    core.delete_namespaced_config_map("pre", namespace, body=k8s_client.V1DeleteOptions(
        preconditions=k8s_client.V1Preconditions(uid=made.metadata.uid), orphan_dependents=True))
    assert _options(hook_server, "/record", "DELETE", "pre") == {
        "kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "preconditions": {"uid": made.metadata.uid},
        "orphanDependents": True}


def test_policies_see_the_delete_options_too(lks, configure, namespace):
    configure({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": f"grace-{namespace}"},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                         "operations": ["DELETE"], "resources": ["configmaps"]}]},
                 "validations": [{"expression": "request.options.kind == 'DeleteOptions' && "
                                                "!(has(request.options.gracePeriodSeconds) && "
                                                "request.options.gracePeriodSeconds == 3)",
                                  "message": "not with a grace period of 3"}]}})
    configure({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"grace-{namespace}"},
        "spec": {"policyName": f"grace-{namespace}", "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"options-test": namespace}}}}})
    lks.kubectl("create", "configmap", "cm", "-n", namespace)

    def refused() -> str | None:
        res = lks.kubectl("delete", "configmap", "cm", "-n", namespace, "--grace-period=3", "--dry-run=server",
                          check=False)
        return res.stderr if res.returncode else None

    assert "not with a grace period of 3" in wait_until(refused, what="the policy in force")
    lks.kubectl("delete", "configmap", "cm", "-n", namespace, "--grace-period=4")


def test_a_no_op_update_goes_through_admission(lks, api, hook_server, configure, namespace):
    hook_server.paths["/frozen"] = lambda r: (ws.deny(r, "frozen") if (r["oldObject"]["metadata"].get("labels") or {})
                                              .get("frozen") == "yes" else ws.allow(r))
    configure(_hooks(hook_server, "ValidatingWebhookConfiguration", f"frozen-{namespace}", "/frozen", namespace,
                     ["UPDATE"]))
    lks.kubectl("create", "configmap", "cold", "-n", namespace)
    lks.kubectl("label", "configmap", "cold", "-n", namespace, "frozen=yes")
    unchanged = lks.kubectl("get", "configmap", "cold", "-n", namespace, "-o", "json").stdout
    res = lks.kubectl("replace", "-f", "-", input=unchanged, check=False)  # a PUT that changes nothing
    assert res.returncode == 1
    assert 'admission webhook "frozen.example.com" denied the request: frozen' in res.stderr

    core = k8s_client.CoreV1Api(api)
    lks.kubectl("create", "configmap", "warm", "-n", namespace)
    warm = core.read_namespaced_config_map("warm", namespace)
    hooked = len(hook_server.reviews["/frozen"])
    again = core.replace_namespaced_config_map("warm", namespace, warm)  # allowed and still a no-op
    assert again.metadata.resource_version == warm.metadata.resource_version
    assert len(hook_server.reviews["/frozen"]) == hooked + 1

    def stamp(r):
        if (r["object"]["metadata"].get("annotations") or {}).get("stamped"):
            return ws.allow(r)
        return ws.json_patch(r, [{"op": "add", "path": "/metadata/annotations", "value": {"stamped": "yes"}}])

    hook_server.paths["/stamp"] = stamp
    configure(_hooks(hook_server, "MutatingWebhookConfiguration", f"stamp-{namespace}", "/stamp", namespace,
                     ["UPDATE"]))

    def stamped():
        try:
            out = core.replace_namespaced_config_map("warm", namespace, warm)
        except ApiException as err:  # an earlier attempt's write moved the resourceVersion on
            assert err.status == 409
            return core.read_namespaced_config_map("warm", namespace)
        return out if (out.metadata.annotations or {}).get("stamped") else None

    out = wait_until(stamped, what="the mutating webhook in force")
    assert out.metadata.annotations == {"stamped": "yes"}
    assert int(out.metadata.resource_version) > int(warm.metadata.resource_version)
