"""What the `azurepolicy` add-on puts in a cluster besides the CRDs, as on AKS: the
`gatekeeper-system` namespace with Gatekeeper's controller manager (2 replicas, serving the
webhook) and audit (1), the `gatekeeper-webhook-service` its webhook configuration names, the
`gatekeeper-validating-webhook-configuration` (webhook `validation.gatekeeper.sh`,
failurePolicy Ignore, 3 s, Gatekeeper's chart), and the `azure-policy` and
`azure-policy-webhook` deployments in kube-system. The pods are ordinary pods (scheduled, run by
the node agents); the webhook itself is answered in process (`lks.policy.gatekeeper.webhook`).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NAMESPACE = "gatekeeper-system"
SERVICE = "gatekeeper-webhook-service"
WEBHOOK_CONFIGURATION = "gatekeeper-validating-webhook-configuration"
WEBHOOK = "validation.gatekeeper.sh"
ADMIT_PATH = "/v1/admit"
MUTATING_WEBHOOK_CONFIGURATION = "gatekeeper-mutating-webhook-configuration"
MUTATING_WEBHOOK = "mutation.gatekeeper.sh"
MUTATE_PATH = "/v1/mutate"
IGNORE_LABEL = "admission.gatekeeper.sh/ignore"
GATEKEEPER_IMAGE = "mcr.microsoft.com/oss/v2/open-policy-agent/gatekeeper:v3.20.1"
POLICY_IMAGE = "mcr.microsoft.com/azure-policy/policy-kubernetes-addon-prod:1.13.0"
WEBHOOK_IMAGE = "mcr.microsoft.com/azure-policy/policy-kubernetes-webhook:1.13.0"
_ADDON = {"addonmanager.kubernetes.io/mode": "Reconcile", "kubernetes.azure.com/managedby": "aks"}
_CRITICAL = [{"key": "CriticalAddonsOnly", "operator": "Exists"}]


def _deployment(name: str, namespace: str, labels: Obj, replicas: int, image: str, args: list[str],
                cpu: str, memory: str) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**_ADDON, **labels}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": {**labels, "kubernetes.azure.com/managedby": "aks"}},
                              "spec": {"priorityClassName": "system-cluster-critical",
                                       "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": _CRITICAL,
                                       "containers": [{"name": "manager" if "gatekeeper" in name else name,
                                                       "image": image, "args": args,
                                                       "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}}}


def objects(audit_interval: int, violations_limit: int) -> list[Obj]:
    """The add-on's objects other than the CRDs, in the order they are applied."""
    manager = {"control-plane": "controller-manager", "gatekeeper.sh/operation": "webhook",
               "gatekeeper.sh/system": "yes"}
    audit = {"control-plane": "audit-controller", "gatekeeper.sh/operation": "audit", "gatekeeper.sh/system": "yes"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {
            **_ADDON, "control-plane": "controller-manager", "gatekeeper.sh/system": "yes",
            "admission.gatekeeper.sh/ignore": "no-self-managing"}}},
        _deployment("gatekeeper-controller-manager", NAMESPACE, manager, 2, GATEKEEPER_IMAGE,
                    ["--port=8443", "--exempt-namespace=gatekeeper-system", "--operation=webhook",
                     "--operation=mutation-webhook"], "100m", "256Mi"),
        _deployment("gatekeeper-audit", NAMESPACE, audit, 1, GATEKEEPER_IMAGE,
                    ["--operation=audit", "--operation=status", f"--audit-interval={audit_interval}",
                     f"--constraint-violations-limit={violations_limit}"], "100m", "256Mi"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": SERVICE, "namespace": NAMESPACE, "labels": {**_ADDON, "gatekeeper.sh/system": "yes"}},
         "spec": {"selector": manager, "ports": [{"name": "https-webhook-server", "port": 443,
                                                  "targetPort": "webhook-server", "protocol": "TCP"}]}},
        _deployment("azure-policy", "kube-system", {"app": "azure-policy"}, 1, POLICY_IMAGE, [], "30m", "50Mi"),
        _deployment("azure-policy-webhook", "kube-system", {"app": "azure-policy-webhook"}, 1, WEBHOOK_IMAGE, [],
                    "30m", "50Mi"),
        webhook_configuration(),
        mutating_webhook_configuration(),
    ]


_SUBRESOURCES = ["pods/ephemeralcontainers", "pods/exec", "pods/log", "pods/eviction", "pods/portforward",
                 "pods/proxy", "pods/attach", "pods/binding", "deployments/scale", "replicasets/scale",
                 "statefulsets/scale", "replicationcontrollers/scale", "services/proxy", "nodes/proxy",
                 "services/status"]


def _namespace_selector() -> Obj:
    # AKS's add-on also never acts in namespaces labelled as its own or the control plane's
    return {"matchExpressions": [
        {"key": IGNORE_LABEL, "operator": "DoesNotExist"},
        {"key": "admission.policy.azure.com/ignore", "operator": "DoesNotExist"},
        {"key": "control-plane", "operator": "DoesNotExist"},
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]}]}


def mutating_webhook_configuration() -> Obj:
    """`mutation.gatekeeper.sh` (the chart's values: Ignore, reinvocation Never, 1 s)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_WEBHOOK_CONFIGURATION, "labels": {
            **_ADDON, "app": "gatekeeper", "chart": "gatekeeper", "gatekeeper.sh/system": "yes"}},
        "webhooks": [{
            "name": MUTATING_WEBHOOK, "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"service": {"name": SERVICE, "namespace": NAMESPACE, "path": MUTATE_PATH}},
            "failurePolicy": "Ignore", "matchPolicy": "Exact", "reinvocationPolicy": "Never",
            "sideEffects": "None", "timeoutSeconds": 1,
            "namespaceSelector": _namespace_selector(), "objectSelector": {},
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["*", *_SUBRESOURCES], "scope": "*"}],
        }],
    }


def webhook_configuration() -> Obj:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION, "labels": {
            **_ADDON, "app": "gatekeeper", "chart": "gatekeeper", "gatekeeper.sh/system": "yes"}},
        "webhooks": [{
            "name": WEBHOOK, "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"service": {"name": SERVICE, "namespace": NAMESPACE, "path": ADMIT_PATH}},
            "failurePolicy": "Ignore", "matchPolicy": "Exact", "sideEffects": "None", "timeoutSeconds": 3,
            # AKS's add-on also never denies in namespaces labelled as its own or the control plane's
            "namespaceSelector": {"matchExpressions": [
                {"key": IGNORE_LABEL, "operator": "DoesNotExist"},
                {"key": "admission.policy.azure.com/ignore", "operator": "DoesNotExist"},
                {"key": "control-plane", "operator": "DoesNotExist"},
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]}]},
            "objectSelector": {},
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["*", "pods/ephemeralcontainers", "pods/exec", "pods/log", "pods/eviction",
                                     "pods/portforward", "pods/proxy", "pods/attach", "pods/binding",
                                     "deployments/scale", "replicasets/scale", "statefulsets/scale",
                                     "replicationcontrollers/scale", "services/proxy", "nodes/proxy",
                                     "services/status"], "scope": "*"}],
        }],
    }
