"""Printers for workload controllers and their policies (apps, batch, autoscaling, policy).

Ported from kube-apiserver's `printers.go`. Replica counts are integers except where upstream
formats them ("2/3" READY); Job STATUS follows upstream's condition precedence; HPA TARGETS are
rendered from the autoscaling/v2 shape, which autoscaling/v1 objects are converted to first,
as upstream's internal type is v2-shaped.
"""

from __future__ import annotations

from collections.abc import Mapping

from lks.kube.printers import formats as f
from lks.kube.printers.base import AGE, CONTAINERS, IMAGES, NAME, Cells, Column, Doc, Printer


def _template_cells(spec: Mapping, selector: str) -> Cells:
    names, images = f.layout_containers(f.items(spec, "template", "spec", "containers"))
    return [names, images, selector]


def _selector_column(ref: str) -> Column:
    return Column("Selector", description=Doc(ref, "selector"), priority=1)


def _deployment_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    selector = f.selector_string(spec.get("selector"))
    return [f.name(obj), f"{f.number(status, 'readyReplicas')}/{f.replicas(spec)}",
            f.number(status, "updatedReplicas"), f.number(status, "availableReplicas"), f.age(obj, now),
            *_template_cells(spec, "<invalid>" if selector is None else selector)]


_DEPLOYMENT = Printer((
    NAME,
    Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", description=Doc("apps.DeploymentStatus", "updatedReplicas")),
    Column("Available", description=Doc("apps.DeploymentStatus", "availableReplicas")),
    AGE, CONTAINERS, IMAGES, _selector_column("apps.DeploymentSpec"),
), _deployment_cells)


def _replica_set_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    return [f.name(obj), f.replicas(spec), f.number(status, "replicas"), f.number(status, "readyReplicas"),
            f.age(obj, now), *_template_cells(spec, f.format_label_selector(spec.get("selector")))]


_REPLICA_SET = Printer((
    NAME,
    Column("Desired", "integer", Doc("apps.ReplicaSetSpec", "replicas")),
    Column("Current", "integer", Doc("apps.ReplicaSetStatus", "replicas")),
    Column("Ready", "integer", Doc("apps.ReplicaSetStatus", "readyReplicas")),
    AGE, CONTAINERS, IMAGES, _selector_column("apps.ReplicaSetSpec"),
), _replica_set_cells)


def _stateful_set_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    names, images = f.layout_containers(f.items(spec, "template", "spec", "containers"))
    return [f.name(obj), f"{f.number(obj, 'status', 'readyReplicas')}/{f.replicas(spec)}", f.age(obj, now),
            names, images]


_STATEFUL_SET = Printer((
    NAME, Column("Ready", description="Number of the pod with ready state"), AGE, CONTAINERS, IMAGES,
), _stateful_set_cells)


def _daemon_set_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    counts = [f.number(status, key) for key in ("desiredNumberScheduled", "currentNumberScheduled",
                                                 "numberReady", "updatedNumberScheduled", "numberAvailable")]
    return [f.name(obj), *counts, f.format_labels(f.field(spec, "template", "spec", "nodeSelector")),
            f.age(obj, now), *_template_cells(spec, f.format_label_selector(spec.get("selector")))]


_DAEMON_SET = Printer((
    NAME,
    Column("Desired", "integer", Doc("apps.DaemonSetStatus", "desiredNumberScheduled")),
    Column("Current", "integer", Doc("apps.DaemonSetStatus", "currentNumberScheduled")),
    Column("Ready", "integer", Doc("apps.DaemonSetStatus", "numberReady")),
    Column("Up-to-date", "integer", Doc("apps.DaemonSetStatus", "updatedNumberScheduled")),
    Column("Available", "integer", Doc("apps.DaemonSetStatus", "numberAvailable")),
    Column("Node Selector", description=Doc("core.PodSpec", "nodeSelector")),
    AGE, CONTAINERS, IMAGES, _selector_column("apps.DaemonSetSpec"),
), _daemon_set_cells)


