"""Kubelet's TokenRequests for its pods' projected tokens (`lks.nodes.podtokens`) are the
node's: authorized as `system:node:<name>`, so the Node authorizer lets a node ask only for the
service accounts of pods bound to it, in upstream's words otherwise."""

from __future__ import annotations

import pytest

from lks.kube import authn, errors
from lks.kube.rbac.nodegraph import node_user
from lks.kube.subresources.tokenrequest import request_token
from lks.nodes import podtokens


async def _pod(cluster, name: str, node: str, account: str) -> dict:
    return await cluster.registry("", "v1", "pods").create("default", {
        "metadata": {"name": name},
        "spec": {"nodeName": node, "serviceAccountName": account, "automountServiceAccountToken": False,
                 "containers": [{"name": "main", "image": "nginx"}]}})


@pytest.fixture
async def web(cluster) -> dict:
    await cluster.registry("", "v1", "serviceaccounts").create("default", {"metadata": {"name": "robot"}})
    return await _pod(cluster, "web", "aks-nodepool1-1-vmss000000", "robot")


async def test_the_pods_node_gets_its_token(cluster, web, monkeypatch):
    asked: list[authn.User | None] = []
    authorize = cluster.authorizer.authorize

    async def spy(attrs):
        asked.append(attrs.user)
        return await authorize(attrs)

    monkeypatch.setattr(cluster.authorizer, "authorize", spy)
    token = await podtokens.PodTokens(cluster).token(web, {"expirationSeconds": 3607})
    assert token.count(".") == 2
    assert asked == [node_user("aks-nodepool1-1-vmss000000")]


async def test_another_node_is_refused_the_token(cluster, web):
    elsewhere = {**web, "spec": {**web["spec"], "nodeName": "aks-nodepool1-1-vmss000001"}}
    with pytest.raises(errors.APIError) as caught:
        await podtokens.PodTokens(cluster).token(elsewhere, {})
    assert caught.value.code == 403
    assert caught.value.status()["message"] == (
        'serviceaccounts "robot" is forbidden: User "system:node:aks-nodepool1-1-vmss000001" cannot create '
        'resource "serviceaccounts/token" in API group "" in the namespace "default": no relationship found '
        "between node 'aks-nodepool1-1-vmss000001' and this object")


async def test_a_request_is_authorized_as_it_came_in(cluster, web):
    """Only an acting component is authorized here: with no identity acting (a request the HTTP
    layer authorized already, or the service itself) the token is issued."""
    with authn.acting_as(None):
        out = await request_token(cluster, "default", "robot", {"spec": {}})
    assert out["status"]["token"]


async def test_a_node_with_the_account_is_refused_another_nodes_pod(cluster, web):
    """Node B runs a pod of the same account, so the Node authorizer lets it ask; NodeRestriction
    then refuses a token bound to the pod on node A."""
    await _pod(cluster, "other", "aks-nodepool1-1-vmss000001", "robot")
    elsewhere = {**web, "spec": {**web["spec"], "nodeName": "aks-nodepool1-1-vmss000001"}}
    with pytest.raises(errors.APIError) as caught:
        await podtokens.PodTokens(cluster).token(elsewhere, {})
    assert caught.value.code == 403
    assert caught.value.status()["message"] == (
        'serviceaccounts "robot" is forbidden: node requested token bound to a pod scheduled on a different node')


@pytest.mark.parametrize(("ref", "why"), [
    pytest.param(None, "node requested token not bound to a pod", id="unbound"),
    pytest.param({"apiVersion": "v1", "kind": "Pod", "name": "web"},
                 "node requested token with a pod binding without a uid", id="no-uid"),
    pytest.param({"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "0000"},
                 "the UID in the bound object reference (0000) does not match the UID in record. The object might "
                 "have been deleted and then recreated", id="other-uid"),
])
async def test_a_nodes_token_is_bound_to_its_pod(cluster, web, ref, why):
    spec = {"boundObjectRef": ref} if ref else {}
    with authn.acting_as(node_user("aks-nodepool1-1-vmss000000")), pytest.raises(errors.APIError) as caught:
        await request_token(cluster, "default", "robot", {"spec": spec})
    assert caught.value.code == 403
    assert caught.value.status()["message"] == f'serviceaccounts "robot" is forbidden: {why}'
