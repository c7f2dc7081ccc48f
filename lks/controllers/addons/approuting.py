"""The application routing add-on's objects (`ingressProfile.webAppRouting.enabled`), as AKS's
app-routing operator (Azure/aks-app-routing-operator, `pkg/manifests/nginx.go`) makes them for
the default controller: the NginxIngressController CRD and its `default` object (whose status
`lks.net.ingress` keeps), the `app-routing-system` namespace, the IngressClass
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
NIC_GROUP, NIC_VERSION, NIC_PLURAL = "approuting.kubernetes.azure.com", "v1alpha1", "nginxingresscontrollers"
DEFAULT_NIC = "default"
_NAME_PATTERN = r"^[a-z0-9][-a-z0-9\.]*[a-z0-9]$"


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


def _condition_schema() -> Obj:
    return {"type": "object", "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string", "maxLength": 32768},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                "reason": {"type": "string", "maxLength": 1024, "minLength": 1,
                           "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {"type": "string", "maxLength": 316}}}


def crd() -> Obj:
    """The operator's NginxIngressController CRD (`kubectl get nic`), its schema without the
    descriptions."""
    immutable = [{"message": "Value is immutable", "rule": "self == oldSelf"}]
    name = {"type": "string", "maxLength": 253, "minLength": 1, "pattern": _NAME_PATTERN}
    int32 = {"type": "integer", "format": "int32"}
    spec = {
        "type": "object", "required": ["controllerNamePrefix", "ingressClassName"],
        "default": {"controllerNamePrefix": "nginx", "ingressClassName": "nginx.approuting.kubernetes.azure.com"},
        "properties": {
            "controllerNamePrefix": {"type": "string", "default": "nginx", "maxLength": 60, "minLength": 1,
                                     "pattern": r"^[a-z0-9][-a-z0-9]*[a-z0-9]$",
                                     "x-kubernetes-validations": immutable},
            "defaultSSLCertificate": {"type": "object", "properties": {"sslSecret": {"type": "object", "properties": {
                "secretName": name, "secretNamespace": name}}}},
            "ingressClassName": {**name, "default": "nginx.approuting.kubernetes.azure.com",
                                 "x-kubernetes-validations": immutable},
            "loadBalancerAnnotations": {"type": "object", "additionalProperties": {"type": "string"}}}}
    status = {"type": "object", "properties": {
        "collisionCount": {**int32, "maximum": 5},
        "conditions": {"type": "array", "items": _condition_schema(), "x-kubernetes-list-map-keys": ["type"],
                       "x-kubernetes-list-type": "map"},
        "controllerAvailableReplicas": int32, "controllerReadyReplicas": int32, "controllerReplicas": int32,
        "controllerUnavailableReplicas": int32,
        "managedResourceRefs": {"type": "array", "items": {"type": "object", "required": ["kind", "name"], "properties": {
            "apiGroup": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
            "namespace": {"type": "string"}}}}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{NIC_PLURAL}.{NIC_GROUP}",
                     "annotations": {"controller-gen.kubebuilder.io/version": "v0.13.0"}},
        "spec": {
            "group": NIC_GROUP, "scope": "Cluster",
            "names": {"kind": "NginxIngressController", "listKind": "NginxIngressControllerList",
                      "plural": NIC_PLURAL, "singular": "nginxingresscontroller", "shortNames": ["nic"]},
            "versions": [{
                "name": NIC_VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"jsonPath": ".spec.ingressClassName", "name": "IngressClass", "type": "string"},
                    {"jsonPath": ".spec.controllerNamePrefix", "name": "ControllerNamePrefix", "type": "string"},
                    {"jsonPath": '.status.conditions[?(@.type=="Available")].status', "name": "Available",
                     "type": "string"}],
                "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": spec, "status": status}}}}],
        },
    }


def default_controller() -> Obj:
    """The `default` NginxIngressController: the controller the rest of `objects()` make up."""
    return {"apiVersion": f"{NIC_GROUP}/{NIC_VERSION}", "kind": "NginxIngressController",
            "metadata": {"name": DEFAULT_NIC},
            "spec": {"ingressClassName": INGRESS_CLASS, "controllerNamePrefix": NAME}}


def managed_refs() -> list[Obj]:
    """The default controller's `status.managedResourceRefs`: what the operator made for it."""
    refs = []
    for obj in objects():
        if obj["kind"] in ("Namespace", "CustomResourceDefinition"):
            continue
        group = obj["apiVersion"].rpartition("/")[0]
        ref: Obj = {"kind": obj["kind"], "name": obj["metadata"]["name"]}
        if obj["metadata"].get("namespace"):
            ref["namespace"] = obj["metadata"]["namespace"]
        if group:
            ref["apiGroup"] = group
        refs.append(ref)
    return refs


INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"


def objects(*, internal: bool = False) -> list[Obj]:
    """The add-on's objects, in the order they are applied (the CRD and namespace first); the
    `default_controller()` follows once its CRD is established. `internal`: the default
    controller's type is Internal, its Service's load balancer AKS's internal one."""
    annotations = {SERVED_IN_PROCESS: "true", **({INTERNAL: "true"} if internal else {})}
    return [
        crd(),
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
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME, annotations=annotations),
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
