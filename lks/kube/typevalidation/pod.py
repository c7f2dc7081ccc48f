"""Pod and pod template rules of upstream's `pkg/apis/core/validation/validation.go`:
`ValidatePodSpec` (containers, volumes, ports, env, resources, probes, scheduling fields),
`ValidatePodCreate`, `ValidatePodUpdate` and `ValidatePodTemplateSpec`, which the workload
types of `apps.py` and `batch.py` reuse.

Upstream validates after defaulting. These rules read an absent defaulted field as its default
(restartPolicy Always, dnsPolicy ClusterFirst, protocol TCP, ...), so they give the same answer
whether or not the registry has defaulted the object yet.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import containers, field, volumes
from lks.kube.typevalidation.common import (
    dns_label,
    dns_subdomain,
    get,
    ip_errors,
    is_label_value,
    items,
    label_selector,
    labels,
    mapping,
    qualified_name,
)
from lks.kube.typevalidation.containers import MAX_INT32, seccomp

# IsValidSysctlName: dot- or slash-separated segments, as upstream prints its regexp
_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = f"({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}"
_SYSCTL_RE = re.compile(f"^{_SYSCTL_FMT}$")
_SYSCTL_MAX = 253

UPDATABLE_FIELDS = ",".join([
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


def tolerations(tols: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, t in enumerate(tols):
        p = f"{path}[{i}]"
        key, op = get(t, "key", default=""), get(t, "operator", default="")
        value, effect = get(t, "value", default=""), get(t, "effect", default="")
        if key:
            causes += qualified_name(key, f"{p}.key")
        if not key and op != "Exists":
            causes.append(field.invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty, which means "
                                                       '"match all values and all keys"'))
        if get(t, "tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(field.invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = is_label_value(value)
            if msgs:
                causes.append(field.invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                causes.append(field.invalid(f"{p}.operator", value, "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(field.not_supported(f"{p}.operator", op, ["Equal", "Exists"]))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(field.not_supported(f"{p}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    return causes


def _pod_security_context(sc: Any, path: str) -> list[Cause]:
    if not isinstance(sc, dict):
        return []
    causes: list[Cause] = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        v = sc.get(key)
        if isinstance(v, int) and not 0 <= v <= MAX_INT32:
            causes.append(field.invalid(f"{path}.{key}", v, f"must be between 0 and {MAX_INT32}, inclusive"))
    for i, gid in enumerate(items(sc, "supplementalGroups")):
        if isinstance(gid, int) and not 0 <= gid <= MAX_INT32:
            causes.append(field.invalid(f"{path}.supplementalGroups[{i}]", gid,
                                  f"must be between 0 and {MAX_INT32}, inclusive"))
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        causes.append(field.not_supported(f"{path}.fsGroupChangePolicy", policy, ["Always", "OnRootMismatch"]))
    names: set[str] = set()
    for i, sysctl in enumerate(items(sc, "sysctls")):
        name = get(sysctl, "name", default="")
        if not name:
            causes.append(field.required(f"{path}.sysctls[{i}].name"))
        elif len(name) > _SYSCTL_MAX or not _SYSCTL_RE.match(name):
            causes.append(field.invalid(f"{path}.sysctls[{i}].name", name,
                                        f"must have at most {_SYSCTL_MAX} characters and match regex ^{_SYSCTL_FMT}$"))
        elif name in names:
            causes.append(field.duplicate(f"{path}.sysctls[{i}].name", name))
        names.add(name)
    return causes + seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")


def _node_selector_requirement(req: Any, path: str) -> list[Cause]:
    op, values = get(req, "operator", default=""), items(req, "values")
    causes: list[Cause] = []
    if op in ("In", "NotIn"):
        if not values:
            causes.append(field.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            causes.append(field.forbidden(f"{path}.values",
                                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            causes.append(field.required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        causes.append(field.invalid(f"{path}.operator", op, "not a valid selector operator"))
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
                causes.append(field.required(f"{p}.nodeSelectorTerms", "must have at least one node selector term"))
            for i, term in enumerate(terms):
                for j, expr in enumerate(items(term, "matchExpressions")):
                    causes += _node_selector_requirement(expr, f"{p}.nodeSelectorTerms[{i}].matchExpressions[{j}]")
        for i, pref in enumerate(items(na, "preferredDuringSchedulingIgnoredDuringExecution")):
            pp = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = get(pref, "weight", default=0)
            if not 1 <= weight <= 100:
                causes.append(field.invalid(f"{pp}.weight", weight, "must be in the range 1-100"))
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
                causes.append(field.invalid(f"{p}.weight", weight, "must be in the range 1-100"))
            causes += _affinity_term(get(wt, "podAffinityTerm", default={}), f"{p}.podAffinityTerm")
    return causes


def _affinity_term(term: Any, path: str) -> list[Cause]:
    causes = label_selector(get(term, "labelSelector"), f"{path}.labelSelector")
    causes += label_selector(get(term, "namespaceSelector"), f"{path}.namespaceSelector")
    for ns in items(term, "namespaces"):
        causes += [field.invalid(f"{path}.namespace", ns, m) for m in validation.dns_label(ns)]
    key = get(term, "topologyKey", default="")
    if not key:
        causes.append(field.required(f"{path}.topologyKey", "can not be empty"))
    return causes + qualified_name(key, f"{path}.topologyKey")


def _dns_config(spec: dict, path: str) -> list[Cause]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [field.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not items(config, "nameservers"):
            return [field.required(f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if not isinstance(config, dict):
        return []
    causes: list[Cause] = []
    servers = items(config, "nameservers")
    if len(servers) > 3:
        causes.append(field.invalid(f"{path}.nameservers", servers, "must not have more than 3 nameservers"))
    for i, ns in enumerate(servers):
        causes += ip_errors(ns, f"{path}.nameservers[{i}]")
    searches = items(config, "searches")
    if len(searches) > 32:
        causes.append(field.invalid(f"{path}.searches", searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        causes.append(field.invalid(f"{path}.searches", searches,
                              "must not have more than 2048 characters (including spaces) in the search list"))
    for i, opt in enumerate(items(config, "options")):
        if not get(opt, "name"):
            causes.append(field.required(f"{path}.options[{i}]", "must not be empty"))
    return causes


def _topology_spread(constraints: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, c in enumerate(constraints):
        p = f"{path}[{i}]"
        skew = get(c, "maxSkew", default=0)
        if skew <= 0:
            causes.append(field.invalid(f"{p}.maxSkew", skew, "must be greater than zero"))
        if not get(c, "topologyKey"):
            causes.append(field.required(f"{p}.topologyKey", "can not be empty"))
        action = get(c, "whenUnsatisfiable", default="")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            causes.append(field.not_supported(f"{p}.whenUnsatisfiable", action, ["DoNotSchedule", "ScheduleAnyway"]))
        causes += label_selector(get(c, "labelSelector"), f"{p}.labelSelector")
    return causes


def pod_spec(spec: Any, path: str) -> list[Cause]:
    """`ValidatePodSpec`, in upstream's order."""
    spec = spec if isinstance(spec, dict) else {}
    grace = spec.get("terminationGracePeriodSeconds", 30)
    vols, causes = volumes.volumes(items(spec, "volumes"), f"{path}.volumes")
    ctrs = items(spec, "containers")
    causes += containers.containers(ctrs, vols, grace, f"{path}.containers")
    causes += containers.init_containers(items(spec, "initContainers"), ctrs, vols, grace, f"{path}.initContainers")
    host_network = bool(spec.get("hostNetwork"))
    if host_network:
        for i, ctr in enumerate(ctrs):
            for j, port in enumerate(items(ctr, "ports")):
                hp, cp = get(port, "hostPort", default=0), get(port, "containerPort", default=0)
                if hp and hp != cp:  # a pod's 0 is defaulted to containerPort first
                    causes.append(field.invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                          "must match `containerPort` when `hostNetwork` is true"))
    restart = spec.get("restartPolicy") or "Always"
    if restart not in ("Always", "OnFailure", "Never"):
        causes.append(field.not_supported(f"{path}.restartPolicy", restart, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy") or "ClusterFirst"
    dns_values = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
    if dns not in dns_values:
        causes.append(field.not_supported(f"{path}.dnsPolicy", dns, dns_values))
    causes += labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _pod_security_context(spec.get("securityContext"), f"{path}.securityContext")
    for i, ref in enumerate(items(spec, "imagePullSecrets")):
        if isinstance(ref, dict) and set(ref) - {"name"}:
            causes.append(field.invalid(f"{path}.imagePullSecrets[{i}]", field.GoStruct(Name=ref.get("name", "")),
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
            causes.append(field.duplicate(f"{path}.schedulingGates[{i}]", name))
        seen_gates.add(name)
    causes += _topology_spread(items(spec, "topologySpreadConstraints"), f"{path}.topologySpreadConstraints")
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        if spec.get(key):
            causes += dns_subdomain(spec[key], f"{path}.{key}")
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        causes.append(field.invalid(f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {MAX_INT32}, inclusive"))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += dns_label(spec[key], f"{path}.{key}")
    causes += tolerations(items(spec, "tolerations"), f"{path}.tolerations")
    for i, alias in enumerate(items(spec, "hostAliases")):
        causes += ip_errors(get(alias, "ip", default=""), f"{path}.hostAliases[{i}].ip")
        for j, host in enumerate(items(alias, "hostnames")):
            causes += dns_subdomain(host, f"{path}.hostAliases[{i}].hostnames[{j}]")
    if spec.get("runtimeClassName") is not None:
        causes += dns_subdomain(spec["runtimeClassName"], f"{path}.runtimeClassName")
    preemption = spec.get("preemptionPolicy")
    if preemption is not None and preemption not in ("PreemptLowerPriority", "Never"):
        causes.append(field.not_supported(f"{path}.preemptionPolicy", preemption, ["PreemptLowerPriority", "Never"]))
    os_name = get(spec, "os", "name")
    if isinstance(spec.get("os"), dict) and os_name not in ("linux", "windows"):
        causes.append(field.not_supported(f"{path}.os.name", os_name or "", ["linux", "windows"]))
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
        causes.append(field.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))
    return causes


def _image_whitespace(ctrs: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, ctr in enumerate(ctrs):
        image = get(ctr, "image", default="")
        if image != image.strip():
            causes.append(field.invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes


_VALID_SPECS: dict[bytes, None] = {}  # specs seen valid: a ReplicaSet's pods share one


def _pod_metadata_and_spec(obj: dict) -> list[Cause]:
    spec = mapping(obj, "spec")
    try:
        key: bytes | None = orjson.dumps(spec)
    except (TypeError, orjson.JSONEncodeError):
        key = None
    if key is not None and key in _VALID_SPECS:
        return []
    causes = pod_spec(spec, "spec")
    causes += _image_whitespace(items(spec, "containers"), "spec.containers")
    causes += _image_whitespace(items(spec, "initContainers"), "spec.initContainers")
    if not causes and key is not None:
        if len(_VALID_SPECS) >= 1024:
            _VALID_SPECS.clear()
        _VALID_SPECS[key] = None
    return causes


def validate_pod(obj: dict) -> list[Cause]:
    """`ValidatePodCreate` (without the metadata rules, which `lks.kube.validation` has)."""
    spec = mapping(obj, "spec")
    causes = _pod_metadata_and_spec(obj)
    if items(spec, "ephemeralContainers"):
        causes.append(field.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and items(spec, "schedulingGates"):
        causes.append(field.forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return causes


# --- updates -----------------------------------------------------------------------------------

def _container_updates(new: list, old: list, path: str) -> tuple[list[Cause], bool]:
    if len(new) != len(old):
        return [field.forbidden(path, "pod updates may not add or remove containers")], True
    causes: list[Cause] = []
    for i, ctr in enumerate(new):
        image = get(ctr, "image", default="")
        if not image:
            causes.append(field.required(f"{path}[{i}].image"))
        if image != image.strip():
            causes.append(field.invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes, False


def _tolerations_only_added(new: list, old: list, path: str) -> list[Cause]:
    def without_seconds(t: Any) -> Any:
        return {k: v for k, v in t.items() if k != "tolerationSeconds"} if isinstance(t, dict) else t
    stripped = [without_seconds(t) for t in new]
    for t in old:
        if without_seconds(t) not in stripped:
            return [field.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return tolerations(new, path)


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
            return causes + [field.invalid("spec.activeDeadlineSeconds", deadline,
                                     f"must be between 0 and {MAX_INT32}, inclusive")]
        if old_deadline is not None and old_deadline < deadline:
            return causes + [field.invalid("spec.activeDeadlineSeconds", deadline,
                                     "must be less than or equal to previous value")]
    elif old_deadline is not None:
        causes.append(field.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    causes += _tolerations_only_added(items(ns, "tolerations"), items(os_, "tolerations"), "spec.tolerations")
    added = {get(g, "name") for g in items(ns, "schedulingGates")} - {get(g, "name") for g in items(os_, "schedulingGates")}
    for i, gate in enumerate(items(ns, "schedulingGates")):
        if get(gate, "name") in added:
            causes.append(field.forbidden(f"spec.schedulingGates[{i}].name",
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
        causes.append(field.forbidden("spec", f"pod updates may not change fields other than {UPDATABLE_FIELDS}\n"
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
            lines.append(f"- \t{go_name}: {field.go_json(old[key])},")
        if key in new:
            lines.append(f"+ \t{go_name}: {field.go_json(new[key])},")
    if same:
        lines.insert(1, f"  \t... // {same} identical fields")
    lines.append("  }")
    return "\n".join(lines) + "\n"
