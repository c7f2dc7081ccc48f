"""RBAC (lks.kube.rbac): rule matching as upstream's `RuleAllows`, the binding index fed by the
watch caches, decisions over the real HTTP layer (impersonating users through the admin token),
and the bootstrap policy reconciled at start."""

from __future__ import annotations

import pytest
from support import ADMIN, CA, TOKEN

from lks import store
from lks.clock import ManualClock
from lks.kube import authz
from lks.kube.authn import ANONYMOUS_USER, User, service_account_user
from lks.kube.cluster import Cluster
from lks.kube.rbac import bootstrap, index, rules

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RBAC = "/clusters/c1/apis/rbac.authorization.k8s.io/v1"
JANE = User("jane", ("devs", "system:authenticated"))
VIEW = "system:aggregate-to-view"  # `view` itself gets its rules from the aggregation controller


def _attrs(verb="get", resource="pods", sub="", name="", group="", namespace="default", user=JANE) -> authz.Attributes:
    return authz.Attributes(user, verb, True, namespace, group, "v1", resource, sub, name)


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [
    pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _attrs(), True, id="exact"),
    pytest.param({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}, _attrs(), False, id="other-verb"),
    pytest.param({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, _attrs(group="apps"), True, id="stars"),
    pytest.param({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}, _attrs(), False, id="other-group"),
    pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _attrs(sub="log"), False,
                 id="resource-not-subresource"),
    pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, _attrs(sub="log"), True,
                 id="subresource"),
    pytest.param({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]},
                 _attrs(resource="deployments", sub="scale", group="apps"), True, id="star-subresource"),
    pytest.param({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]},
                 _attrs(resource="deployments", group="apps"), False, id="star-subresource-not-main"),
    pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
                 _attrs(name="a"), True, id="named"),
    pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
                 _attrs(name="b"), False, id="other-name"),
    pytest.param({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
                 _attrs(verb="list"), False, id="named-needs-name"),
    pytest.param({"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]},
                 authz.Attributes(JANE, "get", False, path="/healthz/etcd"), True, id="url-prefix"),
    pytest.param({"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                 authz.Attributes(JANE, "get", False, path="/healthz/etcd"), False, id="url-exact"),
    pytest.param({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]},
                 authz.Attributes(JANE, "get", False, path="/api"), False, id="resource-rule-not-url"),
])
def test_rule_allows(rule, attrs, allowed):
    assert rules.Rule(rule).allows(attrs) is allowed


def test_uncovered_breaks_down_and_describes():
    owner = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}]
    servant = [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "services/status"]}]
    missing = rules.uncovered(owner, servant)
    assert [rules.describe(r) for r in missing] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}',
        '{APIGroups:[""], Resources:["services/status"], Verbs:["delete"]}',
    ]
    assert rules.uncovered([{"verbs": ["*"], "nonResourceURLs": ["/logs/*"]}],
                           [{"verbs": ["get"], "nonResourceURLs": ["/logs/a"]}]) == []
    named = [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}]
    assert rules.uncovered(named, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
    assert not rules.uncovered([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], named)


async def _apply(client, path: str, body: dict) -> dict:
    resp = await client.post(RBAC + path, json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _binding(name: str, role_kind: str, role: str, *subjects: dict, namespace: str = "") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": list(subjects)}


async def test_bindings_grant_through_the_index(cluster, client):
    chain = cluster.authorizer
    assert not await chain.allowed(_attrs(verb="list"))
    await _apply(client, "/namespaces/default/rolebindings",
                 _binding("jane-view", "ClusterRole", VIEW, {"kind": "User", "name": "jane"}, namespace="default"))
    decision, reason = await chain.authorize(_attrs(verb="list"))
    assert decision == authz.ALLOW
    assert reason == f'RBAC: allowed by RoleBinding "jane-view/default" of ClusterRole "{VIEW}" to User "jane"'
    assert not await chain.allowed(_attrs(verb="list", namespace="kube-system"))  # a RoleBinding is namespaced
    assert not await chain.allowed(_attrs(verb="delete"))

    # a Role of the namespace, granted to a group
    await _apply(client, "/namespaces/default/roles", {"metadata": {"name": "deleter"}, "rules": [
        {"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p1"]}]})
    await _apply(client, "/namespaces/default/rolebindings",
                 _binding("devs-delete", "Role", "deleter", {"kind": "Group", "name": "devs"}, namespace="default"))
    assert await chain.allowed(_attrs(verb="delete", name="p1"))
    assert not await chain.allowed(_attrs(verb="delete", name="p2"))

    # a ClusterRoleBinding grants everywhere; deleting it takes it back
    await _apply(client, "/clusterrolebindings",
                 _binding("jane-nodes", "ClusterRole", "system:node-proxier", {"kind": "User", "name": "jane"}))
    nodes = _attrs(verb="list", resource="nodes", namespace="")
    assert await chain.allowed(nodes)
    resp = await client.delete(RBAC + "/clusterrolebindings/jane-nodes", headers=AUTH)
    assert resp.status == 200
    assert not await chain.allowed(nodes)


async def test_service_account_subjects_default_to_the_binding_namespace(cluster, client):
    robot = service_account_user("default", "robot")
    await _apply(client, "/namespaces/default/rolebindings",
                 _binding("robot", "ClusterRole", "system:aggregate-to-edit", {"kind": "ServiceAccount", "name": "robot"},
                          namespace="default"))
    assert await cluster.authorizer.allowed(_attrs(verb="create", user=robot))
    other = service_account_user("other", "robot")
    assert not await cluster.authorizer.allowed(_attrs(verb="create", user=other, namespace="default"))


async def test_a_binding_to_a_missing_role_says_so(cluster, client):
    await _apply(client, "/namespaces/default/rolebindings",
                 _binding("ghost", "Role", "ghost", {"kind": "User", "name": "jane"}, namespace="default"))
    decision, reason = await cluster.authorizer.authorize(_attrs())
    assert (decision, reason) == (authz.NO_OPINION, 'RBAC: role.rbac.authorization.k8s.io "ghost" not found')
    # the role appearing later takes effect at once
    await _apply(client, "/namespaces/default/roles", {"metadata": {"name": "ghost"}, "rules": [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]})
    assert await cluster.authorizer.allowed(_attrs())
    found = await cluster.authorizer.rules_for(JANE, "default")
    assert {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]} in found.resource_rules
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} \
        in found.non_resource_rules


