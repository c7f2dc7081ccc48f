"""Services end to end with kubectl: cluster IPs from the service CIDR, node ports, the
`kubernetes` Service, what every namespace gets (the `default` ServiceAccount and the
`kube-root-ca.crt` ConfigMap), and Endpoints / EndpointSlices following pods."""

from __future__ import annotations

import base64
import ipaddress
import json
import time

import yaml

SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/16")


def wait_for(check, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def get(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_cluster_ip_from_the_service_cidr(kubectl, namespace):
    kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", namespace)
    spec = get(kubectl, "svc", "web", "-n", namespace)["spec"]
    assert ipaddress.ip_address(spec["clusterIP"]) in SERVICE_CIDR
    assert spec["clusterIPs"] == [spec["clusterIP"]] and spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    row = kubectl("get", "svc", "web", "-n", namespace, "--no-headers").stdout.split()
    assert row[:5] == ["web", "ClusterIP", spec["clusterIP"], "<none>", "80/TCP"]


def test_requested_cluster_ip_already_allocated(kubectl, namespace):
    res = kubectl("create", "service", "clusterip", "taken", "--tcp=443", "--clusterip=10.0.0.1", "-n", namespace,
                  check=False)
    assert res.returncode != 0
    assert ('Service "taken" is invalid: spec.clusterIPs: Invalid value: ["10.0.0.1"]: failed to allocate IP '
            "10.0.0.1: provided IP is already allocated") in res.stderr


def test_headless_service_has_no_address(kubectl, namespace):
    kubectl("create", "service", "clusterip", "db", "--clusterip=None", "-n", namespace)
    spec = get(kubectl, "svc", "db", "-n", namespace)["spec"]
    assert spec["clusterIP"] == "None" and spec["clusterIPs"] == ["None"]


def test_node_port_in_range(kubectl, namespace):
    kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", "-n", namespace)
    port = get(kubectl, "svc", "np", "-n", namespace)["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    row = kubectl("get", "svc", "np", "-n", namespace, "--no-headers").stdout.split()
    assert row[1] == "NodePort" and row[4] == f"80:{port}/TCP"
    res = kubectl("create", "service", "nodeport", "np2", "--tcp=80:8080", f"--node-port={port}", "-n", namespace,
                  check=False)
    assert res.returncode != 0
    assert f"spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated" in res.stderr
    kubectl("delete", "svc", "np", "-n", namespace)
    kubectl("create", "service", "nodeport", "np2", "--tcp=80:8080", f"--node-port={port}", "-n", namespace)


def test_load_balancer_gets_node_ports(kubectl, namespace):
    kubectl("create", "service", "loadbalancer", "lb", "--tcp=80:8080", "-n", namespace)
    spec = get(kubectl, "svc", "lb", "-n", namespace)["spec"]
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767


def test_kubernetes_service(kubectl):
    row = kubectl("get", "svc", "kubernetes", "-n", "default", "--no-headers").stdout.split()
    assert row[:5] == ["kubernetes", "ClusterIP", "10.0.0.1", "<none>", "443/TCP"]
    slice_ = get(kubectl, "endpointslices", "kubernetes", "-n", "default")
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert slice_["ports"][0]["name"] == "https" and slice_["endpoints"][0]["conditions"]["ready"] is True
    endpoints = get(kubectl, "endpoints", "kubernetes", "-n", "default")
    assert endpoints["subsets"][0]["addresses"] == [{"ip": slice_["endpoints"][0]["addresses"][0]}]


def test_every_namespace_gets_a_service_account_and_the_root_ca(lks, kubectl, namespace):
    def listed() -> list[str]:
        return kubectl("get", "sa,cm", "-n", namespace, "-o", "name").stdout.split()

    assert wait_for(lambda: {"serviceaccount/default", "configmap/kube-root-ca.crt"} <= set(listed())), listed()
    config = yaml.safe_load(lks.kubeconfig.read_text())
    trusted = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    cm = get(kubectl, "cm", "kube-root-ca.crt", "-n", namespace)
    assert cm["data"] == {"ca.crt": trusted}
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith("Contains a CA bundle")

    kubectl("delete", "sa", "default", "-n", namespace)
    kubectl("delete", "cm", "kube-root-ca.crt", "-n", namespace)
    assert wait_for(lambda: {"serviceaccount/default", "configmap/kube-root-ca.crt"} <= set(listed())), listed()
    kubectl("patch", "cm", "kube-root-ca.crt", "-n", namespace, "--type=merge", "-p", '{"data":{"ca.crt":"x"}}')
    assert wait_for(lambda: get(kubectl, "cm", "kube-root-ca.crt", "-n", namespace)["data"] == {"ca.crt": trusted})


POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  nodeName: {node}
  containers: [{{name: web, image: nginx, ports: [{{name: http, containerPort: 8080}}]}}]
"""


def test_endpoints_follow_pods(kubectl, core, namespace):
    """The pods are bound to a node by hand; if no node agent runs them, the test gives them
    the status an agent would (Running, Ready, an IP)."""
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    kubectl("create", "service", "clusterip", "web", "--tcp=80:http", "-n", namespace)
    names = ["web-a", "web-b"]
    for name in names:
        kubectl("create", "-n", namespace, "-f", "-", input=POD.format(name=name, node=node))
    created = time.monotonic()

    def ready_ips() -> dict[str, str]:
        out = {}
        for i, name in enumerate(names):
            pod = core.read_namespaced_pod(name, namespace)
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            if pod.status.pod_ip and ready:
                out[name] = pod.status.pod_ip
            elif time.monotonic() - created > 3:  # no agent took it up: play its part
                ip = f"10.244.250.{10 + i}"
                core.patch_namespaced_pod_status(name, namespace, {"status": {
                    "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": "True"}]}})
        return out

    def listed() -> bool:
        ips = ready_ips()
        if len(ips) < 2:
            return False
        slices = get(kubectl, "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=web")["items"]
        in_slices = {e["addresses"][0]: e for s in slices for e in s["endpoints"] or []}
        return set(in_slices) == set(ips.values()) and all(e["conditions"]["ready"] for e in in_slices.values())

    assert wait_for(listed, timeout=60), ready_ips()
    ips = ready_ips()
    [slice_] = get(kubectl, "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=web")["items"]
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert slice_["addressType"] == "IPv4" and slice_["ports"] == [{"name": "80-http", "port": 8080, "protocol": "TCP"}]
    refs = {e["targetRef"]["name"]: e for e in slice_["endpoints"]}
    assert set(refs) == set(names) and all(e["nodeName"] == node for e in refs.values())

    def endpoints_column() -> str:
        return kubectl("get", "endpoints", "web", "-n", namespace, "--no-headers").stdout.split()[1]

    want = ",".join(f"{ip}:8080" for ip in sorted(ips.values()))
    assert wait_for(lambda: endpoints_column() == want), endpoints_column()

    kubectl("delete", "pod", "web-a", "-n", namespace, "--grace-period=0", "--force")
    assert wait_for(lambda: endpoints_column() == f"{ips['web-b']}:8080"), endpoints_column()
