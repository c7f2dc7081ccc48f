"""The checks of the Pod Security Standards, as upstream's `pod-security-admission/policy`:
each looks at a pod's metadata and spec (`dict`s, as stored) and returns None when it allows
the pod, else a `Result` whose reason and detail are upstream's words, so that the messages
`lks.kube.podsecurity.policy` assembles from them read exactly as kube-apiserver's.

`CHECKS` lists them with their upstream IDs and levels, and their versions: `(minimum policy
minor, function, IDs of the baseline checks it overrides)`, oldest first. A restricted check
that overrides a baseline one (a stricter version of it) replaces it at the restricted level
from its version on. Upstream's registry orders results by ID, baseline before restricted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    reason: str
    detail: str = ""


CheckFn = Callable[[Obj, Obj], "Result | None"]
Version = tuple[int, CheckFn, tuple[str, ...]]  # (minimum policy minor, check, overridden baseline IDs)


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    level: str  # baseline | restricted
    versions: tuple[Version, ...]

    def at(self, minor: int) -> Version | None:
        """The version of the check a policy of 1.<minor> uses (None: none yet)."""
        chosen = None
        for version in self.versions:
            if version[0] <= minor:
                chosen = version
        return chosen


# -- helpers (upstream's helpers.go and visitor.go) -------------------------------------

def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _quote(items: Any) -> str:
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def _containers(spec: Obj) -> Iterator[Obj]:
    """Init containers, containers, then ephemeral containers, as upstream visits them."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _named(what: str, names: list[str]) -> str:
    return f"{_plural(what, what + 's', len(names))} {_quote(names)}"


def _setters(pod_bad: bool, containers: list[str]) -> list[str]:
    out = ["pod"] if pod_bad else []
    if containers:
        out.append(_named("container", containers))
    return out


def _windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _user_namespaced(spec: Obj) -> bool:
    """A pod in a user namespace (`hostUsers: false`): root inside is not root on the node."""
    return spec.get("hostUsers") is False


# -- baseline -----------------------------------------------------------------------------

def app_armor_profile(meta: Obj, spec: Obj) -> Result | None:
    def bad(profile: Any) -> bool:
        return isinstance(profile, dict) and profile.get("type") not in ("RuntimeDefault", "Localhost")

    pod_bad = bad(_sc(spec).get("appArmorProfile"))
    values = {_sc(spec)["appArmorProfile"].get("type") or ""} if pod_bad else set()
    containers = []
    for c in _containers(spec):
        profile = _sc(c).get("appArmorProfile")
        if bad(profile):
            containers.append(c.get("name", ""))
            values.add(profile.get("type") or "")
    setters = _setters(pod_bad, containers)
    annotations = sorted(f'{k}="{v}"' for k, v in (meta.get("annotations") or {}).items()
                         if k.startswith("container.apparmor.security.beta.kubernetes.io/")
                         and not (v == "" or v == "runtime/default" or v.startswith("localhost/")))
    listed = sorted(values) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return Result(_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(listed)),
                  f"{' and '.join(setters)} must not set AppArmor profile type to {_quote(listed)}")


def host_namespaces(_meta: Obj, spec: Obj) -> Result | None:
    used = sorted(k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True)
    return Result("host namespaces", ", ".join(used)) if used else None


