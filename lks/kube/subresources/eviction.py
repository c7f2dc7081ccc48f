"""Evicting a pod: `POST pods/<name>/eviction` with a `policy/v1` (or `v1beta1`) Eviction
(upstream's `EvictionREST` in `pkg/registry/core/pod/storage/eviction.go`). `kubectl drain`,
the cluster autoscaler and node pool upgrades go through here.

An eviction is a deletion that respects the pod's PodDisruptionBudget. A pod that is pending,
finished or already being deleted goes at once. Otherwise the one budget that selects it
must allow a disruption (`status.disruptionsAllowed`, kept by `lks.controllers.disruption`):
if so the eviction decrements it and records the pod in `status.disruptedPods` in a status
write guarded by the budget's resourceVersion (a lost race re-reads and re-checks), then
deletes the pod with the Eviction's `deleteOptions`; if not, it answers 429 TooManyRequests
with upstream's message, and clients retry. A pod that is not Ready may go without using up
the budget while the budget is met (or its `unhealthyPodEvictionPolicy` is AlwaysAllow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.clock import rfc3339
from lks.kube import deletion, errors
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector, from_label_selector_object
from lks.kube.subresources import handler

if TYPE_CHECKING:
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

RETRIES = 20  # upstream's EvictionsRetry steps
MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
SUCCESS: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


@handler("", "pods", "eviction")
async def evict(reg: Registry, namespace: str | None, name: str, verb: str, body: Any,
                opts: WriteOptions) -> tuple[int, Obj]:
    if verb != "create":
        raise errors.method_not_allowed()
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be an Eviction object")
    if body.get("kind") not in (None, "Eviction") or body.get("apiVersion") not in (None, "policy/v1", "policy/v1beta1"):
        raise errors.bad_request(f"not a Eviction object: {body.get('apiVersion')}, Kind={body.get('kind')}")
    if (body.get("metadata") or {}).get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = _delete_options(body.get("deleteOptions"), opts.dry_run)
    rv_set = bool((options.preconditions or {}).get("resourceVersion"))

    # a pod that is pending, finished or already going costs no budget
    pod: Obj = {}
    for _ in range(RETRIES):
        pod = await reg.get(namespace, name)
        if not _can_ignore_budget(pod):
            break
        chosen = options
        if _enforce_resource_version(pod) and not rv_set:
            chosen = _with_rv(options, pod["metadata"]["resourceVersion"])
        try:
            await _condition_and_delete(reg, namespace, name, chosen)
        except errors.APIError as err:
            if err.code == 409 and not rv_set:
                continue
            raise
        return 201, SUCCESS
    else:
        raise errors.conflict("pods", "", name, errors.MODIFIED)

    pdbs = await _budgets_for(reg, pod)
    if len(pdbs) > 1:
        return 500, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                     "code": 500}
    guard_rv = False
    if pdbs:
        pdb = pdbs[0]
        status = pdb.get("status") or {}
        if not _is_ready(pod) and (
                (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                or (status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0)):
            guard_rv = True  # an unhealthy pod goes free, unless it became Ready meanwhile
        else:
            await _take_disruption(reg, pdb, name, options.dry_run)
    chosen = _with_rv(options, pod["metadata"]["resourceVersion"]) if guard_rv else options
    try:
        await _condition_and_delete(reg, namespace, name, chosen)
    except errors.APIError as err:
        if err.code == 409 and guard_rv and not rv_set:
            raise _too_many_requests(pdbs[0]["metadata"]["name"], still_processing=True) from err
        raise
    return 201, SUCCESS


def _delete_options(raw: Any, dry_run: bool) -> deletion.DeleteOptions:
    """The Eviction's deleteOptions; its dryRun and the request's must agree."""
    if raw is not None and not isinstance(raw, dict):
        raise errors.bad_request("deleteOptions must be an object")
    raw = raw or {}
    body_dry = raw.get("dryRun") or []
    if body_dry and dry_run and body_dry != ["All"]:
        raise errors.internal(f"Non-matching dry-run options in request and content: [All] and {body_dry}")
    options = deletion.DeleteOptions.parse(raw, {}, dry_run=dry_run or body_dry == ["All"])
    return options


def _with_rv(options: deletion.DeleteOptions, rv: str) -> deletion.DeleteOptions:
    pre = {**(options.preconditions or {}), "resourceVersion": rv}
    return deletion.DeleteOptions(options.propagation_policy, options.grace_period_seconds, pre, options.dry_run)


def _can_ignore_budget(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or "deletionTimestamp" in pod["metadata"]


def _enforce_resource_version(pod: Obj) -> bool:
    """Whether the deletion must be of the pod as read (a pending pod might start meanwhile)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and "deletionTimestamp" not in pod["metadata"]


def _is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def _budgets_for(reg: Registry, pod: Obj) -> list[Obj]:
    """The budgets of the pod's namespace whose selector picks it (a nil or empty selector
    picks nothing here, as upstream's eviction has it)."""
    pdbs = reg.cluster.registry("policy", "v1", "poddisruptionbudgets")
    ns = pod["metadata"]["namespace"]
    listed = await pdbs.list(ns, ListOptions(LabelSelector([]), FieldSelector([])))
    out = []
    for pdb in listed["items"]:
        selector = (pdb.get("spec") or {}).get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            continue
        try:
            if from_label_selector_object(selector).matches(pod["metadata"].get("labels")):
                out.append({**pdb, "metadata": {**pdb["metadata"], "namespace": ns}})
        except (KeyError, TypeError):
            continue
    return out


