"""The kube-system add-ons AKS runs on a new cluster, as the objects its addon manager keeps.

What a fresh AKS cluster (Azure CNI overlay, the `az aks create` default) shows in
`kubectl get deploy,ds,svc -n kube-system`: CoreDNS (2 replicas, scaled by
`coredns-autoscaler`) behind the `kube-dns` Service at the cluster's DNS service IP,
`metrics-server` (2), `konnectivity-agent` (2), and on every node `kube-proxy`,
`azure-ip-masq-agent`, `cloud-node-manager`, the Azure Disk and Azure File CSI node plugins and,
with Azure CNI, `azure-cns`. Requests, tolerations, priority classes and affinities are AKS's,
so the add-ons take the room on the nodes that they take on AKS. Deployments prefer the System
pool (`kubernetes.azure.com/mode=system`), DaemonSets tolerate every taint.

Every object carries `addonmanager.kubernetes.io/mode`: `Reconcile` (put back when deleted or
changed) or `EnsureExists` (created once, then the user's: `coredns-custom` is where users add
their own CoreDNS configuration).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

MODE = "addonmanager.kubernetes.io/mode"
RECONCILE, ENSURE_EXISTS = "Reconcile", "EnsureExists"
MCR = "mcr.microsoft.com/oss/v2/kubernetes"
NAMESPACE = "kube-system"

_LINUX = {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
_NOT_VIRTUAL = {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}
_AKS_NODE = {"key": "kubernetes.azure.com/cluster", "operator": "Exists"}
_SYSTEM_POOL = {"weight": 100, "preference": {"matchExpressions": [
    {"key": "kubernetes.azure.com/mode", "operator": "In", "values": ["system"]}]}}
_CRITICAL = {"key": "CriticalAddonsOnly", "operator": "Exists"}
_EVERYTHING = [{"operator": "Exists"}]


def _meta(name: str, app: str, mode: str = RECONCILE, **labels: str) -> Obj:
    return {"name": name, "namespace": NAMESPACE,
            "labels": {MODE: mode, "kubernetes.io/cluster-service": "true", "k8s-app": app, **labels}}


def _container(name: str, image: str, cpu: str, memory: str, *, limit_memory: str | None = None,
               args: list[str] | None = None, ports: list[Obj] | None = None, **extra: Any) -> Obj:
    c: Obj = {"name": name, "image": image,
              "resources": {"requests": {"cpu": cpu, "memory": memory}}}
    if limit_memory:
        c["resources"]["limits"] = {"memory": limit_memory}
    if args:
        c["args"] = args
    if ports:
        c["ports"] = ports
    c.update(extra)
    return c


def _deployment(name: str, app: str, replicas: int, containers: list[Obj], *, priority: str,
                spread: bool = True, **spec: Any) -> Obj:
    affinity: Obj = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [_AKS_NODE, _NOT_VIRTUAL, _LINUX]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [_SYSTEM_POOL]}}
    if spread:  # replicas on different nodes when there is room
        affinity["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                "labelSelector": {"matchLabels": {"k8s-app": app}}}}]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, app),
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"k8s-app": app}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"k8s-app": app, "kubernetes.azure.com/managedby": "aks"}},
                "spec": {"serviceAccountName": name, "priorityClassName": priority,
                         "nodeSelector": {"kubernetes.io/os": "linux"}, "affinity": affinity,
                         "tolerations": [_CRITICAL], "containers": containers, **spec},
            },
        },
    }


def _daemonset(name: str, app: str, containers: list[Obj], **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, app),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": app}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"k8s-app": app, "kubernetes.azure.com/managedby": "aks"}},
                "spec": {"priorityClassName": "system-node-critical", "tolerations": _EVERYTHING,
                         "nodeSelector": {"kubernetes.io/os": "linux"},
                         "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                             "nodeSelectorTerms": [{"matchExpressions": [_AKS_NODE, _NOT_VIRTUAL]}]}}},
                         "containers": containers, **spec},
            },
        },
    }


def _service_account(name: str, app: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, app)}


def _budget(name: str, app: str) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(name, app),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"k8s-app": app}}}}


def _cluster_meta(name: str, app: str, **labels: str) -> Obj:
    meta = _meta(name, app, **labels)
    del meta["namespace"]
    return meta


_RBAC = "rbac.authorization.k8s.io"


def _metrics_server_rbac() -> list[Obj]:
    """metrics-server's roles, as its manifest has them: reading metrics aggregates into view,
    edit and admin (`system:aggregated-metrics-reader`); its own account reads nodes and pods
    and delegates authentication and authorization to the API server."""
    aggregate = {f"{_RBAC}/aggregate-to-{r}": "true" for r in ("view", "edit", "admin")}
    account = [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": NAMESPACE}]

    def binding(kind: str, name: str, role_kind: str, role: str, **meta: Any) -> Obj:
        return {"apiVersion": f"{_RBAC}/v1", "kind": kind, "metadata": {**_cluster_meta(name, "metrics-server"), **meta},
                "roleRef": {"apiGroup": _RBAC, "kind": role_kind, "name": role}, "subjects": account}

    return [
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
         "metadata": _cluster_meta("system:aggregated-metrics-reader", "metrics-server", **aggregate),
         "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _cluster_meta("system:metrics-server", "metrics-server"),
         "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces", "configmaps"],
                    "verbs": ["get", "list", "watch"]}]},
        binding("ClusterRoleBinding", "system:metrics-server", "ClusterRole", "system:metrics-server"),
        binding("ClusterRoleBinding", "metrics-server:system:auth-delegator", "ClusterRole", "system:auth-delegator"),
        binding("RoleBinding", "metrics-server-auth-reader", "Role", "extension-apiserver-authentication-reader",
                namespace=NAMESPACE),
    ]


def _corefile() -> str:
    return """.:53 {
    errors
    ready
    health {
      lameduck 5s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
      ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import custom/*.override
}
import custom/*.server
"""


def addons(*, patch_version: str, dns_service_ip: str, pod_cidr: str, network_plugin: str = "azure") -> list[Obj]:
    """The add-on objects of a cluster (`patch_version` like "1.36.2"), in creation order."""
    minor = ".".join(patch_version.split(".")[:2])
    dns_ports = [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                 {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                 {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]
    objs: list[Obj] = [
        # CoreDNS and its autoscaler
        _service_account("coredns", "kube-dns"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns", "kube-dns"),
         "data": {"Corefile": _corefile()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns-custom", "kube-dns", ENSURE_EXISTS),
         "data": {}},
        _deployment("coredns", "kube-dns", 2, [_container(
            "coredns", f"{MCR}/coredns:v1.12.1-2", "100m", "70Mi", limit_memory="500Mi",
            args=["-conf", "/etc/coredns/Corefile"], ports=dns_ports,
            livenessProbe={"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                           "initialDelaySeconds": 60, "timeoutSeconds": 5, "failureThreshold": 5},
            readinessProbe={"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}})],
            priority="system-node-critical", dnsPolicy="Default"),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {**_meta("kube-dns", "kube-dns", **{"kubernetes.io/name": "CoreDNS"}),
                      "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
         "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": dns_service_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
        _budget("coredns-pdb", "kube-dns"),
        _service_account("coredns-autoscaler", "coredns-autoscaler"),
        _deployment("coredns-autoscaler", "coredns-autoscaler", 1, [_container(
            "autoscaler", f"{MCR}/autoscaler/cluster-proportional-autoscaler:v1.9.0-1", "20m", "10Mi",
            limit_memory="500Mi",
            args=["--namespace=kube-system", "--configmap=coredns-autoscaler", "--target=deployment/coredns",
                  "--default-params={\"linear\":{\"coresPerReplica\":512,\"nodesPerReplica\":8,"
                  "\"min\":1,\"preventSinglePointFailure\":true}}", "--nodelabels=kubernetes.azure.com/mode=system",
                  "--logtostderr=true", "--v=2"])],
            priority="system-cluster-critical", spread=False),
        # metrics-server: lks serves its metrics.k8s.io in process (lks.metrics) behind its APIService
        _service_account("metrics-server", "metrics-server"),
        *_metrics_server_rbac(),
        _deployment("metrics-server", "metrics-server", 2, [
            _container("metrics-server", f"{MCR}/metrics-server:v0.7.2-7", "150m", "100Mi", limit_memory="400Mi",
                       args=["--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP",
                             "--cert-dir=/tmp", "--secure-port=4443"],
                       ports=[{"name": "https", "containerPort": 4443, "protocol": "TCP"}]),
            _container("metrics-server-vpa", f"{MCR}/autoscaler/addon-resizer:v1.8.23-2", "5m", "25Mi",
                       limit_memory="100Mi")],
            priority="system-cluster-critical"),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("metrics-server", "metrics-server"),
         "spec": {"selector": {"k8s-app": "metrics-server"},
                  "ports": [{"port": 443, "protocol": "TCP", "targetPort": "https"}]}},
        _budget("metrics-server-pdb", "metrics-server"),
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": _cluster_meta("v1beta1.metrics.k8s.io", "metrics-server"),
         "spec": {"service": {"name": "metrics-server", "namespace": NAMESPACE, "port": 443},
                  "group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
        # konnectivity: the nodes' tunnel to the hidden control plane
        _service_account("konnectivity-agent", "konnectivity-agent"),
        _deployment("konnectivity-agent", "konnectivity-agent", 2, [_container(
            "konnectivity-agent", f"{MCR}/apiserver-network-proxy/agent:v0.30.3-hotfix.20240819", "20m", "20Mi",
            limit_memory="1Gi",
            args=["--logtostderr=true", "--ca-cert=/certs/ca.crt", "--proxy-server-port=443",
                  "--keepalive-time=30s"])],
            priority="system-cluster-critical"),
        _budget("konnectivity-agent", "konnectivity-agent"),
        # on every node
        _service_account("kube-proxy", "kube-proxy"),
        _daemonset("kube-proxy", "kube-proxy", [_container(
            "kube-proxy", f"{MCR}/kube-proxy:v{patch_version}", "100m", "64Mi",
            args=["--conntrack-max-per-core=0", "--metrics-bind-address=0.0.0.0:10249",
                  f"--cluster-cidr={pod_cidr}", "--detect-local-mode=ClusterCIDR", "--pod-interface-name-prefix=",
                  "--v=3"],
            securityContext={"privileged": True})], hostNetwork=True, serviceAccountName="kube-proxy"),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": _meta("azure-ip-masq-agent-config-reconciled", "azure-ip-masq-agent"),
         "data": {"ip-masq-agent-reconciled": f"nonMasqueradeCIDRs:\n  - {pod_cidr}\nmasqLinkLocal: true\n"}},
        _daemonset("azure-ip-masq-agent", "azure-ip-masq-agent", [_container(
            "azure-ip-masq-agent", f"{MCR}/ip-masq-agent-v2:v0.1.15-2", "100m", "50Mi", limit_memory="250Mi",
            securityContext={"privileged": True})], hostNetwork=True),
        _service_account("cloud-node-manager", "cloud-node-manager"),
        _daemonset("cloud-node-manager", "cloud-node-manager", [_container(
            "cloud-node-manager", f"{MCR}/azure-cloud-node-manager:v{minor}.0", "50m", "50Mi",
            limit_memory="512Mi", args=["--node-name=$(NODE_NAME)", "--wait-routes=false"],
            env=[{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}])],
            hostNetwork=True, serviceAccountName="cloud-node-manager"),
        _service_account("csi-azuredisk-node-sa", "csi-azuredisk-node"),
        _daemonset("csi-azuredisk-node", "csi-azuredisk-node", [
            _container("liveness-probe", f"{MCR}/sig-storage/livenessprobe:v2.15.0", "10m", "20Mi"),
            _container("node-driver-registrar", f"{MCR}/sig-storage/csi-node-driver-registrar:v2.13.0", "10m", "20Mi"),
            _container("azuredisk", f"{MCR}/azuredisk-csi:v1.31.5", "10m", "20Mi", limit_memory="1000Mi")],
            hostNetwork=True, serviceAccountName="csi-azuredisk-node-sa"),
        _service_account("csi-azurefile-node-sa", "csi-azurefile-node"),
        _daemonset("csi-azurefile-node", "csi-azurefile-node", [
            _container("liveness-probe", f"{MCR}/sig-storage/livenessprobe:v2.15.0", "10m", "20Mi"),
            _container("node-driver-registrar", f"{MCR}/sig-storage/csi-node-driver-registrar:v2.13.0", "10m", "20Mi"),
            _container("azurefile", f"{MCR}/azurefile-csi:v1.32.2", "10m", "20Mi", limit_memory="600Mi")],
            hostNetwork=True, serviceAccountName="csi-azurefile-node-sa"),
    ]
    if network_plugin == "azure":
        objs += [
            _service_account("azure-cns", "azure-cns"),
            _daemonset("azure-cns", "azure-cns", [_container(
                "cns-container", "mcr.microsoft.com/containernetworking/azure-cns:v1.6.27", "40m", "250Mi",
                limit_memory="250Mi", ports=[{"name": "api", "containerPort": 10090, "protocol": "TCP"}])],
                hostNetwork=True, serviceAccountName="azure-cns"),
        ]
    return objs
