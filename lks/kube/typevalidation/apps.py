"""Workload rules of upstream's `pkg/apis/apps/validation/validation.go` (apps/v1): Deployment,
ReplicaSet, StatefulSet and DaemonSet, plus the selector immutability their apps/v1 strategies
add on update.

Like upstream, a StatefulSet's pod template is checked only for its labels and annotations, not
as a pod spec. An absent defaulted field reads as its default (strategy RollingUpdate with 25%
surge and unavailability, podManagementPolicy OrderedReady, ...).
"""

from __future__ import annotations

from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field, pod
from lks.kube.typevalidation.common import (
    IMMUTABLE,
    get,
    int_or_percent_value,
    label_selector,
    label_selector_value,
    labels,
    mapping,
    nonnegative,
    not_more_than_100_percent,
    positive_int_or_percent,
    selector_matches,
)

SELECTOR_MISMATCH = "`selector` does not match template `labels`"


def _selector(spec: dict, word: str) -> list[Cause]:
    """A required, valid, non-empty `spec.selector` ("empty selector is invalid for <word>")."""
    sel = spec.get("selector")
    if sel is None:
        return [field.required("spec.selector")]
    causes = label_selector(sel, "spec.selector")
    if isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
        causes.append(field.invalid("spec.selector", label_selector_value(sel), f"empty selector is invalid for {word}"))
    return causes


def _template_labels(spec: dict) -> dict | None:
    return get(spec, "template", "metadata", "labels")


def _selector_matches_template(spec: dict, bad_selector: str) -> tuple[bool, list[Cause]]:
    """(whether the template may be validated, the selector/labels mismatch errors)."""
    sel = spec.get("selector")
    matched = selector_matches(sel, _template_labels(spec))
    if matched is None:
        return False, [field.invalid("spec.selector", label_selector_value(sel), bad_selector)]
    empty = isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions")
    if not matched and not empty:
        return True, [field.invalid("spec.template.metadata.labels", _template_labels(spec), SELECTOR_MISMATCH)]
    return True, []


