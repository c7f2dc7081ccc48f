"""Entra integration of a hosted API server (`lks.kube.entra`): guard's mapping of requests to
Azure data actions, the Azure RBAC authorizer's scopes and answers, the token authenticator."""

from __future__ import annotations

import asyncio

import pytest

from lks.kube import authz, entra
from lks.kube.authn import User

CLUSTER = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/c1"
MC = "Microsoft.ContainerService/managedClusters"


def attrs(verb: str, resource: str = "", group: str = "", namespace: str = "", subresource: str = "",
          path: str = "", user: User | None = None) -> authz.Attributes:
    user = user or User("oid-1", ("g1", "system:authenticated"), extra={entra.OID: ("oid-1",)})
    if path:
        return authz.Attributes(user, verb, False, path=path)
    return authz.Attributes(user, verb, True, namespace, group, "v1", resource, subresource)


@pytest.mark.parametrize(("a", "action"), [
    pytest.param(attrs("list", "pods", namespace="ns"), f"{MC}/pods/read", id="list"),
    pytest.param(attrs("watch", "pods"), f"{MC}/pods/read", id="watch"),
    pytest.param(attrs("patch", "deployments", "apps", "ns"), f"{MC}/apps/deployments/write", id="patch"),
    pytest.param(attrs("create", "deployments", "apps", "ns"), f"{MC}/apps/deployments/write", id="create"),
    pytest.param(attrs("deletecollection", "pods", namespace="ns"), f"{MC}/pods/delete", id="deletecollection"),
    pytest.param(attrs("create", "pods", namespace="ns", subresource="exec"), f"{MC}/pods/exec/action", id="exec"),
    pytest.param(attrs("get", "pods", namespace="ns", subresource="log"), f"{MC}/pods/read", id="log"),
    pytest.param(attrs("bind", "clusterroles", "rbac.authorization.k8s.io"),
                 f"{MC}/rbac.authorization.k8s.io/clusterroles/bind/action", id="bind"),
    pytest.param(attrs("impersonate", "users"), f"{MC}/users/impersonate/action", id="impersonate"),
    pytest.param(attrs("get", path="/healthz"), f"{MC}/healthz/read", id="non-resource"),
    pytest.param(attrs("list", "*"), None, id="wildcard"),
    pytest.param(attrs("frobnicate", "pods"), None, id="unknown-verb"),
])
def test_data_action(a, action):
    assert entra.data_action(a) == action


class Directory:
    def __init__(self, grants: set[tuple[str, str, str]], claims: dict | None = None):
        self.grants = grants  # (principal, action, scope)
        self.asked: list[tuple] = []
        self._claims = claims

    def claims(self, token: str, tenant_id: str):
        return self._claims if token == "a.b.c" and tenant_id == "t" else None

    def allows_data(self, object_id, groups, action, scope):
        self.asked.append((object_id, groups, action, scope))
        return any((p, action) == (g[0], g[1]) and (scope == g[2] or scope.startswith(g[2] + "/"))
                   for p in (object_id, *groups) for g in self.grants)


def decide(directory: Directory, a: authz.Attributes) -> tuple[str, str]:
    return asyncio.run(entra.AzureRBAC(entra.Settings(CLUSTER, "t", azure_rbac=True), directory).authorize(a))


def test_namespace_scope():
    d = Directory({("oid-1", f"{MC}/pods/read", f"{CLUSTER}/namespaces/ns1")})
    assert decide(d, attrs("list", "pods", namespace="ns1"))[0] == authz.ALLOW
    assert d.asked[-1] == ("oid-1", ("g1",), f"{MC}/pods/read", f"{CLUSTER}/namespaces/ns1")
    assert decide(d, attrs("list", "pods", namespace="ns2")) == (authz.DENY, entra.DENIED)
    assert decide(d, attrs("list", "pods")) == (authz.DENY, entra.DENIED)  # all namespaces: the cluster's scope
    assert decide(d, attrs("delete", "pods", namespace="ns1"))[0] == authz.DENY


def test_cluster_scope_and_groups():
    d = Directory({("g1", f"{MC}/pods/read", CLUSTER)})
    assert decide(d, attrs("list", "pods", namespace="any"))[0] == authz.ALLOW
    assert decide(d, attrs("list", "pods"))[0] == authz.ALLOW


def test_others_get_no_opinion():
    d = Directory(set())
    sa = User("system:serviceaccount:ns:default", ("system:serviceaccounts", "system:authenticated"))
    assert decide(d, attrs("list", "pods", user=sa)) == (authz.NO_OPINION, "")
    assert d.asked == []


def test_authenticator():
    settings = entra.Settings(CLUSTER, "t")
    auth = entra.Authenticator(settings, Directory(set(), {"oid": "o1", "groups": ["g1"]}))
    user = asyncio.run(auth("a.b.c"))
    assert (user.name, user.groups, dict(user.extra)) == ("o1", ("g1", "system:authenticated"), {"oid": ("o1",)})
    assert asyncio.run(auth("opaque")) is None
    assert asyncio.run(entra.Authenticator(entra.Settings(CLUSTER, "other"), auth.directory)("a.b.c")) is None
