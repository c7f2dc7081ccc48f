"""Printers for cluster plumbing: networking, storage, RBAC, scheduling, coordination,
certificates, admission, flow control, dynamic resources and the aggregator's APIServices.

Ported from kube-apiserver's `printers.go` (and kube-aggregator's APIService REST for the
last). Most of these are a name, one or two fields and an age; the quirks kept on purpose are
upstream's: boolean cells printed as "True"/"False" strings where upstream does so, empty
descriptions where upstream quotes a field ObjectMeta does not have, and IPAddress rows with
one more cell than columns.
"""

from __future__ import annotations

from collections.abc import Mapping

from lks.kube.printers import formats as f
from lks.kube.printers.base import AGE, NAME, Cells, Column, Doc, Printer

# --- networking ----------------------------------------------------------------------------


def _ingress_hosts(rules: list) -> str:
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == 3:
            more = True
        if not more and f.text(rule, "host"):
            shown.append(f.text(rule, "host"))
    if not shown:
        return "*"
    return f"{','.join(shown)} + {len(rules) - 3} more..." if more else ",".join(shown)


def _ingress_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    return [f.name(obj), f.text(spec, "ingressClassName") or "<none>", _ingress_hosts(f.items(spec, "rules")),
            f.load_balancer_ingress(f.mapping(obj, "status", "loadBalancer")),
            "80, 443" if f.items(spec, "tls") else "80", f.age(obj, now)]


_INGRESS = Printer((
    NAME,
    Column("Class", description="The name of the IngressClass resource that should be used for additional "
                                "configuration"),
    Column("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
    Column("Address", description="Address is a list containing ingress points for the load-balancer"),
    Column("Ports", description="Ports of TLS configurations that open"),
    AGE,
), _ingress_cells)


def _is_default(obj: Mapping, *keys: str) -> bool:
    annotations = f.mapping(obj, "metadata", "annotations")
    return any(annotations.get(key) == "true" for key in keys)


def _ingress_class_cells(obj: Mapping, now: float) -> Cells:
    params = f.field(obj, "spec", "parameters")
    text = "<none>"
    if isinstance(params, Mapping):
        group = "" if params.get("apiGroup") is None else "." + f.text(params, "apiGroup")
        text = f"{f.text(params, 'kind')}{group}/{f.text(params, 'name')}"
    # since 1.35 the default class is marked, as StorageClasses are
    default = _is_default(obj, "ingressclass.kubernetes.io/is-default-class")
    return [f.name(obj) + (" (default)" if default else ""), f.text(obj, "spec", "controller"), text, f.age(obj, now)]


_INGRESS_CLASS = Printer((
    NAME,
    Column("Controller", description="Controller that is responsible for handling this class"),
    Column("Parameters", description="A reference to a resource with additional parameters"),
    AGE,
), _ingress_class_cells)

_NETWORK_POLICY = Printer((
    NAME, Column("Pod-Selector", description=Doc("networking.NetworkPolicySpec", "podSelector")), AGE,
), lambda obj, now: [f.name(obj), f.format_label_selector(f.mapping(obj, "spec", "podSelector")),
                     f.age(obj, now)])


def _slice_ports(ports: list) -> str:
    shown = []
    for port in ports[:3]:
        value = port.get("port") if isinstance(port, Mapping) else None
        label = port.get("name") if isinstance(port, Mapping) else None
        shown.append(str(int(value)) if value is not None else "*" if label is None else str(label))
    return f.list_with_more(shown, len(ports) > 3, len(ports), 3)


def _slice_endpoints(endpoints: list) -> str:
    addresses = [str(a) for e in endpoints for a in f.items(e, "addresses")]
    return f.list_with_more(addresses[:3], len(addresses) > 3, len(addresses), 3)


_ENDPOINT_SLICE = Printer((
    NAME,
    Column("AddressType", description=Doc("discovery.EndpointSlice", "addressType")),
    Column("Ports", description=Doc("discovery.EndpointSlice", "ports")),
    Column("Endpoints", description=Doc("discovery.EndpointSlice", "endpoints")),
    AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "addressType"), _slice_ports(f.items(obj, "ports")),
                     _slice_endpoints(f.items(obj, "endpoints")), f.age(obj, now)])

