"""Printers for the core ("") group, ported from kube-apiserver's `printers.go`.

Each `_x_cells` reads the served (v1) object the way upstream's `printX` reads the internal
type after conversion: `podIP`/`clusterIP` stand in for an empty `podIPs`/`clusterIPs`, and a
missing field reads as Go's zero value. Pods have their own module, `pods`. Columns follow
Kubernetes 1.35+ (ServiceAccounts lost SECRETS, nodes show the architecture after the kernel
version).
"""

from __future__ import annotations

from collections.abc import Mapping

from lks.kube.printers import formats as f
from lks.kube.printers import pods
from lks.kube.printers.base import AGE, CONTAINERS, IMAGES, NAME, Cells, Column, Doc, Printer


def _pod_template_cells(obj: Mapping, now: float) -> Cells:
    names, images = f.layout_containers(f.items(obj, "template", "spec", "containers"))
    return [f.name(obj), names, images, f.format_labels(f.field(obj, "template", "metadata", "labels"))]


_POD_TEMPLATE = Printer((
    NAME,
    Column("Containers", description="Names of each container in the template."),
    Column("Images", description="Images referenced by each container in the template."),
    Column("Pod Labels", description="The labels for the pod template."),
), _pod_template_cells)


def _rc_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    names, images = f.layout_containers(f.items(spec, "template", "spec", "containers"))
    return [f.name(obj), f.replicas(spec), f.number(status, "replicas"), f.number(status, "readyReplicas"),
            f.age(obj, now), names, images, f.format_labels(spec.get("selector"))]


_REPLICATION_CONTROLLER = Printer((
    NAME,
    Column("Desired", "integer", Doc("core.ReplicationControllerSpec", "replicas")),
    Column("Current", "integer", Doc("core.ReplicationControllerStatus", "replicas")),
    Column("Ready", "integer", Doc("core.ReplicationControllerStatus", "readyReplicas")),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", description=Doc("core.ReplicationControllerSpec", "selector"), priority=1),
), _rc_cells)

# --- services and endpoints ----------------------------------------------------------------


def _external_ip(spec: Mapping, status: Mapping) -> str:
    external = [str(ip) for ip in f.items(spec, "externalIPs")]
    kind = f.text(spec, "type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        lb = f.load_balancer_ingress(f.mapping(status, "loadBalancer"))
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return f.text(spec, "externalName")
    return "<unknown>"


def _ports(ports: list) -> str:
    pieces = []
    for port in ports:
        protocol = f.text(port, "protocol") or "TCP"
        node_port = f.number(port, "nodePort")
        prefix = f"{f.number(port, 'port')}:{node_port}" if node_port > 0 else str(f.number(port, "port"))
        pieces.append(f"{prefix}/{protocol}")
    return ",".join(pieces)


def _service_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    ips = f.items(spec, "clusterIPs")
    # v1 -> internal conversion: clusterIP is authoritative over clusterIPs
    cluster_ip = f.text(spec, "clusterIP") or (str(ips[0]) if ips else "")
    return [f.name(obj), f.text(spec, "type") or "ClusterIP", f.or_placeholder(cluster_ip),
            _external_ip(spec, f.mapping(obj, "status")), f.or_placeholder(_ports(f.items(spec, "ports"))),
            f.age(obj, now), f.format_labels(spec.get("selector"))]


_SERVICE = Printer((
    NAME,
    Column("Type", description=Doc("core.ServiceSpec", "type")),
    Column("Cluster-IP", description=Doc("core.ServiceSpec", "clusterIP")),
    Column("External-IP", description=Doc("core.ServiceSpec", "externalIPs")),
    Column("Port(s)", description=Doc("core.ServiceSpec", "ports")),
    AGE,
    Column("Selector", description=Doc("core.ServiceSpec", "selector"), priority=1),
), _service_cells)


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"  # net.JoinHostPort


def _endpoints_text(obj: Mapping) -> str:
    subsets = f.items(obj, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for subset in subsets:
        addresses = [f.text(a, "ip") for a in f.items(subset, "addresses")]
        # a headless service may have no ports: list bare addresses
        for port in f.items(subset, "ports") or [None]:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip if port is None else _host_port(ip, f.number(port, "port")))
    result = ",".join(shown)
    return f"{result} + {count - limit} more..." if more else result


_ENDPOINTS = Printer((
    NAME, Column("Endpoints", description=Doc("core.Endpoints", "subsets")), AGE,
), lambda obj, now: [f.name(obj), _endpoints_text(obj), f.age(obj, now)])

# --- nodes and namespaces ------------------------------------------------------------------


def _node_roles(labels: Mapping) -> str:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    roles.discard("")
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Mapping, kind: str) -> str:
    found = f.condition(f.items(status, "addresses"), kind)  # addresses are keyed by "type" too
    return f.text(found, "address") if found else "<none>"


