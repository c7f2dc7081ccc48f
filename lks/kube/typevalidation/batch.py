"""Job and CronJob rules of upstream's `pkg/apis/batch/validation/validation.go` (batch/v1).

A Job's selector and pod labels are generated before validation (upstream's `generateSelector`,
here part of ``lks.kube.defaulting``); `validate_job` checks the result as upstream does. A
CronJob's schedule is parsed by `cron.py`.
"""

from __future__ import annotations

import re
from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import cron, field, pod
from lks.kube.typevalidation.common import (
    IMMUTABLE,
    get,
    label_selector,
    label_selector_value,
    mapping,
    nonnegative,
    selector_matches,
)

_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name")
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def _has_label(meta: dict, key: str, expected: str) -> list[Cause]:
    """`ValidateHasLabel`."""
    lbls = mapping(meta, "labels")
    path = f"spec.template.metadata.labels[{key}]"
    if key not in lbls:
        return [field.required(path, f"must be '{expected}'")]
    if lbls[key] != expected:
        return [field.invalid(path, lbls, f"must be '{expected}'")]
    return []


def _generated_selector(job: dict) -> list[Cause]:
    """`validateGeneratedSelector`."""
    spec = mapping(job, "spec")
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    uid, name = get(job, "metadata", "uid", default=""), get(job, "metadata", "name", default="")
    causes = [] if uid else [field.required("metadata.uid")]
    meta = mapping(spec, "template", "metadata")
    for key, value in (("controller-uid", uid), ("job-name", name), ("batch.kubernetes.io/controller-uid", uid),
                       ("batch.kubernetes.io/job-name", name)):
        causes += _has_label(meta, key, value)
    expected = dict(zip(_LABELS, (uid, name, uid, name), strict=True))
    if selector_matches(spec["selector"], expected) is False:
        causes.append(field.invalid("spec.selector", label_selector_value(spec["selector"]),
                                    "`selector` not auto-generated"))
    return causes


