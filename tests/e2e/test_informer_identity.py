"""The controllers' informers list and watch as `system:kube-controller-manager`, end to end with
kubectl: with the list/watch rule taken from its bootstrap ClusterRole (autoupdate off, so the
restart keeps the edit) the restarted controllers log the reflector's Forbidden and stall (a new
Deployment gets no ReplicaSet); putting the rule back lets the informers sync and the
Deployment roll out."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until

ROLE = "system:kube-controller-manager"
LIST_WATCH_ALL = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "watch"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-informers-home"))
    s.start()
    yield s
    s.stop()


def test_controllers_stall_without_list_watch_and_go_on_with_it(server: LKS):
    kubectl = server.kubectl
    role = json.loads(kubectl("get", "clusterrole", ROLE, "-o", "json").stdout)
    assert LIST_WATCH_ALL in role["rules"]  # the bootstrap policy grants the shared informers' reads
    role["metadata"]["annotations"] = {**(role["metadata"].get("annotations") or {}),
                                       "rbac.authorization.kubernetes.io/autoupdate": "false"}
    role["rules"] = [r for r in role["rules"] if r != LIST_WATCH_ALL]
    kubectl("replace", "-f", "-", input=json.dumps(role))
    server.restart()  # informers are authorized as they (re)start, as a reflector's list

    log = server.home / "lks.log"
    forbidden = ('failed to list *v1.Deployment: deployments.apps is forbidden: User "system:kube-controller-manager" '
                 'cannot list resource "deployments" in API group "apps" at the cluster scope')
    wait_until(lambda: forbidden in log.read_text(errors="replace"), what="the reflector's Forbidden")
    kubectl("create", "namespace", "informers")
    kubectl("create", "deployment", "web", "-n", "informers", "--image=nginx")
    assert kubectl("get", "replicasets", "-n", "informers", "-o", "name").stdout == ""  # stalled

    kubectl("patch", "clusterrole", ROLE, "--type=json", "-p",
            json.dumps([{"op": "add", "path": "/rules/-", "value": LIST_WATCH_ALL}]))
    wait_until(lambda: kubectl("get", "replicasets", "-n", "informers", "-o", "name").stdout.strip(),
               timeout=90, what="the deployment controller synced")