def _node_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    ready = None
    for c in f.items(status, "conditions"):
        if isinstance(c, Mapping) and c.get("type") == "Ready":
            ready = c  # upstream keys conditions by type: the last one wins
    states = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if spec.get("unschedulable") is True:
        states.append("SchedulingDisabled")
    info = f.mapping(status, "nodeInfo")
    kernel = f.or_placeholder(f.text(info, "kernelVersion"), "<unknown>")
    if arch := f.text(info, "architecture"):
        kernel += f" ({arch})"
    return [f.name(obj), ",".join(states), _node_roles(f.mapping(obj, "metadata", "labels")), f.age(obj, now),
            f.text(info, "kubeletVersion"), _node_address(status, "InternalIP"),
            _node_address(status, "ExternalIP"), f.or_placeholder(f.text(info, "osImage"), "<unknown>"),
            kernel, f.or_placeholder(f.text(info, "containerRuntimeVersion"), "<unknown>")]


_NODE = Printer((
    NAME,
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    AGE,
    Column("Version", description=Doc("core.NodeSystemInfo", "kubeletVersion")),
    Column("Internal-IP", description=Doc("core.NodeStatus", "addresses"), priority=1),
    Column("External-IP", description=Doc("core.NodeStatus", "addresses"), priority=1),
    Column("OS-Image", description=Doc("core.NodeSystemInfo", "osImage"), priority=1),
    Column("Kernel-Version", description=Doc("core.NodeSystemInfo", "kernelVersion"), priority=1),
    Column("Container-Runtime", description=Doc("core.NodeSystemInfo", "containerRuntimeVersion"), priority=1),
), _node_cells)

_NAMESPACE = Printer((
    NAME, Column("Status", description="The status of the namespace"), AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "status", "phase"), f.age(obj, now)])

# --- events --------------------------------------------------------------------------------


def _core_event(event: Mapping) -> Mapping:
    """An `events.k8s.io/v1` Event in the core v1 shape (both convert to one internal type)."""
    return {
        "metadata": f.meta(event), "involvedObject": f.mapping(event, "regarding"),
        "message": event.get("note"), "reason": event.get("reason"), "type": event.get("type"),
        "source": f.mapping(event, "deprecatedSource"), "firstTimestamp": event.get("deprecatedFirstTimestamp"),
        "lastTimestamp": event.get("deprecatedLastTimestamp"), "count": event.get("deprecatedCount"),
        "eventTime": event.get("eventTime"), "series": event.get("series"),
        "reportingComponent": event.get("reportingController"),
        "reportingInstance": event.get("reportingInstance"),
    }


def _event_source(event: Mapping) -> str:
    component = f.text(event, "source", "component") or f.text(event, "reportingComponent")
    instance = f.text(event, "source", "host") or f.text(event, "reportingInstance")
    return f"{component}, {instance}" if instance else component


