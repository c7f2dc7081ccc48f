"""Which engine answers when a ConstraintTemplate carries both CEL and Rego, end to end with
kubectl: the K8sNativeValidation code, for admission and for the audit alike, as Gatekeeper does
with its default `--enable-k8s-native-validation=true`; CEL that does not compile is the
template's error (its Rego is not tried instead). lks's own Azure built-in templates carry both,
so a built-in applied with kubectl denies with the CEL's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lks.policy.azure

from .conftest import LKS, wait_until
from .gatekeeper import apply, enable_azure_policy, template_status

BOTH = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sbothengines
spec:
  crd:
    spec:
      names:
        kind: K8sBothEngines
  targets:
  - target: admission.k8s.gatekeeper.sh
    code:
    - engine: K8sNativeValidation
      source:
        validations:
        - expression: '{cel}'
          messageExpression: '"refused by CEL: " + variables.anyObject.metadata.name'
    rego: |
      package k8sbothengines

      violation[{{"msg": msg}}] {{
        startswith(input.review.object.metadata.name, "bad-")
        msg := sprintf("refused by Rego: %v", [input.review.object.metadata.name])
      }}
"""
GOOD_CEL = "!variables.anyObject.metadata.name.startsWith(\"bad-\")"

CONSTRAINT = """
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sBothEngines
metadata:
  name: no-bad-namespaces
spec:
  match:
    kinds: [{apiGroups: [""], kinds: [Namespace]}]
"""

NO_PRIVILEGE = """
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAzureV2NoPrivilege
metadata:
  name: no-privilege
spec:
  match:
    kinds: [{apiGroups: [""], kinds: [Pod]}]
    namespaces: [engines]
  parameters:
    excludedContainers: []
    excludedImages: []
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-gatekeeper-engines"), env={"LKS_GATEKEEPER_AUDIT_INTERVAL": "1"})
    s.start()
    enable_azure_policy(s)
    yield s
    s.stop()


def test_cel_answers_admission_and_audit(server: LKS):
    wait_until(lambda: apply(server, BOTH.format(cel=GOOD_CEL)).returncode == 0, what="template")
    assert template_status(server, "k8sbothengines").get("created") is True
    server.kubectl("create", "namespace", "bad-before")  # there before the constraint: for the audit
    wait_until(lambda: apply(server, CONSTRAINT).returncode == 0, what="constraint")

    def denied():
        res = server.kubectl("create", "namespace", "bad-new", check=False)
        return res.returncode != 0 and res
    res = wait_until(denied, what="denial")
    assert res.stderr.strip() == ('Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" denied '
                                  "the request: [no-bad-namespaces] refused by CEL: bad-new")

    def audited():
        obj = json.loads(server.kubectl("get", "k8sbothengines", "no-bad-namespaces", "-o", "json").stdout)
        return (obj.get("status") or {}).get("violations")
    violations = wait_until(audited, what="audit results")
    assert [(v["name"], v["message"]) for v in violations] == [("bad-before", "refused by CEL: bad-before")]


def test_cel_that_does_not_compile_is_the_templates_error(server: LKS):
    broken = BOTH.format(cel="variables.anyObject.metadata.name ==").replace("k8sbothengines", "k8sbrokencel") \
        .replace("K8sBothEngines", "K8sBrokenCEL")
    assert apply(server, broken).returncode == 0
    status = template_status(server, "k8sbrokencel")
    assert "created" not in status
    error = status["byPod"][0]["errors"][0]
    assert error["code"] == "ingest_error" and error["message"].startswith("Could not ingest Rego: ")


def test_azure_builtin_template_denies_with_its_cel(server: LKS):
    path = Path(lks.policy.azure.__file__).parent / "templates" / "container-no-privilege.yaml"
    assert server.kubectl("apply", "-f", str(path)).returncode == 0
    assert template_status(server, "k8sazurev2noprivilege").get("created") is True
    server.kubectl("create", "namespace", "engines")
    wait_until(lambda: apply(server, NO_PRIVILEGE).returncode == 0, what="constraint")

    def denied():
        res = server.kubectl("run", "priv", "-n", "engines", "--image=nginx", "--privileged", "--restart=Never",
                             check=False)
        return res.returncode != 0 and res
    res = wait_until(denied, what="denial")
    # the CEL's spelling of the securityContext (the Rego's would be {"privileged": true})
    assert res.stderr.strip() == ('Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" denied '
                                  "the request: [no-privilege] Privileged container is not allowed: priv, "
                                  "securityContext: {privileged: true}")
    assert server.kubectl("run", "plain", "-n", "engines", "--image=nginx", "--restart=Never").returncode == 0
