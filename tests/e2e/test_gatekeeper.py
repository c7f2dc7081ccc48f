"""Gatekeeper through the `azurepolicy` add-on, end to end: the demo cluster has no Gatekeeper
until the add-on is enabled with the Azure SDK; then kubectl applies ConstraintTemplates and
constraints as with a stand-alone Gatekeeper, and sees its denials, warnings, audit results and
template errors worded as Gatekeeper words them. The audit runs every second here
(`LKS_GATEKEEPER_AUDIT_INTERVAL`)."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until
from .gatekeeper import apply, enable_azure_policy, template_status

CEL_TEMPLATE = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              items:
                type: object
                properties:
                  key: {type: string}
                  allowedRegex: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
            - expression: '(has(variables.anyObject.metadata) && variables.params.labels.all(entry, has(variables.anyObject.metadata.labels) && entry.key in variables.anyObject.metadata.labels))'
              messageExpression: '"missing required label, requires all of: " + variables.params.labels.map(entry, entry.key).join(", ")'
"""

CONSTRAINT = """
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: ns-must-have-owner
spec:
  enforcementAction: {action}
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Namespace"]
    excludedNamespaces: ["kube-*", "gatekeeper-system", "default"]
  parameters:
    labels:
      - key: owner
"""

BROKEN = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sbroken
spec:
  crd:
    spec:
      names:
        kind: K8sBroken
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
            - expression: 'object.metadata.name =='
              message: never
