"""ValidatingAdmissionPolicy end to end, through kubectl against a real `lks up`: the docs'
policy refusing Deployments of more than 5 replicas (upstream's exact words), Warn and Audit
actions, params from a ConfigMap, a binding limited to labelled namespaces, a server-side dry
run refused too, a bad policy refused at create, and the status the type checker writes."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-vap-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def kubectl(server: LKS):
    return server.kubectl


def apply(kubectl, doc: str) -> None:
    kubectl("apply", "-f", "-", input=doc)


def deployment(name: str, replicas: int, namespace: str = "default") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""


def policy(name: str, body: str = "") -> str:
    return f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
{body}"""


def binding(name: str, policy_name: str, actions: str, extra: str = "") -> str:
    return f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {policy_name}
  validationActions: {actions}
{extra}"""


MAX5 = """  validations:
  - expression: "object.spec.replicas <= 5"
"""


def enforced(kubectl, name: str, replicas: int, namespace: str = "default") -> None:
    """Wait until a server-side dry run of the Deployment is refused (the policy is in force)."""
    wait_until(lambda: kubectl("apply", "--dry-run=server", "-f", "-", input=deployment(name, replicas, namespace),
                               check=False).returncode != 0, timeout=10, what="policy in force")


def test_replicas_limit_denies_in_upstreams_words_dry_run_too(kubectl):
    apply(kubectl, policy("demo-policy.example.com", MAX5))
    apply(kubectl, binding("demo-binding-test.example.com", "demo-policy.example.com", "[Deny]"))
    try:
        enforced(kubectl, "nginx", 6)
        res = kubectl("create", "deployment", "nginx", "--image=nginx", "--replicas=6", check=False)
        assert res.returncode != 0
        assert res.stderr.strip() == (
            'error: failed to create deployment: deployments.apps "nginx" is forbidden: ValidatingAdmissionPolicy '
            "'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: "
            "failed expression: object.spec.replicas <= 5")
        res = kubectl("apply", "-f", "-", input=deployment("nginx", 6), check=False)
        assert res.returncode != 0
        assert res.stderr.strip() == (
            'The deployments "nginx" is invalid: : ValidatingAdmissionPolicy \'demo-policy.example.com\' with '
            "binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5")
        res = kubectl("apply", "--dry-run=server", "-f", "-", input=deployment("nginx", 6), check=False)
        assert res.returncode != 0 and "denied request: failed expression" in res.stderr
        kubectl("apply", "-f", "-", input=deployment("nginx", 5))
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", "demo-binding-test.example.com", "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", "demo-policy.example.com", "--ignore-not-found")
        kubectl("delete", "deployment", "nginx", "--ignore-not-found")


def audit_annotations(server: LKS, name: str) -> dict:
    """The annotations of the audit event of the Deployment `name`'s create."""
    def found():
        log = next(iter(server.home.glob("clusters/*/audit.log")), None)
        for line in log.read_text().splitlines() if log else ():
            ev = json.loads(line)
            ref = ev.get("objectRef") or {}
            if ev["verb"] == "create" and ref.get("resource") == "deployments" and ref.get("name") == name:
                return ev.get("annotations") or {}
        return None
    return wait_until(found, timeout=10, what="audit event")


def test_warn_and_audit_actions_admit_with_a_warning(kubectl, server):
    apply(kubectl, policy("warn-policy", MAX5 + """  auditAnnotations:
  - key: replicas
    valueExpression: "'asked for ' + string(object.spec.replicas)"
"""))
    apply(kubectl, binding("warn-binding", "warn-policy", "[Warn, Audit]"))
    try:
        msg = ("Warning: Validation failed for ValidatingAdmissionPolicy 'warn-policy' with binding 'warn-binding': "
               "failed expression: object.spec.replicas <= 5")
        res = wait_until(lambda: (r := kubectl("apply", "--dry-run=server", "-f", "-", input=deployment("wide", 9)))
                         and msg in r.stderr and r, timeout=10, what="warning")
        assert res.returncode == 0
        res = kubectl("apply", "-f", "-", input=deployment("wide", 9))
        assert msg in res.stderr and "deployment.apps/wide created" in res.stdout
        annotations = audit_annotations(server, "wide")
        assert annotations["warn-policy/replicas"] == "asked for 9"
        assert json.loads(annotations["validation.policy.admission.k8s.io/validation_failure"]) == [{
            "message": "failed expression: object.spec.replicas <= 5", "policy": "warn-policy",
            "binding": "warn-binding", "expressionIndex": 0, "validationActions": ["Warn", "Audit"]}]
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", "warn-binding", "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", "warn-policy", "--ignore-not-found")
        kubectl("delete", "deployment", "wide", "--ignore-not-found")