def _always_restart(spec: dict, owner: str) -> list[Cause]:
    tspec = mapping(spec, "template", "spec")
    causes: list[Cause] = []
    restart = tspec.get("restartPolicy") or "Always"
    if restart != "Always":
        causes.append(field.not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        causes.append(field.forbidden("spec.template.spec.activeDeadlineSeconds",
                                      f"activeDeadlineSeconds in {owner} is not Supported"))
    return causes


def _replica_set_spec(spec: dict, word: str) -> list[Cause]:
    """`ValidateReplicaSetSpec` and the shared part of `ValidateDeploymentSpec`."""
    causes = nonnegative(spec.get("replicas"), "spec.replicas")
    if word == "replicaset":  # a ReplicaSet checks minReadySeconds first, a Deployment last
        causes += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += _selector(spec, "deployment")  # sic: ReplicaSets say "deployment" too
    ok, errs = _selector_matches_template(spec, "invalid label selector")
    causes += errs
    if ok:
        causes += pod.pod_template_spec(spec.get("template"), "spec.template")
        causes += _always_restart(spec, "ReplicaSet")
    return causes


def _strategy_value(strategy: dict) -> field.GoStruct:
    """An internal `apps.DeploymentStrategy` as upstream's message shows it."""
    ru = strategy.get("rollingUpdate")
    shown = None if not isinstance(ru, dict) else field.GoStruct(MaxUnavailable=ru.get("maxUnavailable", 0),
                                                                 MaxSurge=ru.get("maxSurge", 0))
    return field.GoStruct(Type=strategy.get("type", ""), RollingUpdate=shown)


def validate_deployment(obj: dict) -> list[Cause]:
    """`ValidateDeploymentSpec`."""
    spec = mapping(obj, "spec")
    causes = _replica_set_spec(spec, "deployment")
    strategy = mapping(spec, "strategy")
    kind = strategy.get("type") or "RollingUpdate"
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            causes.append(field.forbidden("spec.strategy.rollingUpdate",
                                          "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        ru = mapping(strategy, "rollingUpdate")
        p = "spec.strategy.rollingUpdate"
        unavailable, surge = ru.get("maxUnavailable", "25%"), ru.get("maxSurge", "25%")
        causes += positive_int_or_percent(unavailable, f"{p}.maxUnavailable")
        causes += positive_int_or_percent(surge, f"{p}.maxSurge")
        if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
            causes.append(field.invalid(f"{p}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"))
        causes += not_more_than_100_percent(unavailable, f"{p}.maxUnavailable")
    else:
        causes.append(field.not_supported("spec.strategy", _strategy_value(strategy), ["Recreate", "RollingUpdate"]))
    causes += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += nonnegative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(field.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return causes


def _selector_immutable(new: dict, old: dict) -> list[Cause]:
    """apps/v1 strategies forbid changing a selector (`ValidateImmutableField`)."""
    sel, old_sel = get(new, "spec", "selector"), get(old, "spec", "selector")
    if label_selector_value(sel) != label_selector_value(old_sel):
        return [field.invalid("spec.selector", label_selector_value(sel), IMMUTABLE)]
    return []


def validate_deployment_update(new: dict, old: dict) -> list[Cause]:
    return validate_deployment(new) + _selector_immutable(new, old)


def validate_replica_set(obj: dict) -> list[Cause]:
    return _replica_set_spec(mapping(obj, "spec"), "replicaset")


def validate_replica_set_update(new: dict, old: dict) -> list[Cause]:
    return validate_replica_set(new) + _selector_immutable(new, old)


def validate_stateful_set(obj: dict) -> list[Cause]:
    """`ValidateStatefulSetSpec`."""
    spec = mapping(obj, "spec")
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy") or "OrderedReady"
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(field.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = mapping(spec, "updateStrategy")
    kind = strategy.get("type") or "RollingUpdate"
    ru = strategy.get("rollingUpdate")
    p = "spec.updateStrategy.rollingUpdate"
    if kind == "OnDelete":
        if ru is not None:
            causes.append(field.invalid(p, _sts_rolling_value(ru), "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        if isinstance(ru, dict):
            causes += nonnegative(ru.get("partition"), f"{p}.partition")
            unavailable = ru.get("maxUnavailable")
            if unavailable is not None:
                causes += positive_int_or_percent(unavailable, f"{p}.maxUnavailable")
                if int_or_percent_value(unavailable) == 0:
                    causes.append(field.invalid(f"{p}.maxUnavailable", unavailable, "cannot be 0"))
                causes += not_more_than_100_percent(unavailable, f"{p}.maxUnavailable")
    else:
        shown = field.GoStruct(Type=kind, RollingUpdate=_sts_rolling_value(ru) if ru is not None else None)
        causes.append(field.invalid("spec.updateStrategy", shown, "must be 'RollingUpdate' or 'OnDelete'"))
    for when in ("whenDeleted", "whenScaled"):
        value = get(spec, "persistentVolumeClaimRetentionPolicy", when)
        if isinstance(spec.get("persistentVolumeClaimRetentionPolicy"), dict) and (value or "Retain") not in \
                ("Retain", "Delete"):
            causes.append(field.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{when}", value,
                                              ["Retain", "Delete"]))
    causes += nonnegative(spec.get("replicas"), "spec.replicas")
    causes += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += nonnegative(get(spec, "ordinals", "start"), "spec.ordinals.start")
    causes += _selector(spec, "statefulset")
    ok, errs = _selector_matches_template(spec, "")
    causes += errs
    if ok:  # upstream checks only the template's metadata here (a long-standing TODO)
        meta = mapping(spec, "template", "metadata")
        causes += labels(meta.get("labels"), "spec.template.labels")
        causes += validation.validate_annotations(meta.get("annotations"), "spec.template.annotations")
    return causes + _always_restart(spec, "StatefulSet")


def _sts_rolling_value(ru: Any) -> Any:
    if not isinstance(ru, dict):
        return ru
    return field.GoStruct(Partition=ru.get("partition", 0), MaxUnavailable=ru.get("maxUnavailable"))


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")
_STS_DEFAULTS = {"podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10}


def validate_stateful_set_update(new: dict, old: dict) -> list[Cause]:
    causes = validate_stateful_set(new)
    def fixed(obj: dict) -> dict:
        spec = {**_STS_DEFAULTS, **mapping(obj, "spec")}
        return {k: v for k, v in spec.items() if k not in _STS_MUTABLE and v not in (None, [], {}, "")}
    if fixed(new) != fixed(old):
        causes.append(field.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                                              "'ordinals', 'template', 'updateStrategy', "
                                              "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                                              "forbidden"))
    return causes


def validate_daemon_set(obj: dict) -> list[Cause]:
    """`ValidateDaemonSetSpec`."""
    spec = mapping(obj, "spec")
    sel = spec.get("selector")
    causes = label_selector(sel, "spec.selector")
    if selector_matches(sel, _template_labels(spec)) is False:
        causes.append(field.invalid("spec.template.metadata.labels", _template_labels(spec), SELECTOR_MISMATCH))
    if isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
        causes.append(field.invalid("spec.selector", label_selector_value(sel), "empty selector is invalid for daemonset"))
    causes += pod.pod_template_spec(spec.get("template"), "spec.template")
    causes += _always_restart(spec, "DaemonSet")
    causes += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    strategy = mapping(spec, "updateStrategy")
    kind = strategy.get("type") or "RollingUpdate"
    if kind == "RollingUpdate":
        # defaulting always fills rollingUpdate, so upstream's Required never fires
        causes += _daemon_set_rolling_update(mapping(strategy, "rollingUpdate"), "spec.updateStrategy.rollingUpdate")
    elif kind != "OnDelete":
        ru = strategy.get("rollingUpdate")
        shown = field.GoStruct(Type=kind, RollingUpdate=None if not isinstance(ru, dict) else field.GoStruct(
            MaxUnavailable=ru.get("maxUnavailable", 0), MaxSurge=ru.get("maxSurge", 0)))
        causes.append(field.not_supported("spec.updateStrategy", shown, ["RollingUpdate", "OnDelete"]))
    return causes + nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")


def _daemon_set_rolling_update(ru: dict, path: str) -> list[Cause]:
    """`ValidateRollingUpdateDaemonSet` (defaults: maxUnavailable 1, maxSurge 0)."""
    unavailable, surge = ru.get("maxUnavailable", 1), ru.get("maxSurge", 0)
    causes = positive_int_or_percent(unavailable, f"{path}.maxUnavailable")
    causes += positive_int_or_percent(surge, f"{path}.maxSurge")
    causes += not_more_than_100_percent(unavailable, f"{path}.maxUnavailable")
    causes += not_more_than_100_percent(surge, f"{path}.maxSurge")
    has_unavailable, has_surge = int_or_percent_value(unavailable) != 0, int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        causes.append(field.invalid(f"{path}.maxSurge", surge, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        causes.append(field.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return causes


def validate_daemon_set_update(new: dict, old: dict) -> list[Cause]:
    return validate_daemon_set(new) + _selector_immutable(new, old)


# --- ReplicationController (core/v1, ReplicaSet's predecessor) and ControllerRevision ---------

def validate_replication_controller(obj: dict) -> list[Cause]:
    """`ValidateReplicationControllerSpec`: a map selector that must not be empty and must match
    the (optional) template, which must restart Always."""
    spec = mapping(obj, "spec")
    causes = nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector = mapping(spec, "selector")
    if not selector:
        causes.append(field.required("spec.selector"))
    causes += nonnegative(spec.get("replicas"), "spec.replicas")
    template = spec.get("template")
    if not isinstance(template, dict):
        return causes + [field.required("spec.template")]
    template_labels = get(template, "metadata", "labels")
    if selector and any((template_labels or {}).get(k) != v for k, v in selector.items()):
        causes.append(field.invalid("spec.template.metadata.labels", template_labels, SELECTOR_MISMATCH))
    causes += pod.pod_template_spec(template, "spec.template")
    return causes + _always_restart(spec, "ReplicationController")


def validate_controller_revision(obj: dict) -> list[Cause]:
    causes = [] if obj.get("data") is not None else [field.required("data", "data is mandatory")]
    return causes + nonnegative(obj.get("revision", 0), "revision")


def validate_controller_revision_update(new: dict, old: dict) -> list[Cause]:
    causes = validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        causes.append(field.invalid("data", new.get("data"), IMMUTABLE))
    return causes
