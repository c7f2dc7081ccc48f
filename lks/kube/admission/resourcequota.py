"""ResourceQuota admission (upstream's `plugin/pkg/admission/resourcequota` with the quota
evaluators of `pkg/quota/v1/evaluator/core`): a create (or a usage-changing update) that would
take a namespace past a ResourceQuota's `status.hard` is refused with 403 Forbidden, worded as
upstream (`exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2`).

What an object uses comes from its type's evaluator: pods (`pods`, `count/pods`, cpu, memory,
ephemeral storage, hugepages and extended resources, as requests and limits; a finished pod
uses only `count/pods`), services (`services`, `services.loadbalancers`,
`services.nodeports`), persistent volume claims (`requests.storage`, per storage class too)
and an object count (`count/<resource>.<group>`, and the legacy `configmaps`, `secrets`,
`replicationcontrollers`, `resourcequotas`) for everything else. Quota scopes
(Terminating, BestEffort, PriorityClass ...) select pods only.

An admitted request adds its usage to `status.used` at once, in a status write guarded by the
quota's resourceVersion, so concurrent creates cannot both take the last unit; the quota
controller (`lks.controllers.resourcequota`) recounts `status.used` from what exists, which
gives back what deleted objects held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lks.kube import admission, errors
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.kube.structural import Quantity, QuantityError, parse_quantity

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
Usage = dict[str, Quantity]

ATTEMPTS = 8  # status writes retried after losing a race to another admission
ONE = parse_quantity("1")
ZERO = parse_quantity("0")
_POD_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_VALIDATED = frozenset(("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"))
_LEGACY_COUNTS = frozenset(("configmaps", "secrets", "replicationcontrollers", "resourcequotas"))
_STORAGE_CLASS = ".storageclass.storage.k8s.io/"


# -- quantities -----------------------------------------------------------------------------


def add(a: Quantity, b: Quantity) -> Quantity:
    """`Quantity.Add`: a zero takes the other's format, else the first keeps its own."""
    return Quantity(a.value + b.value, b.format if a.value == 0 else a.format)


def add_usage(a: Usage, b: Usage) -> Usage:
    out = dict(a)
    for k, v in b.items():
        out[k] = add(out[k], v) if k in out else v
    return out


def parse_list(raw: Any) -> Usage:
    out: Usage = {}
    for k, v in (raw or {}).items():
        try:
            out[k] = parse_quantity(v)
        except QuantityError:
            continue
    return out


def show(usage: Usage) -> str:
    """Upstream's prettyPrint: `name=quantity` pairs, sorted, comma-separated."""
    return ",".join(f"{k}={usage[k]}" for k in sorted(usage))


def dump(usage: Usage) -> dict[str, str]:
    return {k: str(usage[k]) for k in sorted(usage)}


# -- evaluators -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluator:
    """What one resource type uses of a quota (upstream's `quota.Evaluator`)."""

    group: str
    resource: str

    @property
    def count_name(self) -> str:
        return f"count/{self.resource}" + (f".{self.group}" if self.group else "")

    def handles(self, operation: str) -> bool:
        return operation == "CREATE"

    def matching(self, names: Iterable[str]) -> list[str]:
        """Which of the quota's resource names this type's objects use."""
        own = {self.count_name} | ({self.resource} if not self.group and self.resource in _LEGACY_COUNTS else set())
        return sorted(n for n in names if n in own)

    def usage(self, obj: Obj, now: float) -> Usage:
        out = {self.count_name: ONE}
        if not self.group and self.resource in _LEGACY_COUNTS:
            out[self.resource] = ONE
        return out

    def scope_matches(self, scope: Obj, obj: Obj) -> bool:
        return False  # only pods can be selected by scope

    def constraints(self, required: list[str], obj: Obj) -> str | None:
        return None

    def matches(self, quota: Obj, obj: Obj) -> bool:
        """Whether the quota covers the object: it limits something the object uses, and the
        object is in every one of its scopes."""
        hard = ((quota.get("status") or {}).get("hard") or {}).keys()
        return bool(self.matching(hard)) and all(self.scope_matches(s, obj) for s in scope_selectors(quota))