_SERVICE_CIDR = Printer((
    NAME, Column("CIDRs", description=Doc("networking.ServiceCIDRSpec", "cidrs")), AGE,
), lambda obj, now: [f.name(obj), ",".join(str(c) for c in f.items(obj, "spec", "cidrs")), f.age(obj, now)])


def _ip_address_cells(obj: Mapping, now: float) -> Cells:
    ref = f.field(obj, "spec", "parentRef")
    parent = "<none>"
    if isinstance(ref, Mapping):
        parent = f.group_qualified(f.text(ref, "resource"), f.text(ref, "group")).lower()
        if f.text(ref, "namespace"):
            parent += "/" + f.text(ref, "namespace")
        parent += "/" + f.text(ref, "name")
    return [f.name(obj), parent, f.age(obj, now)]  # upstream declares no AGE column, yet prints one


_IP_ADDRESS = Printer((
    NAME, Column("ParentRef", description=Doc("networking.IPAddressSpec", "parentRef")),
), _ip_address_cells)

# --- storage -------------------------------------------------------------------------------


def _storage_class_cells(obj: Mapping, now: float) -> Cells:
    default = _is_default(obj, "storageclass.kubernetes.io/is-default-class",
                          "storageclass.beta.kubernetes.io/is-default-class")
    return [f.name(obj) + (" (default)" if default else ""), f.text(obj, "provisioner"),
            f.text(obj, "reclaimPolicy") or "Delete", f.text(obj, "volumeBindingMode") or "Immediate",
            obj.get("allowVolumeExpansion") is True, f.age(obj, now)]


_STORAGE_CLASS = Printer((
    NAME,
    Column("Provisioner", description=Doc("storage.StorageClass", "provisioner")),
    Column("ReclaimPolicy", description=Doc("storage.StorageClass", "reclaimPolicy")),
    Column("VolumeBindingMode", description=Doc("storage.StorageClass", "volumeBindingMode")),
    Column("AllowVolumeExpansion", description=Doc("storage.StorageClass", "allowVolumeExpansion")),
    AGE,
), _storage_class_cells)

_VOLUME_ATTRIBUTES_CLASS = Printer((
    NAME, Column("DriverName", description=Doc("storage.VolumeAttributesClass", "driverName")), AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "driverName"), f.age(obj, now)])


def _volume_attachment_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    return [f.name(obj), f.text(spec, "attacher"), f.text(spec, "source", "persistentVolumeName"),
            f.text(spec, "nodeName"), f.field(obj, "status", "attached") is True, f.age(obj, now)]


_VOLUME_ATTACHMENT = Printer((
    NAME,
    Column("Attacher", description=Doc("storage.VolumeAttachmentSpec", "attacher"), format="name"),
    Column("PV", description=Doc("storage.VolumeAttachmentSource", "persistentVolumeName")),
    Column("Node", description=Doc("storage.VolumeAttachmentSpec", "nodeName")),
    Column("Attached", "boolean", Doc("storage.VolumeAttachmentStatus", "attached")),
    AGE,
), _volume_attachment_cells)

_CSI_NODE = Printer((
    NAME, Column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"), AGE,
), lambda obj, now: [f.name(obj), len(f.items(obj, "spec", "drivers")), f.age(obj, now)])


def _csi_driver_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    audiences = ",".join(f.text(t, "audience") for t in f.items(spec, "tokenRequests"))
    if spec.get("tokenRequests") is None:
        audiences = "<unset>"
    modes = ",".join(str(m) for m in f.items(spec, "volumeLifecycleModes")) or "<none>"
    return [f.name(obj), spec.get("attachRequired") is not False, spec.get("podInfoOnMount") is True,
            spec.get("storageCapacity") is True, audiences, spec.get("requiresRepublish") is True, modes,
            f.age(obj, now)]