def _controller_revision_cells(obj: Mapping, now: float) -> Cells:
    owner = next((r for r in f.items(obj, "metadata", "ownerReferences")
                  if isinstance(r, Mapping) and r.get("controller") is True), None)
    controller = "<none>"
    if owner is not None:
        api_version, kind = f.text(owner, "apiVersion"), f.text(owner, "kind")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        # formatResourceName: "kind.group/name", lower-cased; just the name when both are empty
        qualified = f.group_qualified(kind, group).lower()
        controller = f"{qualified}/{f.text(owner, 'name')}" if qualified else f.text(owner, "name")
    return [f.name(obj), controller, f.number(obj, "revision"), f.age(obj, now)]


_CONTROLLER_REVISION = Printer((
    NAME,
    Column("Controller", description="Controller of the object"),
    Column("Revision", description=Doc("apps.ControllerRevision", "revision")),
    AGE,
), _controller_revision_cells)

# --- batch ---------------------------------------------------------------------------------

# the first condition that is True names the status, in this order
_JOB_STATES = ("Complete", "Failed", None, "Suspended", "FailureTarget", "SuccessCriteriaMet")


def _job_status(obj: Mapping) -> str:
    conditions = f.items(obj, "status", "conditions")
    for state in _JOB_STATES:
        if state is None:
            if f.deleting(obj):  # deletion outranks everything but a finished job
                return "Terminating"
        elif f.condition_true(conditions, state):
            return state
    return "Running"


def _job_completions(spec: Mapping, succeeded: int) -> str:
    if spec.get("completions") is not None:
        return f"{succeeded}/{f.number(spec, 'completions')}"
    parallelism = f.number(spec, "parallelism")
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(status: Mapping, now: float) -> str:
    started = f.parse_time(status.get("startTime"))
    if started is None:
        return ""
    finished = f.parse_time(status.get("completionTime"))
    return f.human_duration((now if finished is None else finished) - started)


def _job_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    return [f.name(obj), _job_status(obj), _job_completions(spec, f.number(status, "succeeded")),
            _job_duration(status, now), f.age(obj, now),
            *_template_cells(spec, f.format_label_selector(spec.get("selector")))]


_JOB = Printer((
    NAME,
    Column("Status", description="Status of the job."),
    Column("Completions", description=Doc("batch.JobStatus", "succeeded")),
    Column("Duration", description="Time required to complete the job."),
    AGE, CONTAINERS, IMAGES, _selector_column("batch.JobSpec"),
), _job_cells)


def _cron_job_cells(obj: Mapping, now: float) -> Cells:
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    job_spec = f.mapping(spec, "jobTemplate", "spec")
    last = status.get("lastScheduleTime")
    return [f.name(obj), f.text(spec, "schedule"),
            "<none>" if spec.get("timeZone") is None else f.text(spec, "timeZone"),
            f.print_bool_ptr(spec.get("suspend")), len(f.items(status, "active")),
            "<none>" if last is None else f.since(last, now), f.age(obj, now),
            *_template_cells(job_spec, f.format_label_selector(job_spec.get("selector")))]


_CRON_JOB = Printer((
    NAME,
    Column("Schedule", description=Doc("batch.CronJobSpec", "schedule")),
    Column("Timezone", description=Doc("batch.CronJobSpec", "timeZone")),
    Column("Suspend", "boolean", Doc("batch.CronJobSpec", "suspend")),
    Column("Active", "integer", Doc("batch.CronJobStatus", "active")),
    Column("Last Schedule", description=Doc("batch.CronJobStatus", "lastScheduleTime")),
    AGE, CONTAINERS, IMAGES, _selector_column("batch.JobSpec"),
), _cron_job_cells)

# --- autoscaling and policy ----------------------------------------------------------------


