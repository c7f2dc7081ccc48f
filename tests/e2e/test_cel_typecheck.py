"""The CEL type checker and cost limits through kubectl: a CRD whose rule does not type-check, is
not a bool, or costs too much is refused with kube-apiserver's words; a ValidatingAdmissionPolicy
with a misspelt field shows cel-go's warning in `kubectl get -o yaml`; a custom resource whose
rules run out of the runtime cost budget is refused."""

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
