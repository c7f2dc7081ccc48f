"""The bootstrap RBAC policy kube-apiserver creates and reconciles at start, as data: upstream's
`bootstrappolicy` (policy.go, controller_policy.go, namespace_policy.go), written down from
their generated lists (`testdata/*.yaml`) for the default feature gates.

Rules are compact: `R(groups, resources, verbs, names)` with space-separated lists ("-" is the
core group ""), `U(urls, verbs)` for non-resource URLs. `bootstrap` turns them into objects.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, Any]


def R(groups: str, resources: str, verbs: str, names: str = "") -> Rule:
    rule: Rule = {"verbs": verbs.split(), "apiGroups": ["" if g == "-" else g for g in groups.split()],
                  "resources": resources.split()}
    if names:
        rule["resourceNames"] = names.split()
    return rule


def U(urls: str, verbs: str) -> Rule:
    return {"verbs": verbs.split(), "nonResourceURLs": urls.split()}


RW = "create delete deletecollection patch update"
READ = "get list watch"
EVENTS = R("- events.k8s.io", "events", "create patch update")
CSR = "certificates.k8s.io"

# the aggregated roles -> the label ("true") that selects their parts
AGGREGATED = {
    "admin": "rbac.authorization.k8s.io/aggregate-to-admin",
    "edit": "rbac.authorization.k8s.io/aggregate-to-edit",
    "view": "rbac.authorization.k8s.io/aggregate-to-view",
}
AGGREGATE_LABELS = {  # the labels that put a role into an aggregated one
    "edit": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"},
    "view": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
    "system:aggregate-to-admin": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"},
    "system:aggregate-to-edit": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
    "system:aggregate-to-view": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
}

CLUSTER_ROLES: dict[str, list[Rule]] = {
    "cluster-admin": [R("*", "*", "*"), U("*", "*")],
    "admin": [], "edit": [], "view": [],
    "system:aggregate-to-admin": [
        R("authorization.k8s.io", "localsubjectaccessreviews", "create"),
        R("rbac.authorization.k8s.io", "rolebindings roles", f"{RW} {READ}"),
    ],
    "system:aggregate-to-edit": [
        R("-", "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy", READ),
        R("-", "serviceaccounts", "impersonate"),
        R("-", "pods pods/attach pods/exec pods/portforward pods/proxy", RW),
        R("-", "pods/eviction", "create"),
        R("-", "configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale "
               "secrets serviceaccounts services services/proxy", RW),
        R("-", "serviceaccounts/token", "create"),
        R("apps", "daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale "
                  "statefulsets statefulsets/scale", RW),
        R("autoscaling", "horizontalpodautoscalers", RW),
        R("batch", "cronjobs jobs", RW),
        R("extensions", "daemonsets deployments deployments/rollback deployments/scale ingresses networkpolicies "
                        "replicasets replicasets/scale replicationcontrollers/scale", RW),
        R("policy", "poddisruptionbudgets", RW),
        R("networking.k8s.io", "ingresses networkpolicies", RW),
        R("coordination.k8s.io", "leases", f"{RW} {READ}"),
    ],
    "system:aggregate-to-view": [
        R("-", "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods replicationcontrollers "
               "replicationcontrollers/scale serviceaccounts services services/status", READ),
        R("-", "bindings events limitranges namespaces/status pods/log pods/status replicationcontrollers/status "
               "resourcequotas resourcequotas/status", READ),
        R("-", "namespaces", READ),
        R("discovery.k8s.io", "endpointslices", READ),
        R("apps", "controllerrevisions daemonsets daemonsets/status deployments deployments/scale deployments/status "
                  "replicasets replicasets/scale replicasets/status statefulsets statefulsets/scale "
                  "statefulsets/status", READ),
        R("autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status", READ),
        R("batch", "cronjobs cronjobs/status jobs jobs/status", READ),
        R("extensions", "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses "
                        "ingresses/status networkpolicies replicasets replicasets/scale replicasets/status "
                        "replicationcontrollers/scale", READ),
        R("policy", "poddisruptionbudgets poddisruptionbudgets/status", READ),
        R("networking.k8s.io", "ingresses ingresses/status networkpolicies", READ),
    ],
    "system:auth-delegator": [R("authentication.k8s.io", "tokenreviews", "create"),
                              R("authorization.k8s.io", "subjectaccessreviews", "create")],
    "system:basic-user": [R("authorization.k8s.io", "selfsubjectaccessreviews selfsubjectrulesreviews", "create"),
                          R("authentication.k8s.io", "selfsubjectreviews", "create")],
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [
        R(CSR, "certificatesigningrequests/nodeclient", "create")],
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [
        R(CSR, "certificatesigningrequests/selfnodeclient", "create")],
    "system:certificates.k8s.io:kube-apiserver-client-approver": [
        R(CSR, "signers", "approve", "kubernetes.io/kube-apiserver-client")],
    "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver": [
        R(CSR, "signers", "approve", "kubernetes.io/kube-apiserver-client-kubelet")],
    "system:certificates.k8s.io:kubelet-serving-approver": [
        R(CSR, "signers", "approve", "kubernetes.io/kubelet-serving")],
    "system:certificates.k8s.io:legacy-unknown-approver": [
        R(CSR, "signers", "approve", "kubernetes.io/legacy-unknown")],
    "system:discovery": [U("/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/",
                           "get")],
    "system:heapster": [R("-", "events namespaces nodes pods", READ), R("extensions", "deployments", READ)],
    "system:kube-aggregator": [R("-", "endpoints services", READ)],
    "system:kube-controller-manager": [
        EVENTS,
        R("coordination.k8s.io", "leases", "create"),
        R("coordination.k8s.io", "leases", "get update", "kube-controller-manager"),
        R("-", "secrets serviceaccounts", "create"),
        R("-", "secrets", "delete"),
        R("-", "configmaps namespaces secrets serviceaccounts", "get"),
        R("-", "secrets serviceaccounts", "update"),
        R("authentication.k8s.io", "tokenreviews", "create"),
        R("authorization.k8s.io", "subjectaccessreviews", "create"),
        R("*", "*", "list watch"),
        R("-", "serviceaccounts/token", "create"),
    ],
    "system:kube-dns": [R("-", "endpoints services", "list watch")],
    "system:kube-scheduler": [
        EVENTS,
        R("coordination.k8s.io", "leases", "create"),
        R("coordination.k8s.io", "leases", "get update", "kube-scheduler"),
        R("-", "nodes", READ),
        R("-", "pods", f"delete {READ}"),
        R("-", "bindings pods/binding", "create"),
        R("-", "pods/status", "patch update"),
        R("-", "replicationcontrollers services", READ),
        R("apps extensions", "replicasets", READ),
        R("apps", "statefulsets", READ),
        R("policy", "poddisruptionbudgets", READ),
        R("-", "persistentvolumeclaims persistentvolumes", READ),
        R("authentication.k8s.io", "tokenreviews", "create"),
        R("authorization.k8s.io", "subjectaccessreviews", "create"),
        R("storage.k8s.io", "csinodes", READ),
        R("-", "namespaces", READ),
        R("storage.k8s.io", "csidrivers", READ),
        R("storage.k8s.io", "csistoragecapacities", READ),
    ],
    "system:kubelet-api-admin": [R("-", "nodes", READ), R("-", "nodes", "proxy"),
                                 R("-", "nodes/log nodes/metrics nodes/proxy nodes/stats", "*")],
    "system:monitoring": [U("/healthz /healthz/* /livez /livez/* /metrics /metrics/slis /readyz /readyz/*", "get")],
    "system:node": [
        R("authentication.k8s.io", "tokenreviews", "create"),
        R("authorization.k8s.io", "localsubjectaccessreviews subjectaccessreviews", "create"),
        R("-", "services", READ),
        R("-", "nodes", f"create {READ}"),
        R("-", "nodes/status", "patch update"),
        R("-", "nodes", "patch update"),
        R("-", "events", "create patch update"),
        R("-", "pods", READ),
        R("-", "pods", "create delete"),
        R("-", "pods/status", "patch update"),
        R("-", "pods/eviction", "create"),
        R("-", "configmaps secrets", READ),
        R("-", "persistentvolumeclaims persistentvolumes", "get"),
        R("-", "endpoints", "get"),
        R(CSR, "certificatesigningrequests", f"create {READ}"),
        R("coordination.k8s.io", "leases", "create delete get patch update"),
        R("storage.k8s.io", "volumeattachments", "get"),
        R("-", "serviceaccounts/token", "create"),
        R("-", "persistentvolumeclaims/status", "get patch update"),
        R("storage.k8s.io", "csidrivers", READ),
        R("storage.k8s.io", "csinodes", "create delete get patch update"),
        R("node.k8s.io", "runtimeclasses", READ),
    ],
    "system:node-bootstrapper": [R(CSR, "certificatesigningrequests", f"create {READ}")],
    "system:node-problem-detector": [R("-", "nodes", "get"), R("-", "nodes/status", "patch"), EVENTS],
    "system:node-proxier": [R("-", "endpoints services", "list watch"), R("-", "nodes", READ), EVENTS,
                            R("discovery.k8s.io", "endpointslices", "list watch")],
    "system:persistent-volume-provisioner": [
        R("-", "persistentvolumes", f"create delete {READ}"),
        R("-", "persistentvolumeclaims", "get list update watch"),
        R("storage.k8s.io", "storageclasses", READ),
        R("-", "events", "watch"),
        EVENTS,
    ],
    "system:public-info-viewer": [U("/healthz /livez /readyz /version /version/", "get")],
    "system:service-account-issuer-discovery": [U("/.well-known/openid-configuration /openid/v1/jwks", "get")],
    "system:volume-scheduler": [R("-", "persistentvolumes", "get list patch update watch"),
                                R("storage.k8s.io", "storageclasses", READ),
                                R("-", "persistentvolumeclaims", "get list patch update watch")],
}

# the controllers' roles, each bound to the kube-system service account of its name
CONTROLLER_ROLES: dict[str, list[Rule]] = {
    "attachdetach-controller": [
        R("-", "persistentvolumeclaims persistentvolumes", "list watch"), R("-", "nodes", READ),
        R("-", "nodes/status", "patch update"), R("-", "pods", "list watch"), EVENTS,
        R("storage.k8s.io", "volumeattachments", f"create delete {READ}"),
        R("storage.k8s.io", "csidrivers", READ), R("storage.k8s.io", "csinodes", READ)],
    "certificate-controller": [
        R(CSR, "certificatesigningrequests", f"delete {READ}"),
        R(CSR, "certificatesigningrequests/approval certificatesigningrequests/status", "update"),
        R(CSR, "signers", "approve", "kubernetes.io/kube-apiserver-client-kubelet"),
        R(CSR, "signers", "sign", "kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet "
                                  "kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown"),
        R("authorization.k8s.io", "subjectaccessreviews", "create"), EVENTS],
    "clusterrole-aggregation-controller": [
        R("rbac.authorization.k8s.io", "clusterroles", f"escalate patch update {READ}")],
    "cronjob-controller": [
        R("batch", "cronjobs", "get list update watch"), R("batch", "jobs", f"create delete patch update {READ}"),
        R("batch", "cronjobs/status", "update"), R("batch", "cronjobs/finalizers", "update"),
        R("-", "pods", "delete list watch"), EVENTS],
    "daemon-set-controller": [
        R("apps extensions", "daemonsets", READ), R("apps extensions", "daemonsets/status", "update"),
        R("apps extensions", "daemonsets/finalizers", "update"), R("-", "nodes", "list watch"),
        R("-", "pods", "create delete list patch watch"), R("-", "pods/binding", "create"),
        R("apps", "controllerrevisions", f"create delete patch update {READ}"), EVENTS],
    "deployment-controller": [
        R("apps extensions", "deployments", "get list update watch"),
        R("apps extensions", "deployments/status", "update"), R("apps extensions", "deployments/finalizers", "update"),
        R("apps extensions", "replicasets", f"create delete patch update {READ}"),
        R("-", "pods", "get list update watch"), EVENTS],
    "device-taint-eviction-controller": [
        R("-", "pods", f"delete {READ}"), R("-", "pods/status", "patch update"),
        R("resource.k8s.io", "resourceclaims", READ), R("resource.k8s.io", "resourceslices", READ),
        R("resource.k8s.io", "deviceclasses", READ), EVENTS],
    "disruption-controller": [
        R("apps extensions", "deployments", READ), R("apps extensions", "replicasets", READ),
        R("-", "replicationcontrollers", READ), R("policy", "poddisruptionbudgets", READ),
        R("apps", "statefulsets", READ), R("policy", "poddisruptionbudgets/status", "update"),
        R("-", "pods/status", "patch update"), R("*", "*/scale", "get"), EVENTS],
    "endpoint-controller": [
        R("-", "pods services", READ), R("-", "endpoints", f"create delete update {READ}"),
        R("-", "endpoints/restricted", "create"), EVENTS],
    "endpointslice-controller": [
        R("-", "nodes pods services", READ), R("-", "services/finalizers", "update"),
        R("discovery.k8s.io", "endpointslices", f"create delete update {READ}"), EVENTS],
    "endpointslicemirroring-controller": [
        R("-", "endpoints services", READ), R("-", "services/finalizers", "update"),
        R("-", "endpoints/finalizers", "update"),
        R("discovery.k8s.io", "endpointslices", f"create delete update {READ}"), EVENTS],
    "ephemeral-volume-controller": [
        R("-", "pods", READ), R("-", "pods/finalizers", "update"),
        R("-", "persistentvolumeclaims", f"create {READ}"), EVENTS],
    "expand-controller": [
        R("-", "persistentvolumes", "get list patch update watch"),
        R("-", "persistentvolumeclaims/status", "patch update"), R("-", "persistentvolumeclaims", READ), EVENTS],
    "generic-garbage-collector": [R("*", "*", "delete get list patch update watch"), EVENTS],
    "horizontal-pod-autoscaler": [
        R("autoscaling", "horizontalpodautoscalers", READ),
        R("autoscaling", "horizontalpodautoscalers/status", "update"), R("*", "*/scale", "get update"),
        R("-", "pods", "list watch"), R("metrics.k8s.io", "pods", "list watch"),
        R("custom.metrics.k8s.io", "*", READ), R("external.metrics.k8s.io", "*", READ), EVENTS],
    "job-controller": [
        R("batch", "jobs", "get list patch update watch"), R("batch", "jobs/status", "update"),
        R("batch", "jobs/finalizers", "update"), R("-", "pods", "create delete list patch watch"), EVENTS],
    "legacy-service-account-token-cleaner": [
        R("-", "configmaps", "get", "kube-apiserver-legacy-service-account-token-tracking"),
        R("-", "secrets", "delete patch")],
    "namespace-controller": [
        R("-", "namespaces", f"delete {READ}"), R("-", "namespaces/finalize namespaces/status", "update"),
        R("*", "*", f"delete deletecollection {READ}")],
    "node-controller": [
        R("-", "nodes", "delete get list patch update watch"), R("-", "nodes/status", "patch update"),
        R("-", "pods/status", "patch update"), R("-", "pods", f"delete {READ}"), EVENTS],
    "persistent-volume-binder": [
        R("-", "persistentvolumes", f"create delete update {READ}"), R("-", "persistentvolumes/status", "update"),
        R("-", "persistentvolumeclaims", "get list update watch"),
        R("-", "persistentvolumeclaims/status", "update"), R("-", "pods", f"create delete {READ}"),
        R("storage.k8s.io", "storageclasses", READ), R("-", "nodes", "list watch"), EVENTS,
        R("-", "events", "watch")],
    "pod-garbage-collector": [
        R("-", "pods", "delete list watch"), R("-", "nodes", READ), R("-", "pods/status", "patch")],
    "pv-protection-controller": [R("-", "persistentvolumes", "get list update watch"), EVENTS],
    "pvc-protection-controller": [
        R("-", "persistentvolumeclaims", "get list update watch"),
        R("-", "persistentvolumeclaims/status", "update"), R("-", "pods", READ), EVENTS],
    "replicaset-controller": [
        R("apps extensions", "replicasets", "get list update watch"),
        R("apps extensions", "replicasets/status", "update"), R("apps extensions", "replicasets/finalizers", "update"),
        R("-", "pods", "create delete list patch watch"), EVENTS],
    "replication-controller": [
        R("-", "replicationcontrollers", "get list update watch"),
        R("-", "replicationcontrollers/status", "update"), R("-", "replicationcontrollers/finalizers", "update"),
        R("-", "pods", "create delete list patch watch"), EVENTS],
    "resource-claim-controller": [
        R("-", "pods", READ), R("-", "pods/finalizers", "update"),
        R("resource.k8s.io", "resourceclaims", f"create delete {READ}"),
        R("resource.k8s.io", "resourceclaims resourceclaims/status", "patch update"),
        R("-", "pods/status", "patch update"), EVENTS,
        R("resource.k8s.io", "resourceclaims/binding", "patch update")],
    "resourcequota-controller": [
        R("*", "*", "list watch"), R("-", "resourcequotas/status", "update"), EVENTS],
    "root-ca-cert-publisher": [R("-", "configmaps", "create update"), EVENTS],
    "route-controller": [R("-", "nodes", "list watch"), R("-", "nodes/status", "patch"), EVENTS],
    "selinux-warning-controller": [
        EVENTS, R("-", "persistentvolumes", READ), R("-", "persistentvolumeclaims", READ), R("-", "pods", READ),
        R("storage.k8s.io", "csidrivers", READ)],
    "service-account-controller": [R("-", "serviceaccounts", "create"), EVENTS],
    "service-cidrs-controller": [
        R("networking.k8s.io", "servicecidrs", "get list patch update watch"),
        R("networking.k8s.io", "servicecidrs/finalizers", "patch update"),
        R("networking.k8s.io", "servicecidrs/status", "patch update"),
        R("networking.k8s.io", "ipaddresses", READ), EVENTS],
    "service-controller": [
        R("-", "services", READ), R("-", "services/status", "patch update"), R("-", "nodes", "list watch"), EVENTS],
    "statefulset-controller": [
        R("-", "pods", "list watch"), R("apps", "statefulsets", READ), R("apps", "statefulsets/status", "update"),
        R("apps", "statefulsets/finalizers", "update"), R("-", "pods", "create delete get patch update"),
        R("apps", "controllerrevisions", f"create delete patch update {READ}"),
        R("-", "persistentvolumeclaims", f"create {READ}"), R("-", "persistentvolumeclaims", "delete update"),
        R("-", "pods/finalizers", "update"), EVENTS],
    "ttl-after-finished-controller": [R("batch", "jobs", f"delete {READ}"), EVENTS],
    "ttl-controller": [R("-", "nodes", "list patch update watch"), EVENTS],
    "validatingadmissionpolicy-status-controller": [
        R("admissionregistration.k8s.io", "validatingadmissionpolicies", READ),
        R("admissionregistration.k8s.io", "validatingadmissionpolicies/status", "get patch update"), EVENTS],
    "volumeattributesclass-protection-controller": [
        R("-", "persistentvolumeclaims", READ), R("-", "persistentvolumes", READ),
        R("storage.k8s.io", "volumeattributesclasses", "get list update watch"), EVENTS],
}


def _group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def _sa(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


# binding name -> (ClusterRole, subjects)
CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [_group("system:masters")]),
    "system:monitoring": ("system:monitoring", [_group("system:monitoring")]),
    "system:discovery": ("system:discovery", [_group("system:authenticated")]),
    "system:basic-user": ("system:basic-user", [_group("system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer",
                                  [_group("system:authenticated"), _group("system:unauthenticated")]),
    "system:node-proxier": ("system:node-proxier", [_user("system:kube-proxy")]),
    "system:kube-controller-manager": ("system:kube-controller-manager", [_user("system:kube-controller-manager")]),
    "system:kube-dns": ("system:kube-dns", [_sa("kube-system", "kube-dns")]),
    "system:kube-scheduler": ("system:kube-scheduler", [_user("system:kube-scheduler")]),
    "system:volume-scheduler": ("system:volume-scheduler", [_user("system:kube-scheduler")]),
    "system:service-account-issuer-discovery": ("system:service-account-issuer-discovery",
                                                [_group("system:serviceaccounts")]),
    # deprecated since the Node authorizer: kept, with no subjects
    "system:node": ("system:node", []),
}

LEADER_LOCKING = [R("coordination.k8s.io", "leases", "create get list update watch"),
                  R("coordination.k8s.io", "leasecandidates", "create get list update watch")]

# (namespace, name) -> rules
NAMESPACE_ROLES: dict[tuple[str, str], list[Rule]] = {
    ("kube-public", "system:controller:bootstrap-signer"): [
        R("-", "configmaps", READ), R("-", "configmaps", "update", "cluster-info"), EVENTS],
    ("kube-system", "extension-apiserver-authentication-reader"): [
        R("-", "configmaps", READ, "extension-apiserver-authentication")],
    ("kube-system", "system::leader-locking-kube-controller-manager"): LEADER_LOCKING,
    ("kube-system", "system::leader-locking-kube-scheduler"): LEADER_LOCKING,
    ("kube-system", "system:controller:bootstrap-signer"): [R("-", "secrets", READ)],
    ("kube-system", "system:controller:cloud-provider"): [R("-", "configmaps", f"create {READ}")],
    ("kube-system", "system:controller:token-cleaner"): [R("-", "secrets", f"delete {READ}"), EVENTS],
}

# (namespace, name) -> (Role, subjects)
NAMESPACE_ROLE_BINDINGS: dict[tuple[str, str], tuple[str, list[dict[str, str]]]] = {
    ("kube-public", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", [_sa("kube-system", "bootstrap-signer")]),
    ("kube-system", "system::extension-apiserver-authentication-reader"): (
        "extension-apiserver-authentication-reader",
        [_user("system:kube-controller-manager"), _user("system:kube-scheduler")]),
    ("kube-system", "system::leader-locking-kube-controller-manager"): (
        "system::leader-locking-kube-controller-manager",
        [_user("system:kube-controller-manager"), _sa("kube-system", "kube-controller-manager"),
         _sa("kube-system", "leader-election-controller")]),
    ("kube-system", "system::leader-locking-kube-scheduler"): (
        "system::leader-locking-kube-scheduler", [_user("system:kube-scheduler"), _sa("kube-system", "kube-scheduler")]),
    ("kube-system", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", [_sa("kube-system", "bootstrap-signer")]),
    ("kube-system", "system:controller:cloud-provider"): (
        "system:controller:cloud-provider", [_sa("kube-system", "cloud-provider")]),
    ("kube-system", "system:controller:token-cleaner"): (
        "system:controller:token-cleaner", [_sa("kube-system", "token-cleaner")]),
}
