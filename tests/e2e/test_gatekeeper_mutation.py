"""Gatekeeper mutation through the `azurepolicy` add-on, end to end with kubectl: an Assign
that sets `imagePullPolicy: Always` on every container, an AssignMetadata label, a ModifySet
on the containers' args and an AssignImage registry show on a pod created with kubectl; an
invalid mutator is refused as Gatekeeper refuses it, and conflicting ones report it in
their status."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until
from .gatekeeper import apply, enable_azure_policy

MUTATORS = """
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata:
  name: always-pull
spec:
  applyTo:
  - groups: [""]
    kinds: ["Pod"]
    versions: ["v1"]
  match:
    scope: Namespaced
    kinds:
    - apiGroups: ["*"]
      kinds: ["Pod"]
    excludedNamespaces: ["kube-system"]
  location: "spec.containers[name: *].imagePullPolicy"
  parameters:
    assign:
      value: Always
---
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata:
  name: owner-label
spec:
  match:
    scope: Namespaced
    namespaces: ["mut"]
  location: "metadata.labels.owner"
  parameters:
    assign:
      value: platform-team
---
apiVersion: mutations.gatekeeper.sh/v1
kind: ModifySet
metadata:
  name: verbose-args
spec:
  applyTo:
  - groups: [""]
    kinds: ["Pod"]
    versions: ["v1"]
  match:
    namespaces: ["mut"]
  location: "spec.containers[name: *].args"
  parameters:
    operation: merge
    values:
      fromList: ["--verbose"]
---
apiVersion: mutations.gatekeeper.sh/v1alpha1
kind: AssignImage
metadata:
  name: our-registry
spec:
  applyTo:
  - groups: [""]
    kinds: ["Pod"]
    versions: ["v1"]
  match:
    namespaces: ["mut"]
  location: "spec.containers[name: *].image"
  parameters:
    assignDomain: "myregistry.azurecr.io"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-gatekeeper-mutation"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def enabled(server: LKS):
    enable_azure_policy(server)
    return server


def by_pod(server: LKS, kind: str, name: str) -> list:
    def status():
        res = server.kubectl("get", kind, name, "-o", "json", check=False)
        return res.returncode == 0 and ((json.loads(res.stdout).get("status") or {}).get("byPod"))
    return wait_until(status, what=f"status of {kind} {name}")


def test_mutating_webhook_configuration(enabled: LKS):
    hook = json.loads(enabled.kubectl("get", "mutatingwebhookconfiguration",
                                      "gatekeeper-mutating-webhook-configuration", "-o", "json").stdout)["webhooks"][0]
    assert (hook["name"], hook["failurePolicy"], hook["reinvocationPolicy"]) == ("mutation.gatekeeper.sh", "Ignore",
                                                                                 "Never")
    assert hook["clientConfig"]["service"]["path"] == "/v1/mutate"


def test_pod_created_with_kubectl_is_mutated(enabled: LKS):
    res = apply(enabled, MUTATORS)
    assert res.returncode == 0, res.stderr
    for kind, name in (("assign", "always-pull"), ("assignmetadata", "owner-label"), ("modifyset", "verbose-args"),
                       ("assignimage", "our-registry")):
        assert by_pod(enabled, kind, name)[0]["enforced"] is True
    enabled.kubectl("create", "namespace", "mut")
    enabled.kubectl("run", "web", "-n", "mut", "--image=nginx:1.25", "--image-pull-policy=IfNotPresent",
                    "--", "nginx", "-g", "daemon off;")
    pod = json.loads(enabled.kubectl("get", "pod", "web", "-n", "mut", "-o", "json").stdout)
    container = pod["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["image"] == "myregistry.azurecr.io/nginx:1.25"
    assert container["args"] == ["nginx", "-g", "daemon off;", "--verbose"]
    assert pod["metadata"]["labels"]["owner"] == "platform-team"
    assert pod["metadata"]["labels"]["run"] == "web"
    assert not any(k.startswith("gatekeeper.sh/") for k in pod["metadata"].get("annotations") or {})
    # kube-system is excluded by the Assign's match; the namespaces lists keep the others to `mut`
    enabled.kubectl("run", "other", "--image=nginx:1.25", "--image-pull-policy=IfNotPresent")
    other = json.loads(enabled.kubectl("get", "pod", "other", "-o", "json").stdout)
    assert other["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert other["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert "owner" not in other["metadata"]["labels"]


def test_invalid_mutator_refused(enabled: LKS):
    res = apply(enabled, """
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata:
  name: bad-location
spec:
  applyTo:
  - groups: [""]
    kinds: ["Pod"]
    versions: ["v1"]
  location: "spec.containers[name: *]"
  parameters:
    assign:
      value: {name: sidecar}
""")
    assert res.returncode != 0
    assert res.stderr.strip().endswith('admission webhook "validation.gatekeeper.sh" denied the request: '
                                       "can't append to a globbed list")


def test_conflicting_schemas_reported(enabled: LKS):
    conflicting = """
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata:
  name: containers-as-object
spec:
  applyTo:
  - groups: [""]
    kinds: ["Pod"]
    versions: ["v1"]
  match:
    namespaces: ["mut"]
  location: "spec.containers.web.imagePullPolicy"
  parameters:
    assign:
      value: Never
"""
    assert apply(enabled, conflicting).returncode == 0

    def conflicted():
        entries = by_pod(enabled, "assign", "containers-as-object")
        return not entries[0]["enforced"] and entries
    entries = wait_until(conflicted, what="the conflict")
    assert entries[0]["errors"] == [{
        "type": "ErrConflictingSchema",
        "message": "the following mutators have conflicting schemas: [Assign.mutations.gatekeeper.sh /always-pull,"
                   "Assign.mutations.gatekeeper.sh /containers-as-object,AssignImage.mutations.gatekeeper.sh "
                   "/our-registry,ModifySet.mutations.gatekeeper.sh /verbose-args]"}]
    wait_until(lambda: not by_pod(enabled, "assign", "always-pull")[0]["enforced"], what="the other side")
    enabled.kubectl("delete", "assign", "containers-as-object")
    wait_until(lambda: by_pod(enabled, "assign", "always-pull")[0]["enforced"], what="conflict resolved")