def test_params_from_a_configmap_and_a_namespace_selector(kubectl):
    kubectl("create", "namespace", "vap-prod")
    kubectl("label", "namespace", "vap-prod", "env=prod")
    kubectl("create", "namespace", "vap-dev")
    kubectl("create", "configmap", "replica-limit", "-n", "vap-prod", "--from-literal=max=2")
    params = """  paramKind: {apiVersion: v1, kind: ConfigMap}
  validations:
  - expression: "object.spec.replicas <= int(params.data.max)"
    messageExpression: "'replicas must be at most ' + params.data.max"
    reason: Forbidden
"""
    apply(kubectl, policy("limit-policy", params))
    apply(kubectl, binding("limit-binding", "limit-policy", "[Deny]", """  paramRef:
    name: replica-limit
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector: {matchLabels: {env: prod}}
"""))
    try:
        enforced(kubectl, "web", 3, "vap-prod")
        res = kubectl("apply", "-f", "-", input=deployment("web", 3, "vap-prod"), check=False)
        assert res.returncode != 0
        assert res.stderr.strip() == (
            'Error from server (Forbidden): error when creating "STDIN": deployments.apps "web" is forbidden: '
            "ValidatingAdmissionPolicy 'limit-policy' with binding 'limit-binding' denied request: "
            "replicas must be at most 2")
        kubectl("apply", "-f", "-", input=deployment("web", 2, "vap-prod"))
        kubectl("apply", "-f", "-", input=deployment("web", 3, "vap-dev"))  # not selected
        # the param gone: Deny says so
        kubectl("delete", "configmap", "replica-limit", "-n", "vap-prod")
        res = wait_until(lambda: (r := kubectl("apply", "-f", "-", input=deployment("other", 1, "vap-prod"),
                                               check=False)).returncode != 0 and r, timeout=10, what="param gone")
        assert ("failed to configure binding: no params found for policy binding with `Deny` "
                "parameterNotFoundAction") in res.stderr
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", "limit-binding", "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", "limit-policy", "--ignore-not-found")
        kubectl("delete", "namespace", "vap-prod", "vap-dev", "--wait=false")


def test_a_bad_policy_is_refused_and_status_reports_type_warnings(kubectl):
    bad = policy("bad-policy", """  validations:
  - expression: "object.spec.replicas <"
""")
    res = kubectl("apply", "-f", "-", input=bad, check=False)
    assert res.returncode != 0
    assert res.stderr.startswith(
        'The ValidatingAdmissionPolicy "bad-policy" is invalid: spec.validations[0].expression: Invalid value: '
        '"object.spec.replicas <": compilation failed: ERROR: <input>:1:23: Syntax error: ')
    res = kubectl("apply", "-f", "-", input=binding("b", "p", "[Deny, Warn]"), check=False)
    assert res.returncode != 0 and "must not contain both Deny and Warn" in res.stderr
    apply(kubectl, policy("typo-policy", """  validations:
  - expression: "object.replicas > 1"
"""))
    try:
        def status():
            out = json.loads(kubectl("get", "validatingadmissionpolicy", "typo-policy", "-o", "json").stdout)
            return out.get("status", {}).get("observedGeneration") == 1 and out["status"]
        got = wait_until(status, timeout=10, what="status")
        assert got["typeChecking"]["expressionWarnings"] == [{
            "fieldRef": "spec.validations[0].expression",
            "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n"
                       " | object.replicas > 1\n | ......^"}]
    finally:
        kubectl("delete", "validatingadmissionpolicy", "typo-policy", "--ignore-not-found")
