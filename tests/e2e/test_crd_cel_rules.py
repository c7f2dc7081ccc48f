"""CRD validation rules (`x-kubernetes-validations`) through kubectl and the Python client: a
CR that breaks a rule is refused with kube-apiserver's message, a transition rule makes a
field immutable, the status subresource runs the rules too, and a CRD whose rule does not
compile is refused when it is created."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP = "cel.e2e.lks.dev"
P = "spec.validation.openAPIV3Schema"


def _crd(plural: str, spec_schema: dict) -> dict:
    kind = plural[:-1].capitalize()
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": spec_schema,
                                   "status": {"type": "object", "properties": {"ready": {"type": "integer"}},
                                              "x-kubernetes-validations": [
                                                  {"rule": "self.ready >= 0", "message": "ready cannot be negative"}]},
                               }}}}]}}


WIDGET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "name is immutable"}]},
        "replicas": {"type": "integer"},
        "maxReplicas": {"type": "integer"},
        "image": {"type": "string"},
        "memory": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self > 0 && self < 65536", "messageExpression": "'port ' + string(self) + ' is out of range'"}]}},
    },
    "x-kubernetes-validations": [
        {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"},
        {"rule": "!has(self.image) || self.image.startsWith('registry.example/')",
         "reason": "FieldValueForbidden", "fieldPath": ".image", "message": "images come from registry.example"},
        {"rule": "!has(self.memory) || quantity(self.memory).isLessThan(quantity('2Gi'))"},
    ],
}


@pytest.fixture(scope="module")
def widgets(lks):
    crd = _crd("widgets", WIDGET)
    lks.kubectl("create", "-f", "-", input=json.dumps(crd))
    lks.kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=30s")
    yield
    lks.kubectl("delete", "crd", f"widgets.{GROUP}", "--wait=false", check=False)


def _widget(cr_name: str, namespace: str, **spec) -> str:
    return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": "Widget",
                       "metadata": {"name": cr_name, "namespace": namespace}, "spec": spec})


def test_a_cr_that_breaks_a_rule_is_refused(widgets, kubectl, namespace):
    res = kubectl("create", "-f", "-", input=_widget("bad", namespace, name="a", replicas=5, maxReplicas=3),
                  check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        'The Widget "bad" is invalid: spec: Invalid value: "object": replicas must not exceed maxReplicas')
    kubectl("create", "-f", "-", input=_widget("good", namespace, name="a", replicas=1, maxReplicas=3))


def test_every_broken_rule_is_reported(widgets, kubectl, namespace):
    res = kubectl("create", "-f", "-", check=False, input=_widget(
        "worse", namespace, replicas=1, maxReplicas=1, image="docker.io/x", memory="4Gi", ports=[80, 70000]))
    assert res.returncode != 0
    assert res.stderr.strip() == (
        'The Widget "worse" is invalid: \n'
        '* spec.image: Forbidden: images come from registry.example\n'
        '* spec: Invalid value: "object": failed rule: !has(self.memory) || '
        "quantity(self.memory).isLessThan(quantity('2Gi'))\n"
        '* spec.ports[1]: Invalid value: "integer": port 70000 is out of range')


def test_a_transition_rule_makes_a_field_immutable(widgets, kubectl, namespace):
    kubectl("create", "-f", "-", input=_widget("fixed", namespace, name="first", replicas=1, maxReplicas=3))
    res = kubectl("patch", "widget", "fixed", "-n", namespace, "--type=merge", "-p",
                  json.dumps({"spec": {"name": "second"}}), check=False)
    assert res.returncode != 0
    assert 'spec.name: Invalid value: "string": name is immutable' in res.stderr
    kubectl("patch", "widget", "fixed", "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"replicas": 2}}))
    got = json.loads(kubectl("get", "widget", "fixed", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["name"] == "first" and got["spec"]["replicas"] == 2


def test_status_writes_run_the_rules(widgets, api, namespace):
    crs = client.CustomObjectsApi(api)
    crs.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", json.loads(
        _widget("st", namespace, replicas=1, maxReplicas=1)))
    with pytest.raises(ApiException) as err:
        crs.patch_namespaced_custom_object_status(GROUP, "v1", namespace, "widgets", "st", {"status": {"ready": -1}})
    assert err.value.status == 422
    status = json.loads(err.value.body)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "field": "status", "message": 'Invalid value: "object": ready cannot be negative'}]
    crs.patch_namespaced_custom_object_status(GROUP, "v1", namespace, "widgets", "st", {"status": {"ready": 1}})


def test_a_crd_whose_rule_does_not_compile_is_refused(kubectl):
    crd = _crd("gadgets", {"type": "object", "properties": {"size": {"type": "integer"}},
                           "x-kubernetes-validations": [{"rule": "self.size < limit"}]})
    res = kubectl("create", "-f", "-", input=json.dumps(crd), check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        f'The CustomResourceDefinition "gadgets.{GROUP}" is invalid: '
        f'{P}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule'
        '{Rule:"self.size < limit", Message:"", MessageExpression:"", '
        'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: '
        "compilation failed: ERROR: <input>:1:13: undeclared reference to 'limit' (in container '')\n"
        " | self.size < limit\n"
        " | ............^")
    assert kubectl("get", "crd", f"gadgets.{GROUP}", check=False).returncode != 0
