"""Resource arithmetic for the scheduler: quantities as integers (millicores for cpu, units
rounded up for everything else, as `Quantity.MilliValue()`/`Value()`), a pod's requests as
upstream's `resource.PodRequests` computes them (containers summed, init containers as a
running maximum with restartable "sidecar" init containers added to everything after them,
pod-level `spec.resources` for cpu and memory, `overhead` on top), and a node's allocatable.

Requests are computed once per pod version (`lks.controllers.scheduler.snapshot` keeps them in
its `PodInfo`), so the per-node work of the filters and scores in `plugins` is integer compares.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from lks.kube.structural import QuantityError, parse_quantity

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100  # schedutil.DefaultMilliCPURequest: what a container without a cpu request counts as
DEFAULT_MEMORY = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
_POD_LEVEL = (CPU, MEMORY)  # resources pod-level `spec.resources` may set (PodLevelResources, on since 1.34)


@functools.lru_cache(maxsize=16384)
def milli(value: Any) -> int:
    """`Quantity.MilliValue()`: thousandths, rounded up; 0 for what does not parse."""
    try:
        return math.ceil(parse_quantity(value).value * 1000)
    except (QuantityError, TypeError, ValueError):
        return 0


@functools.lru_cache(maxsize=16384)
def whole(value: Any) -> int:
    """`Quantity.Value()`: the value rounded up to an integer; 0 for what does not parse."""
    try:
        return math.ceil(parse_quantity(value).value)
    except (QuantityError, TypeError, ValueError):
        return 0


def is_scalar(name: str) -> bool:
    """`schedutil.IsScalarResourceName`: extended (`example.com/foo`), prefixed native
    (`kubernetes.io/...`), hugepages and attachable volumes; counted per name."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def amount(name: str, value: Any) -> int:
    return milli(value) if name == CPU else whole(value)


class Requests:
    """What a pod asks of a node. `nz_cpu`/`nz_mem` count a container without a cpu or memory
    request as the scheduler's defaults (upstream's `NonZeroRequested`), used by the
    least-allocated score so that request-less pods still spread."""

    __slots__ = ("cpu", "mem", "eph", "scalars", "nz_cpu", "nz_mem")

    def __init__(self, cpu: int = 0, mem: int = 0, eph: int = 0, scalars: dict[str, int] | None = None,
                 nz_cpu: int = 0, nz_mem: int = 0):
        self.cpu, self.mem, self.eph = cpu, mem, eph
        self.scalars = scalars
        self.nz_cpu, self.nz_mem = nz_cpu, nz_mem

    def empty(self) -> bool:
        return not (self.cpu or self.mem or self.eph or self.scalars)

    def shape(self) -> tuple:
        """A hashable key: pods of one shape score alike on a node (the scores' cache key)."""
        return (self.cpu, self.mem, self.nz_cpu, self.nz_mem)


def _add(total: dict[str, int], resources: Any) -> None:
    if isinstance(resources, dict):
        for name, value in resources.items():
            total[name] = total.get(name, 0) + amount(name, value)


def _max(total: dict[str, int], other: dict[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def _aggregate(spec: Obj, defaults: bool) -> dict[str, int]:
    """`AggregateContainerRequests`; with `defaults`, a container missing a cpu or memory
    request counts the scheduler's default for it (`NonMissingContainerRequests`)."""

    def requests(container: Obj) -> dict[str, int]:
        out: dict[str, int] = {}
        _add(out, ((container.get("resources") or {}).get("requests")))
        if defaults:
            out.setdefault(CPU, DEFAULT_MILLI_CPU)
            out.setdefault(MEMORY, DEFAULT_MEMORY)
        return out

    total: dict[str, int] = {}
    for c in spec.get("containers") or ():
        for name, value in requests(c).items():
            total[name] = total.get(name, 0) + value
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        req = requests(c)
        if c.get("restartPolicy") == "Always":
            # a sidecar runs beside everything after it: it adds to the pod's sum and to every
            # later init container's peak
            for name, value in req.items():
                total[name] = total.get(name, 0) + value
                sidecars[name] = sidecars.get(name, 0) + value
            peak = dict(sidecars)
        else:
            peak = dict(req)
            for name, value in sidecars.items():
                peak[name] = peak.get(name, 0) + value
        _max(init_max, peak)
    _max(total, init_max)
    return total


def _pod_total(spec: Obj, defaults: bool) -> dict[str, int]:
    total = _aggregate(spec, defaults)
    pod_level = (spec.get("resources") or {}).get("requests")
    if isinstance(pod_level, dict):
        for name in _POD_LEVEL:
            if name in pod_level:
                total[name] = amount(name, pod_level[name])
    _add(total, spec.get("overhead"))
    return total


def pod_requests(spec: Obj) -> Requests:
    """`resource.PodRequests` (and the non-zero variant) of a pod spec."""
    total = _pod_total(spec, False)
    nonzero = _pod_total(spec, True)
    scalars = {k: v for k, v in total.items() if v and is_scalar(k)} or None
    return Requests(total.get(CPU, 0), total.get(MEMORY, 0), total.get(EPHEMERAL, 0), scalars,
                    nonzero.get(CPU, 0), nonzero.get(MEMORY, 0))


class Allocatable:
    """A node's `status.allocatable`, as integers."""

    __slots__ = ("cpu", "mem", "eph", "pods", "scalars")

    def __init__(self, status: Obj | None):
        alloc = (status or {}).get("allocatable") or {}
        self.cpu = milli(alloc[CPU]) if CPU in alloc else 0
        self.mem = whole(alloc[MEMORY]) if MEMORY in alloc else 0
        self.eph = whole(alloc[EPHEMERAL]) if EPHEMERAL in alloc else 0
        self.pods = whole(alloc[PODS]) if PODS in alloc else 0
        self.scalars = {k: whole(v) for k, v in alloc.items() if is_scalar(k)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Allocatable) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self) -> int:  # pragma: no cover - not used as a key
        return hash((self.cpu, self.mem, self.eph, self.pods))
