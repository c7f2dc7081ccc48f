"""Who each in-process controller acts as. kube-controller-manager runs with
`--use-service-account-credentials`: every controller is the service account
`system:serviceaccount:kube-system:<name>`, bound by the bootstrap policy to the
`system:controller:<name>` ClusterRole (`lks.kube.rbac.policy`); the scheduler is
`system:kube-scheduler`. Their writes are authorized as those users' requests would be
(`lks.kube.authn.ACTING`, checked by the registries); their informers' lists and watches as
`system:kube-controller-manager` (the shared informers' client) and `system:kube-scheduler`.

The controllers that are kube-apiserver's own (CRDs, system namespaces, the `kubernetes`
Service, the policy status, the legacy token controller's root credentials) and AKS's add-on
manager (a privileged part of the managed control plane) act as the API server itself: `None`.
"""

from __future__ import annotations

from lks.kube.authn import User, service_account_user

# controller name (lks) -> its service account in kube-system (upstream's)
SERVICE_ACCOUNTS = {
    "certificate-signing": "certificate-controller",
    "clusterrole-aggregation": "clusterrole-aggregation-controller",
    "cronjob": "cronjob-controller",
    "daemonset": "daemon-set-controller",
    "deployment": "deployment-controller",
    "disruption": "disruption-controller",
    "endpoint": "endpoint-controller",
    "endpointslice": "endpointslice-controller",
    "garbagecollector": "generic-garbage-collector",
    "horizontal-pod-autoscaler": "horizontal-pod-autoscaler",
    "job": "job-controller",
    "namespace": "namespace-controller",
    "nodeipam": "node-controller",
    "nodelifecycle": "node-controller",
    "tainteviction": "node-controller",
    "podgc": "pod-garbage-collector",
    "pv-protection": "pv-protection-controller",
    "pvc-protection": "pvc-protection-controller",
    "resourcequota": "resourcequota-controller",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "serviceaccount": "service-account-controller",
    "statefulset": "statefulset-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
    "replicasets": "replicaset-controller",
    "replicationcontrollers": "replication-controller",
}

SCHEDULER = User("system:kube-scheduler", ("system:authenticated",))
# kube-controller-manager's own credentials: what its shared informers list and watch as
CONTROLLER_MANAGER = User("system:kube-controller-manager", ("system:authenticated",))


def of(controller: str) -> User | None:
    account = SERVICE_ACCOUNTS.get(controller)
    return service_account_user("kube-system", account) if account is not None else None


def informers_of(controller: str) -> User | None:
    """Who a controller's informers read as: kube-controller-manager's shared informers (the
    API server's own controllers read as it: None)."""
    return CONTROLLER_MANAGER if controller in SERVICE_ACCOUNTS else None
