"""JSON patch, JSON merge patch and strategic merge patch on plain objects."""

from __future__ import annotations

import pytest

from lks.kube import catalog, errors, patch, strategicpatch
from lks.kube.schema import Schema


def test_merge_patch():
    assert patch.merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3}, "d": [2]}


def test_json_patch_ops():
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = patch.json_patch(doc, [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/b/c", "value": 2},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "test", "path": "/d", "value": 2},
        {"op": "remove", "path": "/a/0"},
    ])
    assert out == {"a": [2, 3], "b": {}, "d": 2}
    assert doc == {"a": [1, 2], "b": {"c": 1}}  # the input is untouched


def test_json_patch_failures_are_client_errors():
    with pytest.raises(errors.APIError) as err:
        patch.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert err.value.code == 422
    with pytest.raises(errors.APIError) as err:
        patch.json_patch({"a": 1}, {"op": "add"})
    assert err.value.code == 400


@pytest.fixture(scope="module")
def pod_schema() -> Schema:
    return Schema.of(catalog.load("1.36").schemas, "io.k8s.api.core.v1.Pod")


def _pod(*containers, **spec):
    return {"metadata": {"name": "p"}, "spec": {"containers": list(containers), **spec}}


def test_smp_merges_containers_by_name(pod_schema):
    cur = _pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    out = strategicpatch.apply(cur, {"spec": {"containers": [{"name": "b", "image": "z"}]}}, pod_schema)
    assert out["spec"]["containers"] == [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]


def test_smp_delete_and_replace_directives(pod_schema):
    cur = _pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    out = strategicpatch.apply(cur, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}, pod_schema)
    assert out["spec"]["containers"] == [{"name": "b", "image": "y"}]
    out = strategicpatch.apply(cur, {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "z"}]}},
                               pod_schema)
    assert out["spec"]["containers"] == [{"name": "c", "image": "z"}]


def test_smp_replaces_lists_without_strategy(pod_schema):
    cur = _pod({"name": "a", "image": "x", "args": ["1", "2"]})
    out = strategicpatch.apply(cur, {"spec": {"containers": [{"name": "a", "args": ["3"]}]}}, pod_schema)
    assert out["spec"]["containers"][0]["args"] == ["3"]


def test_smp_primitive_merge_list_and_delete_from_primitive_list():
    schema = Schema.of(catalog.load("1.36").schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    out = strategicpatch.apply({"finalizers": ["a", "b"]}, {"finalizers": ["c"]}, schema)
    assert out["finalizers"] == ["a", "b", "c"]
    out = strategicpatch.apply({"finalizers": ["a", "b"]}, {"$deleteFromPrimitiveList/finalizers": ["a"]}, schema)
    assert out["finalizers"] == ["b"]


def test_smp_set_element_order(pod_schema):
    cur = _pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    out = strategicpatch.apply(cur, {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
                               pod_schema)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "a"]


def test_smp_retain_keys():
    schema = Schema.of(catalog.load("1.36").schemas, "io.k8s.api.apps.v1.Deployment")
    cur = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = strategicpatch.apply(cur, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, schema)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
