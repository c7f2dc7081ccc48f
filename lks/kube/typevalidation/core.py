"""Rules of the core (v1) types other than pods and services, from upstream's
`pkg/apis/core/validation/validation.go` and `events.go`: ConfigMap, Secret, Namespace, Node,
PersistentVolumeClaim and Event. Pods are in `pod.py`, Services in `service.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lks.kube import gojson
from lks.kube.errors import Cause
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
    mapping,
    qualified_name,
)
from lks.kube.typevalidation.pod import spec_diff

MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, for Secrets and ConfigMaps alike
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


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


def _json_object_error(raw: bytes) -> str | None:
    """What Go's `json.Unmarshal(raw, &map[string]interface{}{})` says, for the usual mistakes."""
    syntax = gojson.syntax_error(raw)
    if syntax is not None:
        return syntax
    doc = json.loads(raw)
    if isinstance(doc, dict):
        return None
    if doc is None:
        return None
    return f"json: cannot unmarshal {gojson.kind_of(doc)} into Go value of type map[string]interface {{}}"


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


# --- ResourceQuota, Endpoints ------------------------------------------------------------------

def validate_resource_quota(obj: dict) -> list[Cause]:
    """`ValidateResourceQuotaSpec` for the hard limits (and the status, which upstream validates
    alike): qualified resource names, values not negative and whole for countable resources."""
    causes: list[Cause] = []
    for where in ("spec.hard", "status.hard", "status.used"):
        for name, value in mapping(obj, *where.split(".")).items():
            path = f"{where}[{name}]"
            causes += [field.invalid(path, name, m) for m in is_qualified_name(name)]
            q = resources.quantity(value)
            if q is not None:
                causes += resources.quantity_value(name, q, path)
    return causes


_ENDPOINT_PROTOCOLS = ["SCTP", "TCP", "UDP"]  # sets.List: sorted


def _endpoint_address(address: Any, path: str) -> list[Cause]:
    address = address if isinstance(address, dict) else {}
    causes = ip_errors(address.get("ip") or "", f"{path}.ip")
    if address.get("hostname"):
        causes += dns_label(address["hostname"], f"{path}.hostname")
    if address.get("nodeName"):
        causes += dns_subdomain(address["nodeName"], f"{path}.nodeName")
    return causes


def validate_endpoints(obj: dict) -> list[Cause]:
    """`validateEndpointSubsets`: addresses are IPs, ports numbers with a protocol, named when
    there are several."""
    causes: list[Cause] = []
    for i, subset in enumerate(items(obj, "subsets")):
        p = f"subsets[{i}]"
        ready, not_ready = items(subset, "addresses"), items(subset, "notReadyAddresses")
        if not ready and not not_ready:
            causes.append(field.required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key, addresses in (("addresses", ready), ("notReadyAddresses", not_ready)):
            for j, address in enumerate(addresses):
                causes += _endpoint_address(address, f"{p}.{key}[{j}]")
        ports = items(subset, "ports")
        for j, port in enumerate(ports):
            pp = f"{p}.ports[{j}]"
            port = port if isinstance(port, dict) else {}
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                causes.append(field.required(f"{pp}.name"))
            elif name:
                causes += dns_label(name, f"{pp}.name")
            number = port.get("port", 0)
            causes += [field.invalid(f"{pp}.port", number, m) for m in is_port_num(number)]
            protocol = port.get("protocol") or "TCP"  # defaulted
            if protocol not in _ENDPOINT_PROTOCOLS:
                causes.append(field.not_supported(f"{pp}.protocol", protocol, _ENDPOINT_PROTOCOLS))
    return causes


# --- LimitRange ----------------------------------------------------------------------------------

_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
# (field with the lower value, field with the higher, where the error goes, the value shown, words)
_LIMIT_ORDER = (
    ("min", "max", "min", "min", "min value {lo} is greater than max value {hi}"),
    ("min", "defaultRequest", "defaultRequest", "defaultRequest", "min value {lo} is greater than default request "
                                                                   "value {hi}"),
    ("defaultRequest", "max", "defaultRequest", "defaultRequest", "default request value {lo} is greater than max "
                                                                   "value {hi}"),
    ("defaultRequest", "default", "defaultRequest", "defaultRequest", "default request value {lo} is greater than "
                                                                       "default limit value {hi}"),
    ("min", "default", "default", "min", "min value {lo} is greater than default value {hi}"),
    ("default", "max", "default", "max", "default value {lo} is greater than max value {hi}"),
)


def validate_limit_range(obj: dict) -> list[Cause]:
    """`ValidateLimitRange`: known, distinct limit types and min <= default request <= default
    <= max for each resource."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, limit in enumerate(items(obj, "spec", "limits")):
        p = f"spec.limits[{i}]"
        kind = get(limit, "type", default="")
        causes += [field.invalid(f"{p}.type", kind, m) for m in is_qualified_name(kind)]
        if "/" not in kind and kind not in _LIMIT_TYPES:
            causes.append(field.invalid(f"{p}.type", kind, "must be a standard limit type or fully qualified"))
        if kind in seen:
            causes.append(field.duplicate(f"{p}.type", kind))
        seen.add(kind)
        if kind == "Pod":
            causes += [field.forbidden(f"{p}.{key}", "may not be specified when `type` is 'Pod'")
                       for key in ("default", "defaultRequest") if mapping(limit, key)]
        if kind == "PersistentVolumeClaim" and "storage" not in mapping(limit, "min") \
                and "storage" not in mapping(limit, "max"):
            causes.append(field.required(f"{p}.limits", "either minimum or maximum storage value is required, but "
                                                        "neither was provided"))
        values = {key: {name: resources.quantity(v) for name, v in mapping(limit, key).items()}
                  for key in ("min", "max", "default", "defaultRequest")}
        if kind == "Pod":
            values["default"], values["defaultRequest"] = {}, {}
        for name in sorted(set().union(*values.values())):
            for low, high, where, shown, words in _LIMIT_ORDER:
                lo, hi = values[low].get(name), values[high].get(name)
                if lo is not None and hi is not None and lo.value > hi.value:
                    causes.append(field.invalid(f"{p}.{where}[{name}]", str(lo if shown == low else hi),
                                                words.format(lo=lo, hi=hi)))
    return causes
