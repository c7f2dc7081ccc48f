"""Pod and pod template rules of upstream's `pkg/apis/core/validation/validation.go`:
`ValidatePodSpec` (containers, volumes, ports, env, resources, probes, scheduling fields),
`ValidatePodCreate`, `ValidatePodUpdate` and `ValidatePodTemplateSpec`, which the workload
types of `apps.py` and `batch.py` reuse.

Upstream validates after defaulting. These rules read an absent defaulted field as its default
(restartPolicy Always, dnsPolicy ClusterFirst, protocol TCP, ...), so they give the same answer
whether or not the registry has defaulted the object yet.
"""

from __future__ import annotations

import posixpath
from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.structural import QuantityError, parse_quantity
from lks.kube.typevalidation import resources
from lks.kube.typevalidation.common import (
    dns_label, dns_subdomain, get, int_or_percent_value, ip_errors, is_label_value, is_port_num,
    items, labels, label_selector, mapping, nonnegative, port_num_or_name, qualified_name,
)
from lks.kube.typevalidation.field import (
    OMIT, GoStruct, duplicate, forbidden, go_json, invalid, not_found, not_supported, required,
)

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
RELAXED_ENV_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
MAX_INT32 = 2**31 - 1
UPDATABLE_FIELDS = ",".join([
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


# --- volumes -----------------------------------------------------------------------------------

def _required_fields(*names: str):
    def check(src: dict, path: str) -> list[Cause]:
        return [required(f"{path}.{n}") for n in names if not get(src, n)]
    return check


def _key_to_paths(src: dict, path: str) -> list[Cause]:
    causes = _mode(get(src, "defaultMode"), f"{path}.defaultMode")
    for i, kp in enumerate(items(src, "items")):
        p = f"{path}.items[{i}]"
        if not get(kp, "key"):
            causes.append(required(f"{p}.key"))
        if not get(kp, "path"):
            causes.append(required(f"{p}.path"))
        causes += _local_non_reserved_path(get(kp, "path", default=""), f"{p}.path")
        causes += _mode(get(kp, "mode"), f"{p}.mode")
    return causes


def _mode(mode: Any, path: str) -> list[Cause]:
    if isinstance(mode, int) and not 0 <= mode <= 0o777:
        return [invalid(path, mode, FILE_MODE_MSG)]
    return []


def _no_backsteps(target: str, path: str) -> list[Cause]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def _local_descending_path(target: str, path: str) -> list[Cause]:
    causes = [invalid(path, target, "must be a relative path")] if posixpath.isabs(target) else []
    return causes + _no_backsteps(target, path)


def _local_non_reserved_path(target: str, path: str) -> list[Cause]:
    causes = _local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        causes.append(invalid(path, target, "must not start with '..'"))
    return causes


def _host_path(src: dict, path: str) -> list[Cause]:
    if not get(src, "path"):
        return [required(f"{path}.path")]
    causes = _no_backsteps(src["path"], f"{path}.path")
    kind = get(src, "type")
    types = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
    if kind is not None and kind not in types:
        causes.append(not_supported(f"{path}.type", kind, types))
    return causes


def _secret(src: dict, path: str) -> list[Cause]:
    causes = [] if get(src, "secretName") else [required(f"{path}.secretName")]
    return causes + _key_to_paths(src, path)


def _config_map(src: dict, path: str) -> list[Cause]:
    causes = [] if get(src, "name") else [required(f"{path}.name")]
    return causes + _key_to_paths(src, path)


def _nfs(src: dict, path: str) -> list[Cause]:
    causes = _required_fields("server", "path")(src, path)
    if not posixpath.isabs(get(src, "path", default="")):
        causes.append(invalid(f"{path}.path", get(src, "path", default=""), "must be an absolute path"))
    return causes


def _empty_dir(src: dict, path: str) -> list[Cause]:
    limit = get(src, "sizeLimit")
    try:
        negative = limit is not None and parse_quantity(limit).value < 0
    except QuantityError:
        negative = False
    return [forbidden(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity")] if negative else []


def _ephemeral(src: dict, path: str) -> list[Cause]:
    return [] if get(src, "volumeClaimTemplate") else [required(f"{path}.volumeClaimTemplate")]


def _csi(src: dict, path: str) -> list[Cause]:
    driver = get(src, "driver", default="")
    p = f"{path}.driver"
    causes = [required(p)] if not driver else []
    if len(driver) > 63:
        causes.append(Cause(reason="FieldValueTooLong", field=p, message="Too long: may not be more than 63 bytes"))
    return causes + [invalid(p, driver, m) for m in validation.dns_subdomain(driver.lower())]


def _projected(src: dict, path: str) -> list[Cause]:
    causes = _mode(get(src, "defaultMode"), f"{path}.defaultMode")
    for i, source in enumerate(items(src, "sources")):
        sp = f"{path}.sources[{i}]"
        kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle",
                             "podCertificate") if isinstance(get(source, k), dict)]
        for kind in ("secret", "configMap"):
            if kind in kinds and not get(source, kind, "name"):
                causes.append(required(f"{sp}.{kind}.name"))
        token = get(source, "serviceAccountToken")
        if isinstance(token, dict):
            seconds = get(token, "expirationSeconds", default=3600)
            if seconds < 600:
                causes.append(invalid(f"{sp}.serviceAccountToken.expirationSeconds", seconds,
                                      "may not specify a duration less than 10 minutes"))
            if not get(token, "path"):
                causes.append(required(f"{path}.path"))
        if len(kinds) > 1:
            causes.append(forbidden(sp, "may not specify more than 1 volume type per source"))
    return causes


# (JSON field, name in the "more than 1 volume type" error, rules); upstream's order
_VOLUME_SOURCES = [
    ("emptyDir", "emptyDir", _empty_dir),
    ("hostPath", "hostPath", _host_path),
    ("gitRepo", "gitRepo", _required_fields("repository")),
    ("gcePersistentDisk", "gcePersistentDisk",
     lambda s, p: _required_fields("pdName")(s, p.rsplit(".", 1)[0] + ".persistentDisk")),
    ("awsElasticBlockStore", "awsElasticBlockStore", _required_fields("volumeID")),
    ("secret", "secret", _secret),
    ("nfs", "nfs", _nfs),
    ("iscsi", "iscsi", _required_fields("targetPortal", "iqn")),
    ("glusterfs", "glusterfs", _required_fields("endpoints", "path")),
    ("flocker", "flocker", lambda s, p: [] if get(s, "datasetName") or get(s, "datasetUUID")
     else [required(p, "one of datasetName and datasetUUID is required")]),
    ("persistentVolumeClaim", "persistentVolumeClaim", _required_fields("claimName")),
    ("rbd", "rbd", _required_fields("monitors", "image")),
    ("cinder", "cinder", _required_fields("volumeID")),
    ("cephfs", "cephFS", _required_fields("monitors")),
    ("quobyte", "quobyte", _required_fields("registry", "volume")),
    ("downwardAPI", "downwarAPI", lambda s, p: _mode(get(s, "defaultMode"), f"{p}.defaultMode")),  # sic
    ("fc", "fc", lambda s, p: [] if items(s, "targetWWNs") or items(s, "wwids") else
     [required(f"{p}.targetWWNs", "must specify either targetWWNs or wwids, but not both")]),
    ("flexVolume", "flexVolume", _required_fields("driver")),
    ("configMap", "configMap", _config_map),
    ("azureFile", "azureFile", _required_fields("secretName", "shareName")),
    ("vsphereVolume", "vsphereVolume", _required_fields("volumePath")),
    ("photonPersistentDisk", "photonPersistentDisk", _required_fields("pdID")),
    ("portworxVolume", "portworxVolume", _required_fields("volumeID")),
    ("azureDisk", "azureDisk", _required_fields("diskName", "diskURI")),
    ("storageos", "storageos", _required_fields("volumeName")),
    ("projected", "projected", _projected),
    ("scaleIO", "scaleIO", _required_fields("gateway", "system", "volumeName")),
    ("csi", "csi", _csi),
    ("ephemeral", "ephemeral", _ephemeral),
    ("image", "image", lambda s, p: []),
]


def volumes(vols: list, path: str) -> tuple[dict[str, dict], list[Cause]]:
    """`ValidateVolumes`: the volumes mounts may refer to (only the valid ones, as upstream) and
    the errors."""
    by_name: dict[str, dict] = {}
    causes: list[Cause] = []
    for i, vol in enumerate(vols):
        p = f"{path}[{i}]"
        errs: list[Cause] = []
        count = 0
        for key, label, rule in _VOLUME_SOURCES:
            src = get(vol, key)
            if not isinstance(src, dict):
                continue
            if count:
                errs.append(forbidden(f"{p}.{label}", "may not specify more than 1 volume type"))
                continue
            count += 1
            errs += rule(src, f"{p}.{key}")
        if not count:
            errs.append(required(p, "must specify a volume type"))
        name = get(vol, "name", default="")
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            errs += dns_label(name, f"{p}.name")
        if name in by_name:
            errs.append(duplicate(f"{p}.name", name))
        if errs:
            causes += errs
        else:
            by_name[name] = vol
    return by_name, causes


# --- containers --------------------------------------------------------------------------------

def _ports(ports: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        name = get(port, "name", default="")
        if name:
            from lks.kube.typevalidation.common import is_port_name
            msgs = is_port_name(name)
            if msgs:
                causes += [invalid(f"{p}.name", name, m) for m in msgs]
            elif name in names:
                causes.append(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        cport = get(port, "containerPort", default=0)
        if cport == 0:
            causes.append(required(f"{p}.containerPort"))
        else:
            causes += [invalid(f"{p}.containerPort", cport, m) for m in is_port_num(cport)]
        hport = get(port, "hostPort", default=0)
        if hport:
            causes += [invalid(f"{p}.hostPort", hport, m) for m in is_port_num(hport)]
        proto = get(port, "protocol", default="TCP")
        if proto not in ("SCTP", "TCP", "UDP"):
            causes.append(not_supported(f"{p}.protocol", proto, ["SCTP", "TCP", "UDP"]))
    return causes


def _env_name(name: str, path: str) -> list[Cause]:
    # RelaxedEnvironmentVariableValidation is on by default since 1.32 (GA 1.34)
    if any(not (" " <= c <= "~") or c == "=" for c in name):
        return [invalid(path, name, RELAXED_ENV_MSG)]
    return []


def _env(env: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ev in enumerate(env):
        p = f"{path}[{i}]"
        name = get(ev, "name", default="")
        causes += [required(f"{p}.name")] if not name else _env_name(name, f"{p}.name")
        source = get(ev, "valueFrom")
        if not isinstance(source, dict):
            continue
        vp = f"{p}.valueFrom"
        kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
                 if isinstance(source.get(k), dict)]
        for kind in ("configMapKeyRef", "secretKeyRef"):
            if kind in kinds:
                ref = source[kind]
                causes += [invalid(f"{vp}.{kind}.name", get(ref, "name", default=""), m)
                           for m in validation.dns_subdomain(get(ref, "name", default=""))]
                key = get(ref, "key", default="")
                causes += [required(f"{vp}.{kind}.key")] if not key else _config_key(key, f"{vp}.{kind}.key")
        if "fieldRef" in kinds:
            ref = source["fieldRef"]
            if not get(ref, "fieldPath"):
                causes.append(required(f"{vp}.fieldRef.fieldPath"))
        if "resourceFieldRef" in kinds and not get(source, "resourceFieldRef", "resource"):
            causes.append(required(f"{vp}.resourceFieldRef.resource"))
        if not kinds:
            causes.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                          "`configMapKeyRef` or `secretKeyRef`"))
        elif get(ev, "value"):
            causes.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif len(kinds) > 1:
            causes.append(invalid(vp, "", "may not have more than one field specified at a time"))
    return causes


CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def is_config_key(key: str) -> list[str]:
    """`validation.IsConfigMapKey`."""
    msgs = ["must be no more than 253 characters"] if len(key) > 253 else []
    if not key or any(not (c.isascii() and (c.isalnum() or c in "-._")) for c in key):
        msgs.append(CONFIG_KEY_MSG)
    if key == ".":
        msgs.append("must not be '.'")
    elif key == "..":
        msgs.append("must not be '..'")
    elif key.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def _config_key(key: str, path: str) -> list[Cause]:
    return [invalid(path, key, m) for m in is_config_key(key)]


def _env_from(env_from: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ev in enumerate(env_from):
        p = f"{path}[{i}]"
        if get(ev, "prefix"):
            causes += _env_name(ev["prefix"], f"{p}.prefix")
        kinds = [k for k in ("configMapRef", "secretRef") if isinstance(get(ev, k), dict)]
        for kind in kinds:
            name = get(ev, kind, "name", default="")
            causes += [required(f"{p}.{kind}.name")] if not name else \
                [invalid(f"{p}.{kind}.name", name, m) for m in validation.dns_subdomain(name.rstrip("-") or "a")]
        if not kinds:
            causes.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(kinds) > 1:
            causes.append(invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def _volume_mounts(mounts: list, vols: dict[str, dict], ctr: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    privileged = bool(get(ctr, "securityContext", "privileged"))
    for i, m in enumerate(mounts):
        p = f"{path}[{i}]"
        name, mpath = get(m, "name", default=""), get(m, "mountPath", default="")
        if not name:
            causes.append(required(f"{p}.name"))
        if name not in vols:
            causes.append(not_found(f"{p}.name", name))
        if not mpath:
            causes.append(required(f"{p}.mountPath"))
        if mpath in seen:
            causes.append(invalid(f"{p}.mountPath", mpath, "must be unique"))
        seen.add(mpath)
        sub, expr = get(m, "subPath", default=""), get(m, "subPathExpr", default="")
        if sub:
            causes += _local_descending_path(sub, f"{path}.subPath")
        if expr:
            if sub:
                causes.append(invalid(f"{p}.subPathExpr", expr, "subPathExpr and subPath are mutually exclusive"))
            causes += _local_descending_path(expr, f"{path}.subPathExpr")
        prop = get(m, "mountPropagation")
        if prop is not None:
            supported = ["Bidirectional", "HostToContainer", "None"]
            if prop not in supported:
                causes.append(not_supported(f"{path}.mountPropagation", prop, supported))
            elif prop == "Bidirectional" and not privileged:
                causes.append(forbidden(f"{path}.mountPropagation",
                                        "Bidirectional mount propagation is available only to privileged containers"))
    return causes


def _pull_policy(ctr: dict, path: str) -> list[Cause]:
    policy = get(ctr, "imagePullPolicy", default="")
    if policy and policy not in ("Always", "IfNotPresent", "Never"):
        return [not_supported(path, policy, ["Always", "IfNotPresent", "Never"])]
    return []


def _handler(handler: dict, path: str, kinds: tuple[str, ...], grace: Any) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if count:
            causes.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        p = f"{path}.{kind}"
        if kind == "exec" and not items(action, "command"):
            causes.append(required(f"{p}.command"))
        elif kind in ("httpGet", "tcpSocket", "grpc"):
            causes += port_num_or_name(get(action, "port", default=0), f"{p}.port")
            scheme = get(action, "scheme", default="HTTP")
            if kind == "httpGet" and scheme not in ("HTTP", "HTTPS"):
                causes.append(not_supported(f"{p}.scheme", scheme, ["HTTP", "HTTPS"]))
        elif kind == "sleep" and isinstance(grace, int):
            seconds = get(action, "seconds", default=0)
            if seconds < 0 or seconds > grace:
                causes.append(invalid(p, seconds, "must be non-negative and less than terminationGracePeriodSeconds "
                                                  f"({grace})"))
    if not count:
        causes.append(required(path, "must specify a handler type"))
    return causes


_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def _probe(probe: Any, path: str, grace: Any, kind: str) -> list[Cause]:
    if not isinstance(probe, dict):
        return []
    causes = _handler(probe, path, _PROBE_HANDLERS, grace)
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes += nonnegative(probe.get(name), f"{path}.{name}")
    tgps = probe.get("terminationGracePeriodSeconds")
    if isinstance(tgps, int) and tgps <= 0:
        causes.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0"))
    success = probe.get("successThreshold", 1)
    if kind in ("liveness", "startup") and success != 1:
        causes.append(invalid(f"{path}.successThreshold", success, "must be 1"))
    if kind == "readiness" and tgps is not None:
        causes.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must not be set for readinessProbes"))
    return causes


def _lifecycle_and_probes(ctr: dict, path: str, grace: Any) -> list[Cause]:
    causes: list[Cause] = []
    for hook in ("postStart", "preStop"):
        h = get(ctr, "lifecycle", hook)
        if isinstance(h, dict):
            causes += _handler(h, f"{path}.lifecycle.{hook}", _LIFECYCLE_HANDLERS, grace)
    for kind in ("liveness", "readiness", "startup"):
        causes += _probe(ctr.get(f"{kind}Probe"), f"{path}.{kind}Probe", grace, kind)
    return causes


def _security_context(sc: Any, path: str) -> list[Cause]:
    """`ValidateSecurityContext` of a container (the common part)."""
    if not isinstance(sc, dict):
        return []
    causes: list[Cause] = []
    for key in ("runAsUser", "runAsGroup"):
        v = sc.get(key)
        if isinstance(v, int) and not 0 <= v <= MAX_INT32:
            causes.append(invalid(f"{path}.{key}", v, f"must be between 0 and {MAX_INT32}, inclusive"))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        causes.append(invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
    caps = items(sc, "capabilities", "add")
    if "SYS_ADMIN" in caps and sc.get("allowPrivilegeEscalation") is False:
        causes.append(invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                                        "CAP_SYS_ADMIN"))
    proc = sc.get("procMount")
    if proc is not None and proc not in ("Default", "Unmasked"):
        causes.append(not_supported(f"{path}.procMount", proc, ["Default", "Unmasked"]))
    causes += _seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")
    return causes


def _seccomp(profile: Any, path: str) -> list[Cause]:
    if not isinstance(profile, dict):
        return []
    kind = profile.get("type", "")
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not kind:
        return [required(f"{path}.type", "type is required when seccompProfile is set")]
    if kind not in supported:
        return [not_supported(f"{path}.type", kind, supported)]
    local = profile.get("localhostProfile")
    if kind == "Localhost" and local is None:
        return [required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")]
    if kind != "Localhost" and local is not None:
        return [invalid(f"{path}.localhostProfile", profile, "can only be set when seccomp type is Localhost")]
    return []


def _container_common(ctr: dict, vols: dict[str, dict], path: str) -> list[Cause]:
    """`validateContainerCommon`."""
    name = get(ctr, "name", default="")
    causes = [required(f"{path}.name")] if not name else dns_label(name, f"{path}.name")
    if not get(ctr, "image"):
        causes.append(required(f"{path}.image"))
    policy = get(ctr, "terminationMessagePolicy", default="File")
    if policy not in ("File", "FallbackToLogsOnError"):
        causes.append(not_supported(f"{path}.terminationMessagePolicy", policy, ["File", "FallbackToLogsOnError"]))
    causes += _ports(items(ctr, "ports"), f"{path}.ports")
    causes += _env(items(ctr, "env"), f"{path}.env")
    causes += _env_from(items(ctr, "envFrom"), f"{path}.envFrom")
    causes += _volume_mounts(items(ctr, "volumeMounts"), vols, ctr, f"{path}.volumeMounts")
    causes += _pull_policy(ctr, f"{path}.imagePullPolicy")
    causes += resources.requirements(mapping(ctr, "resources"), f"{path}.resources")
    causes += _security_context(ctr.get("securityContext"), f"{path}.securityContext")
    return causes


def _host_ports(ctrs: list, path: str, seen: set[str]) -> list[Cause]:
    """`AccumulateUniqueHostPorts`."""
    causes: list[Cause] = []
    for ci, ctr in enumerate(ctrs):
        for pi, port in enumerate(items(ctr, "ports")):
            hport = get(port, "hostPort", default=0)
            if not hport:
                continue
            key = f"{get(port, 'protocol', default='TCP')}/{get(port, 'hostIP', default='')}/{hport}"
            if key in seen:
                causes.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return causes


def _containers(ctrs: list, vols: dict, grace: Any, path: str) -> list[Cause]:
    if not ctrs:
        return [required(path)]
    causes: list[Cause] = []
    names: set[str] = set()
    for i, ctr in enumerate(ctrs):
        p = f"{path}[{i}]"
        ctr = ctr if isinstance(ctr, dict) else {}
        causes += _container_common(ctr, vols, p)
        name = get(ctr, "name", default="")
        if name in names:
            causes.append(duplicate(f"{p}.name", name))
        names.add(name)
        causes += _lifecycle_and_probes(ctr, p, grace)
        if ctr.get("restartPolicy") is not None:
            causes.append(forbidden(f"{p}.restartPolicy", "may not be set for non-init containers"))
    return causes + _host_ports(ctrs, path, set())


def _init_containers(ctrs: list, regular: list, vols: dict, grace: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names = {get(c, "name", default="") for c in regular}
    for i, ctr in enumerate(ctrs):
        p = f"{path}[{i}]"
        ctr = ctr if isinstance(ctr, dict) else {}
        causes += _container_common(ctr, vols, p)
        policy = ctr.get("restartPolicy")
        if policy is not None and policy != "Always":
            causes.append(not_supported(f"{p}.restartPolicy", policy, ["Always"]))
        name = get(ctr, "name", default="")
        if name in names:
            causes.append(duplicate(f"{p}.name", name))
        elif name:
            names.add(name)
        causes += _host_ports([ctr], path, set())
        if policy == "Always":
            causes += _lifecycle_and_probes(ctr, p, grace)
        else:
            for field_ in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(field_) is not None:
                    causes.append(forbidden(f"{p}.{field_}", "may not be set for init containers without "
                                                             "restartPolicy=Always"))
    return causes


# --- the pod spec ------------------------------------------------------------------------------

def _tolerations(tols: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, t in enumerate(tols):
        p = f"{path}[{i}]"
        key, op = get(t, "key", default=""), get(t, "operator", default="")
        value, effect = get(t, "value", default=""), get(t, "effect", default="")
        if key:
            causes += qualified_name(key, f"{p}.key")
        if not key and op != "Exists":
            causes.append(invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty, which means "
                                                       '"match all values and all keys"'))
        if get(t, "tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = is_label_value(value)
            if msgs:
                causes.append(invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                causes.append(invalid(f"{p}.operator", value, "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(not_supported(f"{p}.operator", op, ["Equal", "Exists"]))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(not_supported(f"{p}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    return causes


def _pod_security_context(sc: Any, path: str) -> list[Cause]:
    if not isinstance(sc, dict):
        return []
    causes: list[Cause] = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        v = sc.get(key)
        if isinstance(v, int) and not 0 <= v <= MAX_INT32:
            causes.append(invalid(f"{path}.{key}", v, f"must be between 0 and {MAX_INT32}, inclusive"))
    for i, gid in enumerate(items(sc, "supplementalGroups")):
        if isinstance(gid, int) and not 0 <= gid <= MAX_INT32:
            causes.append(invalid(f"{path}.supplementalGroups[{i}]", gid,
                                  f"must be between 0 and {MAX_INT32}, inclusive"))
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        causes.append(not_supported(f"{path}.fsGroupChangePolicy", policy, ["Always", "OnRootMismatch"]))
    names: set[str] = set()
    for i, sysctl in enumerate(items(sc, "sysctls")):
        name = get(sysctl, "name", default="")
        if not name:
            causes.append(required(f"{path}.sysctls[{i}].name"))
        elif name in names:
            causes.append(duplicate(f"{path}.sysctls[{i}].name", name))
        names.add(name)
    return causes + _seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")


def _node_selector_requirement(req: Any, path: str) -> list[Cause]:
    op, values = get(req, "operator", default=""), items(req, "values")
    causes: list[Cause] = []
    if op in ("In", "NotIn"):
        if not values:
            causes.append(required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            causes.append(forbidden(f"{path}.values",
                                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            causes.append(required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        causes.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    return causes + qualified_name(get(req, "key", default=""), f"{path}.key")


def _affinity(aff: Any, path: str) -> list[Cause]:
    if not isinstance(aff, dict):
        return []
    causes: list[Cause] = []
    na = aff.get("nodeAffinity")
    if isinstance(na, dict):
        p = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(req, dict):
            terms = items(req, "nodeSelectorTerms")
            if not terms:
                causes.append(required(f"{p}.nodeSelectorTerms", "must have at least one node selector term"))
            for i, term in enumerate(terms):
                for j, expr in enumerate(items(term, "matchExpressions")):
                    causes += _node_selector_requirement(expr, f"{p}.nodeSelectorTerms[{i}].matchExpressions[{j}]")
        for i, pref in enumerate(items(na, "preferredDuringSchedulingIgnoredDuringExecution")):
            pp = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = get(pref, "weight", default=0)
            if not 1 <= weight <= 100:
                causes.append(invalid(f"{pp}.weight", weight, "must be in the range 1-100"))
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if not isinstance(pa, dict):
            continue
        for i, term in enumerate(items(pa, "requiredDuringSchedulingIgnoredDuringExecution")):
            causes += _affinity_term(term, f"{path}.{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, wt in enumerate(items(pa, "preferredDuringSchedulingIgnoredDuringExecution")):
            p = f"{path}.{kind}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = get(wt, "weight", default=0)
            if not 1 <= weight <= 100:
                causes.append(invalid(f"{p}.weight", weight, "must be in the range 1-100"))
            causes += _affinity_term(get(wt, "podAffinityTerm", default={}), f"{p}.podAffinityTerm")
    return causes


def _affinity_term(term: Any, path: str) -> list[Cause]:
    causes = label_selector(get(term, "labelSelector"), f"{path}.labelSelector")
    causes += label_selector(get(term, "namespaceSelector"), f"{path}.namespaceSelector")
    for ns in items(term, "namespaces"):
        causes += [invalid(f"{path}.namespace", ns, m) for m in validation.dns_label(ns)]
    key = get(term, "topologyKey", default="")
    if not key:
        causes.append(required(f"{path}.topologyKey", "can not be empty"))
    return causes + qualified_name(key, f"{path}.topologyKey")


def _dns_config(spec: dict, path: str) -> list[Cause]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not items(config, "nameservers"):
            return [required(f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if not isinstance(config, dict):
        return []
    causes: list[Cause] = []
    servers = items(config, "nameservers")
    if len(servers) > 3:
        causes.append(invalid(f"{path}.nameservers", servers, "must not have more than 3 nameservers"))
    for i, ns in enumerate(servers):
        causes += ip_errors(ns, f"{path}.nameservers[{i}]")
    searches = items(config, "searches")
    if len(searches) > 32:
        causes.append(invalid(f"{path}.searches", searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        causes.append(invalid(f"{path}.searches", searches,
                              "must not have more than 2048 characters (including spaces) in the search list"))
    for i, opt in enumerate(items(config, "options")):
        if not get(opt, "name"):
            causes.append(required(f"{path}.options[{i}]", "must not be empty"))
    return causes


def _topology_spread(constraints: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, c in enumerate(constraints):
        p = f"{path}[{i}]"
        skew = get(c, "maxSkew", default=0)
        if skew <= 0:
            causes.append(invalid(f"{p}.maxSkew", skew, "must be greater than zero"))
        if not get(c, "topologyKey"):
            causes.append(required(f"{p}.topologyKey", "can not be empty"))
        action = get(c, "whenUnsatisfiable", default="")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            causes.append(not_supported(f"{p}.whenUnsatisfiable", action, ["DoNotSchedule", "ScheduleAnyway"]))
        causes += label_selector(get(c, "labelSelector"), f"{p}.labelSelector")
    return causes


def pod_spec(spec: Any, path: str, *, is_pod: bool = False) -> list[Cause]:
    """`ValidatePodSpec`, in upstream's order."""
    spec = spec if isinstance(spec, dict) else {}
    grace = spec.get("terminationGracePeriodSeconds", 30)
    vols, causes = volumes(items(spec, "volumes"), f"{path}.volumes")
    ctrs = items(spec, "containers")
    causes += _containers(ctrs, vols, grace, f"{path}.containers")
    causes += _init_containers(items(spec, "initContainers"), ctrs, vols, grace, f"{path}.initContainers")
    host_network = bool(spec.get("hostNetwork"))
    if host_network:
        for i, ctr in enumerate(ctrs):
            for j, port in enumerate(items(ctr, "ports")):
                hp, cp = get(port, "hostPort", default=0), get(port, "containerPort", default=0)
                if (is_pod or hp) and hp != cp and hp:
                    causes.append(invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                          "must match `containerPort` when `hostNetwork` is true"))
    restart = spec.get("restartPolicy") or "Always"
    if restart not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{path}.restartPolicy", restart, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy") or "ClusterFirst"
    dns_values = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
    if dns not in dns_values:
        causes.append(not_supported(f"{path}.dnsPolicy", dns, dns_values))
    causes += labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _pod_security_context(spec.get("securityContext"), f"{path}.securityContext")
    for i, ref in enumerate(items(spec, "imagePullSecrets")):
        if isinstance(ref, dict) and set(ref) - {"name"}:
            causes.append(invalid(f"{path}.imagePullSecrets[{i}]", GoStruct(Name=ref.get("name", "")),
                                  "only name may be set"))
    causes += _affinity(spec.get("affinity"), f"{path}.affinity")
    causes += _dns_config(spec, f"{path}.dnsConfig")
    for i, gate in enumerate(items(spec, "readinessGates")):
        causes += qualified_name(get(gate, "conditionType", default=""), f"{path}.readinessGates[{i}].conditionType")
    seen_gates: set[str] = set()
    for i, gate in enumerate(items(spec, "schedulingGates")):
        name = get(gate, "name", default="")
        causes += qualified_name(name, f"{path}.schedulingGates[{i}]")
        if name in seen_gates:
            causes.append(duplicate(f"{path}.schedulingGates[{i}]", name))
        seen_gates.add(name)
    causes += _topology_spread(items(spec, "topologySpreadConstraints"), f"{path}.topologySpreadConstraints")
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        if spec.get(key):
            causes += dns_subdomain(spec[key], f"{path}.{key}")
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        causes.append(invalid(f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {MAX_INT32}, inclusive"))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += dns_label(spec[key], f"{path}.{key}")
    causes += _tolerations(items(spec, "tolerations"), f"{path}.tolerations")
    for i, alias in enumerate(items(spec, "hostAliases")):
        causes += ip_errors(get(alias, "ip", default=""), f"{path}.hostAliases[{i}].ip")
        for j, host in enumerate(items(alias, "hostnames")):
            causes += dns_subdomain(host, f"{path}.hostAliases[{i}].hostnames[{j}]")
    if spec.get("runtimeClassName") is not None:
        causes += dns_subdomain(spec["runtimeClassName"], f"{path}.runtimeClassName")
    preemption = spec.get("preemptionPolicy")
    if preemption is not None and preemption not in ("PreemptLowerPriority", "Never"):
        causes.append(not_supported(f"{path}.preemptionPolicy", preemption, ["PreemptLowerPriority", "Never"]))
    os_name = get(spec, "os", "name")
    if isinstance(spec.get("os"), dict) and os_name not in ("linux", "windows"):
        causes.append(not_supported(f"{path}.os.name", os_name or "", ["linux", "windows"]))
    return causes


def pod_template_spec(template: Any, path: str) -> list[Cause]:
    """`ValidatePodTemplateSpec` (note: labels at `<path>.labels`, as upstream)."""
    template = template if isinstance(template, dict) else {}
    meta = mapping(template, "metadata")
    causes = labels(meta.get("labels"), f"{path}.labels")
    causes += validation.validate_annotations(meta.get("annotations"), f"{path}.annotations")
    spec = mapping(template, "spec")
    causes += pod_spec(spec, f"{path}.spec")
    if items(spec, "ephemeralContainers"):
        causes.append(forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))
    return causes


def _image_whitespace(ctrs: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ctr in enumerate(ctrs):
        image = get(ctr, "image", default="")
        if image != image.strip():
            causes.append(invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes


def _pod_metadata_and_spec(obj: dict) -> list[Cause]:
    spec = mapping(obj, "spec")
    causes = pod_spec(spec, "spec", is_pod=True)
    causes += _image_whitespace(items(spec, "containers"), "spec.containers")
    return causes + _image_whitespace(items(spec, "initContainers"), "spec.initContainers")


def validate_pod(obj: dict) -> list[Cause]:
    """`ValidatePodCreate` (without the metadata rules, which `lks.kube.validation` has)."""
    spec = mapping(obj, "spec")
    causes = _pod_metadata_and_spec(obj)
    if items(spec, "ephemeralContainers"):
        causes.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and items(spec, "schedulingGates"):
        causes.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return causes


# --- updates -----------------------------------------------------------------------------------

def _container_updates(new: list, old: list, path: str) -> tuple[list[Cause], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    causes: list[Cause] = []
    for i, ctr in enumerate(new):
        image = get(ctr, "image", default="")
        if not image:
            causes.append(required(f"{path}[{i}].image"))
        if image != image.strip():
            causes.append(invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes, False


def _tolerations_only_added(new: list, old: list, path: str) -> list[Cause]:
    def without_seconds(t: Any) -> Any:
        return {k: v for k, v in t.items() if k != "tolerationSeconds"} if isinstance(t, dict) else t
    stripped = [without_seconds(t) for t in new]
    for t in old:
        if without_seconds(t) not in stripped:
            return [forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return _tolerations(new, path)


def validate_pod_update(new: dict, old: dict) -> list[Cause]:
    """`ValidatePodUpdate`: the new pod is valid and only the updatable fields changed."""
    causes = _pod_metadata_and_spec(new)
    ns, os_ = mapping(new, "spec"), mapping(old, "spec")
    for key in ("containers", "initContainers"):
        errs, stop = _container_updates(items(ns, key), items(os_, key), f"spec.{key}")
        causes += errs
        if stop:
            return causes
    deadline, old_deadline = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if deadline is not None:
        if not 0 <= deadline <= MAX_INT32:
            return causes + [invalid("spec.activeDeadlineSeconds", deadline,
                                     f"must be between 0 and {MAX_INT32}, inclusive")]
        if old_deadline is not None and old_deadline < deadline:
            return causes + [invalid("spec.activeDeadlineSeconds", deadline,
                                     "must be less than or equal to previous value")]
    elif old_deadline is not None:
        causes.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    causes += _tolerations_only_added(items(ns, "tolerations"), items(os_, "tolerations"), "spec.tolerations")
    added = {get(g, "name") for g in items(ns, "schedulingGates")} - {get(g, "name") for g in items(os_, "schedulingGates")}
    for i, gate in enumerate(items(ns, "schedulingGates")):
        if get(gate, "name") in added:
            causes.append(forbidden(f"spec.schedulingGates[{i}].name",
                                    f"only deletion is allowed, but found new scheduling gate '{get(gate, 'name')}'"))
    old_spec, munged = _comparable(os_), _comparable(ns)
    for key in ("containers", "initContainers"):
        for ctr, old_ctr in zip(munged.get(key, []), old_spec.get(key, []), strict=False):
            ctr["image"] = old_ctr.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != old_spec:
        causes.append(forbidden("spec", f"pod updates may not change fields other than {UPDATABLE_FIELDS}\n"
                                        + spec_diff("core.PodSpec", old_spec, munged)))
    return causes


_POD_DEFAULTS = {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
                 "schedulerName": "default-scheduler", "enableServiceLinks": True}
_CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


def _comparable(spec: dict) -> dict:
    """A pod spec as Go's semantic equality compares it: defaulted, without nulls, and with an
    empty list or map equal to a missing one."""
    out = _normalized(spec)
    for key, value in _POD_DEFAULTS.items():
        out.setdefault(key, value)
    for key in ("containers", "initContainers"):
        for ctr in out.get(key, []):
            if isinstance(ctr, dict):
                for k, v in _CONTAINER_DEFAULTS.items():
                    ctr.setdefault(k, v)
                image = ctr.get("image", "")
                latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
                ctr.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
                for port in ctr.get("ports", []):
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")
    return out


def _normalized(v: Any) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = _normalized(x)
            if x is not None and x != [] and x != {}:
                out[k] = x
        return out
    if isinstance(v, list):
        return [_normalized(x) for x in v]
    return v


def spec_diff(type_name: str, old: dict, new: dict) -> str:
    """A go-cmp-like diff of two specs, field by field. go-cmp's own output is deliberately
    unstable, so this keeps its shape (``-``/``+`` lines, Go field names) rather than its bytes."""
    lines = [f"  {type_name}{{"]
    same = 0
    for key in dict.fromkeys([*old, *new]):
        if old.get(key) == new.get(key):
            same += 1
            continue
        go_name = key[:1].upper() + key[1:]
        if key in old:
            lines.append(f"- \t{go_name}: {go_json(old[key])},")
        if key in new:
            lines.append(f"+ \t{go_name}: {go_json(new[key])},")
    if same:
        lines.insert(1, f"  \t... // {same} identical fields")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def int_or_percent(v: Any) -> int:
    return int_or_percent_value(v)


__all__ = ["OMIT", "pod_spec", "pod_template_spec", "validate_pod", "validate_pod_update", "volumes",
           "is_config_key", "spec_diff"]
