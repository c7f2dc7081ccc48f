"""OpenAPI documents (`lks.kube.openapi`): the v3 index and per-group-version documents, the v2
document in JSON and protobuf, caching headers, and the shapes kubectl relies on."""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import orjson
import pytest

from lks.kube import catalog, crds, openapi, openapi_pb

PREFIX = "/clusters/c1"
CRD = {
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com", "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
        "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                          "spec": {"type": "object", "properties": {
                              "cronSpec": {"type": "string", "description": "when to run"},
                              "replicas": {"type": "integer", "nullable": True}}}}}}}],
    },
    "status": {"conditions": [{"type": "Established", "status": "True"}]},
}


@pytest.fixture(scope="module")
def cat() -> catalog.Catalog:
    return catalog.load("1.36")


def get(cat: catalog.Catalog, subpath: str, query: dict | None = None, accept: str | None = "application/json",
        **kw: Any) -> tuple[int, dict[str, str], bytes]:
    return openapi.serve(cat, PREFIX, subpath, query or {}, accept, **kw)


def v3(cat: catalog.Catalog, key: str) -> dict:
    status, _, body = get(cat, f"v3/{key}")
    assert status == 200
    return orjson.loads(body)


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op


# -- the index -----------------------------------------------------------------------------


def test_root_index_lists_every_group_version_with_hashed_urls(cat):
    status, headers, body = get(cat, "v3")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache, private"
    assert headers["ETag"] == '"' + hashlib.sha512(body).hexdigest().upper() + '"'
    paths = orjson.loads(body)["paths"]
    for key in ("api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/autoscaling/v2",
                "apis/rbac.authorization.k8s.io/v1", "version"):
        url = paths[key]["serverRelativeURL"]
        path, _, hashed = url.partition("?hash=")
        assert path == f"{PREFIX}/openapi/v3/{key}"
        _, _, doc = get(cat, f"v3/{key}")
        assert hashed == hashlib.sha512(doc).hexdigest().upper() and len(hashed) == 128


def test_documents_are_built_once_per_catalog(cat):
    docs = openapi.documents(cat)
    assert openapi.documents(cat) is docs and cat.memo["openapi"] is docs
    assert docs.v3("apis/apps/v1") is docs.v3("apis/apps/v1")


# -- caching and negotiation -----------------------------------------------------------------


def test_hashed_documents_are_immutable_and_stale_hashes_redirect(cat):
    doc = openapi.documents(cat).v3("apis/apps/v1")
    status, headers, body = get(cat, "v3/apis/apps/v1", {"hash": doc.hash})
    assert status == 200 and body == doc.body
    assert headers["Cache-Control"] == "public, immutable" and headers["Expires"].endswith("GMT")
    assert headers["ETag"] == f'"{doc.hash}"' and headers["Vary"] == "Accept"
    status, headers, _ = get(cat, "v3/apis/apps/v1")
    assert status == 200 and headers["Cache-Control"] == "no-cache, private"
    status, headers, _ = get(cat, "v3/apis/apps/v1", {"hash": "0" * 128})
    assert status == 301 and headers["Location"] == f"{PREFIX}/openapi/v3/apis/apps/v1?hash={doc.hash}"
    status, _, body = get(cat, "v3/apis/apps/v1", if_none_match=f'"{doc.hash}"')
    assert status == 304 and body == b""


@pytest.mark.parametrize("subpath", ["v3/apis/nope/v1", "v3/apis/apps/v9", "v4", "v3/api/v1/extra"])
def test_unknown_documents_are_404_status(cat, subpath):
    status, headers, body = get(cat, subpath)
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert orjson.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "the server could not find the requested resource",
                                  "reason": "NotFound", "details": {}, "code": 404}


