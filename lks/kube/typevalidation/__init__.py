"""Per-type validation: upstream's rules for the common built-in types (`pkg/apis/*/validation`),
with upstream's field paths and messages.

`validate` and `validate_update` take a group, a kind and a decoded object (and the stored object
on update) and return the field errors (`lks.kube.errors.Cause`) the registry turns into one 422
Invalid. Object metadata rules are not repeated here: `lks.kube.validation` has them. Types
without rules here return no errors. The object is expected decoded, as upstream validates Go
structs: through ``lks.kube.structural`` `check` (no type errors) and `prune`.

Rules are split by API group: for v1 `pod.py` (with `containers.py`, `volumes.py` and
`resources.py`), `service.py`, `storage.py` (with StorageClass) and `core.py`; then `apps.py`
(with ReplicationController), `batch.py` (with `cron.py`), `networking.py`, `autoscaling.py`,
`policy.py`, `rbac.py`, `coordination.py`, `scheduling.py`, `discovery.py`,
`admissionregistration.py` (with `admissionpolicy.py`), `node.py` (RuntimeClass) and `certificates.py`. `field.py`
words the errors, `common.py` holds the rules several types share.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from lks.kube.errors import Cause
from lks.kube.typevalidation import (
    admissionpolicy,
    admissionregistration,
    apiregistration,
    apps,
    autoscaling,
    batch,
    certificates,
    coordination,
    core,
    discovery,
    networking,
    node,
    pod,
    policy,
    rbac,
    scheduling,
    service,
    storage,
)
from lks.kube.typevalidation.warnings import warnings

Create = Callable[[dict], list[Cause]]
Update = Callable[[dict, dict], list[Cause]]


def _create_rules(create: Create) -> Update:
    """An update checked as a create of the new object (types without update-only rules)."""
    return lambda new, old: create(new)


_RULES: dict[tuple[str, str], tuple[Create, Update]] = {
    ("", "Pod"): (pod.validate_pod, pod.validate_pod_update),
    ("", "PodTemplate"): (lambda o: pod.pod_template_spec(o.get("template"), "template"),
                          lambda n, o: pod.pod_template_spec(n.get("template"), "template")),
    ("", "Service"): (service.validate_service, service.validate_service_update),
    ("", "ConfigMap"): (core.validate_config_map, core.validate_config_map_update),
    ("", "Secret"): (core.validate_secret, core.validate_secret_update),
    ("", "Namespace"): (core.validate_namespace, lambda n, o: []),
    ("", "Node"): (core.validate_node, core.validate_node_update),
    ("", "PersistentVolumeClaim"): (core.validate_pvc, core.validate_pvc_update),
    ("", "PersistentVolume"): (storage.validate_persistent_volume, storage.validate_persistent_volume_update),
    ("", "ReplicationController"): (apps.validate_replication_controller,
                                    _create_rules(apps.validate_replication_controller)),
    ("", "ResourceQuota"): (core.validate_resource_quota, _create_rules(core.validate_resource_quota)),
    ("", "Endpoints"): (core.validate_endpoints, _create_rules(core.validate_endpoints)),
    ("", "LimitRange"): (core.validate_limit_range, _create_rules(core.validate_limit_range)),
    ("", "Event"): (core.validate_event, lambda n, o: core.validate_event(n)),
    ("events.k8s.io", "Event"): (partial(core.validate_event, strict=True),
                                 lambda n, o: core.validate_event(n, strict=True)),
    ("apps", "Deployment"): (apps.validate_deployment, apps.validate_deployment_update),
    ("apps", "ReplicaSet"): (apps.validate_replica_set, apps.validate_replica_set_update),
    ("apps", "StatefulSet"): (apps.validate_stateful_set, apps.validate_stateful_set_update),
    ("apps", "DaemonSet"): (apps.validate_daemon_set, apps.validate_daemon_set_update),
    ("apps", "ControllerRevision"): (apps.validate_controller_revision, apps.validate_controller_revision_update),
    ("batch", "Job"): (batch.validate_job, batch.validate_job_update),
    ("batch", "CronJob"): (batch.validate_cron_job, batch.validate_cron_job_update),
    ("networking.k8s.io", "Ingress"): (networking.validate_ingress_create, _create_rules(networking.validate_ingress)),
    ("autoscaling", "HorizontalPodAutoscaler"): (autoscaling.validate_hpa, autoscaling.validate_hpa_update),
    ("policy", "PodDisruptionBudget"): (policy.validate_pdb, _create_rules(policy.validate_pdb)),
    ("rbac.authorization.k8s.io", "Role"): (partial(rbac.validate_role, namespaced=True),
                                            lambda n, o: rbac.validate_role(n, namespaced=True)),
    ("rbac.authorization.k8s.io", "ClusterRole"): (partial(rbac.validate_role, namespaced=False),
                                                   lambda n, o: rbac.validate_role(n, namespaced=False)),
    ("rbac.authorization.k8s.io", "RoleBinding"): (partial(rbac.validate_binding, namespaced=True),
                                                   partial(rbac.validate_binding_update, namespaced=True)),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (partial(rbac.validate_binding, namespaced=False),
                                                          partial(rbac.validate_binding_update, namespaced=False)),
    ("coordination.k8s.io", "Lease"): (coordination.validate_lease, _create_rules(coordination.validate_lease)),
    ("networking.k8s.io", "NetworkPolicy"): (networking.validate_network_policy,
                                             _create_rules(networking.validate_network_policy)),
    ("networking.k8s.io", "IngressClass"): (networking.validate_ingress_class,
                                            networking.validate_ingress_class_update),
    ("storage.k8s.io", "StorageClass"): (storage.validate_storage_class, storage.validate_storage_class_update),
    ("scheduling.k8s.io", "PriorityClass"): (scheduling.validate_priority_class,
                                             scheduling.validate_priority_class_update),
    ("discovery.k8s.io", "EndpointSlice"): (discovery.validate_endpoint_slice,
                                            discovery.validate_endpoint_slice_update),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (
        admissionregistration.validate_validating_webhooks,
        _create_rules(admissionregistration.validate_validating_webhooks)),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (
        admissionregistration.validate_mutating_webhooks,
        _create_rules(admissionregistration.validate_mutating_webhooks)),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): (
        admissionpolicy.validate_policy, _create_rules(admissionpolicy.validate_policy)),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (
        admissionpolicy.validate_binding, _create_rules(admissionpolicy.validate_binding)),
    ("node.k8s.io", "RuntimeClass"): (node.validate_runtime_class, node.validate_runtime_class_update),
    ("certificates.k8s.io", "CertificateSigningRequest"): (certificates.validate_csr, certificates.validate_csr_update),
    ("apiregistration.k8s.io", "APIService"): (apiregistration.validate_apiservice,
                                               _create_rules(apiregistration.validate_apiservice)),
}


def validate(group: str, kind: str, obj: dict) -> list[Cause]:
    """Upstream's create validation of a `group`/`kind` object, without the metadata rules."""
    rules = _RULES.get((group, kind))
    return rules[0](obj) if rules else []


def validate_update(group: str, kind: str, obj: dict, old: dict) -> list[Cause]:
    """Upstream's update validation: the new object's rules and what may not change from `old`."""
    rules = _RULES.get((group, kind))
    return rules[1](obj, old) if rules else []


__all__ = ["validate", "validate_update", "warnings"]
