"""The virtual node add-on's objects (`addonProfiles.aciConnectorLinux`), as AKS installs the
ACI virtual kubelet (virtual-kubelet/azure-aci): the `aci-connector-linux` ServiceAccount, its
binding and Deployment in kube-system. The pod is an ordinary add-on pod on a real node (never the
virtual node); the virtual node itself is served in process by `lks.aci.virtualnode`, which keeps
these objects with an `AddonManager` of their own while the add-on is on.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NAMESPACE = "kube-system"
NAME = "aci-connector-linux"
NODE_NAME = "virtual-node-aci-linux"
IMAGE = "mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.2"
TAINT_KEY = "virtual-kubelet.io/provider"
_LABELS = {"app": NAME, "kubernetes.azure.com/managedby": "aks"}


def objects(*, subnet: str) -> list[Obj]:
    """The add-on's objects for the virtual node subnet `subnet` (`config.SubnetName`)."""
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": dict(_LABELS)}
    env = [{"name": "KUBELET_PORT", "value": "10250"},
           {"name": "ACI_SUBNET_NAME", "value": subnet},
           {"name": "VKUBELET_TAINT_KEY", "value": TAINT_KEY},
           {"name": "VKUBELET_TAINT_VALUE", "value": "azure"},
           {"name": "VKUBELET_TAINT_EFFECT", "value": "NoSchedule"},
           {"name": "VKUBELET_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    container = {"name": NAME, "image": IMAGE, "env": env,
                 "args": ["--provider", "azure", "--nodename", NODE_NAME, "--os", "Linux"],
                 "resources": {"requests": {"cpu": "50m", "memory": "100Mi"}}}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}]}]}}}
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": NAME, "labels": dict(_LABELS)},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {"labels": dict(_LABELS)}, "spec": {
                "serviceAccountName": NAME, "containers": [container], "affinity": affinity,
                "priorityClassName": "system-node-critical",
                "nodeSelector": {"kubernetes.io/os": "linux"}}}}},
    ]