@pytest.mark.parametrize("accept, status", [
    (None, 200), ("", 200), ("*/*", 200), ("application/json", 200), ("application/*;q=0.5", 200),
    ("application/com.github.proto-openapi.spec.v3@v1.0+protobuf", 406), ("application/json;q=0", 406),
])
def test_v3_negotiation(cat, accept, status):
    got, headers, body = get(cat, "v3/api/v1", accept=accept)
    assert got == status
    if status == 406:
        assert orjson.loads(body)["reason"] == "NotAcceptable"


def test_v2_json_gzip_and_protobuf(cat):
    status, headers, body = get(cat, "v2", accept="application/json", accept_encoding="gzip, deflate")
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/json"
    doc = orjson.loads(gzip.decompress(body))
    assert doc["swagger"] == "2.0" and doc["info"]["title"] == "Kubernetes"
    for accept in ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                   "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"):
        status, headers, pb = get(cat, "v2", accept=accept)
        assert status == 200 and headers["Content-Type"] == openapi.V2_PROTOBUF
        fields = decode(pb)
        assert fields[1] == [b"2.0"]
        path_names = {decode(named)[1][0] for named in decode(fields[8][0])[2]}
        assert b"/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in path_names
        definitions = {decode(d)[1][0] for d in decode(fields[9][0])[1]}
        assert b"io.k8s.api.core.v1.Pod" in definitions
    assert get(cat, "v2", accept="text/html")[0] == 406


# -- group-version documents -------------------------------------------------------------------


