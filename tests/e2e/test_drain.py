"""Cordon, drain, budgets, quotas and limit ranges against a real `lks up`, driven by kubectl:
`kubectl cordon|uncordon` and the unschedulable taint, a `kubectl drain` that a
PodDisruptionBudget holds up (429 from the eviction subresource, retried by kubectl until its
timeout) and that finishes once the budget allows it, a create refused by a ResourceQuota,
and LimitRange defaults on a new pod.

The drained node is one the test registers itself, with a Lease, standing in for a kubelet
(its pods' status is written by the test too), so that no other test's pods are touched."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client as k8s_client

from .conftest import wait_until

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."



def _json(kubectl, *args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def _taint_keys(node: dict) -> set[str]:
    return {t["key"] for t in node["spec"].get("taints") or []}


@pytest.fixture
def node(core, api) -> Iterator[str]:
    """A Ready node with a fresh Lease and no agent; tainted so that no scheduler places pods
    of other tests on it."""
    name = "drain-" + os.urandom(3).hex()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                      "spec": {"taints": [{"key": "lks.test/drain", "value": "true", "effect": "NoSchedule"}]},
                      "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                 "message": "kubelet is posting ready status",
                                                 "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}})
    k8s_client.CoordinationV1Api(api).create_namespaced_lease("kube-node-lease", {
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
    yield name
    core.delete_node(name)


def _running_pod(core, namespace: str, name: str, node: str) -> None:
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": name, "labels": {"app": "drain-test"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                 "tolerations": [{"operator": "Exists"}],  # nothing but the drain moves them
                 "containers": [{"name": "app", "image": "nginx"}]}})
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    core.patch_namespaced_pod_status(name, namespace, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}})


def test_cordon_and_uncordon(kubectl, node: str) -> None:
    assert kubectl("cordon", node).stdout.strip() == f"node/{node} cordoned"
    cordoned = wait_until(lambda: (n := _json(kubectl, "get", "node", node)) and UNSCHEDULABLE in _taint_keys(n) and n,
                     what="the unschedulable taint")
    assert cordoned["spec"]["unschedulable"] is True
    [taint] = [t for t in cordoned["spec"]["taints"] if t["key"] == UNSCHEDULABLE]
    assert taint["effect"] == "NoSchedule" and taint["timeAdded"]
    assert "SchedulingDisabled" in kubectl("get", "node", node).stdout

    assert kubectl("uncordon", node).stdout.strip() == f"node/{node} uncordoned"
    wait_until(lambda: UNSCHEDULABLE not in _taint_keys(_json(kubectl, "get", "node", node)), what="the taint removed")
    assert "lks.test/drain" in _taint_keys(_json(kubectl, "get", "node", node))  # others' taints stay


def test_a_budget_holds_up_a_drain(kubectl, core, namespace: str, node: str) -> None:
    for name in ("web-1", "web-2"):
        _running_pod(core, namespace, name, node)
    kubectl("create", "poddisruptionbudget", "web", "-n", namespace, "--selector=app=drain-test", "--min-available=2")
    wait_until(lambda: (s := _json(kubectl, "get", "pdb", "web", "-n", namespace).get("status") or {})
          .get("observedGeneration") == 1 and s.get("currentHealthy") == 2, what="the budget's status")

    drain = ("drain", node, "--pod-selector=app=drain-test", "--ignore-daemonsets", "--force")
    # kubectl sleeps 5 s after a refused eviction and checks its timeout after: 1s is one round
    res = kubectl(*drain, "--timeout=1s", check=False)
    assert res.returncode != 0
    assert VIOLATION in res.stderr and "will retry after 5s" in res.stderr
    assert _json(kubectl, "get", "node", node)["spec"]["unschedulable"] is True  # drain cordons first
    pods = _json(kubectl, "get", "pods", "-n", namespace)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["web-1", "web-2"]

    kubectl("patch", "pdb", "web", "-n", namespace, "--type=merge", "-p", '{"spec":{"minAvailable":0}}')
    wait_until(lambda: (_json(kubectl, "get", "pdb", "web", "-n", namespace).get("status") or {})
          .get("disruptionsAllowed") == 2, what="the budget to allow two disruptions")
    res = kubectl(*drain, "--timeout=30s")
    assert f"node/{node} drained" in res.stdout
    assert "evicting pod" in res.stdout or "pod/web-1 evicted" in res.stdout
    assert _json(kubectl, "get", "pods", "-n", namespace)["items"] == []
    kubectl("uncordon", node)


def test_a_create_beyond_the_quota_is_refused(kubectl, namespace: str) -> None:
    kubectl("create", "quota", "pods", "-n", namespace, "--hard=pods=1,count/configmaps=10")
    wait_until(lambda: (_json(kubectl, "get", "quota", "pods", "-n", namespace).get("status") or {}).get("used"),
          what="the quota's status")
    kubectl("run", "first", "-n", namespace, "--image=nginx")
    res = kubectl("run", "second", "-n", namespace, "--image=nginx", check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == ('Error from server (Forbidden): pods "second" is forbidden: exceeded quota: pods, '
                                  'requested: pods=1, used: pods=1, limited: pods=1')
    status = _json(kubectl, "get", "quota", "pods", "-n", namespace)["status"]
    assert status["hard"] == {"count/configmaps": "10", "pods": "1"} and status["used"]["pods"] == "1"


def test_limit_range_defaults_are_applied(kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                             "defaultRequest": {"cpu": "100m", "memory": "128Mi"}, "max": {"cpu": "1"}}]}}))
    kubectl("run", "web", "-n", namespace, "--image=nginx")
    pod = _json(kubectl, "get", "pod", "web", "-n", namespace)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                         "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web")
    assert pod["status"]["qosClass"] == "Burstable"
    res = kubectl("run", "big", "-n", namespace, "--image=nginx", "--overrides",
                  json.dumps({"spec": {"containers": [{"name": "big", "image": "nginx",
                                                       "resources": {"limits": {"cpu": "2"}}}]}}), check=False)
    assert res.stderr.strip() == ('Error from server (Forbidden): pods "big" is forbidden: '
                                  'maximum cpu usage per Container is 1, but limit is 2')
