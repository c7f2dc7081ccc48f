"""Rules of the core (v1) types other than pods, from upstream's
`pkg/apis/core/validation/validation.go` and `events.go`: Service, ConfigMap, Secret, Namespace,
Node, PersistentVolumeClaim and Event. Pods are in `pod.py`.

Fields the registry fills on create (a Service's cluster IPs and node ports, defaults such as
`type: ClusterIP`) read as filled when absent. The node port range, which upstream checks when
it allocates (`portallocator`), is checked here with the allocator's wording.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lks.kube.errors import Cause
from lks.kube.structural import go_quote
from lks.kube.typevalidation import field, resources
from lks.kube.typevalidation.common import (
    cidr_errors,
    dns_label,
    dns_subdomain,
    get,
    ip_errors,
    is_config_key,
    is_label_value,
    is_port_num,
    is_qualified_name,
    items,
    label_selector,
    labels,
    mapping,
    port_num_or_name,
    qualified_name,
)
from lks.kube.typevalidation.pod import spec_diff

MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, for Secrets and ConfigMaps alike
NODE_PORTS = (30000, 32767)  # kube-apiserver's default --service-node-port-range
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


# --- Service -----------------------------------------------------------------------------------

def _cluster_ips(spec: dict) -> list:
    ips = items(spec, "clusterIPs")
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]  # the strategy keeps clusterIPs[0] and clusterIP in step
    return ips


def _headless(spec: dict) -> bool:
    return _cluster_ips(spec) == ["None"]


def _service_port_key(port: dict) -> field.GoStruct:
    """The internal `core.ServicePort` upstream reports duplicate ports with."""
    return field.GoStruct(Name="", Protocol=get(port, "protocol", default="TCP"), AppProtocol=None,
                          Port=get(port, "port", default=0), TargetPort=0, NodePort=0)


def validate_service(obj: dict) -> list[Cause]:
    """`ValidateService`, plus the node port range of the allocator."""
    spec = mapping(obj, "spec")
    kind = spec.get("type") or "ClusterIP"
    ports = items(spec, "ports")
    headless = _headless(spec)
    causes: list[Cause] = []
    if not ports and not headless and kind != "ExternalName":
        causes.append(field.required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(field.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if _cluster_ips(spec):
            causes.append(field.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if items(spec, "ipFamilies"):
            causes.append(field.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            causes.append(field.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = get(spec, "externalName", default="").removesuffix(".")
        causes += dns_subdomain(cname, "spec.externalName") if cname else [field.required("spec.externalName")]
    names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _service_port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        causes += labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity") or "None"
    if affinity not in ("ClientIP", "None"):
        causes.append(field.not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        causes.append(field.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP":
        timeout = get(spec, "sessionAffinityConfig", "clientIP", "timeoutSeconds")
        if isinstance(timeout, int) and not 0 < timeout <= 86400:
            causes.append(field.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                        "must be greater than 0 and less than 86400"))
    if kind != "ExternalName":
        causes += _cluster_ips_fields(spec)
    for i, ip in enumerate(items(spec, "externalIPs")):
        causes += ip_errors(ip, f"spec.externalIPs[{i}]")
    kinds = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if kind not in kinds:
        causes.append(field.not_supported("spec.type", kind, kinds))
    for i, port in enumerate(ports):
        node_port = get(port, "nodePort", default=0)
        if kind == "ClusterIP" and node_port:
            causes.append(field.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    seen_node_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        node_port = get(port, "nodePort", default=0)
        if node_port:
            key = (get(port, "protocol", default="TCP"), node_port)
            if key in seen_node_ports:
                causes.append(field.duplicate(f"spec.ports[{i}].nodePort", node_port))
            seen_node_ports.add(key)
    seen_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        key = (get(port, "protocol", default="TCP"), get(port, "port", default=0))
        if key in seen_ports:
            causes.append(field.duplicate(f"spec.ports[{i}]", _service_port_key(port)))
        seen_ports.add(key)
    ranges = items(spec, "loadBalancerSourceRanges")
    if ranges:
        if kind != "LoadBalancer":  # upstream spells this path with a capital L
            causes.append(field.forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is "
                                                                           "'LoadBalancer'"))
        for i, cidr in enumerate(ranges):
            causes += cidr_errors(cidr.strip(), f"spec.LoadBalancerSourceRanges[{i}]")
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        causes.append(field.forbidden("spec.allocateLoadBalancerNodePorts",
                                      "may only be used when `type` is 'LoadBalancer'"))
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        causes += qualified_name(lb_class, "spec.loadBalancerClass") if kind == "LoadBalancer" else \
            [field.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")]
    causes += _traffic_policies(spec, kind)
    if kind in ("NodePort", "LoadBalancer"):
        for i, port in enumerate(ports):
            node_port = get(port, "nodePort", default=0)
            if node_port and not NODE_PORTS[0] <= node_port <= NODE_PORTS[1]:
                causes.append(field.invalid(f"spec.ports[{i}].nodePort", node_port,
                                            "provided port is not in the valid range. The range of valid ports is "
                                            f"{NODE_PORTS[0]}-{NODE_PORTS[1]}"))
    return causes


def _service_port(port: dict, require_name: bool, names: set[str], path: str) -> list[Cause]:
    name = get(port, "name", default="")
    causes: list[Cause] = []
    if require_name and not name:
        causes.append(field.required(f"{path}.name"))
    elif name:
        causes += dns_label(name, f"{path}.name")
        if name in names:
            causes.append(field.duplicate(f"{path}.name", name))
        names.add(name)
    number = get(port, "port", default=0)
    causes += [field.invalid(f"{path}.port", number, m) for m in is_port_num(number)]
    protocol = get(port, "protocol", default="TCP")
    if protocol not in ("SCTP", "TCP", "UDP"):
        causes.append(field.not_supported(f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
    target = port.get("targetPort")
    causes += port_num_or_name(number if target in (None, 0, "") else target, f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        causes += qualified_name(port["appProtocol"], f"{path}.appProtocol")
    return causes


def _cluster_ips_fields(spec: dict) -> list[Cause]:
    """`ValidateServiceClusterIPsRelatedFields` (the stand-alone checks)."""
    causes: list[Cause] = []
    ips, cluster_ip = items(spec, "clusterIPs"), spec.get("clusterIP") or ""
    if cluster_ip and ips and ips[0] != cluster_ip:
        causes.append(field.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif not cluster_ip and ips:
        causes.append(field.invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
    families = items(spec, "ipFamilies")
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            causes.append(field.not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            causes.append(field.duplicate(f"spec.ipFamilies[{i}]", family))
    policy = spec.get("ipFamilyPolicy")
    policies = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if policy is not None and policy not in policies:
        causes.append(field.not_supported("spec.ipFamilyPolicy", policy, policies))
    ips = _cluster_ips(spec)
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                causes.append(field.invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        causes += ip_errors(ip, f"spec.clusterIPs[{i}]")
    if len(ips) > 2:
        causes.append(field.invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return causes


def _traffic_policies(spec: dict, kind: str) -> list[Cause]:
    causes: list[Cause] = []
    external = kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and items(spec, "externalIPs"))
    etp = spec.get("externalTrafficPolicy") or ""
    if not external and etp:
        causes.append(field.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible "
                                                                       "services"))
    elif external and etp not in ("", "Cluster", "Local"):
        causes.append(field.not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    hc = spec.get("healthCheckNodePort") or 0
    if hc and not (kind == "LoadBalancer" and etp == "Local"):
        causes.append(field.invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is 'LoadBalancer' "
                                                                    "and `externalTrafficPolicy` is 'Local'"))
    elif hc:
        causes += [field.invalid("spec.healthCheckNodePort", hc, m) for m in is_port_num(hc)]
    itp = spec.get("internalTrafficPolicy")
    if itp is not None and itp not in ("Cluster", "Local"):
        causes.append(field.not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    return causes


def _allocated(new: dict, old: dict) -> dict:
    """The new Service as the strategy hands it to validation: cluster IPs the request left out
    are the old ones, and a changed clusterIP replaces clusterIPs[0] (`NormalizeClusterIPs`)."""
    ns, os_ = dict(mapping(new, "spec")), mapping(old, "spec")
    if not ns.get("clusterIP") and not items(ns, "clusterIPs") and ns.get("type") != "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if os_.get(key) is not None and ns.get(key) is None:
                ns[key] = os_[key]
    elif ns.get("clusterIP") and items(ns, "clusterIPs") == items(os_, "clusterIPs") \
            and ns.get("clusterIP") != os_.get("clusterIP"):
        ns["clusterIPs"] = [ns["clusterIP"], *items(ns, "clusterIPs")[1:]]
    return {**new, "spec": ns}


def validate_service_update(new: dict, old: dict) -> list[Cause]:
    """`ValidateServiceUpdate`: cluster IPs and IP families may not change once set."""
    new = _allocated(new, old)
    ns, os_ = mapping(new, "spec"), mapping(old, "spec")
    causes: list[Cause] = []
    kinds = {ns.get("type") or "ClusterIP", os_.get("type") or "ClusterIP"}
    new_ips, old_ips = _cluster_ips(ns), _cluster_ips(os_)
    if "ExternalName" not in kinds and not (_headless(ns) and _headless(os_)):
        if len(new_ips) == len(old_ips):
            causes += [field.invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set")
                       for i, ip in enumerate(old_ips) if ip != new_ips[i]]
        elif len(new_ips) < len(old_ips):
            if not new_ips:
                causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
            elif new_ips[0] != old_ips[0]:
                causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        elif old_ips and new_ips[0] != old_ips[0]:
            causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    new_fam, old_fam = items(ns, "ipFamilies"), items(os_, "ipFamilies")
    if "ExternalName" not in kinds and new_fam and old_fam and not _headless(ns) and not _headless(os_) \
            and new_fam[0] != old_fam[0]:
        causes.append(field.invalid("spec.ipFamilies[0]", new_fam, "may not change once set"))
    if kinds == {"LoadBalancer"} and ns.get("loadBalancerClass") != os_.get("loadBalancerClass"):
        causes.append(field.invalid("spec.loadBalancerClass", ns.get("loadBalancerClass"), "may not change once set"))
    hc_needed = all(s.get("type") == "LoadBalancer" and s.get("externalTrafficPolicy") == "Local" for s in (ns, os_))
    if hc_needed and ns.get("healthCheckNodePort") and ns.get("healthCheckNodePort") != os_.get("healthCheckNodePort"):
        causes.append(field.forbidden("spec.healthCheckNodePort", "field is immutable"))
    return causes + validate_service(new)


# --- ConfigMap and Secret ----------------------------------------------------------------------

def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(value or "")
    except (binascii.Error, ValueError, TypeError):
        return b""


def _key_errors(keys: Any, path: str) -> list[Cause]:
    return [field.invalid(f"{path}[{key}]", key, m) for key in keys for m in is_config_key(key)]


def _decoded_len(value: Any) -> int:
    return len(_b64(value))


def validate_config_map(obj: dict) -> list[Cause]:
    data, binary = mapping(obj, "data"), mapping(obj, "binaryData")
    causes: list[Cause] = []
    for key in data:
        causes += [field.invalid(f"data[{key}]", key, m) for m in is_config_key(key)]
        if key in binary:
            causes.append(field.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    causes += _key_errors(binary, "binaryData")
    size = sum(len(str(v).encode()) for v in data.values()) + sum(_decoded_len(v) for v in binary.values())
    if size > MAX_DATA_SIZE:
        causes.append(field.too_long("", MAX_DATA_SIZE))  # "" is the whole object, as upstream
    return causes


def validate_config_map_update(new: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(field.forbidden("immutable", IMMUTABLE_WHEN_SET))
        for key in ("data", "binaryData"):
            if mapping(new, key) != mapping(old, key):
                causes.append(field.forbidden(key, IMMUTABLE_WHEN_SET))
    return causes + validate_config_map(new)


_DOCKER_KEYS = {"kubernetes.io/dockercfg": ".dockercfg", "kubernetes.io/dockerconfigjson": ".dockerconfigjson"}


# Python's JSON error -> what Go's scanner says at the same character
_GO_JSON_ERRORS = (
    ("Expecting value", "looking for beginning of value"),
    ("Expecting property name", "looking for beginning of object key string"),
    ("Expecting ':' delimiter", "after object key"),
    ("Expecting ',' delimiter", "after object key:value pair"),
    ("Extra data", "after top-level value"),
    ("Invalid control character", "in string literal"),
    ("Invalid \\escape", "in string escape code"),
)


def _innermost(text: str) -> str:
    """The bracket of the innermost array or object open at the end of `text`."""
    stack, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            in_string, escaped = (escaped or ch != '"'), (not escaped and ch == "\\")
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _json_object_error(raw: bytes) -> str | None:
    """What Go's `json.Unmarshal(raw, &map[string]interface{}{})` says, for the usual mistakes."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        ch = err.doc[err.pos:err.pos + 1]
        if not err.doc[err.pos:].strip() or err.msg.startswith("Unterminated"):
            return "unexpected end of JSON input"
        where = next((go for py, go in _GO_JSON_ERRORS if err.msg.startswith(py)), "looking for beginning of value")
        if err.msg.startswith("Expecting ',' delimiter") and _innermost(err.doc[:err.pos]) == "[":
            where = "after array element"
        quoted = "'\\''" if ch == "'" else "'" + go_quote(ch)[1:-1].replace('\\"', '"') + "'"
        return f"invalid character {quoted} {where}"
    except ValueError:
        return "invalid character looking for beginning of value"
    if isinstance(doc, dict):
        return None
    kind = ("array" if isinstance(doc, list) else "string" if isinstance(doc, str) else
            "bool" if isinstance(doc, bool) else "number" if doc is not None else "")
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}" if kind else None


