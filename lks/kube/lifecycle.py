"""The lifecycle of Kubernetes' prerelease API versions: when each was deprecated, when it stops
being served, and what replaces it (upstream's `APILifecycleDeprecated`, `APILifecycleRemoved`
and `APILifecycleReplacement` of `k8s.io/api/<group>/<version>/zz_generated.prerelease-lifecycle.go`).

The API server answers every request to a deprecated version with upstream's warning
(`lks.kube.http.app`, one `Warning: 299` header, the text of `deprecation.go`'s `getMessage`),
records the writes to a version a later minor removes (`lks.kube.apiusage`), and the upgrade
subsystem (`lks.upgrade.apis`) refuses a control-plane upgrade across a removal still in use.
Which versions a minor serves is the catalog's business (`lks.kube.catalog`); this table only
says when they were meant to go. It lists the versions served by default in some minor from 1.25
on (betas were on by default until KEP-3136; flowcontrol's v1beta3 was the last of them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lifecycle:
    group: str
    version: str
    kind: str
    deprecated: tuple[int, int]  # (major, minor) from which the version is deprecated
    removed: tuple[int, int]  # first minor that no longer serves it
    replacement: tuple[str, str, str] | None  # (group, version, kind) to use instead; None: nothing

    @property
    def gv(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _entry(gv: str, resource: str, kind: str, deprecated: str, removed: str, replacement: str | None) -> tuple:
    group, _, version = gv.rpartition("/")
    dep = tuple(int(p) for p in deprecated.split("."))
    rem = tuple(int(p) for p in removed.split("."))
    rep = None
    if replacement:
        rgv, rkind = replacement.split(" ")
        rgroup, _, rversion = rgv.rpartition("/")
        rep = (rgroup, rversion, rkind)
    return (group, version, resource), Lifecycle(group, version, kind, dep, rem, rep)  # type: ignore[arg-type]


# (group, version, resource) -> its lifecycle; from the generated files of each release
TABLE: dict[tuple[str, str, str], Lifecycle] = dict(_entry(*row) for row in (
    ("batch/v1beta1", "cronjobs", "CronJob", "1.21", "1.25", "batch/v1 CronJob"),
    ("discovery.k8s.io/v1beta1", "endpointslices", "EndpointSlice", "1.21", "1.25", "discovery.k8s.io/v1 EndpointSlice"),
    ("events.k8s.io/v1beta1", "events", "Event", "1.22", "1.25", "events.k8s.io/v1 Event"),
    ("autoscaling/v2beta1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "1.22", "1.25",
     "autoscaling/v2 HorizontalPodAutoscaler"),
    ("policy/v1beta1", "poddisruptionbudgets", "PodDisruptionBudget", "1.22", "1.25", "policy/v1 PodDisruptionBudget"),
    ("policy/v1beta1", "podsecuritypolicies", "PodSecurityPolicy", "1.21", "1.25", None),
    ("node.k8s.io/v1beta1", "runtimeclasses", "RuntimeClass", "1.22", "1.25", "node.k8s.io/v1 RuntimeClass"),
    ("autoscaling/v2beta2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "1.23", "1.26",
     "autoscaling/v2 HorizontalPodAutoscaler"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "flowschemas", "FlowSchema", "1.23", "1.26",
     "flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "prioritylevelconfigurations", "PriorityLevelConfiguration", "1.23",
     "1.26", "flowcontrol.apiserver.k8s.io/v1beta2 PriorityLevelConfiguration"),
    ("storage.k8s.io/v1beta1", "csistoragecapacities", "CSIStorageCapacity", "1.24", "1.27",
     "storage.k8s.io/v1 CSIStorageCapacity"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "flowschemas", "FlowSchema", "1.26", "1.29",
     "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "prioritylevelconfigurations", "PriorityLevelConfiguration", "1.26",
     "1.29", "flowcontrol.apiserver.k8s.io/v1beta3 PriorityLevelConfiguration"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "flowschemas", "FlowSchema", "1.29", "1.32",
     "flowcontrol.apiserver.k8s.io/v1 FlowSchema"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "prioritylevelconfigurations", "PriorityLevelConfiguration", "1.29",
     "1.32", "flowcontrol.apiserver.k8s.io/v1 PriorityLevelConfiguration"),
))


def minor_key(minor: str) -> tuple[int, int]:
    """(1, 31) for "1.31" or "1.31.4"."""
    major, minor_, *_ = minor.split(".")
    return int(major), int(minor_)


def lookup(group: str, version: str, resource: str) -> Lifecycle | None:
    return TABLE.get((group, version, resource))


def warning(group: str, version: str, resource: str, serving: str) -> str | None:
    """Upstream's deprecation warning for a request to this version on an API server of minor
    `serving`, or None when the version is not deprecated there (upstream's `IsDeprecated`:
    deprecated from its deprecation minor on, or once past its removal)."""
    life = TABLE.get((group, version, resource))
    if life is None or minor_key(serving) < life.deprecated:
        return None
    text = f"{life.gv} {life.kind} is deprecated in v{life.deprecated[0]}.{life.deprecated[1]}+, " \
           f"unavailable in v{life.removed[0]}.{life.removed[1]}+"
    if life.replacement is not None:
        group_, version_, kind = life.replacement
        text += f"; use {group_ + '/' if group_ else ''}{version_} {kind}"
    return text


def removed_between(current: str, target: str) -> list[tuple[tuple[str, str, str], Lifecycle]]:
    """The versions an upgrade from minor `current` to minor `target` stops serving: removed
    after `current`, at or before `target`."""
    cur, tgt = minor_key(current), minor_key(target)
    return [(gvr, life) for gvr, life in TABLE.items() if cur < life.removed <= tgt]
