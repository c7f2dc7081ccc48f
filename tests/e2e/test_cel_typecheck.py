"""The CEL type checker and cost limits through kubectl: a CRD whose rule does not type-check, is
not a bool, or costs too much is refused with kube-apiserver's words; a ValidatingAdmissionPolicy
with a misspelt field shows cel-go's warning in `kubectl get -o yaml`; a custom resource or a
ConfigMap large enough that a rule or policy would exceed the per-call cost limit is refused."""

from __future__ import annotations

import json

import yaml

from .conftest import wait_until

GROUP = "typecheck.e2e.lks.dev"
P = "spec.validation.openAPIV3Schema"


def _crd(plural: str, spec_schema: dict) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].capitalize()},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "properties": {"spec": spec_schema}}}}]}}


def test_a_crd_rule_that_does_not_type_check_is_refused(kubectl):
    crd = _crd("typos", {"type": "object", "properties": {"name": {"type": "string"}, "replicas": {"type": "integer"}},
                         "x-kubernetes-validations": [{"rule": "self.name + self.replicas == 'x'"}]})
    res = kubectl("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert res.returncode != 0
    assert (f'The CustomResourceDefinition "typos.{GROUP}" is invalid: '
            f"{P}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
            'apiextensions.ValidationRule{Rule:"self.name + self.replicas == \'x\'"') in res.stderr
    assert ("compilation failed: ERROR: <input>:1:11: found no matching overload for '_+_' applied to "
            "'(string, int)'\n | self.name + self.replicas == 'x'\n | ..........^") in res.stderr


def test_a_crd_rule_that_is_not_a_bool_is_refused(kubectl):
    crd = _crd("nobools", {"type": "object", "properties": {"replicas": {"type": "integer"}},
                           "x-kubernetes-validations": [{"rule": "self.replicas + 1"}]})
    res = kubectl("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert res.returncode != 0
    assert "cel expression must evaluate to a bool" in res.stderr


def test_a_policy_with_a_misspelt_field_shows_the_type_warning(kubectl):
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "typecheck-replicass"},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                         "operations": ["CREATE", "UPDATE"],
                                                         "resources": ["deployments"]}]},
                 "validations": [{"expression": "object.spec.replicass > 1"}]}}
    kubectl("apply", "-f", "-", input=json.dumps(policy))
    try:
        def status():
            out = yaml.safe_load(kubectl("get", "validatingadmissionpolicy", "typecheck-replicass", "-o",
                                         "yaml").stdout)
            return (out.get("status") or {}).get("typeChecking")
        got = wait_until(status, timeout=20, what="typeChecking")
        assert got == {"expressionWarnings": [{
            "fieldRef": "spec.validations[0].expression",
            "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:12: undefined field 'replicass'\n"
                       " | object.spec.replicass > 1\n | ...........^"}]}
    finally:
        kubectl("delete", "validatingadmissionpolicy", "typecheck-replicass", "--ignore-not-found")


PAIRS = "self.tags.all(x, self.tags.exists(y, x == y))"


def test_a_crd_rule_over_the_cost_limit_is_refused(kubectl):
    crd = _crd("costlies", {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                            "x-kubernetes-validations": [{"rule": PAIRS}]})
    res = kubectl("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert res.returncode != 0
    assert (f"{P}.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget "
            "by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength "
            "where arrays, maps, and strings are declared)") in res.stderr
    assert (f"{P}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds "
            "budget by factor of more than 100x") in res.stderr


def test_a_custom_resource_over_the_per_call_limit_is_refused(kubectl):
    crd = _crd("pairs", {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 900, "items": {
        "type": "string", "maxLength": 10}}}, "x-kubernetes-validations": [{"rule": PAIRS}]})
    kubectl("apply", "-f", "-", input=json.dumps(crd))
    try:
        kubectl("wait", "--for=condition=Established", f"crd/pairs.{GROUP}", "--timeout=30s")

        def cr(name: str, n: int) -> str:
            return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": "Pair",
                               "metadata": {"name": name, "namespace": "default"},
                               "spec": {"tags": [str(i) for i in range(n)]}})
        kubectl("create", "-f", "-", input=cr("small", 20))
        res = kubectl("create", "-f", "-", input=cr("large", 400), check=False)
        assert res.returncode != 0
        assert res.stderr.strip() == (
            f'The Pair "large" is invalid: spec: Invalid value: "object": \'operation cancelled: actual cost limit '
            f"exceeded': call cost exceeds limit for rule: {PAIRS}")
    finally:
        kubectl("delete", "crd", f"pairs.{GROUP}", "--ignore-not-found", "--wait=false")


def test_a_policy_expression_over_the_per_call_limit_denies(kubectl):
    expression = "object.data.all(k, object.data.exists(j, object.data[j] == object.data[k]))"
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cel-cost", "labels": {"cel-cost": "yes"}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "cel-cost"},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                          "operations": ["CREATE"], "resources": ["configmaps"]}]},
                  "validations": [{"expression": expression}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "cel-cost"},
         "spec": {"policyName": "cel-cost", "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {"cel-cost": "yes"}}}}}]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    try:
        def configmap(name: str, n: int) -> str:
            return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name, "namespace": "cel-cost"},
                               "data": {f"k{i}": "v" for i in range(n)}})

        kubectl("create", "-f", "-", input=configmap("small", 10))

        def refused():  # a server-side dry run goes through admission, once the policy is in force
            res = kubectl("create", "--dry-run=server", "-f", "-", input=configmap("large", 400), check=False)
            return res if res.returncode != 0 else None
        res = wait_until(refused, timeout=20, what="the policy to refuse")
        assert res.returncode != 0
        assert res.stderr.strip() == (
            'The configmaps "large" is invalid: : ValidatingAdmissionPolicy \'cel-cost\' with binding \'cel-cost\' '
            f"denied request: expression '{expression}' resulted in error: operation cancelled: actual cost limit "
            "exceeded")
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", "cel-cost", "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", "cel-cost", "--ignore-not-found")
        kubectl("delete", "namespace", "cel-cost", "--wait=false", "--ignore-not-found")
