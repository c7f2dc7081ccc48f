"""Impersonation end to end, as upstream's impersonation filter answers it: `kubectl --as`,
`--as-group`, `--as-uid` and raw `Impersonate-Extra-*` headers against a real `lks up` with
RBAC, from the admin and from jane, an ordinary user with a client certificate of her own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kubernetes import config as k8s_config

from tests.e2e import identities
from tests.e2e.conftest import raw


@pytest.fixture(scope="module")
def jane_config(lks):
    return identities.user_kubeconfig(lks, "jane")


@pytest.fixture(scope="module")
def jane(lks, jane_config) -> Callable:
    """kubectl as jane (no groups besides system:authenticated)."""
    return lambda *args, check=False: lks.kubectl(*args, check=check, kubeconfig=jane_config)


@pytest.fixture(scope="module")
def jane_api(jane_config):
    c = k8s_config.new_client_from_config(str(jane_config))
    yield c
    c.close()


@pytest.fixture
def may_impersonate(kubectl) -> Iterator[Callable[..., None]]:
    """Grant jane `impersonate` on what each call names (a ClusterRole and its binding); gone after."""
    made: list[str] = []

    def grant(name: str, group: str, resources: list[str], names: list[str] | None = None) -> None:
        rule = {"apiGroups": [group], "resources": resources, "verbs": ["impersonate"]}
        if names:
            rule["resourceNames"] = names
        kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
             "rules": [rule]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]}]}))
        made.append(name)

    yield grant
    for name in made:
        kubectl("delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found")


def _forbidden(res) -> str:
    assert res.returncode == 1, res.stdout
    return res.stderr.strip()


def test_acting_as_jane_is_forbidden_in_upstream_words(kubectl, namespace):
    res = kubectl("get", "pods", "-n", namespace, "--as", "jane", check=False)
    assert _forbidden(res) == (f'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource '
                               f'"pods" in API group "" in the namespace "{namespace}"')


def test_a_user_who_may_not_impersonate_is_refused(jane):
    res = jane("get", "pods", "--as", "admin")
    assert _forbidden(res) == ('Error from server (Forbidden): users "admin" is forbidden: User "jane" cannot '
                               'impersonate resource "users" in API group "" at the cluster scope')


def test_a_user_bound_to_impersonate_users_may(kubectl, jane, namespace, may_impersonate):
    kubectl("create", "role", "pod-reader", "--verb", "list", "--resource", "pods", "-n", namespace)
    kubectl("create", "rolebinding", "boss-reads", "--role", "pod-reader", "--user", "boss", "-n", namespace)
    assert "forbidden" in _forbidden(jane("get", "pods", "-n", namespace))
    may_impersonate("impersonate-boss", "", ["users"], ["boss"])
    res = jane("get", "pods", "-n", namespace, "--as", "boss")
    assert res.returncode == 0 and f"No resources found in {namespace} namespace." in res.stderr
    who = json.loads(jane("auth", "whoami", "--as", "boss", "-o", "json", check=True).stdout)
    assert who["status"]["userInfo"] == {"username": "boss", "groups": ["system:authenticated"]}
    # only the users the role names, and each group needs its own grant
    assert _forbidden(jane("get", "pods", "-n", namespace, "--as", "carol")) == (
        'Error from server (Forbidden): users "carol" is forbidden: User "jane" cannot impersonate resource '
        '"users" in API group "" at the cluster scope')
    assert _forbidden(jane("get", "pods", "-n", namespace, "--as", "boss", "--as-group", "devs")) == (
        'Error from server (Forbidden): groups "devs" is forbidden: User "jane" cannot impersonate resource '
        '"groups" in API group "" at the cluster scope')
    may_impersonate("impersonate-devs", "", ["groups"])
    who = json.loads(jane("auth", "whoami", "--as", "boss", "--as-group", "devs", "-o", "json", check=True).stdout)
    assert who["status"]["userInfo"] == {"username": "boss", "groups": ["devs", "system:authenticated"]}


def test_service_accounts_are_impersonated_as_serviceaccounts(kubectl, jane, may_impersonate):
    assert _forbidden(jane("get", "pods", "-n", "default", "--as", "system:serviceaccount:default:default")) == (
        'Error from server (Forbidden): serviceaccounts "default" is forbidden: User "jane" cannot impersonate '
        'resource "serviceaccounts" in API group "" in the namespace "default"')
    who = json.loads(kubectl("auth", "whoami", "--as", "system:serviceaccount:default:default", "-o", "json").stdout)
    assert who["status"]["userInfo"] == {
        "username": "system:serviceaccount:default:default",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]}
    # a name that is not a valid service account's is an ordinary user
    who = json.loads(kubectl("auth", "whoami", "--as", "system:serviceaccount:Bad_NS:x", "-o", "json").stdout)
    assert who["status"]["userInfo"]["groups"] == ["system:authenticated"]
    may_impersonate("impersonate-sa", "", ["serviceaccounts"])
    who = json.loads(jane("auth", "whoami", "--as", "system:serviceaccount:default:default", "-o", "json",
                          check=True).stdout)
    assert who["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"


def test_extras_and_uids_are_userextras_and_uids(jane_api, may_impersonate):
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    body = b'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
    may_impersonate("impersonate-boss2", "", ["users"], ["boss"])
    headers = {"Content-Type": "application/json", "Impersonate-User": "boss", "Impersonate-Extra-Scopes": "view"}
    resp = raw(jane_api, "POST", path, body, **headers)
    assert resp.status == 403
    assert json.loads(resp.data)["message"] == (
        'userextras.authentication.k8s.io "view" is forbidden: User "jane" cannot impersonate resource '
        '"userextras/scopes" in API group "authentication.k8s.io" at the cluster scope')
    may_impersonate("impersonate-extras", "authentication.k8s.io", ["userextras/scopes", "uids"])
    resp = raw(jane_api, "POST", path, body, **{**headers, "Impersonate-Uid": "u-1"})
    assert resp.status == 201, resp.data
    assert json.loads(resp.data)["status"]["userInfo"] == {
        "username": "boss", "uid": "u-1", "groups": ["system:authenticated"], "extra": {"scopes": ["view"]}}


def test_groups_without_a_user_are_an_internal_error(api):
    resp = raw(api, "GET", "/api/v1/namespaces/default/pods", **{"Impersonate-Group": "devs"})
    assert resp.status == 500 and resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.data.decode().endswith('/api/v1/namespaces/default/pods": requested [{Group  devs    }] without '
                                       'impersonating a user\n')