def validate_secret(obj: dict) -> list[Cause]:
    data = mapping(obj, "data")
    causes = _key_errors(data, "data")
    if sum(_decoded_len(v) for v in data.values()) > MAX_DATA_SIZE:
        causes.append(field.too_long("data", MAX_DATA_SIZE))
    kind = obj.get("type") or "Opaque"
    if kind == "kubernetes.io/service-account-token":
        if not get(obj, "metadata", "annotations", "kubernetes.io/service-account.name"):
            causes.append(field.required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind in _DOCKER_KEYS:
        key = _DOCKER_KEYS[kind]
        if key not in data:
            causes.append(field.required(f"data[{key}]"))
        else:
            err = _json_object_error(_b64(data[key]))
            if err:
                causes.append(field.invalid(f"data[{key}]", "<secret contents redacted>", err))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes += [field.required("data[username]"), field.required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not _decoded_len(data.get("ssh-privatekey")):
            causes.append(field.required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        causes += [field.required(f"data[{k}]") for k in ("tls.crt", "tls.key") if k not in data]
    return causes


def validate_secret_update(new: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    new_type, old_type = new.get("type") or "Opaque", old.get("type") or "Opaque"
    if new_type != old_type:
        causes.append(field.invalid("type", new_type, "field is immutable"))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(field.forbidden("immutable", IMMUTABLE_WHEN_SET))
        if mapping(new, "data") != mapping(old, "data"):
            causes.append(field.forbidden("data", IMMUTABLE_WHEN_SET))
    return causes + validate_secret(new)


# --- Namespace, Node ---------------------------------------------------------------------------

_STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def finalizer_name(name: str, path: str) -> list[Cause]:
    """`validateFinalizerName`: a qualified name, and a standard one when it has no prefix."""
    causes = [field.invalid(path, name, m) for m in is_qualified_name(name)]
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        causes.append(field.invalid(path, name, "name is neither a standard finalizer name nor is it fully "
                                                "qualified"))
    return causes


def validate_namespace(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    for name in items(obj, "spec", "finalizers"):
        causes += finalizer_name(name, "spec.finalizers")  # upstream does not index this path
    return causes


def _pod_cidrs(spec: dict) -> list:
    cidrs = items(spec, "podCIDRs")
    return cidrs or ([spec["podCIDR"]] if spec.get("podCIDR") else [])  # as conversion to the internal type


def _taints(taints: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple] = set()
    for i, taint in enumerate(taints):
        p = f"{path}[{i}]"
        key, value, effect = get(taint, "key", default=""), get(taint, "value", default=""), get(taint, "effect",
                                                                                                   default="")
        causes += qualified_name(key, f"{p}.key")
        msgs = is_label_value(value)
        if msgs:
            causes.append(field.invalid(f"{p}.value", value, ";".join(msgs)))
        effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
        if not effect:
            causes.append(field.required(f"{p}.effect"))
        elif effect not in effects:
            causes.append(field.not_supported(f"{p}.effect", effect, effects))
        if (effect, key) in seen:
            shown = field.GoStruct(Key=key, Value=value, Effect=effect, TimeAdded=get(taint, "timeAdded"))
            causes.append(field.duplicate(p, shown, "taints must be unique by key and effect pair"))
            continue
        seen.add((effect, key))
    return causes


def validate_node(obj: dict) -> list[Cause]:
    spec = mapping(obj, "spec")
    causes = _taints(items(spec, "taints"), "metadata.taints")  # sic: upstream roots this path at metadata
    causes += _node_resources(obj)
    cidrs = _pod_cidrs(spec)
    for i, cidr in enumerate(cidrs):
        causes += cidr_errors(cidr, f"spec.podCIDRs[{i}]")
    if len(cidrs) > 1:
        families = {":" in c for c in cidrs}
        if len(cidrs) > 2 or len(families) != 2:
            causes.append(field.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
        for i, cidr in enumerate(cidrs):
            if cidr in cidrs[:i]:
                causes.append(field.duplicate(f"spec.podCIDRs[{i}]", cidr))
    return causes


def _node_resources(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    for kind in ("capacity", "allocatable"):
        for name, value in mapping(obj, "status", kind).items():
            q = resources.quantity(value)
            if q is not None:
                causes += resources.quantity_value(name, q, f"status.{kind}.{name}")
    return causes


def validate_node_update(new: dict, old: dict) -> list[Cause]:
    ns, os_ = mapping(new, "spec"), mapping(old, "spec")
    causes = _node_resources(new)
    old_cidrs, new_cidrs = _pod_cidrs(os_), _pod_cidrs(ns)
    if old_cidrs and (len(old_cidrs) != len(new_cidrs) or any(a != b for a, b in zip(old_cidrs, new_cidrs,
                                                                                      strict=False))):
        causes.append(field.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    if os_.get("providerID") and os_.get("providerID") != ns.get("providerID"):
        causes.append(field.forbidden("spec.providerID", 'node updates may not change providerID except from "" to '
                                                         "valid"))
    causes += _taints(items(ns, "taints"), "metadata.taints")
    if ns.get("externalID") != os_.get("externalID"):
        causes.append(field.forbidden("spec.externalID", "may not be updated"))
    return causes


# --- PersistentVolumeClaim ---------------------------------------------------------------------

_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


def pvc_spec(spec: Any, path: str) -> list[Cause]:
    """`ValidatePersistentVolumeClaimSpec`."""
    spec = spec if isinstance(spec, dict) else {}
    modes = items(spec, "accessModes")
    causes = [] if modes else [field.required(f"{path}.accessModes", "at least 1 access mode is required")]
    if spec.get("selector") is not None:
        causes += label_selector(spec["selector"], f"{path}.selector")
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(field.not_supported(f"{path}.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m in _ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        causes.append(field.forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes"))
    storage_path = f"{path}.resources[storage]"  # sic: upstream skips "requests" here
    storage = get(spec, "resources", "requests", "storage")
    if storage is None:
        causes.append(field.required(storage_path))
    else:
        errs = resources.positive(storage, storage_path)
        q = resources.quantity(storage)
        causes += errs or (resources.quantity_value("storage", q, storage_path) if q else [])
    if spec.get("storageClassName"):
        causes += dns_subdomain(spec["storageClassName"], f"{path}.storageClassName")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        causes.append(field.not_supported(f"{path}.volumeMode", mode, ["Block", "Filesystem"]))
    for key in ("dataSource", "dataSourceRef"):
        ref = spec.get(key)
        if isinstance(ref, dict):
            causes += [field.required(f"{path}.{key}.{k}") for k in ("name", "kind") if not ref.get(k)]
            if not ref.get("apiGroup") and ref.get("kind") != "PersistentVolumeClaim":
                causes.append(field.invalid(f"{path}.{key}", ref.get("kind", ""),
                                            "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
    return causes


def validate_pvc(obj: dict) -> list[Cause]:
    return pvc_spec(obj.get("spec"), "spec")


def validate_pvc_update(new: dict, old: dict) -> list[Cause]:
    """`ValidatePersistentVolumeClaimUpdate`: the spec is immutable except the storage request of a
    bound claim and a volumeName set once."""
    causes = validate_pvc(new)
    ns, os_ = dict(mapping(new, "spec")), dict(mapping(old, "spec"))
    if not os_.get("volumeName"):
        os_["volumeName"] = ns.get("volumeName")
    bound = get(new, "status", "phase") == "Bound"
    if bound:
        for spec, src in ((ns, os_), (os_, os_)):
            res = dict(mapping(spec, "resources"))
            res["requests"] = {**mapping(res, "requests"), "storage": get(src, "resources", "requests", "storage")}
            spec["resources"] = res
        if ns.get("volumeAttributesClassName") is not None:
            ns["volumeAttributesClassName"] = os_.get("volumeAttributesClassName")
    if ns.get("volumeMode") is None:
        ns["volumeMode"] = os_.get("volumeMode") or "Filesystem"
    os_.setdefault("volumeMode", "Filesystem")
    if _clean(ns) != _clean(os_):
        causes.append(field.forbidden("spec", "spec is immutable after creation except resources.requests and "
                                              "volumeAttributesClassName for bound claims\n"
                                      + spec_diff("core.PersistentVolumeClaimSpec", _clean(os_), _clean(ns))))
    new_size = resources.quantity(get(new, "spec", "resources", "requests", "storage"))
    old_size = resources.quantity(get(old, "spec", "resources", "requests", "storage"))
    capacity = resources.quantity(get(old, "status", "capacity", "storage") or 0)
    if new_size and old_size and capacity and new_size.value < old_size.value and new_size.value <= capacity.value:
        # RecoverVolumeExpansionFailure (GA in 1.34) allows shrinking down to, not below, the capacity
        causes.append(field.forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    new_mode, old_mode = get(new, "spec", "volumeMode"), get(old, "spec", "volumeMode")
    if new_mode is not None and old_mode is not None and new_mode != old_mode:
        causes.append(field.invalid("volumeMode", new_mode, "field is immutable"))  # sic: no "spec."
    return causes


def _clean(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if v not in (None, [], {})}


# --- Event -------------------------------------------------------------------------------------

def validate_event(obj: dict, *, strict: bool = False) -> list[Cause]:
    """`legacyValidateEvent`, and for events.k8s.io requests (`strict`) the newer rules. Paths are
    those of the internal (core) Event, as upstream reports them for both APIs."""
    ns = get(obj, "metadata", "namespace", default="")
    involved_ns = get(obj, "involvedObject", "namespace", default="") or get(obj, "regarding", "namespace",
                                                                            default="")
    causes: list[Cause] = []
    if not obj.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                causes.append(field.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        elif ns != involved_ns:
            causes.append(field.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            causes.append(field.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        controller = obj.get("reportingController") or obj.get("reportingComponent") or ""
        if not controller:
            causes.append(field.required("reportingController"))
        causes += [field.invalid("reportingController", controller, m) for m in is_qualified_name(controller)]
        for key, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = obj.get(key) or ""
            if not value:
                causes.append(field.required(key))
            if len(value) > limit:
                causes.append(field.invalid(key, "", f"can have at most {limit} characters"))
        message = obj.get("message") or obj.get("note") or ""
        if len(message) > 1024:
            causes.append(field.invalid("message", "", "can have at most 1024 characters"))
    causes += dns_subdomain(ns, "namespace") if ns else []
    if strict:
        if not obj.get("eventTime"):
            causes.append(field.required("eventTime"))
        kind = obj.get("type") or ""
        if kind not in ("Normal", "Warning"):
            causes.append(field.invalid("type", "", f"has invalid value: {kind}"))
    return causes