_CSI_DRIVER = Printer((
    NAME,
    Column("AttachRequired", "boolean", Doc("storage.CSIDriverSpec", "attachRequired")),
    Column("PodInfoOnMount", "boolean", Doc("storage.CSIDriverSpec", "podInfoOnMount")),
    Column("StorageCapacity", "boolean", Doc("storage.CSIDriverSpec", "storageCapacity")),
    Column("TokenRequests", description=Doc("storage.CSIDriverSpec", "tokenRequests")),
    Column("RequiresRepublish", "boolean", Doc("storage.CSIDriverSpec", "requiresRepublish")),
    Column("Modes", description=Doc("storage.CSIDriverSpec", "volumeLifecycleModes")),
    AGE,
), _csi_driver_cells)

# --- access control, scheduling and node runtime -------------------------------------------


def _subjects(subjects: list) -> list[str]:
    """`rbac.SubjectsStrings`: users, groups and "namespace/name" service accounts."""
    users, groups, accounts = [], [], []
    for s in subjects:
        kind = f.text(s, "kind")
        if kind == "ServiceAccount":
            accounts.append(f"{f.text(s, 'namespace')}/{f.text(s, 'name')}")
        elif kind == "User":
            users.append(f.text(s, "name"))
        elif kind == "Group":
            groups.append(f.text(s, "name"))
    return [", ".join(users), ", ".join(groups), ", ".join(accounts)]


def _binding_printer(kind: str) -> Printer:
    return Printer((
        NAME, Column("Role", description=Doc(f"rbac.{kind}", "roleRef")), AGE,
        Column("Users", description=f"Users in the {kind[0].lower()}{kind[1:]}", priority=1),
        Column("Groups", description=f"Groups in the {kind[0].lower()}{kind[1:]}", priority=1),
        Column("ServiceAccounts", description=f"ServiceAccounts in the {kind[0].lower()}{kind[1:]}", priority=1),
    ), lambda obj, now: [f.name(obj), f"{f.text(obj, 'roleRef', 'kind')}/{f.text(obj, 'roleRef', 'name')}",
                         f.age(obj, now), *_subjects(f.items(obj, "subjects"))])


_PRIORITY_CLASS = Printer((
    NAME,
    Column("Value", "integer", Doc("scheduling.PriorityClass", "value")),
    Column("Global-Default", "boolean", Doc("scheduling.PriorityClass", "globalDefault")),
    AGE,
    # printed only when wide, yet declared without priority upstream
    Column("PreemptionPolicy", description=Doc("scheduling.PriorityClass", "preemptionPolicy")),
), lambda obj, now: [f.name(obj), f.number(obj, "value"), obj.get("globalDefault") is True, f.age(obj, now),
                     f.text(obj, "preemptionPolicy")])

_RUNTIME_CLASS = Printer((
    NAME, Column("Handler", description=Doc("meta.ObjectMeta", "handler")), AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "handler"), f.age(obj, now)])

_LEASE = Printer((
    NAME, Column("Holder", description=Doc("coordination.LeaseSpec", "holderIdentity")), AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "spec", "holderIdentity"), f.age(obj, now)])

_LEASE_CANDIDATE = Printer((
    NAME,
    Column("LeaseName", description=Doc("coordination.LeaseCandidateSpec", "leaseName")),
    Column("BinaryVersion", description=Doc("meta.ObjectMeta", "binaryVersion")),
    Column("EmulationVersion", description=Doc("meta.ObjectMeta", "emulationVersion")),
    AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "spec", "leaseName"), f.text(obj, "spec", "binaryVersion"),
                     f.text(obj, "spec", "emulationVersion"), f.age(obj, now)])

