"""`kubectl auth can-i`, `auth whoami` and `auth reconcile` against a real `lks up` with RBAC:
SelfSubjectAccessReview and SelfSubjectRulesReview answered by the cluster's authorizer, for the
admin and for users the admin impersonates; and the Python client's access reviews."""

from __future__ import annotations

import json

import pytest
from kubernetes import client


def _can_i(kubectl, *args: str) -> str:
    """kubectl's answer, checked against its exit code (0 for yes, 1 for no)."""
    res = kubectl("auth", "can-i", *args, check=False)
    answer = res.stdout.strip()
    assert (answer, res.returncode) in (("yes", 0), ("no", 1)), (res.returncode, res.stdout, res.stderr)
    return answer


def _apply(kubectl, *objects: dict) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def _role(name: str, namespace: str, *rules: dict, kind: str = "Role") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": list(rules)}


def _binding(name: str, namespace: str, role: str, *subjects: dict, kind: str = "RoleBinding",
             role_kind: str = "Role") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": list(subjects)}


def _user(name: str) -> dict:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def _group(name: str) -> dict:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


@pytest.fixture
def secrets_in_kube_system(kubectl):
    """A Role reading secrets in kube-system, bound to jane and the group devs; gone after."""
    _apply(kubectl, _role("can-i-secrets", "kube-system", {"apiGroups": [""], "resources": ["secrets"],
                                                            "verbs": ["list"]}),
           _binding("can-i-secrets", "kube-system", "can-i-secrets", _user("jane"), _group("devs")))
    yield
    kubectl("delete", "rolebinding,role", "can-i-secrets", "-n", "kube-system", "--ignore-not-found")


def test_the_admin_can_create_pods(kubectl):
    assert _can_i(kubectl, "create", "pods") == "yes"
    assert _can_i(kubectl, "delete", "nodes") == "yes"


def test_jane_may_list_secrets_once_bound(kubectl, request):
    assert _can_i(kubectl, "list", "secrets", "-n", "kube-system", "--as", "jane") == "no"
    assert _can_i(kubectl, "list", "secrets", "-n", "kube-system", "--as", "bob", "--as-group", "devs") == "no"
    request.getfixturevalue("secrets_in_kube_system")
    assert _can_i(kubectl, "list", "secrets", "-n", "kube-system", "--as", "jane") == "yes"
    assert _can_i(kubectl, "list", "secrets", "-n", "kube-system", "--as", "bob", "--as-group", "devs") == "yes"
    assert _can_i(kubectl, "list", "secrets", "-n", "kube-system", "--as", "bob") == "no"
    assert _can_i(kubectl, "delete", "secrets", "-n", "kube-system", "--as", "jane") == "no"
    assert _can_i(kubectl, "list", "secrets", "-n", "default", "--as", "jane") == "no"