def _event_cells(event: Mapping, now: float) -> Cells:
    first_seen = f.parse_time(event.get("firstTimestamp"))
    first = f.since(first_seen if first_seen is not None else event.get("eventTime"), now)
    last_seen = f.parse_time(event.get("lastTimestamp"))
    last = first if last_seen is None else f.since(last_seen, now)
    count = f.number(event, "count")
    if isinstance(event.get("series"), Mapping):
        last = f.since(f.field(event, "series", "lastObservedTime"), now)
        count = f.number(event, "series", "count")
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = f.mapping(event, "involvedObject")
    kind = f.text(involved, "kind").lower()
    target = f"{kind}/{f.text(involved, 'name')}" if f.text(involved, "name") else kind
    return [last, f.text(event, "type"), f.text(event, "reason"), target, f.text(involved, "fieldPath"),
            _event_source(event), f.text(event, "message").strip(), first, count, f.name(event)]


_EVENT_COLUMNS = (
    Column("Last Seen", description=Doc("core.Event", "lastTimestamp")),
    Column("Type", description=Doc("core.Event", "type")),
    Column("Reason", description=Doc("core.Event", "reason")),
    Column("Object", description=Doc("core.Event", "involvedObject")),
    Column("Subobject", description=Doc("core.ObjectReference", "fieldPath"), priority=1),
    Column("Source", description=Doc("core.Event", "source"), priority=1),
    Column("Message", description=Doc("core.Event", "message")),
    Column("First Seen", description=Doc("core.Event", "firstTimestamp"), priority=1),
    Column("Count", description=Doc("core.Event", "count"), priority=1),
    Column("Name", description=Doc("meta.ObjectMeta", "name"), priority=1, format="name"),
)
_EVENT = Printer(_EVENT_COLUMNS, _event_cells)
_EVENTS_API_EVENT = Printer(_EVENT_COLUMNS, lambda obj, now: _event_cells(_core_event(obj), now))

# --- configuration and accounts ------------------------------------------------------------

_SECRET = Printer((
    NAME, Column("Type", description=Doc("core.Secret", "type")),
    Column("Data", description=Doc("core.Secret", "data")), AGE,
), lambda obj, now: [f.name(obj), f.text(obj, "type"), len(f.mapping(obj, "data")), f.age(obj, now)])

_CONFIG_MAP = Printer((
    NAME, Column("Data", description=Doc("core.ConfigMap", "data")), AGE,
), lambda obj, now: [f.name(obj), len(f.mapping(obj, "data")) + len(f.mapping(obj, "binaryData")),
                     f.age(obj, now)])

# Kubernetes 1.35 dropped the SECRETS count: nothing populates `secrets` since 1.24
_SERVICE_ACCOUNT = Printer((NAME, AGE), lambda obj, now: [f.name(obj), f.age(obj, now)])


def _quota_cells(obj: Mapping, now: float) -> Cells:
    hard, used = f.mapping(obj, "status", "hard"), f.mapping(obj, "status", "used")
    requests, limits = [], []
    for resource in sorted(hard):
        column = limits if resource.startswith("limits.") else requests
        column.append(f"{resource}: {f.quantity(used.get(resource))}/{f.quantity(hard[resource])}")
    return [f.name(obj), ", ".join(requests), ", ".join(limits), f.age(obj, now)]


_RESOURCE_QUOTA = Printer((
    NAME,
    Column("Request", description="Request represents a minimum amount of cpu/memory that a container may consume."),
    Column("Limit", description="Limits control the maximum amount of cpu/memory that a container may use "
                                "independent of contention on the node."),
    AGE,
), _quota_cells)


def _component_status_cells(obj: Mapping, now: float) -> Cells:
    healthy = f.condition(f.items(obj, "conditions"), "Healthy")
    if healthy is None:
        return [f.name(obj), "Unknown", "", ""]
    status = "Healthy" if healthy.get("status") == "True" else "Unhealthy"
    return [f.name(obj), status, f.text(healthy, "message"), f.text(healthy, "error")]


_COMPONENT_STATUS = Printer((
    NAME,
    Column("Status", description="Status of the component conditions"),
    Column("Message", description="Message of the component conditions"),
    Column("Error", description="Error of the component conditions"),
), _component_status_cells)

# --- storage -------------------------------------------------------------------------------