class _Pods(Evaluator):
    def matching(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in names if _pod_resource(n))

    def usage(self, obj: Obj, now: float) -> Usage:
        out: Usage = {"count/pods": ONE}
        if not counts_for_quota(obj, now):
            return out
        out["pods"] = ONE
        requests, limits = pod_requests(obj), pod_limits(obj)
        for name in _POD_COMPUTE:
            if name in requests:
                out[name] = out[f"requests.{name}"] = requests[name]
            if name in limits:
                out[f"limits.{name}"] = limits[name]
        for name, value in requests.items():
            if name.startswith("hugepages-"):
                out[name] = out[f"requests.{name}"] = value
            elif _extended(name):
                out[f"requests.{name}"] = value
        return out

    def scope_matches(self, scope: Obj, obj: Obj) -> bool:
        spec = obj.get("spec") or {}
        name = scope.get("scopeName")
        if name in ("Terminating", "NotTerminating"):
            deadline = spec.get("activeDeadlineSeconds")
            return (deadline is not None and deadline >= 0) == (name == "Terminating")
        if name in ("BestEffort", "NotBestEffort"):
            return _best_effort(obj) == (name == "BestEffort")
        if name == "PriorityClass":
            value, op = spec.get("priorityClassName") or "", scope.get("operator")
            values = scope.get("values") or []
            return {"Exists": bool(value), "DoesNotExist": not value, "In": value in values,
                    "NotIn": value not in values}.get(op, False)
        if name == "CrossNamespacePodAffinity":
            affinity = spec.get("affinity") or {}
            terms = [t for kind in ("podAffinity", "podAntiAffinity") for t in _affinity_terms(affinity.get(kind))]
            return any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms)
        return False

    def constraints(self, required: list[str], obj: Obj) -> str | None:
        """Upstream's backward-compatible rule: when a quota limits cpu or memory, every
        container must state that request or limit."""
        wanted = set(required) & _VALIDATED
        missing: dict[str, set[str]] = {}
        spec = obj.get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            res = c.get("resources") or {}
            has = set()
            for name in ("cpu", "memory"):
                if name in (res.get("requests") or {}):
                    has |= {name, f"requests.{name}"}
                if name in (res.get("limits") or {}):
                    has.add(f"limits.{name}")
            for name in wanted - has:
                missing.setdefault(name, set()).add(c.get("name", ""))
        if not missing:
            return None
        return "must specify " + "; ".join(f"{k} for: {','.join(sorted(missing[k]))}" for k in sorted(missing))


class _Services(Evaluator):
    def handles(self, operation: str) -> bool:
        return operation in ("CREATE", "UPDATE")

    def matching(self, names: Iterable[str]) -> list[str]:
        own = {"count/services", "services", "services.loadbalancers", "services.nodeports"}
        return sorted(n for n in names if n in own)

    def usage(self, obj: Obj, now: float) -> Usage:
        spec = obj.get("spec") or {}
        ports = spec.get("ports") or []
        out = {"count/services": ONE, "services": ONE, "services.loadbalancers": ZERO, "services.nodeports": ZERO}
        if spec.get("type") == "NodePort":
            out["services.nodeports"] = _count(len(ports))
        elif spec.get("type") == "LoadBalancer":
            if spec.get("allocateLoadBalancerNodePorts") is False:
                out["services.nodeports"] = _count(sum(1 for p in ports if p.get("nodePort")))
            else:
                out["services.nodeports"] = _count(len(ports))
            out["services.loadbalancers"] = ONE
        return out


class _Claims(Evaluator):
    def handles(self, operation: str) -> bool:
        return operation in ("CREATE", "UPDATE")

    def matching(self, names: Iterable[str]) -> list[str]:
        own = {"count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"}
        return sorted(n for n in names if n in own or (_STORAGE_CLASS in n and n.rsplit("/", 1)[1] in own))

    def usage(self, obj: Obj, now: float) -> Usage:
        spec = obj.get("spec") or {}
        out = {"count/persistentvolumeclaims": ONE, "persistentvolumeclaims": ONE}
        cls = spec.get("storageClassName") or (obj["metadata"].get("annotations") or {}).get(
            "volume.beta.kubernetes.io/storage-class") or ""
        if cls:
            out[f"{cls}{_STORAGE_CLASS}persistentvolumeclaims"] = ONE
        requested = parse_list((spec.get("resources") or {}).get("requests")).get("storage")
        allocated = parse_list((obj.get("status") or {}).get("allocatedResources")).get("storage")
        if allocated is not None and (requested is None or allocated.value > requested.value):
            requested = allocated  # a shrinking resize keeps paying for what it holds
        if requested is not None:
            out["requests.storage"] = requested
            if cls:
                out[f"{cls}{_STORAGE_CLASS}requests.storage"] = requested
        return out