async def _take_disruption(reg: Registry, pdb: Obj, pod_name: str, dry_run: bool) -> None:
    """Check that the budget allows a disruption and use one up (upstream's checkAndDecrement
    under RetryOnConflict): the status write carries the budget's resourceVersion, so two
    evictions never spend the same disruption."""
    pdbs = reg.cluster.registry("policy", "v1", "poddisruptionbudgets")
    ns, name = pdb["metadata"]["namespace"], pdb["metadata"]["name"]
    for _ in range(RETRIES):
        status = dict(pdb.get("status") or {})
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
            raise _too_many_requests(name, still_processing=True)
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise errors.forbidden("poddisruptionbudget", "policy", name, "pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise errors.forbidden("poddisruptionbudget", "policy", name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
        if allowed == 0:
            err = _too_many_requests(name)
            err.details = {"causes": [{"reason": "DisruptionBudget", "message": (
                f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
                f"and has {status.get('currentHealthy', 0)} currently")}]}
            raise err
        if dry_run:
            return
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            _insufficient(status, reg.cluster.clock.now())
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: rfc3339(reg.cluster.clock.now())}
        try:
            await pdbs.update(ns, name, {**pdb, "status": status}, subresource="status")
            return
        except errors.APIError as err:
            if err.code != 409:
                raise
        pdb = await pdbs.get(ns, name)  # someone wrote first: check again against the new state
    raise errors.APIError(504, "Timeout", f'couldn\'t update PodDisruptionBudget "{name}" due to conflicts',
                          details={"retryAfterSeconds": 10}, headers={"Retry-After": "10"})


def _insufficient(status: Obj, now: float) -> None:
    """The DisruptionAllowed condition once the last allowed disruption is spent."""
    conditions = list(status.get("conditions") or [])
    cond = {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
            "observedGeneration": status.get("observedGeneration", 0)}
    for i, old in enumerate(conditions):
        if old.get("type") == "DisruptionAllowed":
            since = old.get("lastTransitionTime") if old.get("status") == "False" else rfc3339(now)
            conditions[i] = {**cond, "lastTransitionTime": since}
            break
    else:
        conditions.append({**cond, "lastTransitionTime": rfc3339(now)})
    status["conditions"] = conditions


async def _condition_and_delete(reg: Registry, namespace: str | None, name: str,
                                options: deletion.DeleteOptions) -> None:
    """Mark the pod with the DisruptionTarget condition, then delete it as asked (upstream's
    addConditionAndDeletePod); the preconditions apply to the pod before the mark."""
    pre = options.preconditions or {}
    if not options.dry_run:
        now = rfc3339(reg.cluster.clock.now())

        def mark(current: Obj) -> Obj:
            meta = current["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise _PreconditionFailed(errors.conflict("Pod", "", name, (
                    f"the UID in the precondition ({pre['uid']}) does not match the UID in record ({meta.get('uid')}). "
                    "The object might have been deleted and then recreated")))
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise _PreconditionFailed(errors.conflict("Pod", "", name, (
                    f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not match the "
                    f"ResourceVersion in record ({meta.get('resourceVersion')}). The object might have been modified")))
            status = current.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
            old = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
            since = old["lastTransitionTime"] if old and old.get("status") == "True" and old.get("lastTransitionTime") else now
            status["conditions"] = conditions + [{
                "type": "DisruptionTarget", "status": "True", "lastProbeTime": None, "lastTransitionTime": since,
                "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}]
            return current

        for attempt in range(RETRIES):
            try:
                marked = await reg.patch(namespace, name, mark, subresource="status")
                break
            except _PreconditionFailed as err:
                raise err.error from None
            except errors.APIError as err:
                # another writer got in between: the registry says 409 where upstream re-applies
                if err.code != 409 or attempt == RETRIES - 1:
                    raise
        if pre.get("resourceVersion"):
            # we changed the pod ourselves: the deletion is of the pod as we left it
            options = _with_rv(options, marked["metadata"]["resourceVersion"])
    await reg.delete(namespace, name, options)


class _PreconditionFailed(Exception):
    """The pod is not the one the eviction's preconditions name (not a race to retry)."""

    def __init__(self, error: errors.APIError):
        super().__init__(error.message)
        self.error = error


def _too_many_requests(name: str, *, still_processing: bool = False) -> errors.APIError:
    if still_processing:
        # a hint (even a small one) keeps well-behaved clients from hammering us
        return errors.APIError(429, "TooManyRequests", VIOLATION, headers={"Retry-After": "10"}, details={
            "causes": [{"reason": "DisruptionBudget",
                        "message": f"The disruption budget {name} is still being processed by the server."}],
            "retryAfterSeconds": 10})
    return errors.APIError(429, "TooManyRequests", VIOLATION)