def test_can_i_list(kubectl, secrets_in_kube_system):
    admin = kubectl("auth", "can-i", "--list").stdout.splitlines()
    assert admin[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["*.*", "[]", "[]", "[*]"] in [line.split() for line in admin]
    rows = [line.split() for line in kubectl("auth", "can-i", "--list", "-n", "kube-system", "--as",
                                             "jane").stdout.splitlines()]
    assert ["secrets", "[]", "[]", "[list]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["*.*", "[]", "[]", "[*]"] not in rows
    rows = [line.split() for line in kubectl("auth", "can-i", "--list", "-n", "default", "--as",
                                             "jane").stdout.splitlines()]
    assert ["secrets", "[]", "[]", "[list]"] not in rows


def test_subresources_names_and_paths(kubectl, namespace):
    _apply(kubectl, _role("logs", namespace, {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                          {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"], "verbs": ["get"]}),
           _binding("logs", namespace, "logs", _user("jane")))
    assert _can_i(kubectl, "get", "pods", "--subresource", "log", "-n", namespace, "--as", "jane") == "yes"
    assert _can_i(kubectl, "get", "pods", "-n", namespace, "--as", "jane") == "no"
    # kubectl reads `pods/<x>` as the pod named x
    assert _can_i(kubectl, "get", "pods/web", "-n", namespace, "--as", "jane") == "yes"
    assert _can_i(kubectl, "get", "pods/log", "-n", namespace, "--as", "jane") == "no"
    assert _can_i(kubectl, "get", "pods/web", "--subresource", "log", "-n", namespace, "--as", "jane") == "yes"
    assert _can_i(kubectl, "get", "/logs") == "yes"
    assert _can_i(kubectl, "get", "/logs", "--as", "jane") == "no"
    assert _can_i(kubectl, "get", "/version", "--as", "jane") == "yes"  # system:public-info-viewer
    name = f"can-i-logs-{namespace}"
    _apply(kubectl, _role(name, "", {"nonResourceURLs": ["/logs", "/logs/*"], "verbs": ["get"]}, kind="ClusterRole"),
           _binding(name, "", name, _user("jane"), kind="ClusterRoleBinding", role_kind="ClusterRole"))
    try:
        assert _can_i(kubectl, "get", "/logs", "--as", "jane") == "yes"
        assert _can_i(kubectl, "get", "/logs/kube-apiserver.log", "--as", "jane") == "yes"
        assert _can_i(kubectl, "post", "/logs", "--as", "jane") == "no"
    finally:
        kubectl("delete", "clusterrolebinding,clusterrole", name)


def test_service_accounts(kubectl, namespace):
    sa = f"system:serviceaccount:{namespace}:default"
    assert _can_i(kubectl, "create", "pods", "--as", "system:serviceaccount:default:default") == "no"
    assert _can_i(kubectl, "create", "pods", "-n", namespace, "--as", sa) == "no"
    kubectl("create", "rolebinding", "sa-edit", "--clusterrole", "edit", "--serviceaccount",
            f"{namespace}:default", "-n", namespace)
    assert _can_i(kubectl, "create", "pods", "-n", namespace, "--as", sa) == "yes"
    assert _can_i(kubectl, "create", "pods", "-n", "default", "--as", sa) == "no"
    # the group of every service account of the namespace
    assert _can_i(kubectl, "create", "pods", "-n", namespace, "--as", "x",
                  "--as-group", f"system:serviceaccounts:{namespace}") == "no"


def test_whoami_as_jane(kubectl):
    out = json.loads(kubectl("auth", "whoami", "--as", "jane", "--as-group", "devs", "-o", "json").stdout)
    assert out["status"]["userInfo"] == {"username": "jane", "groups": ["devs", "system:authenticated"]}
    table = kubectl("auth", "whoami", "--as", "jane", "--as-group", "devs").stdout
    assert "jane" in table and "[devs system:authenticated]" in table


RECONCILE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: reader, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [{resource}]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}
"""


def test_auth_reconcile(kubectl, namespace):
    def reconcile(resource: str, user: str, *flags: str) -> str:
        return kubectl("auth", "reconcile", "-f", "-", *flags,
                       input=RECONCILE.format(ns=namespace, resource=resource, user=user)).stdout

    out = reconcile("pods", "jane")
    assert "role.rbac.authorization.k8s.io/reader reconciled" in out
    assert "rolebinding.rbac.authorization.k8s.io/reader reconciled" in out
    assert _can_i(kubectl, "list", "pods", "-n", namespace, "--as", "jane") == "yes"
    # without --remove-extra-*, reconcile only adds: configmaps join pods, bob joins jane
    reconcile("configmaps", "bob")
    assert _can_i(kubectl, "list", "configmaps", "-n", namespace, "--as", "bob") == "yes"
    assert _can_i(kubectl, "list", "pods", "-n", namespace, "--as", "jane") == "yes"
    role = json.loads(kubectl("get", "role", "reader", "-n", namespace, "-o", "json").stdout)
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"pods", "configmaps"}
    reconcile("configmaps", "bob", "--remove-extra-permissions", "--remove-extra-subjects")
    assert _can_i(kubectl, "list", "pods", "-n", namespace, "--as", "bob") == "no"
    assert _can_i(kubectl, "list", "configmaps", "-n", namespace, "--as", "jane") == "no"
    assert _can_i(kubectl, "list", "configmaps", "-n", namespace, "--as", "bob") == "yes"
    binding = json.loads(kubectl("get", "rolebinding", "reader", "-n", namespace, "-o", "json").stdout)
    assert [s["name"] for s in binding["subjects"]] == ["bob"]


def test_the_python_client_reviews_access(api, kubectl, secrets_in_kube_system):
    authz = client.AuthorizationV1Api(api)
    review = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
            namespace="default", verb="create", resource="pods"))))
    assert review.status.allowed is True
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user="jane", resource_attributes=client.V1ResourceAttributes(
            namespace="kube-system", verb="list", resource="secrets"))))
    assert review.status.allowed is True and "can-i-secrets" in (review.status.reason or "")
    review = authz.create_namespaced_local_subject_access_review("kube-system", client.V1LocalSubjectAccessReview(
        metadata=client.V1ObjectMeta(namespace="kube-system"), spec=client.V1SubjectAccessReviewSpec(
            user="jane", resource_attributes=client.V1ResourceAttributes(
                namespace="kube-system", verb="delete", resource="secrets"))))
    assert review.status.allowed is False
    rules = authz.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace="default")))
    assert any(r.verbs == ["*"] and r.resources == ["*"] for r in rules.status.resource_rules)
    with pytest.raises(client.ApiException) as err:
        authz.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb="list", resource="secrets"))))
    assert err.value.status == 422
    assert json.loads(err.value.body)["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "": at least one of user or group must be specified',
         "field": "spec.user"}]
