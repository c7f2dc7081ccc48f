"""LimitRange admission (upstream's `plugin/pkg/admission/limitranger`): a new pod's containers
get the namespace's default requests and limits where they state none (recorded in the
`kubernetes.io/limit-ranger` annotation), then every container, the pod as a whole and a new
or resized PersistentVolumeClaim are checked against the ranges' `min`, `max` and
`maxLimitRequestRatio`; a violation is 403 Forbidden worded as upstream
(`maximum cpu usage per Container is 1, but limit is 2`).

It runs before ResourceQuota admission (`lks.kube.admission.resourcequota`, registered later),
so quotas see the defaulted requests, as upstream's mutating-before-validating order has it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lks.kube import admission
from lks.kube.admission.resourcequota import Usage, add_usage, forbidden, parse_list
from lks.kube.defaulting import qos
from lks.kube.structural import Quantity

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

ANNOTATION = "kubernetes.io/limit-ranger"
_MAX_MILLI = (2**63 - 1) // 1000  # beyond this upstream compares whole units


@admission.plugin
class LimitRanger:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if reg.rt.group or reg.rt.resource not in ("pods", "persistentvolumeclaims"):
            return
        # a pod's containers cannot change after create: only a new pod is defaulted and checked
        if reg.rt.resource == "pods" and operation != "CREATE":
            return
        ranges = await self._ranges(obj["metadata"].get("namespace") or "")
        if not ranges:
            return
        if reg.rt.resource == "pods":
            if any([set_defaults(obj, r) for r in ranges]):
                (obj.setdefault("status", {}))["qosClass"] = qos.pod_qos(obj.get("spec") or {})
            check = validate_pod
        else:
            check = validate_claim
        for r in ranges:
            problems = check(obj, r)
            if problems:
                raise forbidden(reg, obj, problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")

    async def released(self, reg: Registry, obj: Obj) -> None:
        """Nothing is held."""

    async def _ranges(self, ns: str) -> list[Obj]:
        reg = self.cluster.registry("", "v1", "limitranges")
        cache = await reg.cache()
        prefix = reg.key(ns, "")
        return [cache.objects[k] for k in sorted(cache.objects) if k.startswith(prefix)]


def set_defaults(pod: Obj, limit_range: Obj) -> bool:
    """Fill in the range's `defaultRequest` and `default` where a container states none;
    returns whether anything was set."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    if not requests and not limits:
        return False
    notes: list[str] = []
    spec = pod.setdefault("spec", {})
    for what, containers in (("container", spec.get("containers") or []),
                             ("init container", spec.get("initContainers") or [])):
        for c in containers:
            res = c.get("resources") or {}
            set_limits = sorted(k for k in limits if k not in (res.get("limits") or {}))
            set_requests = sorted(k for k in requests if k not in (res.get("requests") or {}))
            for k in set_limits:
                res.setdefault("limits", {})[k] = limits[k]
            for k in set_requests:
                res.setdefault("requests", {})[k] = requests[k]
            if set_limits or set_requests:
                c["resources"] = res
            if set_requests:
                notes.append(f"{', '.join(set_requests)} request for {what} {c.get('name', '')}")
            if set_limits:
                notes.append(f"{', '.join(set_limits)} limit for {what} {c.get('name', '')}")
    if not notes:
        return False
    pod["metadata"].setdefault("annotations", {})[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
    return True


def validate_pod(pod: Obj, limit_range: Obj) -> list[str]:
    """Upstream's PodValidateLimitFunc: per container (Container items) and for the pod's
    totals (Pod items)."""
    problems: list[str] = []
    spec = pod.get("spec") or {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        kind = item.get("type")
        if kind == "Container":
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                res = c.get("resources") or {}
                problems += _check(kind, item, parse_list(res.get("requests")), parse_list(res.get("limits")))
        elif kind == "Pod":
            problems += _check(kind, item, _pod_total(spec, "requests"), _pod_total(spec, "limits"))
    return problems


def validate_claim(claim: Obj, limit_range: Obj) -> list[str]:
    """PersistentVolumeClaim items bound the storage a claim requests."""
    problems: list[str] = []
    requests = parse_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, enforced in sorted(parse_list(item.get("min")).items()):
            problems += _min(item["type"], name, enforced, requests, {})
        for name, enforced in sorted(parse_list(item.get("max")).items()):
            req = requests.get(name)
            if req is None:
                problems.append(f"maximum {name} usage per {item['type']} is {enforced}.  No request is specified")
            elif _values(req, None, enforced)[0] > _values(req, None, enforced)[2]:
                problems.append(f"maximum {name} usage per {item['type']} is {enforced}, but request is {req}")
    return problems


def _check(kind: str, item: Obj, requests: Usage, limits: Usage) -> list[str]:
    out: list[str] = []
    for name, enforced in sorted(parse_list(item.get("min")).items()):
        out += _min(kind, name, enforced, requests, limits)
    for name, enforced in sorted(parse_list(item.get("max")).items()):
        out += _max(kind, name, enforced, requests, limits)
    for name, enforced in sorted(parse_list(item.get("maxLimitRequestRatio")).items()):
        out += _ratio(kind, name, enforced, requests, limits)
    return out


def _min(kind: str, name: str, enforced: Quantity, requests: Usage, limits: Usage) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    r, li, e = _values(req, lim, enforced)
    if req is None:
        return [f"minimum {name} usage per {kind} is {enforced}.  No request is specified"]
    if r < e:
        return [f"minimum {name} usage per {kind} is {enforced}, but request is {req}"]
    if lim is not None and li < e:
        return [f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"]
    return []


def _max(kind: str, name: str, enforced: Quantity, requests: Usage, limits: Usage) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    r, li, e = _values(req, lim, enforced)
    if lim is None:
        return [f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"]
    if li > e:
        return [f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"]
    if req is not None and r > e:
        return [f"maximum {name} usage per {kind} is {enforced}, but request is {req}"]
    return []


def _ratio(kind: str, name: str, enforced: Quantity, requests: Usage, limits: Usage) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    r, li, _ = _values(req, lim, enforced)
    if req is None or r == 0:
        return [f"{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"]
    if lim is None or li == 0:
        return [f"{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"]
    observed = li / r
    shown = observed
    allowed = float(math.ceil(enforced.value))
    if math.ceil(enforced.value) <= _MAX_MILLI:
        observed, allowed = observed * 1000, float(math.ceil(enforced.value * 1000))
    if observed > allowed:
        return [f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {shown:f}"]
    return []


def _values(req: Quantity | None, lim: Quantity | None, enforced: Quantity) -> tuple[int, int, int]:
    """Upstream's requestLimitEnforcedValues: milli-units when all three fit, whole units else."""
    qs = [q.value if q is not None else 0 for q in (req, lim, enforced)]
    whole = [math.ceil(v) for v in qs]
    if all(v <= _MAX_MILLI for v in whole):
        return tuple(math.ceil(v * 1000) for v in qs)  # type: ignore[return-value]
    return tuple(whole)  # type: ignore[return-value]


def _pod_total(spec: Obj, which: str) -> Usage:
    """The containers' sum, raised to any init container's (upstream's podRequests/podLimits)."""
    total: Usage = {}
    for c in spec.get("containers") or []:
        total = add_usage(total, parse_list((c.get("resources") or {}).get(which)))
    for c in spec.get("initContainers") or []:
        for k, v in parse_list((c.get("resources") or {}).get(which)).items():
            if k not in total or v.value > total[k].value:
                total[k] = v
    return total
