"""The HorizontalPodAutoscaler controller (upstream's `pkg/controller/podautoscaler`), acting as
`system:serviceaccount:kube-system:horizontal-pod-autoscaler`.

Every HPA is looked at once per sync period (15 s on the cluster clock, as upstream's queue
re-adds each key with that delay; a change of the HPA waits for the next look too). `sync`
reads the target's `scale` subresource (any type that has one: Deployments, StatefulSets,
ReplicaSets, custom resources), picks its pods by the Scale's selector, asks each metric for a
replica count (resource metrics from `lks.controllers.hpa_metrics`, computed by
`lks.controllers.hpa_replicas`; Pods/Object/External metrics have no API in lks and fail as
upstream's do without one), takes the largest, normalizes it (`lks.controllers.hpa_behavior`),
writes the Scale when it changes and the status last: currentMetrics, desiredReplicas,
lastScaleTime and the AbleToScale / ScalingActive / ScalingLimited conditions, with upstream's
reasons, messages and Events.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from lks.clock import rfc3339
from lks.controllers import hpa_behavior as behaviors
from lks.controllers import hpa_replicas as replicas
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.controllers.hpa_metrics import (
    NO_CUSTOM_METRICS,
    LksResourceMetrics,
    MetricsError,
    ResourceMetrics,
    go_label_selector,
    no_external_metric,
)
from lks.controllers.scheduler import resources
from lks.kube import errors, scale, selectors
from lks.kube.cluster import Cluster
from lks.kube.registry import Registry, WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")


class ReconcileError(Exception):
    """The HPA could not be reconciled this time (upstream's returned error: logged, retried)."""


class MetricFailure(Exception):
    """One metric gave no proposal: its ScalingActive condition reason and the error."""

    def __init__(self, reason: str, message: str, wrapped: str):
        super().__init__(wrapped)
        self.reason = reason  # the condition's and the Event's reason
        self.message = message  # the Event's message (the condition's, after its prefix)


class HorizontalPodAutoscalerController(Controller[tuple[str, str]]):
    def __init__(self, cluster: Cluster, *, metrics: ResourceMetrics | None = None):
        super().__init__(cluster, name="horizontal-pod-autoscaler", workers=5)
        self.hpas = cluster.registry("autoscaling", "v2", "horizontalpodautoscalers")
        self.pods = cluster.registry("", "v1", "pods")
        self.hpa_informer = self.watch(self.hpas, self._on_hpa)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.metrics = metrics if metrics is not None else LksResourceMetrics(cluster)
        self.recorder = EventRecorder(cluster, component="horizontal-pod-autoscaler")
        self._history: dict[tuple[str, str], behaviors.History] = {}
        self._selectors: dict[tuple[str, str], selectors.LabelSelector] = {}  # each HPA's pods, as last seen
        self._waiting: set[tuple[str, str]] = set()  # keys with a look already scheduled
        self._pods_in: dict[str, set[str]] = {}  # namespace -> pod names

    # -- event handlers: they only index and schedule ----------------------------------------

    def _on_hpa(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        key = (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        if kind == "DELETED":
            self._history.pop(key, None)
            self._selectors.pop(key, None)
            return
        self._schedule(key)

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        if kind == "DELETED":
            self._pods_in.get(ns, set()).discard(name)
        else:
            self._pods_in.setdefault(ns, set()).add(name)

    def _schedule(self, key: tuple[str, str]) -> None:
        """Upstream's AddRateLimited with its fixed interval: one look per sync period."""
        if key not in self._waiting:
            self._waiting.add(key)
            self.queue.add_after(key, SYNC_PERIOD)

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: tuple[str, str]) -> None:
        self._waiting.discard(key)
        hpa = self.hpa_informer.get(*key)
        if hpa is None:
            self._history.pop(key, None)
            self._selectors.pop(key, None)
            return
        try:
            await self.reconcile(copy.deepcopy(hpa), key)
        except ReconcileError as err:
            log.info("horizontal pod autoscaler %s/%s: %s", *key, err)
        finally:
            if self.hpa_informer.get(*key) is not None:
                self._schedule(key)

    async def reconcile(self, hpa: Obj, key: tuple[str, str]) -> None:
        """One look at an HPA (upstream's reconcileAutoscaler)."""
        original = copy.deepcopy(hpa.get("status") or {})
        spec, ns = hpa["spec"], hpa["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ns}/{ref.get('name')}"
        now = self.clock.now()
        try:
            target = self._target_registry(ref)
            current_scale = await self._get_scale(target, ns, ref.get("name") or "")
        except ReconcileError as err:
            await self.recorder.record(hpa, WARNING, "FailedGetScale", str(err))
            _set_condition(hpa, "AbleToScale", "False", "FailedGetScale",
                           f"the HPA controller was unable to get the target's current scale: {err}", now)
            await self._write_status(hpa, original)
            raise ReconcileError(f"failed to query scale subresource for {reference}: {err}") from err
        _set_condition(hpa, "AbleToScale", "True", "SucceededGetScale",
                       "the HPA controller was able to get the target's current scale", now)
        current = int(current_scale["spec"].get("replicas") or 0)
        history = self._history.setdefault(key, behaviors.History())
        history.record_initial(current, now)
        minimum = spec.get("minReplicas", 1)
        maximum = spec["maxReplicas"]
        statuses: list[Obj] = []  # none unless the metrics are read (outside min/max they are not)
        rescale, reason, desired = True, "", 0
        if current == 0 and minimum != 0:
            rescale = False
            _set_condition(hpa, "ScalingActive", "False", "ScalingDisabled",
                           "scaling is disabled since the replica count of the target is zero", now)
        elif current > maximum:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", maximum
        elif current < minimum:
            reason, desired = "Current number of replicas below Spec.MinReplicas", minimum
        else:
            proposed, metric, statuses, failure = await self._compute(hpa, current_scale, now)
            if proposed == -1:
                _set_status(hpa, current, (hpa.get("status") or {}).get("desiredReplicas", 0), statuses, False, now)
                await self._write_status(hpa, original)
                await self.recorder.record(hpa, WARNING, "FailedComputeMetricsReplicas", str(failure))
                raise ReconcileError(f"failed to compute desired number of replicas based on listed metrics for "
                                     f"{reference}: {failure}")
            if proposed > current:
                reason = f"{metric} above target"
            elif proposed < current:
                reason = "All metrics below target"
            if spec.get("behavior") is None:
                desired, conditions = behaviors.normalize(history, current, proposed, minimum, maximum, now)
            else:
                desired, conditions = behaviors.normalize_with_behavior(
                    history, spec["behavior"], current, proposed, minimum, maximum, now)
            for condition in conditions:
                _set_condition(hpa, *condition, now)
            rescale = desired != current
        if rescale:
            try:
                await self._update_scale(target, ns, ref.get("name") or "", desired)
            except errors.APIError as err:
                await self.recorder.record(hpa, WARNING, "FailedRescale",
                                           f"New size: {desired}; reason: {reason}; error: {err.message}")
                _set_condition(hpa, "AbleToScale", "False", "FailedUpdateScale",
                               f"the HPA controller was unable to update the target scale: {err.message}", now)
                _set_status(hpa, current, (hpa.get("status") or {}).get("desiredReplicas", 0),
                            (hpa.get("status") or {}).get("currentMetrics") or [], False, now)
                await self._write_status(hpa, original)
                raise ReconcileError(f"failed to rescale {reference}: {err.message}") from err
            _set_condition(hpa, "AbleToScale", "True", "SucceededRescale",
                           f"the HPA controller was able to update the target scale to {desired}", now)
            await self.recorder.record(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            history.store_scale_event(spec.get("behavior"), current, desired, now)
        else:
            desired = current
        _set_status(hpa, current, desired, statuses, rescale, now)
        await self._write_status(hpa, original)

    # -- the target's scale ------------------------------------------------------------------

    def _target_registry(self, ref: Obj) -> Registry:
        """The registry of the scale target's type (upstream's RESTMapper by group and kind)."""
        api_version, kind = ref.get("apiVersion") or "", ref.get("kind") or ""
        group, _, version = api_version.rpartition("/")
        if api_version.count("/") > 1:
            raise ReconcileError(f"unexpected GroupVersion string: {api_version}")
        catalog = self.cluster.catalog
        rt = catalog.by_kind(group, version, kind) or next(
            (t for t in catalog.all() if t.group == group and t.kind == kind and not t.virtual), None)
        if rt is None:
            raise ReconcileError(f'no matches for kind "{kind}" in group "{group}"')
        return self.cluster.registry(rt.group, rt.version, rt.resource)

    async def _get_scale(self, reg: Registry, ns: str, name: str) -> Obj:
        paths = self.cluster.scale_paths(reg.rt)
        if paths is None:
            raise ReconcileError("the server could not find the requested resource")
        try:
            await reg.authorize("get", ns, name, "scale")
            return scale.to_scale(await reg.get(ns, name), paths)
        except errors.APIError as err:
            raise ReconcileError(err.message) from err

    async def _update_scale(self, reg: Registry, ns: str, name: str, desired: int) -> None:
        """An update of the target's `scale` subresource, authorized as the controller's."""
        paths = self.cluster.scale_paths(reg.rt)
        assert paths is not None  # read through it just before
        who = (reg.rt.resource, reg.rt.group, name)
        body = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": desired}}
        # a write through `scale` (authorized, admitted and recorded as one), as the controller
        await reg.patch(ns, name, lambda cur: scale.apply_scale(cur, body, paths, who),
                        WriteOptions(field_validation="Ignore", trusted=True,
                                     field_manager="kube-controller-manager", subresource="scale"))

    # -- metrics ------------------------------------------------------------------------------

    def _selected_pods(self, ns: str, selector: selectors.LabelSelector) -> list[Obj]:
        pods = (self.pod_informer.get(ns, n) for n in sorted(self._pods_in.get(ns, ())))
        return [p for p in pods if p is not None and selector.matches(p["metadata"].get("labels"))]

    def _hpas_over(self, ns: str, pods: list[Obj]) -> list[tuple[str, str]]:
        """The HPAs of `ns` whose last seen selectors pick any of `pods`."""
        return sorted(key for key, selector in self._selectors.items() if key[0] == ns and any(
            selector.matches(p["metadata"].get("labels")) for p in pods))

    async def _compute(self, hpa: Obj, current_scale: Obj, now: float) -> tuple[int, str, list[Obj], str]:
        """(replicas or -1, the metric that proposed them, metric statuses, the error): upstream's
        computeReplicasForMetrics."""
        text = (current_scale.get("status") or {}).get("selector") or ""
        if not text:
            await self.recorder.record(hpa, WARNING, "SelectorRequired", "selector is required")
            _set_condition(hpa, "ScalingActive", "False", "InvalidSelector",
                           "the HPA target's scale is missing a selector", now)
            return -1, "", [], "selector is required"
        try:
            selector = selectors.parse_labels(text)
        except errors.APIError as err:
            message = f"couldn't convert selector into a corresponding internal selector object: {err.message}"
            await self.recorder.record(hpa, WARNING, "InvalidSelector", message)
            _set_condition(hpa, "ScalingActive", "False", "InvalidSelector", message, now)
            return -1, "", [], message
        ns = hpa["metadata"]["namespace"]
        self._selectors[(ns, hpa["metadata"]["name"])] = selector
        pods = self._selected_pods(ns, selector)
        others = self._hpas_over(ns, pods)
        if len(others) > 1:  # upstream's check that no two HPAs drive the same pods
            message = (f"pods by selector {text} are controlled by multiple HPAs: "
                       f"[{' '.join(f'{n}/{name}' for n, name in others)}]")
            await self.recorder.record(hpa, WARNING, "AmbiguousSelector", message)
            _set_condition(hpa, "ScalingActive", "False", "AmbiguousSelector", message, now)
            return -1, "", [], message
        specs = hpa["spec"].get("metrics") or []
        current = int(current_scale["spec"].get("replicas") or 0)
        statuses: list[Obj] = []
        tolerances = _tolerances(hpa["spec"].get("behavior"))
        best, metric, invalid, first = 0, "", 0, None
        for spec in specs:
            try:
                proposal, name, status = self._metric(ns, spec, current, pods, now, tolerances)
            except MetricFailure as failure:
                await self.recorder.record(hpa, WARNING, failure.reason, failure.message)
                statuses.append({"type": ""})
                invalid += 1
                first = first or failure
                continue
            statuses.append(status)
            if best == 0 or proposal > best:
                best, metric = proposal, name
        error = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first}" if first else ""
        if first is not None and (invalid >= len(specs) or best < current):
            _set_condition(hpa, "ScalingActive", "False", first.reason,
                           f"the HPA was unable to compute the replica count: {first.message}", now)
            return -1, "", statuses, error
        _set_condition(hpa, "ScalingActive", "True", "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from {metric}", now)
        return best, metric, statuses, error

    def _metric(self, ns: str, spec: Obj, current: int, pods: list[Obj], now: float,
                tolerances: replicas.Tolerances) -> tuple[int, str, Obj]:
        """One metric's (replicas, name, status) (upstream's computeReplicasForMetric)."""
        kind = spec.get("type")
        if kind == "Resource":
            source = spec.get("resource") or {}
            try:
                return self._resource(ns, "Resource", source, "", current, pods, now, tolerances)
            except MetricsError as err:
                raise MetricFailure("FailedGetResourceMetric", str(err),
                                    f"failed to get {source.get('name')} resource metric value: {err}") from err
        if kind == "ContainerResource":
            source = spec.get("containerResource") or {}
            try:
                return self._resource(ns, "ContainerResource", source, source.get("container") or "", current, pods,
                                      now, tolerances)
            except MetricsError as err:
                raise MetricFailure("FailedGetContainerResourceMetric", str(err),
                                    f"failed to get {source.get('container')} container metric value: {err}") from err
        if kind == "Pods":
            name = ((spec.get("pods") or {}).get("metric") or {}).get("name")
            message = f"unable to get metric {name}: unable to fetch metrics from custom metrics API: {NO_CUSTOM_METRICS}"
            raise MetricFailure("FailedGetPodsMetric", message, f"failed to get pods metric value: {message}")
        if kind == "Object":
            source = spec.get("object") or {}
            obj = source.get("describedObject") or {}
            name = (source.get("metric") or {}).get("name")
            message = (f"unable to get metric {name}: {obj.get('kind')} on {ns} {obj.get('name')}/unable to fetch "
                       f"metrics from custom metrics API: {NO_CUSTOM_METRICS}")
            if (source.get("target") or {}).get("type") == "AverageValue":
                wrapped = f"failed to get {name} object metric: {message}"
            else:
                wrapped = message
            raise MetricFailure("FailedGetObjectMetric", message, f"failed to get object metric value: {wrapped}")
        if kind == "External":
            source = spec.get("external") or {}
            metric = source.get("metric") or {}
            name = metric.get("name")
            message = (f"unable to get external metric {ns}/{name}/{go_label_selector(metric.get('selector'))}: "
                       f"unable to fetch metrics from external metrics API: {no_external_metric(name)}")
            if (source.get("target") or {}).get("averageValue") is not None:
                wrapped = f"failed to get {name} external metric: {message}"
            else:
                wrapped = f"failed to get external metric {name}: {message}"
            raise MetricFailure("FailedGetExternalMetric", message, f"failed to get {name} external metric value: {wrapped}")
        message = f'unknown metric source type "{kind}"'
        raise MetricFailure("InvalidMetricSourceType", message, message)

    def _resource(self, ns: str, kind: str, source: Obj, container: str, current: int, pods: list[Obj],
                  now: float, tolerances: replicas.Tolerances) -> tuple[int, str, Obj]:
        """A Resource or ContainerResource metric (upstream's computeStatusForResourceMetricGeneric)."""
        resource, target = source.get("name") or "", source.get("target") or {}
        key = "resource" if kind == "Resource" else "containerResource"
        identity = {"name": resource, **({"container": container} if container else {})}
        if target.get("averageValue") is not None:
            wanted = resources.milli(target["averageValue"])
            try:
                metrics = self._pod_metrics(ns, pods, resource, container)
                proposal = replicas.raw_replicas(current, wanted, resource, pods, metrics, now, tolerances)
            except MetricsError as err:
                raise MetricsError(f"failed to get {resource} usage: {err}") from err
            name = f"{resource} resource" if kind == "Resource" else f"{resource} container resource"
            return proposal.replicas, name, {"type": kind, key: {
                **identity, "current": {"averageValue": milli_quantity(proposal.raw)}}}
        if target.get("averageUtilization") is None:
            raise MetricsError("invalid resource metric source: neither an average utilization target nor an "
                               "average value (usage) target was set")
        try:
            metrics = self._pod_metrics(ns, pods, resource, container)
            proposal = replicas.resource_replicas(current, target["averageUtilization"], resource, pods, metrics,
                                                  container, now, tolerances)
        except MetricsError as err:
            raise MetricsError(f"failed to get {resource} utilization: {err}") from err
        name = (f"{resource} resource utilization (percentage of request)" if kind == "Resource"
                else f"{resource} container resource utilization (percentage of request)")
        return proposal.replicas, name, {"type": kind, key: {**identity, "current": {
            "averageUtilization": proposal.utilization, "averageValue": milli_quantity(proposal.raw)}}}

    def _pod_metrics(self, ns: str, pods: list[Obj], resource: str, container: str) -> dict:
        try:
            return self.metrics.pod_metrics(ns, pods, resource, container)
        except MetricsError as err:
            raise MetricsError(f"unable to get metrics for resource {resource}: {err}") from err

    # -- status -------------------------------------------------------------------------------

    async def _write_status(self, hpa: Obj, original: Obj) -> None:
        """Upstream's updateStatusIfNeeded: only a changed status is written."""
        status = hpa.get("status") or {}
        if status == original:
            return
        ns, name = hpa["metadata"]["namespace"], hpa["metadata"]["name"]

        def put(current: Obj) -> Obj:
            current["status"] = status
            return current

        try:
            await self.hpas.patch(ns, name, put, WRITE, subresource="status")
        except errors.APIError as err:
            await self.recorder.record(hpa, WARNING, "FailedUpdateStatus", err.message)
            raise ReconcileError(f"failed to update status for {name}: {err.message}") from err


def _tolerances(behavior: Obj | None) -> replicas.Tolerances:
    """The HPA's own tolerances (`behavior.scaleDown/scaleUp.tolerance`), else the controller's."""
    def one(rules: Any) -> float:
        given = (rules or {}).get("tolerance") if isinstance(rules, dict) else None
        return replicas.TOLERANCE if given is None else resources.milli(given) / 1000

    if not behavior:
        return replicas.DEFAULT_TOLERANCES
    return replicas.Tolerances(down=one(behavior.get("scaleDown")), up=one(behavior.get("scaleUp")))


def _set_condition(hpa: Obj, type_: str, status: str, reason: str, message: str, now: float) -> None:
    """Upstream's setCondition: the transition time moves only when the status changes."""
    conditions = hpa.setdefault("status", {}).setdefault("conditions", [])
    new = {"type": type_, "status": status, "lastTransitionTime": rfc3339(now), "reason": reason, "message": message}
    for i, old in enumerate(conditions):
        if old.get("type") == type_:
            if old.get("status") == status:
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            conditions[i] = new
            return
    conditions.append(new)


def _set_status(hpa: Obj, current: int, desired: int, metrics: list[Obj], rescale: bool, now: float) -> None:
    old = hpa.get("status") or {}
    status: Obj = {"currentReplicas": current, "desiredReplicas": desired}
    if rescale:
        status["lastScaleTime"] = rfc3339(now)
    elif old.get("lastScaleTime"):
        status["lastScaleTime"] = old["lastScaleTime"]
    if metrics:
        status["currentMetrics"] = metrics
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    hpa["status"] = status


_SUFFIXES = {0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def milli_quantity(milli: int) -> str:
    """`resource.NewMilliQuantity(v, DecimalSI)` in its canonical form: 250m, 2, 1500m, 3k."""
    if milli % 1000:
        return f"{milli}m"
    value, exponent = milli // 1000, 0
    while value and value % 1000 == 0 and exponent < 18:
        value, exponent = value // 1000, exponent + 3
    return f"{value}{_SUFFIXES[exponent]}"
