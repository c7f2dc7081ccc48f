"""CRDs in discovery and OpenAPI, through kubectl and the Python client: several CRDs of one
group (every operator's layout) make one entry per group-version, and a schema that keeps
unknown fields is published in `/openapi/v2` so that kubectl's client-side validation lets
those fields through."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic

from .conftest import raw

GROUP = "fleet.e2e.lks.dev"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _crd(plural: str, kind: str, versions: list[str], storage: str, group: str = GROUP, **schema) -> str:
    schema = schema or {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer"}}}}}
    return json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                 "versions": [{"name": v, "served": True, "storage": v == storage,
                               "schema": {"openAPIV3Schema": schema}} for v in versions]}})


@pytest.fixture(scope="module")
def fleet(lks):
    """Three CRDs of one group, declaring different versions and storage versions."""
    crds = [_crd("alphas", "Alpha", ["v1", "v1beta1"], "v1beta1"), _crd("betas", "Beta", ["v1"], "v1"),
            _crd("gammas", "Gamma", ["v1alpha1", "v1", "v2beta1"], "v1")]
    names = [f"{p}.{GROUP}" for p in ("alphas", "betas", "gammas")]
    for crd in crds:
        lks.kubectl("create", "-f", "-", input=crd)
    lks.kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in names), "--timeout=20s")
    yield
    lks.kubectl("delete", "crd", *names, "--wait=false", check=False)


def _raw(api: client.ApiClient, path: str, accept: str = "application/json"):
    resp = raw(api, "GET", path, Accept=accept)
    assert resp.status == 200, resp.data
    return json.loads(resp.data), resp.headers


def test_kubectl_serves_every_kind_of_a_shared_group(fleet, kubectl, namespace):
    for kind in ("Alpha", "Beta", "Gamma"):
        kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(
            {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "x"}, "spec": {"size": 1}}))
    for resource in ("alpha", "betas", "gamma.v1." + GROUP):
        out = kubectl("get", resource, "x", "-n", namespace, "-o", "jsonpath={.kind} {.apiVersion}").stdout
        assert out.split()[1] == f"{GROUP}/v1"
    listed = kubectl("api-resources", f"--api-group={GROUP}", "--no-headers", "-o", "name").stdout.split()
    assert listed == [f"alphas.{GROUP}", f"betas.{GROUP}", f"gammas.{GROUP}"]


def test_legacy_discovery_lists_a_group_version_once(fleet, api):
    groups, _ = _raw(api, "/apis")
    mine = [g for g in groups["groups"] if g["name"] == GROUP]
    assert len(mine) == 1
    versions = ["v1", "v2beta1", "v1beta1", "v1alpha1"]  # GA, then beta, then alpha; higher first
    assert [v["version"] for v in mine[0]["versions"]] == versions
    assert mine[0]["preferredVersion"] == {"groupVersion": f"{GROUP}/v1", "version": "v1"}
    group, _ = _raw(api, f"/apis/{GROUP}")
    assert [v["version"] for v in group["versions"]] == versions
    v1, _ = _raw(api, f"/apis/{GROUP}/v1")
    assert [r["name"] for r in v1["resources"]] == ["alphas", "betas", "gammas"]
    beta1, _ = _raw(api, f"/apis/{GROUP}/v1beta1")
    assert [r["name"] for r in beta1["resources"]] == ["alphas"]
    # each resource's storage version hash names its own CRD's storage version
    hashes = {r["name"]: r["storageVersionHash"] for r in v1["resources"]}
    assert hashes["alphas"] == beta1["resources"][0]["storageVersionHash"]
    assert len(set(hashes.values())) == 3


def test_aggregated_discovery_lists_a_group_version_once(fleet, api):
    doc, headers = _raw(api, "/apis", AGGREGATED)
    assert headers["Content-Type"] == AGGREGATED
    mine = [g for g in doc["items"] if g["metadata"]["name"] == GROUP]
    assert len(mine) == 1
    got = {v["version"]: [r["resource"] for r in v["resources"]] for v in mine[0]["versions"]}
    assert list(got) == ["v1", "v2beta1", "v1beta1", "v1alpha1"]
    assert got == {"v1": ["alphas", "betas", "gammas"], "v2beta1": ["gammas"], "v1beta1": ["alphas"],
                   "v1alpha1": ["gammas"]}


def test_python_dynamic_client_finds_each_kind(fleet, api, namespace):
    dyn = dynamic.DynamicClient(api)
    alphas = dyn.resources.get(api_version=f"{GROUP}/v1", kind="Alpha")
    betas = dyn.resources.get(api_version=f"{GROUP}/v1", kind="Beta")
    assert (alphas.name, betas.name) == ("alphas", "betas")
    betas.create(body={"apiVersion": f"{GROUP}/v1", "kind": "Beta", "metadata": {"name": "d"}}, namespace=namespace)
    assert betas.get(name="d", namespace=namespace).metadata.name == "d"
    assert dyn.resources.get(api_version=f"{GROUP}/v1alpha1", kind="Gamma").name == "gammas"


FREE_GROUP = "free.e2e.lks.dev"
FREE_SCHEMA = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
               "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}
NESTED_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "required": ["name", "opt"], "properties": {
    "name": {"type": "string"},
    "opt": {"type": "string", "nullable": True},
    "bag": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"known": {"type": "string"}}},
    "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
    "size": {"type": "integer", "default": 3}}}}}


@pytest.fixture(scope="module")
def free(lks):
    names = [f"frees.{FREE_GROUP}", f"nests.{FREE_GROUP}"]
    lks.kubectl("create", "-f", "-", input=_crd("frees", "Free", ["v1"], "v1", FREE_GROUP, **FREE_SCHEMA))
    lks.kubectl("create", "-f", "-", input=_crd("nests", "Nest", ["v1"], "v1", FREE_GROUP, **NESTED_SCHEMA))
    lks.kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in names), "--timeout=20s")
    yield
    lks.kubectl("delete", "crd", *names, "--wait=false", check=False)


def test_kubectl_applies_a_list_of_objects_that_keep_unknown_fields(free, kubectl, namespace):
    items = [{"apiVersion": f"{FREE_GROUP}/v1", "kind": "Free", "metadata": {"name": f"f{i}"},
              "spec": {"size": i}, "anything": {"goes": i}} for i in range(2)]
    res = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                         "items": items}))
    assert "free.free.e2e.lks.dev/f0 created" in res.stdout and "free.free.e2e.lks.dev/f1 created" in res.stdout
    got = json.loads(kubectl("get", "free", "f1", "-n", namespace, "-o", "json").stdout)
    assert got["anything"] == {"goes": 1}


def test_kubectl_validates_nested_schemas_as_upstream_publishes_them(free, kubectl, namespace):
    nest = {"apiVersion": f"{FREE_GROUP}/v1", "kind": "Nest", "metadata": {"name": "n"},
            "spec": {"name": "n", "opt": None, "bag": {"extra": [1, 2]}, "port": "http"}}
    res = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                          "items": [nest]}))
    assert "nest.free.e2e.lks.dev/n created" in res.stdout
    # a field the schema does not allow is still refused client-side where the schema is closed
    bad = {**nest, "metadata": {"name": "m"}, "spec": {"name": "m", "opt": "x", "nope": 1}}
    res = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                          "items": [bad]}), check=False)
    assert res.returncode != 0 and 'unknown field "nope" in dev.lks.e2e.free.v1.Nest.spec' in res.stderr


def test_openapi_v2_publishes_crd_schemas_as_upstream(free, kubectl):
    defs = json.loads(kubectl("get", "--raw", "/openapi/v2").stdout)["definitions"]
    gvk = {"group": FREE_GROUP, "version": "v1"}
    assert defs["dev.lks.e2e.free.v1.Free"] == {
        "type": "object", "x-kubernetes-group-version-kind": [{**gvk, "kind": "Free"}]}
    spec = defs["dev.lks.e2e.free.v1.Nest"]["properties"]["spec"]
    assert spec["required"] == ["name"]
    assert spec["properties"]["opt"] == {}
    assert spec["properties"]["bag"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert spec["properties"]["port"] == {"x-kubernetes-int-or-string": True}
    assert spec["properties"]["size"] == {"type": "integer"}
    # OpenAPI v3 keeps the schema whole
    v3 = json.loads(kubectl("get", "--raw", f"/openapi/v3/apis/{FREE_GROUP}/v1").stdout)["components"]["schemas"]
    spec3 = v3["dev.lks.e2e.free.v1.Nest"]["properties"]["spec"]
    assert spec3["properties"]["opt"] == {"type": "string", "nullable": True}
    assert spec3["properties"]["bag"]["properties"] == {"known": {"type": "string"}}
    assert spec3["properties"]["size"]["default"] == 3
    assert "spec" in v3["dev.lks.e2e.free.v1.Free"]["properties"]


def test_a_terminating_crd_offers_only_the_verbs_that_finish_its_cleanup(kubectl, api, namespace):
    group = "ending.e2e.lks.dev"
    kubectl("create", "-f", "-", input=_crd("ends", "End", ["v1"], "v1", group))
    kubectl("wait", "--for=condition=Established", f"crd/ends.{group}", "--timeout=20s")
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(
        {"apiVersion": f"{group}/v1", "kind": "End", "metadata": {"name": "held", "finalizers": ["e2e.lks.dev/hold"]}}))
    kubectl("delete", "crd", f"ends.{group}", "--wait=false")
    kubectl("wait", "--for=condition=Terminating", f"crd/ends.{group}", "--timeout=20s")
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"ends.{group}")
    cond = next(c for c in crd.status.conditions if c.type == "Terminating")
    assert (cond.reason, cond.message) == ("InstanceDeletionInProgress", "CustomResource deletion is in progress")
    resources, _ = _raw(api, f"/apis/{group}/v1")
    assert resources["resources"][0]["verbs"] == ["delete", "deletecollection", "get", "list", "watch"]
    # no new objects while it goes (upstream's CR handler: 405 for a POST, 403 for an apply)
    refused = "create not allowed while custom resource definition is terminating"
    with pytest.raises(client.ApiException) as err:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            group, "v1", namespace, "ends", {"apiVersion": f"{group}/v1", "kind": "End", "metadata": {"name": "new"}})
    assert err.value.status == 405 and json.loads(err.value.body)["message"] == refused
    applied = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", check=False, input=json.dumps(
        {"apiVersion": f"{group}/v1", "kind": "End", "metadata": {"name": "new"}}))
    assert applied.returncode != 0 and f'ends.{group} "new" is forbidden: {refused}' in applied.stderr
    kubectl("patch", "end", "held", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", f"crd/ends.{group}", "--timeout=30s")
