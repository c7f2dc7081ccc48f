"""RBAC end to end through kubectl, impersonating users with the admin kubeconfig (`--as`,
`--as-group`): upstream's Forbidden words, a RoleBinding to `view` letting jane in, escalation
refused, a ClusterRole labelled aggregate-to-view showing up in `view`, and what the anonymous
user may see."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from .conftest import wait_until


def _get_pods(kubectl, namespace: str, *who: str):
    return kubectl("get", "pods", "-n", namespace, *who, check=False)


def test_jane_is_forbidden_until_bound_to_view(kubectl, namespace):
    res = _get_pods(kubectl, namespace, "--as", "jane")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
        f'in the namespace "{namespace}"')
    kubectl("create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", namespace)
    wait_until(lambda: _get_pods(kubectl, namespace, "--as", "jane").returncode == 0, what="jane may list pods")
    # view grants reading, not writing; and nothing in other namespaces
    res = kubectl("create", "configmap", "x", "-n", namespace, "--as", "jane", check=False)
    assert 'User "jane" cannot create resource "configmaps"' in res.stderr
    assert _get_pods(kubectl, "default", "--as", "jane").returncode == 1
    # a group binding works the same way
    assert _get_pods(kubectl, namespace, "--as", "joe", "--as-group", "readers").returncode == 1
    kubectl("create", "rolebinding", "readers-view", "--clusterrole=view", "--group=readers", "-n", namespace)
    wait_until(lambda: _get_pods(kubectl, namespace, "--as", "joe", "--as-group", "readers").returncode == 0,
               what="the readers group may list pods")


def test_escalation_is_refused(kubectl, namespace):
    kubectl("create", "rolebinding", "jane-admin", "--clusterrole=admin", "--user=jane", "-n", namespace)
    wait_until(lambda: kubectl("get", "roles", "-n", namespace, "--as", "jane", check=False).returncode == 0,
               what="jane is admin of the namespace")
    res = kubectl("create", "role", "nodes", "--verb=get", "--resource=nodes", "-n", namespace, "--as", "jane",
                  check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'Error from server (Forbidden): roles.rbac.authorization.k8s.io "nodes" is forbidden: user "jane" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')
    res = kubectl("create", "rolebinding", "bob-root", "--clusterrole=cluster-admin", "--user=bob", "-n", namespace,
                  "--as", "jane", check=False)
    assert res.returncode == 1
    assert ('rolebindings.rbac.authorization.k8s.io "bob-root" is forbidden: user "jane" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:') \
        in res.stderr
    # what jane holds she may hand on
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace, "--as", "jane")
    kubectl("create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", namespace, "--as", "jane")


def test_aggregated_roles_follow_labelled_ones(kubectl):
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "e2e-widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}]}
    kubectl("apply", "-f", "-", input=json.dumps(role))

    def rules_of(name: str) -> list:
        return json.loads(kubectl("get", "clusterrole", name, "-o", "json").stdout).get("rules") or []

    wait_until(lambda: role["rules"][0] in rules_of("view"), what="view aggregates the widgets role")
    wait_until(lambda: role["rules"][0] in rules_of("admin"), what="admin aggregates it through edit")
    kubectl("delete", "clusterrole", "e2e-widgets-view")
    wait_until(lambda: role["rules"][0] not in rules_of("view"), what="view lets it go")


def test_bootstrap_roles_are_there(kubectl):
    out = json.loads(kubectl("get", "clusterroles", "-l", "kubernetes.io/bootstrapping=rbac-defaults",
                             "-o", "json").stdout)
    names = {r["metadata"]["name"] for r in out["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery", "system:public-info-viewer",
            "system:controller:replicaset-controller", "system:node"} <= names
    crb = json.loads(kubectl("get", "clusterrolebinding", "cluster-admin", "-o", "json").stdout)
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    assert crb["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _anonymous(url: str) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_anonymous_sees_only_public_info(api):
    base = api.configuration.host
    assert _anonymous(base + "/version") == 200
    assert _anonymous(base + "/healthz") == 200
    assert _anonymous(base + "/api") == 401
    assert _anonymous(base + "/api/v1/namespaces/default/pods") == 401


def test_a_kubelet_sees_only_its_own_node(kubectl):
    node = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    kubelet = ("--as", f"system:node:{node}", "--as-group", "system:nodes")
    assert json.loads(kubectl("get", "node", node, "-o", "json", *kubelet).stdout)["metadata"]["name"] == node
    res = kubectl("get", "nodes", *kubelet, check=False)
    assert res.stderr.strip() == (
        f'Error from server (Forbidden): nodes is forbidden: User "system:node:{node}" cannot list resource "nodes" '
        f"in API group \"\" at the cluster scope: node '{node}' cannot read all nodes, only its own Node object")
    res = kubectl("label", "node", node, "node-restriction.kubernetes.io/pool=gold", *kubelet, check=False)
    assert (f'nodes "{node}" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool'
            in res.stderr)