# --- certificates --------------------------------------------------------------------------


def _csr_condition(obj: Mapping) -> str:
    kinds = {f.text(c, "type") for c in f.items(obj, "status", "conditions")}
    status = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        status += ",Failed"
    if f.text(obj, "status", "certificate"):
        status += ",Issued"
    return status


def _csr_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    seconds = spec.get("expirationSeconds")
    return [f.name(obj), f.age(obj, now), f.text(spec, "signerName") or "<none>", f.text(spec, "username"),
            "<none>" if seconds is None else f.human_duration(int(seconds)), _csr_condition(obj)]


_CSR = Printer((
    NAME, AGE,
    Column("SignerName", description=Doc("certificates.CertificateSigningRequestSpec", "signerName")),
    Column("Requestor", description=Doc("certificates.CertificateSigningRequestSpec", "request")),
    Column("RequestedDuration", description=Doc("certificates.CertificateSigningRequestSpec", "expirationSeconds")),
    Column("Condition", description=Doc("certificates.CertificateSigningRequestStatus", "conditions")),
), _csr_cells)

_CLUSTER_TRUST_BUNDLE = Printer((
    NAME, Column("SignerName", description=Doc("certificates.ClusterTrustBundleSpec", "signerName")),
), lambda obj, now: [f.name(obj), f.text(obj, "spec", "signerName") or "<none>"])

# --- admission -----------------------------------------------------------------------------

_WEBHOOKS = Column("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration")
_WEBHOOK_CONFIGURATION = Printer(
    (NAME, _WEBHOOKS, AGE), lambda obj, now: [f.name(obj), len(f.items(obj, "webhooks")), f.age(obj, now)])


def _param_kind(spec: Mapping) -> str:
    kind = spec.get("paramKind")
    return f"{f.text(kind, 'apiVersion')}/{f.text(kind, 'kind')}" if isinstance(kind, Mapping) else "<unset>"


def _param_ref(spec: Mapping) -> str:
    ref = spec.get("paramRef")
    if not isinstance(ref, Mapping):
        return "<unset>"
    if f.text(ref, "name"):
        # unnamespaced params may be cluster-scoped or in any namespace: upstream prints "*/"
        return f"{f.text(ref, 'namespace') or '*'}/{f.text(ref, 'name')}"
    selector = ref.get("selector")
    return f.go_label_selector(selector) if isinstance(selector, Mapping) else "<unset>"


_PARAM_KIND = Column("ParamKind", description="ParamKind specifies the kind of resources used to parameterize this policy")


def _policy_printer(rules: str, column: Column) -> Printer:
    return Printer((NAME, column, _PARAM_KIND, AGE), lambda obj, now: [
        f.name(obj), len(f.items(obj, "spec", rules)), _param_kind(f.mapping(obj, "spec")), f.age(obj, now)])


_POLICY_BINDING = Printer((
    NAME,
    Column("PolicyName", description="PolicyName indicates the policy definition which the policy binding binded to"),
    Column("ParamRef", description="ParamRef indicates the param resource which sets the configration param"),
    AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "spec", "policyName"), _param_ref(f.mapping(obj, "spec")),
                     f.age(obj, now)])

# --- API priority and fairness -------------------------------------------------------------


def _flow_schema_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    method = spec.get("distinguisherMethod")
    dangling = f.condition(f.items(obj, "status", "conditions"), "Dangling")
    return [f.name(obj), f.text(spec, "priorityLevelConfiguration", "name"), f.number(spec, "matchingPrecedence"),
            f.text(method, "type") if isinstance(method, Mapping) else "<none>", f.age(obj, now),
            f.text(dangling, "status") if dangling is not None else "?"]