def _hpa_v2(obj: Mapping) -> Mapping:
    """An autoscaling/v1 HPA in the v2 shape, as upstream's v1 -> internal conversion makes it."""
    if "targetCPUUtilizationPercentage" not in f.mapping(obj, "spec") and \
            "currentCPUUtilizationPercentage" not in f.mapping(obj, "status"):
        return obj
    spec, status = dict(f.mapping(obj, "spec")), dict(f.mapping(obj, "status"))
    target = spec.pop("targetCPUUtilizationPercentage", None)
    current = status.pop("currentCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    return {**obj, "spec": spec, "status": status}


def _value_metric(source: Mapping, current: Mapping | None) -> str:
    target = f.mapping(source, "target")
    if target.get("averageValue") is not None:
        value = f.field(current, "current", "averageValue") if current is not None else None
        return f"{'<unknown>' if value is None else f.quantity(value)}/{f.quantity(target['averageValue'])} (avg)"
    value = f.quantity_ptr(f.field(current, "current", "value")) if current is not None else "<unknown>"
    return f"{value}/{f.quantity_ptr(target.get('value'))}"


def _resource_metric(source: Mapping, current: Mapping | None) -> str:
    target, resource = f.mapping(source, "target"), f.text(source, "name")
    if target.get("averageValue") is not None:
        value = "<unknown>" if current is None else f.quantity_ptr(f.field(current, "current", "averageValue"))
        return f"{resource}: {value}/{f.quantity(target['averageValue'])}"
    used = f.field(current, "current", "averageUtilization") if current is not None else None
    wanted = target.get("averageUtilization")
    return (f"{resource}: {'<unknown>' if used is None else f'{int(used)}%'}/"
            f"{'<auto>' if wanted is None else f'{int(wanted)}%'}")


def _metric(spec: Mapping, status: Mapping | None) -> str:
    kind = f.text(spec, "type")
    key = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
           "ContainerResource": "containerResource"}.get(kind)
    if key is None:
        return "<unknown type>"
    source = f.mapping(spec, key)
    current = f.field(status, key) if status is not None else None
    current = current if isinstance(current, Mapping) else None
    if kind == "Pods":
        value = "<unknown>" if current is None else f.quantity_ptr(f.field(current, "current", "averageValue"))
        return f"{value}/{f.quantity_ptr(f.field(source, 'target', 'averageValue'))}"
    if kind in ("External", "Object"):
        return _value_metric(source, current)
    return _resource_metric(source, current)


def _hpa_metrics(specs: list, statuses: list) -> str:
    if not specs:
        return "<none>"
    shown = [_metric(spec, statuses[i] if i < len(statuses) else None) for i, spec in enumerate(specs)]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa_cells(obj: Mapping, now: float) -> Cells:
    obj = _hpa_v2(obj)
    spec, status = f.mapping(obj, "spec"), f.mapping(obj, "status")
    ref = f.mapping(spec, "scaleTargetRef")
    minimum = spec.get("minReplicas")
    return [f.name(obj), f"{f.text(ref, 'kind')}/{f.text(ref, 'name')}",
            _hpa_metrics(f.items(spec, "metrics"), f.items(status, "currentMetrics")),
            "<unset>" if minimum is None else str(int(minimum)), f.number(spec, "maxReplicas"),
            f.number(status, "currentReplicas"), f.age(obj, now)]


_HPA = Printer((
    NAME,
    Column("Reference", description=Doc("autoscaling.v2.HorizontalPodAutoscalerSpec", "scaleTargetRef")),
    Column("Targets", description=Doc("autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics")),
    Column("MinPods", description=Doc("autoscaling.v2.HorizontalPodAutoscalerSpec", "minReplicas")),
    Column("MaxPods", description=Doc("autoscaling.v2.HorizontalPodAutoscalerSpec", "maxReplicas")),
    Column("Replicas", description=Doc("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
    AGE,
), _hpa_cells)


def _pdb_cells(obj: Mapping, now: float) -> Cells:
    spec = f.mapping(obj, "spec")
    bounds = ["N/A" if spec.get(key) is None else f.int_or_string(spec[key])
              for key in ("minAvailable", "maxUnavailable")]
    return [f.name(obj), *bounds, f.number(obj, "status", "disruptionsAllowed"), f.age(obj, now)]


_PDB = Printer((
    NAME,
    Column("Min Available", description="The minimum number of pods that must be available."),
    Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
), _pdb_cells)

PRINTERS: dict[tuple[str, str], Printer] = {
    ("apps", "deployments"): _DEPLOYMENT,
    ("apps", "replicasets"): _REPLICA_SET,
    ("apps", "statefulsets"): _STATEFUL_SET,
    ("apps", "daemonsets"): _DAEMON_SET,
    ("apps", "controllerrevisions"): _CONTROLLER_REVISION,
    ("batch", "jobs"): _JOB,
    ("batch", "cronjobs"): _CRON_JOB,
    ("autoscaling", "horizontalpodautoscalers"): _HPA,
    ("policy", "poddisruptionbudgets"): _PDB,
}
