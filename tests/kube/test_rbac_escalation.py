"""RBAC escalation prevention over the real HTTP layer (users impersonated through the admin
token): roles only with rules one holds (or `escalate`), bindings only to roles one holds (or
`bind`), aggregationRule only for cluster admins; upstream's messages."""

from __future__ import annotations

from support import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JANE = {**AUTH, "Impersonate-User": "jane"}
RBAC = "/clusters/c1/apis/rbac.authorization.k8s.io/v1"
GET_PODS = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}


async def _post(client, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    resp = await client.post(RBAC + path, json=body, headers=headers)
    return resp.status, await resp.json()


def _binding(name: str, kind: str, role: str, user: str = "bob") -> dict:
    return {"metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": user}]}


async def _grant_jane(client, *rules: dict) -> None:
    """jane may manage roles and bindings in `default`, plus `rules`."""
    manage = {"verbs": ["create", "update", "get"], "apiGroups": ["rbac.authorization.k8s.io"],
              "resources": ["roles", "rolebindings"]}
    status, _ = await _post(client, "/namespaces/default/roles",
                            {"metadata": {"name": "jane"}, "rules": [manage, *rules]}, AUTH)
    assert status == 201
    status, _ = await _post(client, "/namespaces/default/rolebindings", _binding("jane", "Role", "jane", "jane"), AUTH)
    assert status == 201


async def test_a_role_needs_the_rules_it_grants(client):
    await _grant_jane(client, GET_PODS)
    status, _ = await _post(client, "/namespaces/default/roles", {"metadata": {"name": "ok"}, "rules": [GET_PODS]}, JANE)
    assert status == 201
    wider = {"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "secrets"]}
    status, body = await _post(client, "/namespaces/default/roles", {"metadata": {"name": "x"}, "rules": [wider]}, JANE)
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["details"] == {"name": "x", "group": "rbac.authorization.k8s.io", "kind": "roles"}
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "x" is forbidden: user "jane" (groups=["system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}')
    # updating the allowed role into the wider one is refused the same way
    resp = await client.get(RBAC + "/namespaces/default/roles/ok", headers=AUTH)
    role = await resp.json()
    role["rules"] = [wider]
    resp = await client.put(RBAC + "/namespaces/default/roles/ok", json=role, headers=JANE)
    assert resp.status == 403
    # cluster admins may; so may whoever has `escalate`
    status, _ = await _post(client, "/namespaces/default/roles", {"metadata": {"name": "x"}, "rules": [wider]}, AUTH)
    assert status == 201
    status, _ = await _post(client, "/namespaces/default/roles", {"metadata": {"name": "esc"}, "rules": [
        {"verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"]}]}, AUTH)
    await _post(client, "/namespaces/default/rolebindings", _binding("esc", "Role", "esc", "jane"), AUTH)
    status, _ = await _post(client, "/namespaces/default/roles", {"metadata": {"name": "y"}, "rules": [wider]}, JANE)
    assert status == 201


async def test_a_binding_needs_the_role_or_bind(client):
    await _grant_jane(client, GET_PODS)
    status, _ = await _post(client, "/namespaces/default/rolebindings",
                            _binding("b1", "ClusterRole", "system:basic-user"), JANE)
    assert status == 201  # jane holds basic-user's rules herself (system:authenticated has them)
    status, body = await _post(client, "/namespaces/default/rolebindings",
                               _binding("b2", "ClusterRole", "system:aggregate-to-edit"), JANE)
    assert status == 403
    assert body["message"].startswith(
        'rolebindings.rbac.authorization.k8s.io "b2" is forbidden: user "jane" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n")
    status, body = await _post(client, "/namespaces/default/rolebindings", _binding("b3", "Role", "nothere"), JANE)
    assert (status, body["message"]) == (
        403, 'rolebindings.rbac.authorization.k8s.io "b3" is forbidden: '
             'role.rbac.authorization.k8s.io "nothere" not found')
    # `bind` on that one ClusterRole, in this namespace, is enough
    await _post(client, "/namespaces/default/roles", {"metadata": {"name": "binder"}, "rules": [
        {"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "resourceNames": ["system:aggregate-to-edit"]}]}, AUTH)
    await _post(client, "/namespaces/default/rolebindings", _binding("binder", "Role", "binder", "jane"), AUTH)
    status, _ = await _post(client, "/namespaces/default/rolebindings",
                            _binding("b2", "ClusterRole", "system:aggregate-to-edit"), JANE)
    assert status == 201


async def test_aggregation_rule_needs_cluster_admin(client):
    status, _ = await _post(client, "/clusterroles", {"metadata": {"name": "crm"}, "rules": [
        {"verbs": ["create"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"]}]}, AUTH)
    await _post(client, "/clusterrolebindings", _binding("crm", "ClusterRole", "crm", "jane"), AUTH)
    status, body = await _post(client, "/clusterroles", {
        "metadata": {"name": "agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}, JANE)
    assert (status, body["message"]) == (
        403, 'clusterroles.rbac.authorization.k8s.io "agg" is forbidden: '
             "must have cluster-admin privileges to use the aggregationRule")
    status, _ = await _post(client, "/clusterroles", {"metadata": {"name": "plain"}, "rules": []}, JANE)
    assert status == 201