def _job_spec(spec: dict, path: str) -> list[Cause]:
    """`validateJobSpec` (also the spec of a CronJob's job template)."""
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                "backoffLimitPerIndex", "maxFailedIndexes"):
        causes += nonnegative(spec.get(key), f"{path}.{key}")
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        causes.append(field.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        causes.append(field.not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        causes.append(field.required(f"{path}.completions", "when completion mode is Indexed"))
    if mode != "Indexed":
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                causes.append(field.invalid(f"{path}.{key}", spec[key], "requires indexed completion mode"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ["Failed"] if spec.get("podFailurePolicy") is not None else ["Failed", "TerminatingOrFailed"]
        if replacement not in allowed:
            causes.append(field.not_supported(f"{path}.podReplacementPolicy", replacement, allowed))
    causes += pod.pod_template_spec(spec.get("template"), f"{path}.template")
    restart = get(spec, "template", "spec", "restartPolicy", default="")
    rp = f"{path}.template.spec.restartPolicy"
    if restart in ("Always", ""):  # "" is defaulted to Always, which a Job cannot use
        causes.append(field.required(rp, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        causes.append(field.not_supported(rp, restart, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(field.invalid(rp, restart, 'only "Never" is supported when podFailurePolicy is specified'))
    return causes


def _job_selector(spec: dict) -> list[Cause]:
    """The selector part of `ValidateJobSpec`."""
    sel = spec.get("selector")
    causes = [field.required("spec.selector")] if sel is None else label_selector(sel, "spec.selector")
    tlabels = get(spec, "template", "metadata", "labels")
    if sel is not None and selector_matches(sel, tlabels) is False:
        causes.append(field.invalid("spec.template.metadata.labels", tlabels,
                                    "`selector` does not match template `labels`"))
    return causes


def validate_job(obj: dict) -> list[Cause]:
    """`ValidateJob` (after `generate_selector`)."""
    spec = mapping(obj, "spec")
    causes = _generated_selector(obj) + _job_spec(spec, "spec") + _job_selector(spec)
    completions, name = spec.get("completions"), get(obj, "metadata", "name", default="")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        host = f"{name}-{completions - 1}"
        if validation.dns_label(host):
            causes.append(field.invalid("metadata.name", name,
                                        f"will not able to create pod with invalid DNS label: {host}"))
    return causes


_SCHEDULING = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def validate_job_update(new: dict, old: dict) -> list[Cause]:
    """`ValidateJobSpecUpdate`: selector, template and most of the spec are immutable; a suspended
    Job that never started may change its template's scheduling directives and metadata."""
    ns, os_ = mapping(new, "spec"), mapping(old, "spec")
    causes = _job_spec(ns, "spec") + _job_selector(ns)
    if ns.get("completions") != os_.get("completions"):
        if ns.get("completionMode") != "Indexed":
            causes.append(field.invalid("spec.completions", ns.get("completions"), IMMUTABLE))
        elif ns.get("completions") is not None and ns.get("completions") != ns.get("parallelism"):
            causes.append(field.invalid("spec.completions", ns["completions"],
                                        "can only be modified in tandem with spec.parallelism"))
    if label_selector_value(ns.get("selector")) != label_selector_value(os_.get("selector")):
        causes.append(field.invalid("spec.selector", label_selector_value(ns.get("selector")), IMMUTABLE))
    template, old_template = mapping(ns, "template"), mapping(os_, "template")
    if ns.get("suspend") is True and get(old, "status", "startTime") is None:
        old_template = {**old_template, "metadata": mapping(template, "metadata"),
                        "spec": {**mapping(old_template, "spec"),
                                 **{k: v for k, v in mapping(template, "spec").items() if k in _SCHEDULING}}}
        for key in _SCHEDULING:
            if key not in mapping(template, "spec"):
                old_template["spec"].pop(key, None)
    if template != old_template:
        causes.append(field.invalid("spec.template", template, IMMUTABLE))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if ns.get(key) != os_.get(key) and not (key == "completionMode" and {ns.get(key), os_.get(key)} <=
                                                {None, "NonIndexed"}):
            causes.append(field.invalid(f"spec.{key}", ns.get(key), IMMUTABLE))
    return causes


def _schedule(spec: dict, old_spec: dict | None) -> list[Cause]:
    schedule = spec.get("schedule") or ""
    if not schedule:
        return [field.required("spec.schedule")]
    causes: list[Cause] = []
    try:
        cron.parse(schedule)
    except cron.CronError as err:
        causes.append(field.invalid("spec.schedule", schedule, str(err)))
    allow_tz = old_spec is not None and "TZ" in (old_spec.get("schedule") or "")
    if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
        causes.append(field.invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in "
                                                               "schedule"))
    elif not allow_tz and "TZ" in schedule:
        causes.append(field.invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                                               "field instead"))
    return causes


def _time_zone(tz: Any) -> list[Cause]:
    """`validateTimeZone`."""
    if tz is None:
        return []
    if tz == "":
        return [field.invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [field.invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    causes: list[Cause] = []
    if tz.lower() == "local":
        causes.append(field.invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in "
                                                         "https://www.iana.org/time-zones"))
    err = cron.time_zone_error(tz) if tz.lower() != "local" else None
    if err:
        causes.append(field.invalid("spec.timeZone", tz, err))
    return causes


def _cron_job_spec(spec: dict, old_spec: dict | None) -> list[Cause]:
    """`validateCronJobSpec`."""
    causes = _schedule(spec, old_spec)
    causes += nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds")
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        causes += _time_zone(spec.get("timeZone"))
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy not in ("Allow", "Forbid", "Replace"):
        causes.append(field.not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    job_spec = mapping(spec, "jobTemplate", "spec")
    causes += _job_spec(job_spec, "spec.jobTemplate.spec")
    if job_spec.get("selector") is not None:
        causes.append(field.invalid("spec.jobTemplate.spec.selector", label_selector_value(job_spec["selector"]),
                                    "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        causes.append(field.not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += nonnegative(spec.get(key), f"spec.{key}")
    return causes


def validate_cron_job(obj: dict) -> list[Cause]:
    """`ValidateCronJobCreate`: also a name short enough for the Jobs it names `<name>-<minute>`."""
    causes = _cron_job_spec(mapping(obj, "spec"), None)
    name = get(obj, "metadata", "name", default="")
    if len(name) > 52:
        causes.append(field.invalid("metadata.name", name, "must be no more than 52 characters"))
    return causes


def validate_cron_job_update(new: dict, old: dict) -> list[Cause]:
    return _cron_job_spec(mapping(new, "spec"), mapping(old, "spec"))
