"""CRDs that kube-apiserver refuses are refused with its 422 and field paths, through kubectl
and the Python client: unknown schema types, patterns Go cannot compile, non-structural
schemas, protected groups without approval, and a version set that loses a stored version."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

P = "spec.validation.openAPIV3Schema"


def _crd(plural: str, spec_props: dict, group: str = "checks.e2e.lks.dev", versions=("v1",)) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].capitalize()},
                 "versions": [{"name": v, "served": True, "storage": i == 0, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": spec_props}}}}}
                     for i, v in enumerate(versions)]}}


def test_kubectl_create_refuses_an_unknown_schema_type(kubectl):
    res = kubectl("create", "-f", "-", input=json.dumps(_crd("frobs", {"x": {"type": "frob"}})), check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        'The CustomResourceDefinition "frobs.checks.e2e.lks.dev" is invalid: '
        f'{P}.properties[spec].properties[x].type: Unsupported value: "frob": supported values: "array", "boolean", '
        '"integer", "number", "object", "string"')
    assert kubectl("get", "crd", "frobs.checks.e2e.lks.dev", check=False).returncode != 0


def test_python_client_gets_422_for_a_pattern_go_cannot_compile(api):
    ext = client.ApiextensionsV1Api(api)
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(_crd("patterns", {"name": {"type": "string", "pattern": "[a-z"}}))
    assert err.value.status == 422
    status = json.loads(err.value.body)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": f"{P}.properties[spec].properties[name].pattern",
        "message": "Invalid value: \"[a-z\": must be a valid regular expression, but isn't: error parsing regexp: "
                   "missing closing ]: `[a-z`"}]


def test_non_structural_schemas_and_protected_groups_are_refused(api):
    ext = client.ApiextensionsV1Api(api)
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(_crd("loose", {"x": {}, "l": {"type": "array"}}))
    causes = [(c["field"], c["message"]) for c in json.loads(err.value.body)["details"]["causes"]]
    assert causes == [(f"{P}.properties[spec].properties[l].items", "Required value: must be specified"),
                      (f"{P}.properties[spec].properties[x].type",
                       "Required value: must not be empty for specified object fields")]
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(_crd("gizmos", {}, group="gizmos.k8s.io"))
    assert err.value.status == 422
    assert "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval " \
           'annotation "api-approved.kubernetes.io"' in json.loads(err.value.body)["message"]


def test_a_stored_version_cannot_leave_spec_versions(kubectl):
    crd = _crd("stores", {"size": {"type": "integer"}})
    made = json.loads(kubectl("create", "-o", "json", "-f", "-", input=json.dumps(crd)).stdout)
    assert made["status"] == {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}
    try:
        kubectl("wait", "--for=condition=Established", "crd/stores.checks.e2e.lks.dev", "--timeout=20s")
        crd["spec"]["versions"][0]["name"] = "v2"
        res = kubectl("replace", "-f", "-", input=json.dumps(crd), check=False)
        assert res.returncode != 0
        assert ('status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was previously a '
                'storage version') in res.stderr
        # adding a version and moving storage to it is fine, and v2 is stored from then on
        crd["spec"]["versions"] = [{**crd["spec"]["versions"][0], "name": "v1", "storage": False},
                                   {**crd["spec"]["versions"][0], "name": "v2", "storage": True}]
        kubectl("replace", "-f", "-", input=json.dumps(crd))
        got = json.loads(kubectl("get", "crd", "stores.checks.e2e.lks.dev", "-o", "json").stdout)
        assert got["status"]["storedVersions"] == ["v1", "v2"]
    finally:
        kubectl("delete", "crd", "stores.checks.e2e.lks.dev", "--wait=false", check=False)
