"""The simulated kubelets of the demo cluster, through kubectl and the Python client: node pod
CIDRs, pods bound to a node running with an IP from it, run-to-completion pods, the exit code
annotation, and `kubectl delete` of a running pod. Pods name their node themselves here, as a
scheduler would bind them."""

from __future__ import annotations

import ipaddress
import json
import re
import time

import pytest


def _nodes(kubectl) -> list[dict]:
    return json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]


@pytest.fixture
def node(kubectl) -> dict:
    """A demo node once node IPAM has given it a pod CIDR."""
    deadline = time.monotonic() + 30
    while True:
        nodes = _nodes(kubectl)
        if nodes and all(n["spec"].get("podCIDR") for n in nodes):
            return nodes[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes without pod CIDR: {[n['metadata']['name'] for n in nodes]}")
        time.sleep(0.1)


def _pod(name: str, node: dict, *, restart: str = "Always", annotations: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"nodeName": node["metadata"]["name"], "restartPolicy": restart,
                     "containers": [{"name": "web", "image": "nginx"}]}}


def _create(kubectl, namespace: str, body: dict) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))


def _wait_phase(kubectl, namespace: str, name: str, phase: str) -> None:
    kubectl("wait", "-n", namespace, f"--for=jsonpath={{.status.phase}}={phase}", f"pod/{name}", "--timeout=60s")


def test_nodes_get_their_own_pod_cidr(node, kubectl):
    cidrs = [n["spec"]["podCIDR"] for n in _nodes(kubectl)]
    assert len(set(cidrs)) == len(cidrs) == 3
    for n in _nodes(kubectl):
        net = ipaddress.ip_network(n["spec"]["podCIDR"])
        assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.244.0.0/16"))
        assert n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]


def test_a_bound_pod_runs_like_on_a_kubelet(node, kubectl, core, namespace):
    _create(kubectl, namespace, _pod("web", node))
    _wait_phase(kubectl, namespace, "web", "Running")
    pod = core.read_namespaced_pod("web", namespace)
    status = pod.status
    assert ipaddress.ip_address(status.pod_ip) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert [ip.ip for ip in status.pod_ips] == [status.pod_ip]
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert status.host_ip == internal and [ip.ip for ip in status.host_ips] == [internal]
    assert status.start_time is not None and status.qos_class == "BestEffort"
    assert [(c.type, c.status) for c in status.conditions] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True")]
    assert all(c.last_transition_time is not None for c in status.conditions)
    [c] = status.container_statuses
    assert (c.name, c.image, c.ready, c.started, c.restart_count) == ("web", "docker.io/library/nginx:latest", True, True, 0)
    assert re.fullmatch(r"docker\.io/library/nginx@sha256:[0-9a-f]{64}", c.image_id)
    assert re.fullmatch(r"containerd://[0-9a-f]{64}", c.container_id)
    assert c.state.running.started_at is not None and c.state.waiting is None and c.state.terminated is None

    table = kubectl("get", "pod", "web", "-n", namespace, "-o", "wide", "--no-headers").stdout.split()
    assert table[1:4] == ["1/1", "Running", "0"] and status.pod_ip in table
    assert node["metadata"]["name"] in table
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=web",
                     "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Pulling", "Pulled", "Created", "Started"} <= reasons


def _run_to_completion(kubectl, core, namespace, node, annotations, phase, code, shown):
    _create(kubectl, namespace, _pod("task", node, restart="Never", annotations=annotations))
    _wait_phase(kubectl, namespace, "task", phase)
    [c] = core.read_namespaced_pod("task", namespace).status.container_statuses
    assert c.state.terminated.exit_code == code and c.state.terminated.reason == shown
    assert not c.ready
    assert kubectl("get", "pod", "task", "-n", namespace, "--no-headers").stdout.split()[2] == shown


# (the namespace fixture names namespaces after the test, so these are not parametrized)
def test_a_never_restarting_pod_completes(node, kubectl, core, namespace):
    _run_to_completion(kubectl, core, namespace, node, {}, "Succeeded", 0, "Completed")


def test_the_exit_code_annotation_fails_a_pod(node, kubectl, core, namespace):
    _run_to_completion(kubectl, core, namespace, node, {"lks.dev/simulate-exit-code": "2"}, "Failed", 2, "Error")


def test_kubectl_delete_waits_for_the_kubelet(node, kubectl, core, namespace):
    _create(kubectl, namespace, _pod("web", node))
    _wait_phase(kubectl, namespace, "web", "Running")
    # kubectl waits until the pod is gone: the kubelet stops it and confirms the deletion
    out = kubectl("delete", "pod", "web", "-n", namespace, "--timeout=60s").stdout
    assert 'pod "web" deleted' in out
    assert kubectl("get", "pod", "web", "-n", namespace, check=False).returncode != 0