def test_group_version_document_shape(cat):
    doc = v3(cat, "apis/apps/v1")
    assert doc["openapi"] == "3.0.0" and doc["info"] == {"title": "Kubernetes", "version": "unversioned"}
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    patch = item["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert [p["name"] for p in patch["parameters"]] == ["dryRun", "fieldManager", "fieldValidation", "force"]
    assert sorted(patch["requestBody"]["content"]) == [
        "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json"]
    assert patch["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"}
    coll = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert coll["get"]["operationId"] == "listAppsV1NamespacedDeployment"
    assert coll["post"]["operationId"] == "createAppsV1NamespacedDeployment"
    assert [p["name"] for p in coll["post"]["parameters"]] == ["dryRun", "fieldManager", "fieldValidation"]
    assert coll["delete"]["operationId"] == "deleteAppsV1CollectionNamespacedDeployment"
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"]
    assert scale["operationId"] == "replaceAppsV1NamespacedDeploymentScale"
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    watch = doc["paths"]["/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}"]["get"]
    assert watch["operationId"] == "watchAppsV1NamespacedDeployment" and watch["x-kubernetes-action"] == "watch"
    assert doc["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"


@pytest.mark.parametrize("key, path, method, operation_id, gvk", [
    ("api/v1", "/api/v1/namespaces/{namespace}/pods", "get", "listCoreV1NamespacedPod", ("", "v1", "Pod")),
    ("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}/exec", "post", "connectCoreV1PostNamespacedPodExec",
     ("", "v1", "PodExecOptions")),
    ("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}/eviction", "post", "createCoreV1NamespacedPodEviction",
     ("policy", "v1", "Eviction")),
    ("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}/log", "get", "readCoreV1NamespacedPodLog",
     ("", "v1", "Pod")),
    ("api/v1", "/api/v1/nodes/{name}/proxy/{path}", "head", "connectCoreV1HeadNodeProxyWithPath",
     ("", "v1", "NodeProxyOptions")),
    ("api/v1", "/api/v1/namespaces/{name}/finalize", "put", "replaceCoreV1NamespaceFinalize",
     ("", "v1", "Namespace")),
    ("api/v1", "/api/v1/namespaces/{namespace}/bindings", "post", "createCoreV1NamespacedBinding",
     ("", "v1", "Binding")),
    ("apis/rbac.authorization.k8s.io/v1", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "get",
     "listRbacAuthorizationV1ClusterRole", ("rbac.authorization.k8s.io", "v1", "ClusterRole")),
    ("apis/authentication.k8s.io/v1", "/apis/authentication.k8s.io/v1/tokenreviews", "post",
     "createAuthenticationV1TokenReview", ("authentication.k8s.io", "v1", "TokenReview")),
])
def test_operation_ids_follow_upstream(cat, key, path, method, operation_id, gvk):
    op = v3(cat, key)["paths"][path][method]
    assert op["operationId"] == operation_id
    assert op["x-kubernetes-group-version-kind"] == dict(zip(("group", "version", "kind"), gvk, strict=True))


def test_discovery_operations(cat):
    assert v3(cat, "apis/apps/v1")["paths"]["/apis/apps/v1/"]["get"]["operationId"] == "getAppsV1APIResources"
    assert v3(cat, "apis/apps")["paths"]["/apis/apps/"]["get"]["operationId"] == "getAppsAPIGroup"
    assert v3(cat, "api")["paths"]["/api/"]["get"]["operationId"] == "getCoreAPIVersions"
    assert v3(cat, "apis/rbac.authorization.k8s.io/v1")["paths"]["/apis/rbac.authorization.k8s.io/v1/"]["get"][
        "tags"] == ["rbacAuthorization_v1"]


def test_every_patch_declares_field_validation(cat):
    """What kubectl's query-param verifier checks before sending fieldValidation=Strict: the
    PATCH operation of the GVK, whichever it finds first, lists the parameter."""
    for key in openapi.documents(cat).keys:
        doc = v3(cat, key)
        for _, method, op in operations(doc):
            if method == "patch" and op.get("x-kubernetes-action") == "patch":
                # the verifier reads the operation's own parameters, not the path's
                names = [p["name"] for p in op["parameters"] if p["in"] == "query"]
                assert "fieldValidation" in names, op["operationId"]


def test_every_resource_kind_is_findable_by_explain(cat):
    """kubectl explain takes the GVK off the resource's operations, then looks for a schema
    carrying that GVK in the same document."""
    for g, versions in cat.groups():
        for v in versions:
            doc = v3(cat, f"apis/{g}/{v}" if g else f"api/{v}")
            schemas = doc["components"]["schemas"]
            for rt in cat.resources(g, v):
                gvk = {"group": g, "kind": rt.kind, "version": v}
                assert any(gvk in s.get("x-kubernetes-group-version-kind", ()) for s in schemas.values()), rt


def test_references_resolve_in_every_document(cat):
    docs = openapi.documents(cat)
    for key in docs.keys:
        doc = v3(cat, key)
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.removeprefix("#/components/schemas/") in schemas
    v2 = orjson.loads(docs.v2().body)
    for ref in refs(v2):
        assert ref.removeprefix("#/definitions/") in v2["definitions"]


# -- schemas ---------------------------------------------------------------------------------------


def test_schemas_look_like_upstream(cat):
    schemas = v3(cat, "api/v1")["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["type"] == "object"
    assert pod["properties"]["apiVersion"] == {"description": pod["properties"]["apiVersion"]["description"],
                                               "type": "string"}  # no enum, not nullable
    assert pod["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
    assert pod["properties"]["spec"]["description"].startswith("Specification of the desired behavior")
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name" and containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == ["name"]
    assert "x-kubernetes-map-type" in schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["nodeSelector"]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    int_or_string = v3(cat, "apis/apps/v1")["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string" and int_or_string["description"].startswith("IntOrString")

    def no_type_lists(node: Any) -> None:
        if isinstance(node, dict):
            assert not isinstance(node.get("type"), list), node
            for v in node.values():
                no_type_lists(v)
        elif isinstance(node, list):
            for v in node:
                no_type_lists(v)

    no_type_lists(schemas)


def test_v2_definitions_keep_ref_siblings(cat):
    v2 = orjson.loads(openapi.documents(cat).v2().body)
    spec = v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]
    assert spec["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec" and spec["description"]
    assert v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    patch = v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["parameters"][0] == {"name": "body", "in": "body", "required": True,
                                      "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


# -- custom resources -------------------------------------------------------------------------------


def test_custom_resources_are_published_like_upstream(cat):
    types, schemas, groups = crds.resource_types([CRD])
    extended = cat.extended([t.rt for t in types], schemas, groups)
    docs = openapi.documents(extended)
    paths = orjson.loads(docs.root(PREFIX).body)["paths"]
    assert "apis/stable.example.com/v1" in paths and "apis/stable.example.com" in paths
    # built-in documents are shared with the catalog this one extends
    assert docs.v3("apis/apps/v1") is openapi.documents(cat).v3("apis/apps/v1")
    doc = orjson.loads(docs.v3("apis/stable.example.com/v1").body)
    schemas = doc["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "version": "v1",
                                                          "kind": "CronTab"}]
    assert crontab["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert crontab["properties"]["spec"]["properties"]["replicas"]["nullable"] is True
    assert schemas["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.stable.v1.CronTab"}
    patch = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert patch["operationId"] == "patchStableExampleComV1NamespacedCronTab"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    # no strategic merge patch for custom resources: client-side apply falls back to merge patch
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    status = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"]["get"]
    assert status["operationId"] == "readStableExampleComV1NamespacedCronTabStatus"
    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas


# -- protobuf -----------------------------------------------------------------------------------------


def decode(buf: bytes) -> dict[int, list]:
    """A bare protobuf wire decoder: field number → values (bytes for length-delimited)."""
    out: dict[int, list] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 2:
            size = varint()
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise AssertionError(f"wire type {wire}")
        out.setdefault(field, []).append(value)
    return out


def test_protobuf_encoding_of_a_small_document():
    doc = {
        "swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": {"/api/v1/pods": {"get": {
            "description": "list", "consumes": ["*/*"], "produces": ["application/json"], "schemes": ["https"],
            "tags": ["core_v1"], "operationId": "listCoreV1PodForAllNamespaces",
            "parameters": [{"uniqueItems": True, "type": "integer", "description": "limit", "name": "limit",
                            "in": "query"}],
            "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/PodList"}}},
            "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"}}}},
        "definitions": {"PodList": {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/definitions/Pod"}},
            "extra": {"type": "object", "additionalProperties": {"type": "string"}, "maxLength": 3}}}},
    }
    top = decode(openapi_pb.encode(doc))
    assert top[1] == [b"2.0"]
    assert decode(top[2][0]) == {1: [b"Kubernetes"], 2: [b"v1.36.0"]}
    named_path = decode(decode(top[8][0])[2][0])
    assert named_path[1] == [b"/api/v1/pods"]
    op = decode(decode(named_path[2][0])[2][0])
    assert op[1] == [b"core_v1"] and op[5] == [b"listCoreV1PodForAllNamespaces"] and op[10] == [b"https"]
    query = decode(decode(decode(decode(op[8][0])[1][0])[2][0])[3][0])  # item → parameter → non-body → query
    assert query == {2: [b"query"], 3: [b"limit"], 4: [b"limit"], 6: [b"integer"], 20: [1]}
    ext = decode(op[13][0])
    assert ext[1] == [b"x-kubernetes-group-version-kind"]
    assert orjson.loads(decode(ext[2][0])[2][0]) == {"group": "", "kind": "Pod", "version": "v1"}
    response = decode(decode(decode(decode(op[9][0])[1][0])[2][0])[1][0])
    assert response[1] == [b"OK"] and decode(decode(response[2][0])[1][0]) == {1: [b"#/definitions/PodList"]}
    schema = decode(decode(decode(top[9][0])[1][0])[2][0])
    assert schema[19] == [b"items"] and decode(schema[22][0]) == {1: [b"object"]}
    props = {decode(p)[1][0]: decode(decode(p)[2][0]) for p in decode(schema[25][0])[1]}
    assert decode(decode(props[b"items"][23][0])[1][0]) == {1: [b"#/definitions/Pod"]}
    assert props[b"extra"][11] == [3] and decode(decode(props[b"extra"][21][0])[1][0])[22]