_FLOW_SCHEMA = Printer((
    NAME,
    Column("PriorityLevel", description=Doc("flowcontrol.PriorityLevelConfigurationReference", "name")),
    Column("MatchingPrecedence", description=Doc("flowcontrol.FlowSchemaSpec", "matchingPrecedence")),
    Column("DistinguisherMethod", description=Doc("flowcontrol.FlowSchemaSpec", "distinguisherMethod")),
    AGE,
    Column("MissingPL", description="references a broken or non-existent PriorityLevelConfiguration"),
), _flow_schema_cells, sort_key=lambda obj: (f.number(obj, "spec", "matchingPrecedence"), f.name(obj)))


def _priority_level_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    values: list = ["<none>"] * 4
    limited = spec.get("limited")
    if isinstance(limited, Mapping):
        values[0] = f.number(limited, "nominalConcurrencyShares")
        queuing = f.field(limited, "limitResponse", "queuing")
        if isinstance(queuing, Mapping):
            values[1:] = [f.number(queuing, k) for k in ("queues", "handSize", "queueLengthLimit")]
    return [f.name(obj), f.text(spec, "type"), *values, f.age(obj, now)]


_PRIORITY_LEVEL = Printer((
    NAME,
    Column("Type", description=Doc("flowcontrol.PriorityLevelConfigurationSpec", "type")),
    Column("NominalConcurrencyShares",
           description=Doc("flowcontrol.LimitedPriorityLevelConfiguration", "nominalConcurrencyShares")),
    Column("Queues", description=Doc("flowcontrol.QueuingConfiguration", "queues")),
    Column("HandSize", description=Doc("flowcontrol.QueuingConfiguration", "handSize")),
    Column("QueueLengthLimit", description=Doc("flowcontrol.QueuingConfiguration", "queueLengthLimit")),
    AGE,
), _priority_level_cells)

# --- dynamic resource allocation -----------------------------------------------------------


def _claim_state(obj: Mapping) -> str:
    states = ["deleted"] if f.deleting(obj) else []
    if f.field(obj, "status", "allocation") is None:
        if not f.deleting(obj):
            states.append("pending")
    else:
        states.append("allocated")
        if f.items(obj, "status", "reservedFor"):
            states.append("reserved")
    return ",".join(states)


_NAME_AGE = Printer((NAME, AGE), lambda obj, now: [f.name(obj), f.age(obj, now)])
_RESOURCE_CLAIM = Printer((
    NAME, Column("State", description="A summary of the current state (allocated, pending, reserved, etc.)."), AGE,
), lambda obj, now: [f.name(obj), _claim_state(obj), f.age(obj, now)])
_RESOURCE_SLICE = Printer((
    NAME,
    Column("Node", description=Doc("resource.ResourceSliceSpec", "nodeName")),
    Column("Driver", description=Doc("resource.ResourceSliceSpec", "driver")),
    Column("Pool", description=Doc("resource.ResourcePool", "name")),
    AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "spec", "nodeName"), f.text(obj, "spec", "driver"),
                     f.text(obj, "spec", "pool", "name"), f.age(obj, now)])

# --- API server internals ------------------------------------------------------------------


def _apiservice_cells(obj: Mapping, now: float) -> Cells:
    ref = f.field(obj, "spec", "service")
    service = f"{f.text(ref, 'namespace')}/{f.text(ref, 'name')}" if isinstance(ref, Mapping) else "Local"
    available = f.condition(f.items(obj, "status", "conditions"), "Available")
    status = "Unknown"
    if available is not None:
        status = f.text(available, "status")
        if status != "True" and f.text(available, "reason"):
            status = f"{status} ({f.text(available, 'reason')})"
    return [f.name(obj), service, status, f.age(obj, now)]


_APISERVICE = Printer((
    NAME,
    Column("Service", description="The reference to the service that hosts this API endpoint."),
    Column("Available", description="Whether this service is available."),
    AGE,
), _apiservice_cells, headers_always=True)


