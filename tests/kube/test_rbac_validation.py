"""Malformed RBAC objects over the real HTTP layer: 422 with the field causes of upstream's
`pkg/apis/rbac/validation` (roleRef kind and group, subject kinds and groups, a ClusterRoleBinding's
service account without namespace, an immutable roleRef, policy rules, aggregationRule)."""

from __future__ import annotations

import pytest
from support import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RBAC = "/clusters/c1/apis/rbac.authorization.k8s.io/v1"
GROUP = "rbac.authorization.k8s.io"
REF = {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"}


def _causes(body: dict) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in body["details"]["causes"]]


@pytest.mark.parametrize(("path", "body", "causes"), [
    pytest.param("/namespaces/default/rolebindings",
                 {"metadata": {"name": "b"}, "roleRef": {**REF, "kind": "Widget"}},
                 [("FieldValueNotSupported", "roleRef.kind",
                   'Unsupported value: "Widget": supported values: "Role", "ClusterRole"')], id="ref-kind"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": {**REF, "kind": "Role"}},
                 [("FieldValueNotSupported", "roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"')],
                 id="cluster-binding-to-role"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": {**REF, "apiGroup": "example.com"}},
                 [("FieldValueNotSupported", "roleRef.apiGroup",
                   f'Unsupported value: "example.com": supported values: "{GROUP}"')], id="ref-group"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": REF,
                                          "subjects": [{"kind": "Robot", "name": "r2"}]},
                 [("FieldValueNotSupported", "subjects[0].kind",
                   'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')],
                 id="subject-kind"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": REF,
                                          "subjects": [{"kind": "User", "name": "jane", "apiGroup": "example.com"}]},
                 [("FieldValueNotSupported", "subjects[0].apiGroup",
                   f'Unsupported value: "example.com": supported values: "{GROUP}"')], id="user-group"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": REF,
                                          "subjects": [{"kind": "ServiceAccount", "name": "robot", "apiGroup": GROUP,
                                                        "namespace": "default"}]},
                 [("FieldValueNotSupported", "subjects[0].apiGroup",
                   f'Unsupported value: "{GROUP}": supported values: ""')], id="sa-group"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": REF,
                                          "subjects": [{"kind": "ServiceAccount", "name": "robot"}]},
                 [("FieldValueRequired", "subjects[0].namespace", "Required value")], id="sa-namespace"),
    pytest.param("/clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": REF,
                                          "subjects": [{"kind": "Group"}]},
                 [("FieldValueRequired", "subjects[0].name", "Required value")], id="subject-name"),
    pytest.param("/clusterroles", {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]},
                 [("FieldValueRequired", "rules[0].verbs", "Required value: verbs must contain at least one value")],
                 id="rule-verbs"),
    pytest.param("/namespaces/default/roles",
                 {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/logs"]}]},
                 [("FieldValueInvalid", "rules[0].nonResourceURLs",
                   'Invalid value: ["/logs"]: namespaced rules cannot apply to non-resource URLs')], id="role-urls"),
    pytest.param("/clusterroles", {"metadata": {"name": "r"}, "aggregationRule": {}},
                 [("FieldValueRequired", "aggregationRule.clusterRoleSelectors",
                   "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil")],
                 id="aggregation-empty"),
    pytest.param("/clusterroles", {"metadata": {"name": "r"}, "aggregationRule": {"clusterRoleSelectors": [
        {"matchExpressions": [{"key": "tier", "operator": "Near"}]}]}},
                 [("FieldValueInvalid", "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator",
                   'Invalid value: "Near": not a valid selector operator'),
                  ("FieldValueInvalid", "aggregationRule.clusterRoleSelectors[0]",
                   'Invalid value: "null": invalid label selector.')], id="aggregation-selector"),
])
async def test_malformed_objects_are_422(client, path, body, causes):
    resp = await client.post(RBAC + path, json=body, headers=AUTH)
    assert resp.status == 422, await resp.text()
    answer = await resp.json()
    assert answer["reason"] == "Invalid"
    assert _causes(answer) == causes


async def test_role_ref_is_immutable(client):
    resp = await client.post(RBAC + "/clusterrolebindings", json={"metadata": {"name": "b"}, "roleRef": REF},
                             headers=AUTH)
    assert resp.status == 201
    binding = await resp.json()
    binding["roleRef"]["name"] = "edit"
    resp = await client.put(RBAC + "/clusterrolebindings/b", json=binding, headers=AUTH)
    assert resp.status == 422
    [(reason, fld, message)] = _causes(await resp.json())
    assert (reason, fld) == ("FieldValueInvalid", "roleRef")
    assert message.endswith(": cannot change roleRef")