def host_ports(_meta: Obj, spec: Obj) -> Result | None:
    containers, ports = [], set()
    for c in _containers(spec):
        found = {str(p["hostPort"]) for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")}
        if found:
            containers.append(c.get("name", ""))
            ports |= found
    if not containers:
        return None
    return Result("hostPort", f"{_named('container', containers)} {_plural('uses', 'use', len(containers))} "
                              f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")


def host_probes_and_lifecycle(_meta: Obj, spec: Obj) -> Result | None:
    containers, hosts = [], set()
    for c in _containers(spec):
        handlers = [c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(k) for k in ("postStart", "preStop")]
        found = {h[kind]["host"] for h in handlers if isinstance(h, dict) for kind in ("httpGet", "tcpSocket")
                 if isinstance(h.get(kind), dict) and h[kind].get("host")}
        if found:
            containers.append(c.get("name", ""))
            hosts |= found
    if not containers:
        return None
    names = sorted(set(containers))
    return Result("probe or lifecycle host",
                  f"{_named('container', names)} {_plural('uses', 'use', len(names))} "
                  f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {_quote(sorted(hosts))}")


def privileged(_meta: Obj, spec: Obj) -> Result | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    return Result("privileged", f"{_named('container', bad)} must not set securityContext.privileged=true") if bad \
        else None


def _proc_mount(spec: Obj, *, relax: bool) -> Result | None:
    if relax and _user_namespaced(spec):
        return None
    containers, kinds = [], set()
    for c in _containers(spec):
        mount = _sc(c).get("procMount")
        if mount is not None and mount != "Default":
            containers.append(c.get("name", ""))
            kinds.add(mount)
    if not containers:
        return None
    return Result("procMount", f"{_named('container', containers)} must not set securityContext.procMount to "
                               f"{_quote(sorted(kinds))}")


def proc_mount_1_0(_meta: Obj, spec: Obj) -> Result | None:
    return _proc_mount(spec, relax=False)


def proc_mount_1_35(_meta: Obj, spec: Obj) -> Result | None:
    return _proc_mount(spec, relax=True)


_SELINUX_TYPES_1_0 = {"", "container_t", "container_init_t", "container_kvm_t"}
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def se_linux_options_1_0(_meta: Obj, spec: Obj) -> Result | None:
    return _se_linux_options(spec, _SELINUX_TYPES_1_0)


def se_linux_options_1_31(_meta: Obj, spec: Obj) -> Result | None:
    return _se_linux_options(spec, _SELINUX_TYPES_1_31)


def _se_linux_options(spec: Obj, allowed: set[str]) -> Result | None:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(opts: Any) -> bool:
        if not isinstance(opts, dict):
            return True
        ok = True
        if (opts.get("type") or "") not in allowed:
            ok = False
            bad_types.add(opts["type"])
        for key in ("user", "role"):
            if opts.get(key):
                ok = False
                flags[key] = True
        return ok

    pod_bad = not valid(_sc(spec).get("seLinuxOptions"))
    containers = [c.get("name", "") for c in _containers(spec) if not valid(_sc(c).get("seLinuxOptions"))]
    setters = _setters(pod_bad, containers)
    if not setters:
        return None
    data = []
    if bad_types:  # upstream names user and role only beside a bad type
        data.append(f"{_plural('type', 'types', len(bad_types))} {_quote(sorted(bad_types))}")
        data += [f"{k} may not be set" for k in ("user", "role") if flags[k]]
    return Result("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: "
                                    f"{'; '.join(data)}")


_SYSCTLS_1_0 = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                                 "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(allowed: set[str]) -> CheckFn:
    def check(_meta: Obj, spec: Obj) -> Result | None:
        bad = [s.get("name", "") for s in _sc(spec).get("sysctls") or []
               if isinstance(s, dict) and s.get("name") not in allowed]
        return Result("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def windows_host_process(_meta: Obj, spec: Obj) -> Result | None:
    def on(obj: Obj) -> bool:
        return (_sc(obj).get("windowsOptions") or {}).get("hostProcess") is True

    setters = _setters(on(spec), [c.get("name", "") for c in _containers(spec) if on(c)])
    if not setters:
        return None
    return Result("hostProcess",
                  f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")


# -- baseline, overridden by a restricted check --------------------------------------------

_CAPABILITIES_1_0 = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                     "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def capabilities_baseline(_meta: Obj, spec: Obj) -> Result | None:
    containers, caps = [], set()
    for c in _containers(spec):
        added = {a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in _CAPABILITIES_1_0}
        if added:
            containers.append(c.get("name", ""))
            caps |= added
    if not containers:
        return None
    return Result("non-default capabilities", f"{_named('container', containers)} must not include "
                                              f"{_quote(sorted(caps))} in securityContext.capabilities.add")


def host_path_volumes(_meta: Obj, spec: Obj) -> Result | None:
    bad = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath") is not None]
    return Result("hostPath volumes", _named("volume", bad)) if bad else None


_SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"


def seccomp_baseline_1_0(meta: Obj, spec: Obj) -> Result | None:
    annotations = meta.get("annotations") or {}

    def valid(v: str) -> bool:
        return v in ("runtime/default", "docker/default") or v.startswith("localhost/")

    keys = [_SECCOMP_POD] + [_SECCOMP_CONTAINER + c.get("name", "") for c in _containers(spec)]
    bad = sorted({f'{k}="{annotations[k]}"' for k in keys if k in annotations and not valid(annotations[k])})
    return Result("seccompProfile", f"forbidden {_plural('annotation', 'annotations', len(bad))} "
                                    f"{', '.join(bad)}") if bad else None


def _seccomp_type(obj: Obj) -> Any:
    profile = _sc(obj).get("seccompProfile")
    return profile.get("type") if isinstance(profile, dict) else None


def _valid_seccomp(t: Any) -> bool:
    return t in ("RuntimeDefault", "Localhost")


def seccomp_baseline_1_19(_meta: Obj, spec: Obj) -> Result | None:
    values, containers = set(), []
    pod_bad = isinstance(_sc(spec).get("seccompProfile"), dict) and not _valid_seccomp(_seccomp_type(spec))
    if pod_bad:
        values.add(_seccomp_type(spec) or "")
    for c in _containers(spec):
        if isinstance(_sc(c).get("seccompProfile"), dict) and not _valid_seccomp(_seccomp_type(c)):
            containers.append(c.get("name", ""))
            values.add(_seccomp_type(c) or "")
    setters = _setters(pod_bad, containers)
    if not setters:
        return None
    return Result("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                                    f"{_quote(sorted(values))}")


# -- restricted -----------------------------------------------------------------------------

def _allow_privilege_escalation(spec: Obj) -> Result | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    return Result("allowPrivilegeEscalation != false",
                  f"{_named('container', bad)} must set securityContext.allowPrivilegeEscalation=false") if bad \
        else None


def allow_privilege_escalation_1_8(_meta: Obj, spec: Obj) -> Result | None:
    return _allow_privilege_escalation(spec)


def allow_privilege_escalation_1_25(_meta: Obj, spec: Obj) -> Result | None:
    return None if _windows(spec) else _allow_privilege_escalation(spec)


def _capabilities_restricted(spec: Obj) -> Result | None:
    missing, adding, caps = [], [], set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not isinstance(capabilities, dict):
            missing.append(c.get("name", ""))
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing.append(c.get("name", ""))
        added = {a for a in capabilities.get("add") or [] if a != "NET_BIND_SERVICE"}
        if added:
            adding.append(c.get("name", ""))
            caps |= added
    details = []
    if missing:
        details.append(f'{_named("container", missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named('container', adding)} must not include {_quote(sorted(caps))} in "
                       "securityContext.capabilities.add")
    return Result("unrestricted capabilities", "; ".join(details)) if details else None


def capabilities_restricted_1_22(_meta: Obj, spec: Obj) -> Result | None:
    return _capabilities_restricted(spec)


def capabilities_restricted_1_25(_meta: Obj, spec: Obj) -> Result | None:
    return None if _windows(spec) else _capabilities_restricted(spec)


_ALLOWED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
                    "projected", "secret")
_VOLUME_SOURCES = ("hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
                   "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
                   "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
                   "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
                   "image")


def restricted_volumes(_meta: Obj, spec: Obj) -> Result | None:
    names, kinds = [], set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        source = next((k for k in _VOLUME_SOURCES if v.get(k) is not None), None)
        if source in _ALLOWED_VOLUMES:
            continue
        names.append(v.get("name", ""))
        kinds.add(source or "unknown")
    if not names:
        return None
    return Result("restricted volume types",
                  f"{_named('volume', names)} {_plural('uses', 'use', len(names))} "
                  f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} {_quote(sorted(kinds))}")


def _run_as_non_root(spec: Obj, *, relax: bool) -> Result | None:
    if relax and _user_namespaced(spec):
        return None
    pod_value = _sc(spec).get("runAsNonRoot")
    pod_bad, pod_ok = pod_value is False, pod_value is True
    explicit, implicit = [], []
    for c in _containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is not None:
            if value is False:
                explicit.append(c.get("name", ""))
        elif not pod_ok:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return Result("runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return Result("runAsNonRoot != true",
                      f"pod or {_named('container', implicit)} must set securityContext.runAsNonRoot=true")
    return None


def run_as_non_root_1_0(_meta: Obj, spec: Obj) -> Result | None:
    return _run_as_non_root(spec, relax=False)


def run_as_non_root_1_35(_meta: Obj, spec: Obj) -> Result | None:
    return _run_as_non_root(spec, relax=True)


def _run_as_user(spec: Obj, *, relax: bool) -> Result | None:
    if relax and _user_namespaced(spec):
        return None
    setters = _setters(_sc(spec).get("runAsUser") == 0,
                       [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0])
    return Result("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def run_as_user_1_23(_meta: Obj, spec: Obj) -> Result | None:
    return _run_as_user(spec, relax=False)


def run_as_user_1_35(_meta: Obj, spec: Obj) -> Result | None:
    return _run_as_user(spec, relax=True)


def _seccomp_restricted(spec: Obj) -> Result | None:
    values, explicit, implicit = set(), [], []
    pod_set = isinstance(_sc(spec).get("seccompProfile"), dict)
    pod_bad = pod_set and not _valid_seccomp(_seccomp_type(spec))
    if pod_bad:
        values.add(_seccomp_type(spec) or "")
    for c in _containers(spec):
        if isinstance(_sc(c).get("seccompProfile"), dict):
            if not _valid_seccomp(_seccomp_type(c)):
                explicit.append(c.get("name", ""))
                values.add(_seccomp_type(c) or "")
        elif not (pod_set and not pod_bad):
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return Result("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                        f"to {_quote(sorted(values))}")
    if implicit:
        return Result("seccompProfile", f"pod or {_named('container', implicit)} must set "
                                        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


def seccomp_restricted_1_19(_meta: Obj, spec: Obj) -> Result | None:
    return _seccomp_restricted(spec)


def seccomp_restricted_1_25(_meta: Obj, spec: Obj) -> Result | None:
    return None if _windows(spec) else _seccomp_restricted(spec)


BASELINE, RESTRICTED = "baseline", "restricted"


def _v(since: int, fn: CheckFn, *overrides: str) -> Version:
    return (since, fn, overrides)


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", BASELINE, (_v(0, app_armor_profile),)),
    Check("capabilities_baseline", BASELINE, (_v(0, capabilities_baseline),)),
    Check("hostNamespaces", BASELINE, (_v(0, host_namespaces),)),
    Check("hostPathVolumes", BASELINE, (_v(0, host_path_volumes),)),
    Check("hostPorts", BASELINE, (_v(0, host_ports),)),
    Check("hostProbesAndHostLifecycle", BASELINE, (_v(34, host_probes_and_lifecycle),)),
    Check("privileged", BASELINE, (_v(0, privileged),)),
    Check("procMount", BASELINE, (_v(0, proc_mount_1_0), _v(35, proc_mount_1_35))),
    Check("seLinuxOptions", BASELINE, (_v(0, se_linux_options_1_0), _v(31, se_linux_options_1_31))),
    Check("seccompProfile_baseline", BASELINE, (_v(0, seccomp_baseline_1_0), _v(19, seccomp_baseline_1_19))),
    Check("sysctls", BASELINE, (_v(0, _sysctls(_SYSCTLS_1_0)), _v(27, _sysctls(_SYSCTLS_1_27)),
                                _v(29, _sysctls(_SYSCTLS_1_29)), _v(32, _sysctls(_SYSCTLS_1_32)),
                                _v(37, _sysctls(_SYSCTLS_1_37)))),
    Check("windowsHostProcess", BASELINE, (_v(0, windows_host_process),)),
    Check("allowPrivilegeEscalation", RESTRICTED,
          (_v(8, allow_privilege_escalation_1_8), _v(25, allow_privilege_escalation_1_25))),
    Check("capabilities_restricted", RESTRICTED,
          (_v(22, capabilities_restricted_1_22, "capabilities_baseline"),
           _v(25, capabilities_restricted_1_25, "capabilities_baseline"))),
    Check("procMount_restricted", RESTRICTED, (_v(35, proc_mount_1_0, "procMount"),)),
    Check("restrictedVolumes", RESTRICTED, (_v(0, restricted_volumes, "hostPathVolumes"),)),
    Check("runAsNonRoot", RESTRICTED, (_v(0, run_as_non_root_1_0), _v(35, run_as_non_root_1_35))),
    Check("runAsUser", RESTRICTED, (_v(23, run_as_user_1_23), _v(35, run_as_user_1_35))),
    Check("seccompProfile_restricted", RESTRICTED,
          (_v(19, seccomp_restricted_1_19, "seccompProfile_baseline"),
           _v(25, seccomp_restricted_1_25, "seccompProfile_baseline"))),
)
# the newest policy version any check knows; later versions (and "latest") evaluate as it
MAX_MINOR = max(v[0] for c in CHECKS for v in c.versions)