async def test_forbidden_and_anonymous_over_http(cluster, client):
    resp = await client.get("/clusters/c1/api/v1/namespaces/default/pods",
                            headers={**AUTH, "Impersonate-User": "jane"})
    assert resp.status == 403
    body = await resp.json()
    assert body["message"] == ('pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
                               'in the namespace "default"')
    await _apply(client, "/namespaces/default/rolebindings",
                 _binding("jane-view", "ClusterRole", VIEW, {"kind": "User", "name": "jane"}, namespace="default"))
    resp = await client.get("/clusters/c1/api/v1/namespaces/default/pods",
                            headers={**AUTH, "Impersonate-User": "jane"})
    assert resp.status == 200
    assert (await client.get("/clusters/c1/version")).status == 200
    assert (await client.get("/clusters/c1/api")).status == 401
    assert await cluster.authorizer.allowed(authz.Attributes(ANONYMOUS_USER, "get", False, path="/version"))


async def test_bootstrap_policy_is_there_and_reconciled(cluster, client):
    resp = await client.get(RBAC + "/clusterroles/system:basic-user", headers=AUTH)
    role = await resp.json()
    assert role["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert role["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    for path in ("/clusterroles/cluster-admin", "/clusterroles/system:controller:replicaset-controller",
                 "/clusterrolebindings/system:controller:replicaset-controller",
                 "/clusterrolebindings/system:public-info-viewer",
                 "/namespaces/kube-system/roles/extension-apiserver-authentication-reader",
                 "/namespaces/kube-public/rolebindings/system:controller:bootstrap-signer"):
        assert (await client.get(RBAC + path, headers=AUTH)).status == 200, path

    # a rule taken away and a subject removed come back at the next start; a protected role stays as is
    role["rules"] = role["rules"][:1]
    assert (await client.put(RBAC + "/clusterroles/system:basic-user", json=role, headers=AUTH)).status == 200
    crb = await (await client.get(RBAC + "/clusterrolebindings/system:public-info-viewer", headers=AUTH)).json()
    crb["subjects"] = crb["subjects"][:1]
    assert (await client.put(RBAC + "/clusterrolebindings/system:public-info-viewer", json=crb,
                             headers=AUTH)).status == 200
    mine = await (await client.get(RBAC + "/clusterroles/system:heapster", headers=AUTH)).json()
    mine["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
    mine["rules"] = []
    assert (await client.put(RBAC + "/clusterroles/system:heapster", json=mine, headers=AUTH)).status == 200

    before = await cluster.store.current_revision()
    await bootstrap.reconcile(cluster)
    after = await cluster.store.current_revision()
    assert after - before == 2  # the two that lacked something, nothing else
    role = await (await client.get(RBAC + "/clusterroles/system:basic-user", headers=AUTH)).json()
    assert rules.uncovered(role["rules"], [{"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                                            "resources": ["selfsubjectreviews"]}]) == []
    crb = await (await client.get(RBAC + "/clusterrolebindings/system:public-info-viewer", headers=AUTH)).json()
    assert [s["name"] for s in crb["subjects"]] == ["system:authenticated", "system:unauthenticated"]
    mine = await (await client.get(RBAC + "/clusterroles/system:heapster", headers=AUTH)).json()
    assert mine["rules"] == []


async def test_restart_writes_nothing():
    backend = store.open_store("memory://")
    await backend.start()
    try:
        revisions = []
        for _ in range(2):
            c = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA,
                        tokens={TOKEN: ADMIN}, clock=ManualClock())
            await c.start()
            revisions.append(await backend.current_revision())
            assert index.index_of(c) is not None
            await c.stop()
        assert revisions[0] == revisions[1]
    finally:
        await backend.close()