def evaluator_for(group: str, resource: str) -> Evaluator:
    if not group and resource == "pods":
        return _Pods(group, resource)
    if not group and resource == "services":
        return _Services(group, resource)
    if not group and resource == "persistentvolumeclaims":
        return _Claims(group, resource)
    return Evaluator(group, resource)


def tracked(names: Iterable[str]) -> set[tuple[str, str]]:
    """The (group, resource) types whose objects use the quota resources `names`."""
    out = set()
    for name in names:
        if name.startswith("count/"):
            resource, _, group = name[len("count/"):].partition(".")
            out.add((group, resource))
        elif name in _LEGACY_COUNTS:
            out.add(("", name))
        elif name.startswith("services"):
            out.add(("", "services"))
        elif _Claims("", "persistentvolumeclaims").matching([name]):
            out.add(("", "persistentvolumeclaims"))
        elif _pod_resource(name):
            out.add(("", "pods"))
    return out


def scope_selectors(quota: Obj) -> list[Obj]:
    spec = quota.get("spec") or {}
    out = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    return out + list((spec.get("scopeSelector") or {}).get("matchExpressions") or [])


def counts_for_quota(pod: Obj, now: float) -> bool:
    """Upstream's QuotaV1Pod: a finished pod, or one stuck terminating past its grace period
    (its node is gone, say), no longer counts."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod["metadata"]
    if "deletionTimestamp" in meta and meta.get("deletionGracePeriodSeconds") is not None:
        deleted = datetime.fromisoformat(meta["deletionTimestamp"].replace("Z", "+00:00")).timestamp()
        if now > deleted + meta["deletionGracePeriodSeconds"]:
            return False
    return True


def pod_requests(pod: Obj) -> Usage:
    return _pod_resources(pod, "requests")


def pod_limits(pod: Obj) -> Usage:
    return _pod_resources(pod, "limits")


def _pod_resources(pod: Obj, which: str) -> Usage:
    """The containers' sum, raised to any init container's need, plus the pod overhead
    (upstream's resourcehelper.PodRequests / PodLimits); pod-level resources win."""
    spec = pod.get("spec") or {}
    pod_level = parse_list((spec.get("resources") or {}).get(which))
    total: Usage = {}
    for c in spec.get("containers") or []:
        total = add_usage(total, parse_list((c.get("resources") or {}).get(which)))
    for c in spec.get("initContainers") or []:
        for k, v in parse_list((c.get("resources") or {}).get(which)).items():
            if k not in total or v.value > total[k].value:
                total[k] = v
    total.update({k: v for k, v in pod_level.items() if k in ("cpu", "memory")})
    overhead = parse_list(spec.get("overhead"))
    for k, v in overhead.items():
        if which == "requests" or k in total:
            total[k] = add(total[k], v) if k in total else v
    return total


def _pod_resource(name: str) -> bool:
    if name in ("pods", "count/pods") or name in _POD_COMPUTE:
        return True
    prefix, _, rest = name.partition(".")
    if prefix in ("requests", "limits") and rest in _POD_COMPUTE:
        return True
    if name.startswith(("hugepages-", "requests.hugepages-")):
        return True
    return prefix == "requests" and _extended(rest)


def _extended(name: str) -> bool:
    """An extended resource (`example.com/gpu`): qualified by a domain that is not Kubernetes'."""
    domain, slash, _ = name.partition("/")
    return bool(slash) and not name.startswith("requests.") and not (
        domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def _best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for which in ("requests", "limits"):
            if any(k in ("cpu", "memory") and parse_list({k: v}).get(k, ZERO).value > 0
                   for k, v in (res.get(which) or {}).items()):
                return False
    return True


def _affinity_terms(affinity: Obj | None) -> list[Obj]:
    if not affinity:
        return []
    terms = list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    return terms + [t.get("podAffinityTerm") or {} for t in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []]


def _count(n: int) -> Quantity:
    return parse_quantity(n)


# -- admission ------------------------------------------------------------------------------


def forbidden(reg: Registry, obj: Obj, why: str) -> errors.APIError:
    """403 as admission.NewForbidden words it: `pods "web-1" is forbidden: <why>`."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or "Unknown"
    return errors.forbidden(reg.rt.resource, reg.rt.group, name, why)


def check(reg: Registry, ev: Evaluator, quotas: list[Obj], operation: str, obj: Obj, old: Obj | None,
          now: float) -> list[tuple[Obj, Usage]]:
    """The quotas whose `status.used` the request raises, with their new usage; raises 403 when
    the request does not fit (upstream's CheckRequest)."""
    covering = []
    for quota in quotas:
        if not ev.matches(quota, obj):
            continue
        status = quota.get("status") or {}
        restricted = ev.matching((status.get("hard") or {}).keys())
        why = ev.constraints(restricted, obj)
        if why:
            raise forbidden(reg, obj, f"failed quota: {quota['metadata']['name']}: {why}")
        if any(n not in (status.get("used") or {}) for n in restricted):
            raise forbidden(reg, obj, f"status unknown for quota: {quota['metadata']['name']}, "
                                      f"resources: {','.join(sorted(restricted))}")
        covering.append(quota)
    if not covering:
        return []
    usage = ev.usage(obj, now)
    negative = sorted(k for k, v in usage.items() if v.value < 0)
    if negative:
        raise forbidden(reg, obj, f"quota usage is negative for resource(s): {','.join(negative)}")
    prev = ev.usage(old, now) if operation == "UPDATE" and old is not None else None
    out = []
    for quota in covering:
        delta = usage
        if prev is not None and ev.matches(quota, old or {}):
            delta = {k: Quantity(max(v.value - prev[k].value, 0), v.format) if k in prev else v for k, v in usage.items()}
        status = quota.get("status") or {}
        hard, used = parse_list(status.get("hard")), parse_list(status.get("used"))
        requested = {k: v for k, v in delta.items() if k in hard and v.value != 0}
        if not requested:
            continue
        new_used = {**used, **{k: add(used[k], v) if k in used else v for k, v in requested.items()}}
        exceeded = sorted(k for k in requested if new_used[k].value > hard[k].value)
        if exceeded:
            raise forbidden(reg, obj, (
                f"exceeded quota: {quota['metadata']['name']}, "
                f"requested: {show({k: requested[k] for k in exceeded})}, "
                f"used: {show({k: used[k] for k in exceeded if k in used})}, "
                f"limited: {show({k: hard[k] for k in exceeded})}"))
        out.append((quota, new_used))
    return out


@admission.plugin
class ResourceQuotaAdmission:
    ORDER = 100  # last, as upstream: a mutating webhook's larger requests are charged too

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if obj is None or not reg.rt.namespaced or operation not in ("CREATE", "UPDATE"):
            return
        ev = evaluator_for(reg.rt.group, reg.rt.resource)
        if not ev.handles(operation):
            return
        ns = obj["metadata"].get("namespace") or ""
        quotas_reg = self.cluster.registry("", "v1", "resourcequotas")
        cache = await quotas_reg.cache()
        prefix = quotas_reg.key(ns, "")
        quotas = [q for k, q in cache.objects.items() if k.startswith(prefix)]
        if not quotas:
            return
        if operation == "CREATE" and await reg.store.get(reg.key(ns, obj["metadata"].get("name") or "")) is not None:
            return  # the create fails with AlreadyExists: charging it would only overcount
        for _ in range(ATTEMPTS):
            updates = check(reg, ev, quotas, operation, obj, old, self.cluster.clock.now())
            if opts.dry_run or not updates:
                return
            lost = []
            for quota, used in updates:
                status = {**quota["status"], "used": {**quota["status"].get("used", {}), **dump(used)}}
                try:
                    await quotas_reg.update(ns, quota["metadata"]["name"], {**quota, "status": status},
                                            subresource="status")
                except errors.APIError as err:
                    if err.code != 409:
                        raise
                    lost.append(quota["metadata"]["name"])
            if not lost:
                return
            # another request changed these quotas first: check this one again against them
            listed = await quotas_reg.list(ns, ListOptions(LabelSelector([]), FieldSelector([])))
            quotas = [{**q, "metadata": {**q["metadata"], "namespace": ns}} for q in listed["items"]
                      if q["metadata"]["name"] in lost]
        raise errors.conflict("resourcequotas", "", ",".join(sorted(lost)), errors.MODIFIED)

    async def released(self, reg: Registry, obj: Obj) -> None:
        """Deleted objects give their usage back when the quota controller recounts."""