_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def _storage_class(obj: Mapping) -> str:
    """`GetPersistentVolume(Claim)Class`: the beta annotation wins over `storageClassName`."""
    annotations = f.mapping(obj, "metadata", "annotations")
    if _BETA_CLASS in annotations:
        return str(annotations[_BETA_CLASS])
    return f.text(obj, "spec", "storageClassName")


def _pv_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    claim = spec.get("claimRef")
    claim_text = f"{f.text(claim, 'namespace')}/{f.text(claim, 'name')}" if isinstance(claim, Mapping) else ""
    phase = "Terminating" if f.deleting(obj) else f.text(obj, "status", "phase")
    return [f.name(obj), f.quantity(f.field(spec, "capacity", "storage")),
            f.access_modes(f.items(spec, "accessModes")), f.text(spec, "persistentVolumeReclaimPolicy"), phase, claim_text, _storage_class(obj),
            f.text(spec, "volumeAttributesClassName") or "<unset>", f.text(obj, "status", "reason"),
            f.age(obj, now), f.text(spec, "volumeMode") or "<unset>"]


_PERSISTENT_VOLUME = Printer((
    NAME,
    Column("Capacity", description=Doc("core.PersistentVolumeSpec", "capacity")),
    Column("Access Modes", description=Doc("core.PersistentVolumeSpec", "accessModes")),
    Column("Reclaim Policy", description=Doc("core.PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
    Column("Status", description=Doc("core.PersistentVolumeStatus", "phase")),
    Column("Claim", description=Doc("core.PersistentVolumeSpec", "claimRef")),
    Column("StorageClass", description="StorageClass of the pv"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    Column("Reason", description=Doc("core.PersistentVolumeStatus", "reason")),
    AGE,
    Column("VolumeMode", description=Doc("core.PersistentVolumeSpec", "volumeMode"), priority=1),
), _pv_cells)


def _pvc_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    capacity = modes = ""
    if f.text(spec, "volumeName"):  # only a bound claim reports what it got
        modes = f.access_modes(f.items(status, "accessModes"))
        capacity = f.quantity(f.field(status, "capacity", "storage"))
    phase = "Terminating" if f.deleting(obj) else f.text(status, "phase")
    return [f.name(obj), phase, f.text(spec, "volumeName"), capacity, modes, _storage_class(obj),
            f.text(spec, "volumeAttributesClassName") or "<unset>", f.age(obj, now),
            f.text(spec, "volumeMode") or "<unset>"]


_PERSISTENT_VOLUME_CLAIM = Printer((
    NAME,
    Column("Status", description=Doc("core.PersistentVolumeClaimStatus", "phase")),
    Column("Volume", description=Doc("core.PersistentVolumeClaimSpec", "volumeName")),
    Column("Capacity", description=Doc("core.PersistentVolumeClaimStatus", "capacity")),
    Column("Access Modes", description=Doc("core.PersistentVolumeClaimStatus", "accessModes")),
    Column("StorageClass", description="StorageClass of the pvc"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    AGE,
    Column("VolumeMode", description=Doc("core.PersistentVolumeClaimSpec", "volumeMode"), priority=1),
), _pvc_cells)

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): pods.POD,
    ("", "podtemplates"): _POD_TEMPLATE,
    ("", "replicationcontrollers"): _REPLICATION_CONTROLLER,
    ("", "services"): _SERVICE,
    ("", "endpoints"): _ENDPOINTS,
    ("", "nodes"): _NODE,
    ("", "namespaces"): _NAMESPACE,
    ("", "events"): _EVENT,
    ("events.k8s.io", "events"): _EVENTS_API_EVENT,
    ("", "secrets"): _SECRET,
    ("", "configmaps"): _CONFIG_MAP,
    ("", "serviceaccounts"): _SERVICE_ACCOUNT,
    ("", "resourcequotas"): _RESOURCE_QUOTA,
    ("", "componentstatuses"): _COMPONENT_STATUS,
    ("", "persistentvolumes"): _PERSISTENT_VOLUME,
    ("", "persistentvolumeclaims"): _PERSISTENT_VOLUME_CLAIM,
}
