"""Defaults of the kinds that configure the API server itself: admission webhooks and policies
(admissionregistration.k8s.io/v1), CustomResourceDefinitions (apiextensions.k8s.io/v1),
APIServices (apiregistration.k8s.io/v1) and API Priority and Fairness
(flowcontrol.apiserver.k8s.io/v1), as their `defaults.go` files set them.
"""

from __future__ import annotations

from lks.kube.defaulting._json import Obj, child, children, default, default_zero, is_zero, struct

_WEBHOOK_PORT = 443


def _webhook(hook: Obj, *, mutating: bool) -> None:
    default(hook, "failurePolicy", "Fail")
    default(hook, "matchPolicy", "Equivalent")
    default(hook, "namespaceSelector", {})
    default(hook, "objectSelector", {})
    default(hook, "timeoutSeconds", 10)
    if mutating:
        default(hook, "reinvocationPolicy", "Never")
    _rules(hook, "rules")
    _service_port(child(hook, "clientConfig"))


def _rules(obj: Obj | None, key: str) -> None:
    for rule in children(obj, key):
        default(rule, "scope", "*")


def _service_port(client_config: Obj | None) -> None:
    default(child(client_config, "service"), "port", _WEBHOOK_PORT)


def _match_resources(match: Obj | None) -> None:
    if match is None:
        return
    default(match, "matchPolicy", "Equivalent")
    default(match, "namespaceSelector", {})
    default(match, "objectSelector", {})
    _rules(match, "resourceRules")
    _rules(match, "excludeResourceRules")


def validating_webhook_configuration(obj: Obj) -> None:
    for hook in children(obj, "webhooks"):
        _webhook(hook, mutating=False)


def mutating_webhook_configuration(obj: Obj) -> None:
    for hook in children(obj, "webhooks"):
        _webhook(hook, mutating=True)


def admission_policy(obj: Obj) -> None:
    """ValidatingAdmissionPolicy and MutatingAdmissionPolicy."""
    spec = struct(obj, "spec")
    default(spec, "failurePolicy", "Fail")
    _match_resources(child(spec, "matchConstraints"))


def admission_policy_binding(obj: Obj) -> None:
    _match_resources(child(child(obj, "spec"), "matchResources"))


def custom_resource_definition(obj: Obj) -> None:
    spec = struct(obj, "spec")
    names = struct(spec, "names")
    kind = names.get("kind")
    if isinstance(kind, str):
        default_zero(names, "singular", kind.lower())
        if kind:
            default_zero(names, "listKind", kind + "List")
    default(spec, "conversion", {"strategy": "None"})
    _service_port(child(child(child(spec, "conversion"), "webhook"), "clientConfig"))
    status = struct(obj, "status")
    if is_zero(status.get("storedVersions")):
        storage = [v.get("name") for v in children(spec, "versions") if v.get("storage") is True]
        if storage:
            status["storedVersions"] = storage[:1]


def api_service(obj: Obj) -> None:
    default(child(child(obj, "spec"), "service"), "port", _WEBHOOK_PORT)


def flow_schema(obj: Obj) -> None:
    default_zero(struct(obj, "spec"), "matchingPrecedence", 1000)


def priority_level_configuration(obj: Obj) -> None:
    spec = struct(obj, "spec")
    if (limited := child(spec, "limited")) is not None:
        default(limited, "nominalConcurrencyShares", 30)
        default(limited, "lendablePercent", 0)
        if (queuing := child(child(limited, "limitResponse"), "queuing")) is not None:
            default_zero(queuing, "handSize", 8)
            default_zero(queuing, "queues", 64)
            default_zero(queuing, "queueLengthLimit", 50)
    if (exempt := child(spec, "exempt")) is not None:
        default(exempt, "nominalConcurrencyShares", 0)
        default(exempt, "lendablePercent", 0)


_ADMISSION = "admissionregistration.k8s.io"

DEFAULTERS = {
    (_ADMISSION, "v1", "ValidatingWebhookConfiguration"): validating_webhook_configuration,
    (_ADMISSION, "v1", "MutatingWebhookConfiguration"): mutating_webhook_configuration,
    (_ADMISSION, "v1", "ValidatingAdmissionPolicy"): admission_policy,
    (_ADMISSION, "v1", "MutatingAdmissionPolicy"): admission_policy,
    (_ADMISSION, "v1", "ValidatingAdmissionPolicyBinding"): admission_policy_binding,
    (_ADMISSION, "v1", "MutatingAdmissionPolicyBinding"): admission_policy_binding,
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): custom_resource_definition,
    ("apiregistration.k8s.io", "v1", "APIService"): api_service,
    ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema"): flow_schema,
    ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration"): priority_level_configuration,
}