def _storage_version_cells(obj: Mapping, now: float) -> Cells:
    status = f.mapping(obj, "status")
    versions = [f"{f.text(v, 'apiServerID')}={f.text(v, 'encodingVersion')}"
                for v in f.items(status, "storageVersions")]
    common = status.get("commonEncodingVersion")
    return [f.name(obj), "<unset>" if common is None else str(common),
            f.list_with_more(versions[:3], len(versions) > 3, len(versions), 3), f.age(obj, now)]


_STORAGE_VERSION = Printer((
    NAME,
    Column("CommonEncodingVersion", description=Doc("apiserverinternal.StorageVersionStatus", "commonEncodingVersion")),
    Column("StorageVersions", description=Doc("apiserverinternal.StorageVersionStatus", "storageVersions")),
    AGE,
), _storage_version_cells)

_ADMISSION = "admissionregistration.k8s.io"
PRINTERS: dict[tuple[str, str], Printer] = {
    ("networking.k8s.io", "ingresses"): _INGRESS,
    ("networking.k8s.io", "ingressclasses"): _INGRESS_CLASS,
    ("networking.k8s.io", "networkpolicies"): _NETWORK_POLICY,
    ("networking.k8s.io", "servicecidrs"): _SERVICE_CIDR,
    ("networking.k8s.io", "ipaddresses"): _IP_ADDRESS,
    ("discovery.k8s.io", "endpointslices"): _ENDPOINT_SLICE,
    ("storage.k8s.io", "storageclasses"): _STORAGE_CLASS,
    ("storage.k8s.io", "volumeattributesclasses"): _VOLUME_ATTRIBUTES_CLASS,
    ("storage.k8s.io", "volumeattachments"): _VOLUME_ATTACHMENT,
    ("storage.k8s.io", "csinodes"): _CSI_NODE,
    ("storage.k8s.io", "csidrivers"): _CSI_DRIVER,
    ("rbac.authorization.k8s.io", "rolebindings"): _binding_printer("RoleBinding"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding_printer("ClusterRoleBinding"),
    ("scheduling.k8s.io", "priorityclasses"): _PRIORITY_CLASS,
    ("node.k8s.io", "runtimeclasses"): _RUNTIME_CLASS,
    ("coordination.k8s.io", "leases"): _LEASE,
    ("coordination.k8s.io", "leasecandidates"): _LEASE_CANDIDATE,
    ("certificates.k8s.io", "certificatesigningrequests"): _CSR,
    ("certificates.k8s.io", "clustertrustbundles"): _CLUSTER_TRUST_BUNDLE,
    (_ADMISSION, "mutatingwebhookconfigurations"): _WEBHOOK_CONFIGURATION,
    (_ADMISSION, "validatingwebhookconfigurations"): _WEBHOOK_CONFIGURATION,
    (_ADMISSION, "validatingadmissionpolicies"): _policy_printer("validations", Column(
        "Validations", "integer", "Validations indicates the number of validation rules defined in this configuration")),
    (_ADMISSION, "mutatingadmissionpolicies"): _policy_printer("mutations", Column(
        "Mutations", "integer", "Mutation indicates the number of mutations rules defined in this configuration")),
    (_ADMISSION, "validatingadmissionpolicybindings"): _POLICY_BINDING,
    (_ADMISSION, "mutatingadmissionpolicybindings"): _POLICY_BINDING,
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): _FLOW_SCHEMA,
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): _PRIORITY_LEVEL,
    ("resource.k8s.io", "deviceclasses"): _NAME_AGE,
    ("resource.k8s.io", "resourceclaims"): _RESOURCE_CLAIM,
    ("resource.k8s.io", "resourceclaimtemplates"): _NAME_AGE,
    ("resource.k8s.io", "resourceslices"): _RESOURCE_SLICE,
    ("apiregistration.k8s.io", "apiservices"): _APISERVICE,
    ("internal.apiserver.k8s.io", "storageversions"): _STORAGE_VERSION,
}
