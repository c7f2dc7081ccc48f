"""AKS's system add-ons on the demo cluster, through kubectl and the Python client: CoreDNS
behind `kube-dns` at the DNS service IP, kube-proxy and the other DaemonSets on every node,
all Running like any pod, and the addon manager putting back what a user deletes."""

from __future__ import annotations

import json

from kubernetes import client as k8s_client

from .conftest import wait_until

DAEMONSETS = {"kube-proxy", "azure-ip-masq-agent", "cloud-node-manager", "csi-azuredisk-node",
              "csi-azurefile-node", "azure-cns"}
DEPLOYMENTS = {"coredns": 2, "coredns-autoscaler": 1, "metrics-server": 2, "konnectivity-agent": 2}


def _json(kubectl, *args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json").stdout)



def _system_pods(kubectl) -> list[dict]:
    return _json(kubectl, "get", "pods", "-n", "kube-system")["items"]


def test_kubectl_get_pods_shows_the_add_ons_running(kubectl, core):
    nodes = [n for n in _json(kubectl, "get", "nodes")["items"]
             if n["metadata"]["labels"].get("kubernetes.azure.com/agentpool")]  # the demo pool's nodes

    def settled():
        pods = _system_pods(kubectl)
        owners = {}
        for p in pods:
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"):
                app = p["metadata"]["labels"]["k8s-app"]
                owners.setdefault(app, []).append(p)
        ds_ok = all(sum(1 for p in owners.get(name, []) if p["spec"]["nodeName"] in {n["metadata"]["name"] for n in nodes})
                    >= len(nodes) for name in DAEMONSETS)
        return ds_ok and len(owners.get("kube-dns", [])) >= 2 and owners

    owners = wait_until(settled, 60)
    assert {p["spec"]["nodeName"] for p in owners["kube-dns"]} <= {n["metadata"]["name"] for n in nodes}
    table = kubectl("get", "pods", "-A").stdout
    for name in ("coredns-", "kube-proxy-", "metrics-server-", "konnectivity-agent-", "cloud-node-manager-"):
        assert any(line.startswith("kube-system") and name in line and "Running" in line for line in table.splitlines())

    deployments = {d["metadata"]["name"]: d for d in _json(kubectl, "get", "deployments", "-n", "kube-system")["items"]}
    assert {name: d["spec"]["replicas"] for name, d in deployments.items() if name in DEPLOYMENTS} == DEPLOYMENTS
    apps = k8s_client.AppsV1Api(core.api_client)
    daemonsets = {d.metadata.name for d in apps.list_namespaced_daemon_set("kube-system").items}
    assert DAEMONSETS <= daemonsets

    dns = core.read_namespaced_service("kube-dns", "kube-system")
    assert dns.spec.cluster_ip == "10.0.0.10"
    assert sorted((p.name, p.port, p.protocol) for p in dns.spec.ports) == [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]

    def endpoints():
        slices = _json(kubectl, "get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns")
        ready = [e for s in slices["items"] for e in s.get("endpoints") or [] if e["conditions"].get("ready")]
        return len(ready) == 2 and ready

    wait_until(endpoints, 60)


def test_a_deleted_add_on_comes_back(kubectl):
    wait_until(lambda: any(d["metadata"]["name"] == "coredns-autoscaler"
                      for d in _json(kubectl, "get", "deployments", "-n", "kube-system")["items"]))
    kubectl("delete", "deployment", "coredns-autoscaler", "-n", "kube-system")
    back = wait_until(lambda: next((d for d in _json(kubectl, "get", "deployments", "-n", "kube-system")["items"]
                               if d["metadata"]["name"] == "coredns-autoscaler"), None))
    assert back["metadata"]["labels"]["addonmanager.kubernetes.io/mode"] == "Reconcile"
    res = kubectl("rollout", "status", "deployment/coredns-autoscaler", "-n", "kube-system", "--timeout=60s")
    assert "successfully rolled out" in res.stdout
