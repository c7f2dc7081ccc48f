"""A kubenet cluster whose pod CIDR holds fewer /24s than it has nodes, made with the `lks` CLI
and looked at with kubectl: the nodes the node IPAM controller had no CIDR for show NotReady with
kubelet's "container runtime network not ready" message and the not-ready taint, a Deployment's
pods land only on the Ready nodes and all run, and a node that goes away hands its CIDR to a
waiting one, which becomes Ready and loses the taint."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import lks_json, wait_until

GROUP, CLUSTER = "cidr-rg", "tight"
NOT_READY = "node.kubernetes.io/not-ready"
MESSAGE = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
           "message:Network plugin returns error: cni plugin not initialized")




def _ready(node: dict) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def _taints(node: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


@pytest.fixture(scope="module")
def tight(lks, tmp_path_factory):
    """Three nodes, two /24s: a kubeconfig for the cluster."""
    lks_json(lks, "group", "create", "-n", GROUP, "-l", "westeurope")
    mc = lks_json(lks, "aks", "create", "-g", GROUP, "-n", CLUSTER, "--node-count", "3", "--network-plugin", "kubenet",
              "--pod-cidr", "10.245.0.0/23")
    assert mc["networkProfile"]["podCidr"] == "10.245.0.0/23"
    kubeconfig = tmp_path_factory.mktemp("tight") / "kubeconfig"
    lks_json(lks, "aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "-f", str(kubeconfig))
    yield kubeconfig
    lks_json(lks, "group", "delete", "-n", GROUP, "--yes", "--no-wait")


def test_nodes_without_a_pod_cidr_are_not_ready_and_get_no_pods(lks, tight):
    def kubectl(*args: str, **kw) -> subprocess.CompletedProcess:
        return lks.kubectl(*args, kubeconfig=tight, **kw)

    def nodes() -> list[dict]:
        return json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]

    def settled():
        got = nodes()
        with_cidr = [n for n in got if n["spec"].get("podCIDR")]
        without = [n for n in got if not n["spec"].get("podCIDR")]
        if (len(with_cidr), len(without)) != (2, 1) or NOT_READY not in {k for k, _ in _taints(without[0])}:
            return None
        if not all(_ready(n)["status"] == "True" and not _taints(n) for n in with_cidr):
            return None
        return with_cidr, without[0]

    ready, waiting = wait_until(settled, 60, what="two Ready nodes and one tainted NotReady one")
    assert sorted(n["spec"]["podCIDR"] for n in ready) == ["10.245.0.0/24", "10.245.1.0/24"]
    cond = _ready(waiting)
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "KubeletNotReady", MESSAGE)
    assert (NOT_READY, "NoSchedule") in _taints(waiting)
    rows = {line.split()[0]: line.split()[1] for line in kubectl("get", "nodes", "--no-headers").stdout.splitlines()}
    assert rows[waiting["metadata"]["name"]] == "NotReady"
    assert sorted(rows.values()) == ["NotReady", "Ready", "Ready"]
    events = json.loads(kubectl("get", "events", "-A", "--field-selector", "reason=CIDRNotAvailable",
                                "-o", "json").stdout)["items"]
    assert waiting["metadata"]["name"] in {e["involvedObject"]["name"] for e in events}

    # a Deployment's pods only land on the Ready nodes, and all of them run
    namespace = "cidr-test"
    kubectl("create", "namespace", namespace)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=6", "-n", namespace)
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout)["items"]
    assert len(pods) == 6 and all(p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} <= {n["metadata"]["name"] for n in ready}
    assert all(p["status"]["podIP"].startswith("10.245.") for p in pods)

    # a Ready node goes away: its CIDR is free again, and the waiting node takes it and is Ready
    gone = ready[0]
    kubectl("delete", "node", gone["metadata"]["name"])

    def recovered():
        node = next((n for n in nodes() if n["metadata"]["name"] == waiting["metadata"]["name"]), None)
        ok = node and _ready(node)["status"] == "True" and not {k for k, _ in _taints(node)} & {NOT_READY}
        return node if ok else None

    node = wait_until(recovered, 60, what="the waiting node Ready without the not-ready taint")
    assert node["spec"]["podCIDR"] == gone["spec"]["podCIDR"]
    assert _ready(node)["reason"] == "KubeletReady"
