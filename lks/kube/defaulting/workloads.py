"""Defaults of the workload kinds: apps/v1, batch/v1 and autoscaling (`pkg/apis/{apps,batch,
autoscaling}/<version>/defaults.go`), each also defaulting its pod template through `pods`.

A Job also gets what the Job strategy's `PrepareForCreate` adds once the registry has given it
a uid: the generated selector and the four labels it selects on (before that, a Job gets
neither, nor the labels copied from its template, which upstream copies with them). Feature-gated defaults follow
1.36's gate defaults: MaxUnavailableStatefulSet (beta, on since 1.35) adds a StatefulSet's
`maxUnavailable: 1`; JobPodReplacementPolicy and StatefulSetAutoDeletePVC are GA.
"""

from __future__ import annotations

from lks.kube.defaulting import core, pods
from lks.kube.defaulting._json import Obj, child, children, default, default_zero, is_zero, struct

_MAX_INT32 = 2**31 - 1
_CONTROLLER_UID = ("controller-uid", "batch.kubernetes.io/controller-uid")
_JOB_NAME = ("job-name", "batch.kubernetes.io/job-name")
_DEFAULT_CPU_UTILIZATION = 80


def deployment(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default(spec, "replicas", 1)
    strategy = struct(spec, "strategy")
    default_zero(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = struct(strategy, "rollingUpdate")
        default(rolling, "maxUnavailable", "25%")
        default(rolling, "maxSurge", "25%")
    default(spec, "revisionHistoryLimit", 10)
    default(spec, "progressDeadlineSeconds", 600)
    pods.template(struct(spec, "template"))


def replica_set(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default(spec, "replicas", 1)
    pods.template(struct(spec, "template"))


def stateful_set(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default_zero(spec, "podManagementPolicy", "OrderedReady")
    strategy = struct(spec, "updateStrategy")
    if is_zero(strategy.get("type")):
        strategy["type"] = "RollingUpdate"
        default(strategy, "rollingUpdate", {})
    # an explicit RollingUpdate without rollingUpdate keeps it nil
    if strategy["type"] == "RollingUpdate" and (rolling := child(strategy, "rollingUpdate")) is not None:
        default(rolling, "partition", 0)
        default(rolling, "maxUnavailable", 1)
    retention = struct(spec, "persistentVolumeClaimRetentionPolicy")
    default_zero(retention, "whenDeleted", "Retain")
    default_zero(retention, "whenScaled", "Retain")
    default(spec, "replicas", 1)
    default(spec, "revisionHistoryLimit", 10)
    pods.template(struct(spec, "template"))
    for claim in children(spec, "volumeClaimTemplates"):
        core.persistent_volume_claim(claim)


def daemon_set(obj: Obj) -> None:
    spec = struct(obj, "spec")
    strategy = struct(spec, "updateStrategy")
    default_zero(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = struct(strategy, "rollingUpdate")
        default(rolling, "maxUnavailable", 1)
        default(rolling, "maxSurge", 0)
    default(spec, "revisionHistoryLimit", 10)
    pods.template(struct(spec, "template"))


def job(obj: Obj) -> None:
    spec = struct(obj, "spec")
    # a non-parallel Job may leave both unset; completions stays nil once parallelism is set
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    default(spec, "parallelism", 1)
    default(spec, "backoffLimit", 6 if spec.get("backoffLimitPerIndex") is None else _MAX_INT32)
    default(spec, "completionMode", "NonIndexed")
    default(spec, "suspend", False)
    default(spec, "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") is not None
            else "TerminatingOrFailed")
    default(spec, "manualSelector", False)
    _job_spec(spec)
    template = struct(spec, "template")
    if spec["manualSelector"] is not True:
        if not (child(obj, "metadata") or {}).get("uid"):
            return  # the selector needs the uid the registry assigns; so does the label copy below
        _generate_selector(obj, spec, template)
    # upstream copies (aliases, in fact) the template's labels when the Job has none, and
    # the strategy's generated labels then show in both; copying after generating does that
    metadata = struct(obj, "metadata")
    template_labels = child(child(template, "metadata"), "labels")
    if template_labels is not None and not metadata.get("labels"):
        metadata["labels"] = dict(template_labels)


def _job_spec(spec: Obj) -> None:
    """The type-level defaults a JobSpec gets in a Job and in a CronJob's job template."""
    for rule in children(child(spec, "podFailurePolicy"), "rules"):
        for pattern in children(rule, "onPodConditions"):
            default_zero(pattern, "status", "True")
    pods.template(struct(spec, "template"))


def _generate_selector(obj: Obj, spec: Obj, template: Obj) -> None:
    """The Job strategy's `generateSelector`: select on the Job's uid. A client-chosen label
    is kept (validation then reports a conflict)."""
    metadata = child(obj, "metadata") or {}
    labels = struct(struct(template, "metadata"), "labels")
    for key in _JOB_NAME:
        labels.setdefault(key, metadata.get("name"))
    for key in _CONTROLLER_UID:
        labels.setdefault(key, metadata["uid"])
    struct(struct(spec, "selector"), "matchLabels").setdefault(_CONTROLLER_UID[1], metadata["uid"])


def cron_job(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default_zero(spec, "concurrencyPolicy", "Allow")
    default(spec, "suspend", False)
    default(spec, "successfulJobsHistoryLimit", 3)
    default(spec, "failedJobsHistoryLimit", 1)
    # SetDefaults_Job is for Job objects only: the template's JobSpec gets just nested defaults
    _job_spec(struct(struct(spec, "jobTemplate"), "spec"))


def horizontal_pod_autoscaler_v2(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default(spec, "minReplicas", 1)
    if is_zero(spec.get("metrics")):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": _DEFAULT_CPU_UTILIZATION},
        }}]
    # a behavior, once given, is filled in completely (except scaleDown's stabilization window,
    # which the controller takes from its command line)
    if (behavior := child(spec, "behavior")) is not None:
        behavior["scaleUp"] = _scaling_rules(child(behavior, "scaleUp"), {
            "stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ]})
        behavior["scaleDown"] = _scaling_rules(child(behavior, "scaleDown"), {
            "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        })


def _scaling_rules(given: Obj | None, defaults: Obj) -> Obj:
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance"):
        if given is not None and given.get(key) is not None:
            defaults[key] = given[key]
    return defaults


def horizontal_pod_autoscaler_v1(obj: Obj) -> None:
    spec = struct(obj, "spec")
    default(spec, "minReplicas", 1)
    # upstream defaults the 80% CPU target in the v1 conversion, which also sees the other
    # metrics a v1 object carries in its annotation: only an HPA with none gets it
    annotations = child(child(obj, "metadata"), "annotations") or {}
    if not annotations.get("autoscaling.alpha.kubernetes.io/metrics"):
        default(spec, "targetCPUUtilizationPercentage", _DEFAULT_CPU_UTILIZATION)


DEFAULTERS = {
    ("apps", "v1", "Deployment"): deployment,
    ("apps", "v1", "ReplicaSet"): replica_set,
    ("apps", "v1", "StatefulSet"): stateful_set,
    ("apps", "v1", "DaemonSet"): daemon_set,
    ("batch", "v1", "Job"): job,
    ("batch", "v1", "CronJob"): cron_job,
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): horizontal_pod_autoscaler_v2,
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): horizontal_pod_autoscaler_v1,
}
