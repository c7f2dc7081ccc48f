"""Container rules of upstream's `pkg/apis/core/validation/validation.go`:
`validateContainerCommon` (name, image, ports, env, mounts, pull policy, resources, security
context), probes and lifecycle handlers, and the lists of regular and init containers with their
duplicate names and host port conflicts. `pod.py` calls `containers` and `init_containers`.

An absent defaulted field reads as its default (protocol TCP, terminationMessagePolicy File).
"""

from __future__ import annotations

from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field, resources, volumes
from lks.kube.typevalidation.common import (
    dns_label,
    get,
    is_config_key,
    is_port_name,
    is_port_num,
    items,
    mapping,
    nonnegative,
    port_num_or_name,
)

RELAXED_ENV_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
MAX_INT32 = 2**31 - 1


def _ports(ports: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        name = get(port, "name", default="")
        if name:
            msgs = is_port_name(name)
            if msgs:
                causes += [field.invalid(f"{p}.name", name, m) for m in msgs]
            elif name in names:
                causes.append(field.duplicate(f"{p}.name", name))
            else:
                names.add(name)
        cport = get(port, "containerPort", default=0)
        if cport == 0:
            causes.append(field.required(f"{p}.containerPort"))
        else:
            causes += [field.invalid(f"{p}.containerPort", cport, m) for m in is_port_num(cport)]
        hport = get(port, "hostPort", default=0)
        if hport:
            causes += [field.invalid(f"{p}.hostPort", hport, m) for m in is_port_num(hport)]
        proto = get(port, "protocol", default="TCP")
        if proto not in ("SCTP", "TCP", "UDP"):
            causes.append(field.not_supported(f"{p}.protocol", proto, ["SCTP", "TCP", "UDP"]))
    return causes


def _env_name(name: str, path: str) -> list[Cause]:
    # RelaxedEnvironmentVariableValidation is on by default since 1.32 (GA 1.34)
    if any(not (" " <= c <= "~") or c == "=" for c in name):
        return [field.invalid(path, name, RELAXED_ENV_MSG)]
    return []


def _env(env: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ev in enumerate(env):
        p = f"{path}[{i}]"
        name = get(ev, "name", default="")
        causes += [field.required(f"{p}.name")] if not name else _env_name(name, f"{p}.name")
        source = get(ev, "valueFrom")
        if not isinstance(source, dict):
            continue
        vp = f"{p}.valueFrom"
        kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
                 if isinstance(source.get(k), dict)]
        for kind in ("configMapKeyRef", "secretKeyRef"):
            if kind in kinds:
                ref = source[kind]
                causes += [field.invalid(f"{vp}.{kind}.name", get(ref, "name", default=""), m)
                           for m in validation.dns_subdomain(get(ref, "name", default=""))]
                key = get(ref, "key", default="")
                causes += [field.required(f"{vp}.{kind}.key")] if not key else _config_key(key, f"{vp}.{kind}.key")
        if "fieldRef" in kinds:
            ref = source["fieldRef"]
            if not get(ref, "fieldPath"):
                causes.append(field.required(f"{vp}.fieldRef.fieldPath"))
        if "resourceFieldRef" in kinds and not get(source, "resourceFieldRef", "resource"):
            causes.append(field.required(f"{vp}.resourceFieldRef.resource"))
        if not kinds:
            causes.append(field.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                          "`configMapKeyRef` or `secretKeyRef`"))
        elif get(ev, "value"):
            causes.append(field.invalid(vp, "", "may not be specified when `value` is not empty"))
        elif len(kinds) > 1:
            causes.append(field.invalid(vp, "", "may not have more than one field specified at a time"))
    return causes


def _config_key(key: str, path: str) -> list[Cause]:
    return [field.invalid(path, key, m) for m in is_config_key(key)]


