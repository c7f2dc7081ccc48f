"""CustomResourceDefinitions end to end: establishment, discovery, structural schema
(validation, pruning, defaults), status and scale subresources, several versions, deletion."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.test.lks.dev"},
    "spec": {
        "group": "test.lks.dev",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
        "versions": [
            {"name": "v1", "served": True, "storage": True,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                      "statusReplicasPath": ".status.replicas"}},
             "additionalPrinterColumns": [{"name": "Size", "type": "string", "jsonPath": ".spec.size"}],
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                 "spec": {"type": "object", "required": ["size"], "properties": {
                     "size": {"type": "string", "enum": ["small", "large"]},
                     "replicas": {"type": "integer", "minimum": 0, "default": 1},
                     "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                 "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}},
            {"name": "v1beta1", "served": True, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
        ],
    },
}


@pytest.fixture
def gadgets(api):
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(CRD)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(CRD["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in ((crd.status and crd.status.conditions) or [])):
            break
        time.sleep(0.05)
    yield client.CustomObjectsApi(api)
    try:
        ext.delete_custom_resource_definition(CRD["metadata"]["name"])
    except ApiException as err:
        if err.status != 404:
            raise
    while time.monotonic() < deadline + 10:
        try:
            ext.read_custom_resource_definition(CRD["metadata"]["name"])
        except ApiException:
            break
        time.sleep(0.05)


def _gadget(name: str, **spec) -> dict:
    return {"apiVersion": "test.lks.dev/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def test_crd_is_established_and_discoverable(gadgets, kubectl, api):
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition("gadgets.test.lks.dev")
    types = {c.type: c.status for c in crd.status.conditions}
    assert types == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.accepted_names.kind == "Gadget"
    assert "customresourcecleanup.apiextensions.k8s.io" in crd.metadata.finalizers
    out = kubectl("api-resources", "--api-group=test.lks.dev", "--no-headers").stdout
    assert "gadgets" in out and "gd" in out and "Gadget" in out


def test_schema_validation_pruning_and_defaults(gadgets, namespace):
    made = gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets",
                                                   _gadget("g1", size="small", unknown="x", free={"any": 1}))
    assert made["spec"] == {"size": "small", "replicas": 1, "free": {"any": 1}}
    assert made["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as err:
        gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", _gadget("g2", size="huge"))
    assert err.value.status == 422
    assert 'spec.size: Unsupported value: \\"huge\\"' in err.value.body or 'Unsupported value: "huge"' in err.value.body
    with pytest.raises(ApiException) as err:
        gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", _gadget("g3"))
    assert err.value.status == 422 and "spec.size: Required value" in err.value.body
    with pytest.raises(ApiException) as err:
        gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets",
                                                _gadget("g4", size="small", replicas=-1))
    assert err.value.status == 422 and "should be greater than or equal to 0" in err.value.body


def test_status_and_scale_subresources(gadgets, namespace, kubectl):
    gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", _gadget("s", size="large"))
    st = gadgets.patch_namespaced_custom_object_status("test.lks.dev", "v1", namespace, "gadgets", "s",
                                                       {"status": {"replicas": 2}, "spec": {"size": "small"}})
    assert st["status"] == {"replicas": 2} and st["spec"]["size"] == "large"
    kubectl("scale", "gadget", "s", "--replicas=4", "-n", namespace)
    got = gadgets.get_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", "s")
    assert got["spec"]["replicas"] == 4 and got["metadata"]["generation"] == 2
    scale = gadgets.get_namespaced_custom_object_scale("test.lks.dev", "v1", namespace, "gadgets", "s")
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 2


def test_versions_share_storage(gadgets, namespace):
    gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", _gadget("v", size="small"))
    beta = gadgets.get_namespaced_custom_object("test.lks.dev", "v1beta1", namespace, "gadgets", "v")
    assert beta["apiVersion"] == "test.lks.dev/v1beta1" and beta["spec"]["size"] == "small"


def test_merge_patch_and_strategic_refused(gadgets, namespace, kubectl):
    gadgets.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "gadgets", _gadget("p", size="small"))
    kubectl("patch", "gadget", "p", "-n", namespace, "--type=merge", "-p", '{"spec":{"size":"large"}}')
    got = json.loads(kubectl("get", "gadget", "p", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["size"] == "large"
    res = kubectl("patch", "gadget", "p", "-n", namespace, "--type=strategic", "-p", '{"spec":{"size":"small"}}',
                  check=False)
    assert res.returncode != 0 and "UnsupportedMediaType" in res.stderr or "unknown format" in res.stderr


def test_deleting_the_crd_deletes_its_objects(api, namespace):
    ext = client.ApiextensionsV1Api(api)
    crd = json.loads(json.dumps(CRD).replace("gadgets", "doodads").replace("Gadget", "Doodad")
                     .replace("gadget", "doodad").replace('"gd"', '"dd"'))
    ext.create_custom_resource_definition(crd)
    objs = client.CustomObjectsApi(api)
    deadline = time.monotonic() + 10
    while True:
        try:
            objs.create_namespaced_custom_object("test.lks.dev", "v1", namespace, "doodads",
                                                 {"apiVersion": "test.lks.dev/v1", "kind": "Doodad",
                                                  "metadata": {"name": "d"}, "spec": {"size": "small"}})
            break
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    ext.delete_custom_resource_definition("doodads.test.lks.dev")
    while time.monotonic() < deadline + 10:
        try:
            ext.read_custom_resource_definition("doodads.test.lks.dev")
        except ApiException as err:
            assert err.status == 404
            break
        time.sleep(0.05)
    else:
        raise AssertionError("CRD not deleted")
    ext.create_custom_resource_definition(crd)
    time.sleep(0.3)
    listed = objs.list_namespaced_custom_object("test.lks.dev", "v1", namespace, "doodads")
    assert listed["items"] == []
    ext.delete_custom_resource_definition("doodads.test.lks.dev")
