"""AuthorizeNodeWithSelectors (on from 1.32): a kubelet lists and watches only the pods bound to
it, named by `fieldSelector=spec.nodeName=<itself>`, over the real HTTP layer; the selectors
reach every authorizer through the request attributes; before 1.32 a node reads every pod."""

from __future__ import annotations

import pytest
from multidict import MultiDict
from support import ADMIN, CA, TOKEN

from lks import store
from lks.clock import ManualClock
from lks.kube import authz
from lks.kube.cluster import Cluster
from lks.kube.http import requestinfo
from lks.kube.rbac.nodegraph import node_user

AUTH = {"Authorization": f"Bearer {TOKEN}"}
N1 = {**AUTH, "Impersonate-User": "system:node:n1", "Impersonate-Group": "system:nodes"}
API = "/clusters/c1/api/v1"


async def _setup(client) -> None:
    for name, node in (("web", "n1"), ("elsewhere", "n2")):
        pod = {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}
        resp = await client.post(f"{API}/namespaces/default/pods", json=pod, headers=AUTH)
        assert resp.status == 201, await resp.text()


async def _get(client, path: str) -> tuple[int, dict]:
    resp = await client.get(path, headers=N1)
    return resp.status, await resp.json()


async def test_a_node_lists_only_its_own_pods(client):
    await _setup(client)
    status, body = await _get(client, f"{API}/pods?fieldSelector=spec.nodeName%3Dn1")
    assert status == 200, body
    assert [p["metadata"]["name"] for p in body["items"]] == ["web"]
    status, body = await _get(client, f"{API}/namespaces/default/pods?fieldSelector=spec.nodeName%3D%3Dn1")
    assert status == 200, body
    status, body = await _get(client, f"{API}/pods")
    assert (status, body["message"]) == (
        403, 'pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" at the cluster '
             "scope: can only list/watch pods with spec.nodeName field selector")
    status, body = await _get(client, f"{API}/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn2")
    assert (status, body["message"]) == (
        403, 'pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" in the namespace '
             '"default": can only list/watch pods with spec.nodeName field selector')
    status, body = await _get(client, f"{API}/pods?fieldSelector=spec.nodeName%21%3Dn2")
    assert status == 403  # only an equality names the node
    status, body = await _get(client, f"{API}/pods?watch=true&fieldSelector=spec.nodeName%3Dn2")
    assert (status, body["message"]) == (
        403, 'pods is forbidden: User "system:node:n1" cannot watch resource "pods" in API group "" at the cluster '
             "scope: can only list/watch pods with spec.nodeName field selector")
    # one pod by name is allowed when it is bound to the node
    status, _ = await _get(client, f"{API}/namespaces/default/pods?fieldSelector=metadata.name%3Dweb")
    assert status == 200
    status, body = await _get(client, f"{API}/namespaces/default/pods?fieldSelector=metadata.name%3Delsewhere")
    assert (status, body["message"]) == (
        403, 'pods "elsewhere" is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" in '
             "the namespace \"default\": no relationship found between node 'n1' and this object")
    # nor can it delete them all, or read their logs
    resp = await client.delete(f"{API}/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn1", headers=N1)
    assert resp.status == 403
    assert (await _get(client, f"{API}/namespaces/default/pods/web/log"))[0] == 403


async def test_a_watch_with_its_selector_is_served(client):
    await _setup(client)
    resp = await client.get(f"{API}/pods?watch=true&fieldSelector=spec.nodeName%3Dn1", headers=N1)
    assert resp.status == 200
    assert b'"name":"web"' in await resp.content.readline()  # its pod's ADDED event
    resp.close()


def test_selectors_reach_the_attributes():
    query = MultiDict(fieldSelector=r"spec.nodeName=n1,status.phase!=Failed", labelSelector="app in (a,b),!gone")
    info = requestinfo.parse("GET", "/api/v1/pods", query)
    attrs = authz.attributes(node_user("n1"), info, query)
    assert [(r.field, r.value, r.equal) for r in attrs.field_selector] == [
        ("spec.nodeName", "n1", True), ("status.phase", "Failed", False)]
    assert [(r.key, r.op, sorted(r.values)) for r in attrs.label_selector] == [("app", "in", ["a", "b"]),
                                                                               ("gone", "!", [])]
    # a get carries none, and a selector that does not parse is none (the request fails later)
    get = requestinfo.parse("GET", "/api/v1/namespaces/default/pods/web", query)
    assert authz.attributes(node_user("n1"), get, query).field_selector == ()
    bad = MultiDict(fieldSelector="spec.nodeName", labelSelector="a in (")
    attrs = authz.attributes(node_user("n1"), requestinfo.parse("GET", "/api/v1/pods", bad), bad)
    assert (attrs.field_selector, attrs.label_selector) == ((), ())


@pytest.mark.parametrize("version, allowed", [("1.31", True), ("1.32", False), ("1.36", False)])
async def test_before_1_32_a_node_lists_every_pod(version, allowed):
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="c1", name="c1", kubernetes_version=version, backend=backend, ca=CA,
                      tokens={TOKEN: ADMIN}, clock=ManualClock())
    await cluster.start()
    try:
        info = requestinfo.parse("GET", "/api/v1/pods", MultiDict())
        assert await cluster.authorizer.allowed(authz.attributes(node_user("n1"), info, MultiDict())) is allowed
        nodes = requestinfo.parse("GET", "/api/v1/nodes", MultiDict())
        assert await cluster.authorizer.allowed(authz.attributes(node_user("n1"), nodes, MultiDict())) is allowed
    finally:
        await cluster.stop()
        await backend.close()


@pytest.mark.parametrize("selector, allowed", [
    pytest.param(None, False, id="none"),
    pytest.param({"rawSelector": "spec.nodeName=n1"}, True, id="raw"),
    pytest.param({"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]}, True,
                 id="requirements"),
    pytest.param({"requirements": [{"key": "spec.nodeName", "operator": "NotIn", "values": ["n2"]}]}, False,
                 id="not-in"),
    pytest.param({"rawSelector": "spec.nodeName=n2"}, False, id="another-node"),
])
async def test_a_subject_access_review_carries_the_selectors(client, selector, allowed):
    attrs: dict = {"verb": "list", "resource": "pods"}
    if selector is not None:
        attrs["fieldSelector"] = selector
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "system:node:n1", "groups": ["system:nodes"], "resourceAttributes": attrs}}
    resp = await client.post("/clusters/c1/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review,
                             headers=AUTH)
    assert resp.status == 201, await resp.text()
    status = (await resp.json())["status"]
    assert status["allowed"] is allowed
    if not allowed:
        assert status["reason"] == "can only list/watch pods with spec.nodeName field selector"