def _env_from(env_from: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ev in enumerate(env_from):
        p = f"{path}[{i}]"
        if get(ev, "prefix"):
            causes += _env_name(ev["prefix"], f"{p}.prefix")
        kinds = [k for k in ("configMapRef", "secretRef") if isinstance(get(ev, k), dict)]
        for kind in kinds:
            name = get(ev, kind, "name", default="")
            causes += [field.required(f"{p}.{kind}.name")] if not name else \
                [field.invalid(f"{p}.{kind}.name", name, m) for m in validation.dns_subdomain(mask_trailing_dash(name))]
        if not kinds:
            causes.append(field.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(kinds) > 1:
            causes.append(field.invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def mask_trailing_dash(name: str) -> str:
    """What name rules check of a generateName-like prefix (`maskTrailingDash`)."""
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def _volume_mounts(mounts: list, vols: dict[str, dict], ctr: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    privileged = bool(get(ctr, "securityContext", "privileged"))
    for i, m in enumerate(mounts):
        p = f"{path}[{i}]"
        name, mpath = get(m, "name", default=""), get(m, "mountPath", default="")
        if not name:
            causes.append(field.required(f"{p}.name"))
        if name not in vols:
            causes.append(field.not_found(f"{p}.name", name))
        if not mpath:
            causes.append(field.required(f"{p}.mountPath"))
        if mpath in seen:
            causes.append(field.invalid(f"{p}.mountPath", mpath, "must be unique"))
        seen.add(mpath)
        sub, expr = get(m, "subPath", default=""), get(m, "subPathExpr", default="")
        if sub:
            causes += volumes.local_descending_path(sub, f"{path}.subPath")
        if expr:
            if sub:
                causes.append(field.invalid(f"{p}.subPathExpr", expr, "subPathExpr and subPath are mutually exclusive"))
            causes += volumes.local_descending_path(expr, f"{path}.subPathExpr")
        prop = get(m, "mountPropagation")
        if prop is not None:
            supported = ["Bidirectional", "HostToContainer", "None"]
            if prop not in supported:
                causes.append(field.not_supported(f"{path}.mountPropagation", prop, supported))
            elif prop == "Bidirectional" and not privileged:
                causes.append(field.forbidden(f"{path}.mountPropagation",
                                        "Bidirectional mount propagation is available only to privileged containers"))
    return causes


def _pull_policy(ctr: dict, path: str) -> list[Cause]:
    policy = get(ctr, "imagePullPolicy", default="")
    if policy and policy not in ("Always", "IfNotPresent", "Never"):
        return [field.not_supported(path, policy, ["Always", "IfNotPresent", "Never"])]
    return []


def _handler(handler: dict, path: str, kinds: tuple[str, ...], grace: Any) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if count:
            causes.append(field.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        p = f"{path}.{kind}"
        if kind == "exec" and not items(action, "command"):
            causes.append(field.required(f"{p}.command"))
        elif kind in ("httpGet", "tcpSocket", "grpc"):
            causes += port_num_or_name(get(action, "port", default=0), f"{p}.port")
            scheme = get(action, "scheme", default="HTTP")
            if kind == "httpGet" and scheme not in ("HTTP", "HTTPS"):
                causes.append(field.not_supported(f"{p}.scheme", scheme, ["HTTP", "HTTPS"]))
        elif kind == "sleep" and isinstance(grace, int):
            seconds = get(action, "seconds", default=0)
            if seconds < 0 or seconds > grace:
                causes.append(field.invalid(p, seconds, "must be non-negative and less than terminationGracePeriodSeconds "
                                                  f"({grace})"))
    if not count:
        causes.append(field.required(path, "must specify a handler type"))
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
        causes.append(field.invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0"))
    success = probe.get("successThreshold", 1)
    if kind in ("liveness", "startup") and success != 1:
        causes.append(field.invalid(f"{path}.successThreshold", success, "must be 1"))
    if kind == "readiness" and tgps is not None:
        causes.append(field.invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must not be set for readinessProbes"))
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
            causes.append(field.invalid(f"{path}.{key}", v, f"must be between 0 and {MAX_INT32}, inclusive"))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        causes.append(field.invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
    caps = items(sc, "capabilities", "add")
    if "SYS_ADMIN" in caps and sc.get("allowPrivilegeEscalation") is False:
        causes.append(field.invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                                        "CAP_SYS_ADMIN"))
    proc = sc.get("procMount")
    if proc is not None and proc not in ("Default", "Unmasked"):
        causes.append(field.not_supported(f"{path}.procMount", proc, ["Default", "Unmasked"]))
    causes += seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")
    return causes


def seccomp(profile: Any, path: str) -> list[Cause]:
    if not isinstance(profile, dict):
        return []
    kind = profile.get("type", "")
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not kind:
        return [field.required(f"{path}.type", "type is required when seccompProfile is set")]
    if kind not in supported:
        return [field.not_supported(f"{path}.type", kind, supported)]
    local = profile.get("localhostProfile")
    if kind == "Localhost" and local is None:
        return [field.required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")]
    if kind != "Localhost" and local is not None:
        return [field.invalid(f"{path}.localhostProfile", profile, "can only be set when seccomp type is Localhost")]
    return []


def _container_common(ctr: dict, vols: dict[str, dict], path: str) -> list[Cause]:
    """`validateContainerCommon`."""
    name = get(ctr, "name", default="")
    causes = [field.required(f"{path}.name")] if not name else dns_label(name, f"{path}.name")
    if not get(ctr, "image"):
        causes.append(field.required(f"{path}.image"))
    policy = get(ctr, "terminationMessagePolicy", default="File")
    if policy not in ("File", "FallbackToLogsOnError"):
        causes.append(field.not_supported(f"{path}.terminationMessagePolicy", policy, ["File", "FallbackToLogsOnError"]))
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
                causes.append(field.duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return causes


def containers(ctrs: list, vols: dict, grace: Any, path: str) -> list[Cause]:
    if not ctrs:
        return [field.required(path)]
    causes: list[Cause] = []
    names: set[str] = set()
    for i, ctr in enumerate(ctrs):
        p = f"{path}[{i}]"
        ctr = ctr if isinstance(ctr, dict) else {}
        causes += _container_common(ctr, vols, p)
        name = get(ctr, "name", default="")
        if name in names:
            causes.append(field.duplicate(f"{p}.name", name))
        names.add(name)
        causes += _lifecycle_and_probes(ctr, p, grace)
        if ctr.get("restartPolicy") is not None:
            causes.append(field.forbidden(f"{p}.restartPolicy", "may not be set for non-init containers"))
    return causes + _host_ports(ctrs, path, set())


def init_containers(ctrs: list, regular: list, vols: dict, grace: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names = {get(c, "name", default="") for c in regular}
    for i, ctr in enumerate(ctrs):
        p = f"{path}[{i}]"
        ctr = ctr if isinstance(ctr, dict) else {}
        causes += _container_common(ctr, vols, p)
        policy = ctr.get("restartPolicy")
        if policy is not None and policy != "Always":
            causes.append(field.not_supported(f"{p}.restartPolicy", policy, ["Always"]))
        name = get(ctr, "name", default="")
        if name in names:
            causes.append(field.duplicate(f"{p}.name", name))
        elif name:
            names.add(name)
        causes += _host_ports([ctr], path, set())
        if policy == "Always":
            causes += _lifecycle_and_probes(ctr, p, grace)
        else:
            for field_ in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(field_) is not None:
                    causes.append(field.forbidden(f"{p}.{field_}", "may not be set for init containers without "
                                                             "restartPolicy=Always"))
    return causes
