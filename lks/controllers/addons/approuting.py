"""The application routing add-on's objects (`ingressProfile.webAppRouting.enabled`), as AKS's
app-routing operator (Azure/aks-app-routing-operator, `pkg/manifests/nginx.go`) makes them for
the default controller: the `app-routing-system` namespace, the IngressClass
`webapprouting.kubernetes.azure.com` (controller `webapprouting.kubernetes.azure.com/nginx`),
and in the namespace the `nginx` ServiceAccount, roles, ConfigMap, Deployment (2 to 100 replicas
by its HPA), PodDisruptionBudget and `LoadBalancer` Service, with the operator's labels.

The pods are ordinary add-on pods (scheduled, run by the node agents); the traffic is served in
process by `lks.net.ingress`, so the Service carries `lks.dev/served-in-process: "true"` and the
LoadBalancer controller leaves it to that package, which writes its external IP. A second
`AddonManager` keeps these objects while the add-on is on (`lks.net.ingress.configure`).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NAMESPACE = "app-routing-system"
NAME = "nginx"  # the default controller's resources
INGRESS_CLASS = "webapprouting.kubernetes.azure.com"
CONTROLLER = "webapprouting.kubernetes.azure.com/nginx"
SERVED_IN_PROCESS = "lks.dev/served-in-process"
IMAGE = "mcr.microsoft.com/oss/kubernetes/ingress/nginx-ingress-controller:v1.11.5"
_OPERATOR = "aks-app-routing-operator"
_LABELS = {"app.kubernetes.io/managed-by": _OPERATOR, "app.kubernetes.io/name": NAME,
           "kubernetes.azure.com/managedby": "aks"}
_COMPONENT = {"app.kubernetes.io/component": "ingress-controller", **_LABELS}
_SELECTOR = {"app": NAME}
_RBAC = "rbac.authorization.k8s.io"


def _meta(name: str, *, namespaced: bool = True, **extra: Any) -> Obj:
    meta: Obj = {"name": name, "labels": dict(_COMPONENT), **extra}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Obj:
    rule: Obj = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def _roles() -> list[Obj]:
    """ingress-nginx's RBAC as the operator grants it."""
    subjects = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    cluster_rules = [
        _rule([""], ["configmaps", "endpoints", "nodes", "pods", "secrets", "namespaces"], ["list", "watch"]),
        _rule(["coordination.k8s.io"], ["leases"], ["list", "watch"]),
        _rule([""], ["nodes"], ["get"]),
        _rule([""], ["services"], ["get", "list", "watch"]),
        _rule(["networking.k8s.io"], ["ingresses"], ["get", "watch", "list"]),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(["networking.k8s.io"], ["ingresses/status"], ["update"]),
        _rule(["networking.k8s.io"], ["ingressclasses"], ["get", "list", "watch"]),
        _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch", "get"]),
    ]
    rules = [
        _rule([""], ["namespaces"], ["get"]),
        _rule([""], ["configmaps"], ["update"]),
        _rule([""], ["configmaps", "pods", "secrets", "endpoints"], ["get", "list", "watch"]),
        _rule([""], ["services"], ["get", "list", "watch"]),
        _rule(["networking.k8s.io"], ["ingresses"], ["get", "list", "watch"]),
        _rule(["networking.k8s.io"], ["ingresses/status"], ["update"]),
        _rule(["networking.k8s.io"], ["ingressclasses"], ["get", "list", "watch"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "update"], [NAME]),
        _rule(["coordination.k8s.io"], ["leases"], ["create"]),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch", "get"]),
    ]
    return [
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(NAME, namespaced=False),
         "rules": cluster_rules},
        {"apiVersion": f"{_RBAC}/v1", "kind": "Role", "metadata": _meta(NAME), "rules": rules},
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(NAME, namespaced=False),
         "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": NAME}, "subjects": subjects},
        {"apiVersion": f"{_RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(NAME),
         "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": NAME}, "subjects": subjects},
    ]


def _deployment() -> Obj:
    probe = {"failureThreshold": 3, "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"},
             "initialDelaySeconds": 10, "periodSeconds": 5, "successThreshold": 1, "timeoutSeconds": 1}
    container = {
        "name": "controller", "image": IMAGE,
        "args": ["/nginx-ingress-controller", f"--ingress-class={INGRESS_CLASS}", f"--controller-class={CONTROLLER}",
                 f"--election-id={NAME}", f"--publish-service=$(POD_NAMESPACE)/{NAME}",
                 f"--configmap=$(POD_NAMESPACE)/{NAME}", "--enable-annotation-validation=true",
                 "--shutdown-grace-period=15", "--enable-metrics=true"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"name": "http", "containerPort": 80}, {"name": "https", "containerPort": 443},
                  {"name": "prometheus", "containerPort": 10254}],
        "readinessProbe": probe, "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": {"requests": {"cpu": "500m", "memory": "127Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 101,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    affinity = {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {"matchExpressions": [
            {"key": "kubernetes.azure.com/mode", "operator": "In", "values": ["system"]}]}}],
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.azure.com/cluster", "operator": "Exists"},
            {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]},
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME),
        "spec": {
            "revisionHistoryLimit": 2, "selector": {"matchLabels": _SELECTOR},
            "template": {
                "metadata": {"labels": {**_SELECTOR, "app.kubernetes.io/component": "ingress-controller",
                                        "app.kubernetes.io/managed-by": _OPERATOR,
                                        "kubernetes.azure.com/managedby": "aks"},
                             "annotations": {"kubernetes.azure.com/set-kube-service-host-fqdn": "true",
                                             "openservicemesh.io/sidecar-injection": "disabled",
                                             "prometheus.io/port": "10254", "prometheus.io/scrape": "true"}},
                "spec": {"serviceAccountName": NAME, "priorityClassName": "system-cluster-critical",
                         "affinity": affinity, "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                         "topologySpreadConstraints": [{
                             "labelSelector": {"matchLabels": _SELECTOR}, "matchLabelKeys": ["pod-template-hash"],
                             "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                             "whenUnsatisfiable": "ScheduleAnyway"}],
                         "containers": [container]},
            },
        },
    }


def objects() -> list[Obj]:
    """The add-on's objects, in the order they are applied (the namespace first)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NAMESPACE, "annotations": {"openservicemesh.io/sidecar-injection": "disabled"}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": INGRESS_CLASS, "labels": dict(_LABELS)}, "spec": {"controller": CONTROLLER}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)},
        *_roles(),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(NAME),
         "data": {"allow-cross-namespace-resources": "true", "allow-snippet-annotations": "true",
                  "annotation-value-word-blocklist": "load_module,lua_package,_by_lua,location,root,proxy_pass,"
                                                     "serviceaccount,{,},'",
                  "annotations-risk-level": "Critical"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME, annotations={SERVED_IN_PROCESS: "true"}),
         "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": _SELECTOR,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                            {"name": "https", "port": 443, "targetPort": "https"}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(f"{NAME}-metrics", annotations={"prometheus.io/port": "10254", "prometheus.io/scrape": "true"}),
         "spec": {"type": "ClusterIP", "selector": _SELECTOR,
                  "ports": [{"name": "prometheus", "port": 10254, "targetPort": "prometheus"}]}},
        _deployment(),
        {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": _meta(NAME),
         "spec": {"minReplicas": 2, "maxReplicas": 100, "targetCPUUtilizationPercentage": 80,
                  "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(NAME),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _SELECTOR}}},
    ]