"""

REGO_TEMPLATE = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sregolabels
spec:
  crd:
    spec:
      names:
        kind: K8sRegoLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              items:
                type: string
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels

        violation[{"msg": msg, "details": {"missing_labels": missing}}] {
          provided := {label | input.review.object.metadata.labels[label]}
          required := {label | label := input.parameters.labels[_]}
          missing := required - provided
          count(missing) > 0
          msg := sprintf("you must provide labels: %v", [missing])
        }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-gatekeeper"), env={"LKS_GATEKEEPER_AUDIT_INTERVAL": "1"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def enabled(server: LKS):
    """The demo cluster, first without Gatekeeper (as AKS without the add-on), then with it."""
    res = server.kubectl("get", "crd", "constrainttemplates.templates.gatekeeper.sh", check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr
    cluster = enable_azure_policy(server)
    assert cluster.addon_profiles["azurepolicy"].enabled
    return server


def test_addon_pods_and_webhook(enabled: LKS):
    deploys = json.loads(enabled.kubectl("get", "deploy", "-n", "gatekeeper-system", "-o", "json").stdout)
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in deploys["items"]}
    assert replicas == {"gatekeeper-controller-manager": 2, "gatekeeper-audit": 1}
    names = enabled.kubectl("get", "deploy", "-n", "kube-system", "-o", "name").stdout.split()
    assert "deployment.apps/azure-policy" in names and "deployment.apps/azure-policy-webhook" in names
    hook = json.loads(enabled.kubectl("get", "validatingwebhookconfiguration",
                                      "gatekeeper-validating-webhook-configuration", "-o", "json").stdout)["webhooks"][0]
    assert (hook["name"], hook["failurePolicy"], hook["timeoutSeconds"]) == ("validation.gatekeeper.sh", "Ignore", 3)


def test_required_labels_deny_warn_dryrun_and_audit(enabled: LKS):
    assert apply(enabled, CEL_TEMPLATE).returncode == 0
    status = template_status(enabled, "k8srequiredlabels")
    assert status["created"] is True and not any(p.get("errors") for p in status["byPod"])
    wait_until(lambda: apply(enabled, CONSTRAINT.format(action="deny")).returncode == 0, what="constraint")

    res = enabled.kubectl("create", "namespace", "no-owner", check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == ('Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" denied '
                                  "the request: [ns-must-have-owner] missing required label, requires all of: owner")
    assert enabled.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: owned\n"
                                                     "  labels: {owner: me}\n").returncode == 0

    assert apply(enabled, CONSTRAINT.format(action="warn")).returncode == 0
    res = enabled.kubectl("create", "namespace", "warned")
    assert ("Warning: [ns-must-have-owner] missing required label, requires all of: owner") in res.stderr

    assert apply(enabled, CONSTRAINT.format(action="dryrun")).returncode == 0
    res = enabled.kubectl("create", "namespace", "dry")
    assert "Warning" not in res.stderr

    def audited():
        c = json.loads(enabled.kubectl("get", "k8srequiredlabels", "ns-must-have-owner", "-o", "json").stdout)
        status = c.get("status") or {}
        names = {v["name"] for v in status.get("violations") or []}
        return {"warned", "dry"} <= names and status
    status = wait_until(audited, what="audit results")
    assert "owned" not in {v["name"] for v in status["violations"]}
    assert status["totalViolations"] == len(status["violations"])
    assert status["violations"][0]["message"] == "missing required label, requires all of: owner"
    assert status["violations"][0]["enforcementAction"] == "dryrun"
    table = enabled.kubectl("get", "k8srequiredlabels").stdout
    assert table.split("\n")[0].split() == ["NAME", "ENFORCEMENT-ACTION", "TOTAL-VIOLATIONS"]


def test_constraint_parameters_must_match_the_schema(enabled: LKS):
    assert apply(enabled, CEL_TEMPLATE).returncode == 0
    template_status(enabled, "k8srequiredlabels")
    bad = CONSTRAINT.format(action="deny").replace("ns-must-have-owner", "bad-params").replace(
        "      - key: owner", "      - 7")
    res = apply(enabled, bad)
    assert res.returncode != 0
    assert res.stderr.startswith('The K8sRequiredLabels "bad-params" is invalid: spec.parameters.labels[0]: ')
    assert "must be of type object" in res.stderr


def test_broken_template_reports_byPod_errors(enabled: LKS):
    assert apply(enabled, BROKEN).returncode == 0
    status = template_status(enabled, "k8sbroken")
    assert "created" not in status
    errors = status["byPod"][0]["errors"]
    assert errors[0]["code"] == "ingest_error"
    assert errors[0]["message"].startswith("Could not ingest Rego: ")
    assert enabled.kubectl("get", "crd", "k8sbroken.constraints.gatekeeper.sh", check=False).returncode != 0


def test_rego_template(enabled: LKS):
    rego = pytest.importorskip("lks.policy.rego")
    if not hasattr(rego, "compile_template"):
        pytest.skip("the Rego engine has not landed")
    assert apply(enabled, REGO_TEMPLATE).returncode == 0
    status = template_status(enabled, "k8sregolabels")
    assert status.get("created") is True, status
    constraint = ("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRegoLabels\nmetadata:\n  name: need-team\n"
                  "spec:\n  match:\n    kinds: [{apiGroups: [''], kinds: [Namespace]}]\n"
                  "  parameters:\n    labels: [team]\n")
    wait_until(lambda: apply(enabled, constraint).returncode == 0, what="constraint")
    res = enabled.kubectl("create", "namespace", "no-team", check=False)
    assert res.stderr.strip() == ('Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" denied '
                                  'the request: [need-team] you must provide labels: {"team"}')
    enabled.kubectl("delete", "k8sregolabels", "need-team")


def test_misnamed_template_refused(enabled: LKS):
    res = apply(enabled, CEL_TEMPLATE.replace("name: k8srequiredlabels", "name: requiredlabels"))
    assert res.returncode != 0
    assert ('admission webhook "validation.gatekeeper.sh" denied the request: invalid ConstraintTemplate: the '
            "ConstraintTemplate's name \"requiredlabels\" is not equal to the lowercase of CRD's Kind: "
            '"k8srequiredlabels"') in res.stderr


def test_gatekeeper_survives_a_restart(enabled: LKS):
    """The add-on is recorded with the control plane: after a restart of the service the
    templates are compiled again and constraints enforced."""
    assert apply(enabled, CEL_TEMPLATE).returncode == 0
    wait_until(lambda: apply(enabled, CONSTRAINT.format(action="deny")).returncode == 0, what="constraint")
    enabled.restart()

    def denied():
        res = enabled.kubectl("create", "namespace", "after-restart", check=False)
        return res.returncode != 0 and "[ns-must-have-owner] missing required label" in res.stderr
    wait_until(denied, what="denial after restart")
