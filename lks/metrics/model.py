"""The usage model of simulated containers: what a container that runs nothing "uses", so that
`kubectl top`, the HorizontalPodAutoscaler and the cluster autoscaler have figures to work with.
`lks.metrics.source` asks it for the containers of pods on simulated nodes; Process pods are
measured for real (`lks.metrics.procfs`).

A pod steers it with annotations, as it steers the simulated runtime (`lks.nodes.runtime`): the
pod-wide key applies to each regular container, `<key>.<container name>` to one container.

- `lks.dev/simulate-cpu: "250m"`, `lks.dev/simulate-memory: "64Mi"`: a constant usage
  (Kubernetes quantities).
- `lks.dev/simulate-cpu-curve: "100m@0s,800m@60s,100m@300s"` (and `simulate-memory-curve`):
  usage over the container's life (seconds since it started, suffix `s`, `m` or `h`), linear
  between points, the first value before the first point and the last after the last point. A
  curve wins over a constant of the same container.
- Without annotations: a plausible fraction of the container's requests (`DEFAULT_CPU_SHARE` of
  its cpu request, `DEFAULT_MEMORY_SHARE` of its memory request; without a request
  `DEFAULT_CPU` and `DEFAULT_MEMORY`), varied by ±`JITTER` per pod (a hash of its uid, stable over
  time) so that pods of one Deployment do not all show the same figure. Usage never exceeds a
  memory limit; cpu above a cpu limit is throttled to it, as CFS quotas do.

A malformed annotation is ignored (the default applies), as the runtime's are.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from lks.kube.defaulting import qos

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ANNOTATION = "lks.dev/simulate-"
CPU, MEMORY = "cpu", "memory"
DEFAULT_CPU_SHARE = 0.4  # of the cpu request: a service that is mostly idle, with headroom
DEFAULT_MEMORY_SHARE = 0.6  # of the memory request: a warm heap
DEFAULT_CPU = 0.005  # cores, for a container without a cpu request (an idle process)
DEFAULT_MEMORY = 16 * 2**20  # bytes, without a memory request
JITTER = 0.2  # each pod's default is its share times 1 ± this much (stable per pod uid)

_POINT = re.compile(r"^\s*([^@\s]+)\s*@\s*([0-9]+(?:\.[0-9]*)?)\s*([smh]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Curve:
    """Usage against seconds since the container started: (seconds, value) points, sorted."""

    points: tuple[tuple[float, float], ...]

    def at(self, t: float) -> float:
        pts = self.points
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False):
            if t <= t1:
                return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
        return pts[-1][1]


def parse_curve(text: str) -> Curve | None:
    """`"100m@0s,800m@60s"` as a `Curve` (values as plain numbers: cores or bytes); None if malformed."""
    points: list[tuple[float, float]] = []
    for part in text.split(","):
        m = _POINT.match(part)
        if m is None:
            return None
        value = qos.quantity(m[1])
        if value is None or value < 0:
            return None
        points.append((float(m[2]) * _UNIT[m[3]], float(value)))
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    return Curve(tuple(points))


@dataclass(frozen=True, slots=True)
class Plan:
    """How one container's usage of one resource goes: a constant or a curve."""

    constant: float = 0.0
    curve: Curve | None = None
    cap: float | None = None  # its limit

    def at(self, age: float) -> float:
        value = self.curve.at(age) if self.curve is not None else self.constant
        return min(value, self.cap) if self.cap is not None else value


def _annotation(notes: dict[str, str], key: str, container: str) -> str | None:
    value = notes.get(f"{key}.{container}")
    return notes.get(key) if value is None else value


def _jitter(uid: str) -> float:
    digest = hashlib.blake2b(uid.encode(), digest_size=2).digest()
    return 1.0 + JITTER * (int.from_bytes(digest, "big") / 0xFFFF * 2 - 1)


def _plan(notes: dict[str, str], container: Obj, what: str, jitter: float) -> Plan:
    name = container.get("name", "")
    resources = container.get("resources") or {}
    limit = qos.quantity((resources.get("limits") or {}).get(what))
    cap = float(limit) if limit else None
    text = _annotation(notes, f"{ANNOTATION}{what}-curve", name)
    if text is not None:
        curve = parse_curve(text)
        if curve is not None:
            return Plan(curve=curve, cap=cap)
        log.debug("annotation %s%s-curve=%r is not a curve; ignored", ANNOTATION, what, text)
    text = _annotation(notes, f"{ANNOTATION}{what}", name)
    if text is not None:
        value = qos.quantity(text)
        if value is not None and value >= 0:
            return Plan(constant=float(value), cap=cap)
        log.debug("annotation %s%s=%r is not a quantity; ignored", ANNOTATION, what, text)
    request = qos.quantity((resources.get("requests") or {}).get(what))
    if what == CPU:
        base = float(request) * DEFAULT_CPU_SHARE if request else DEFAULT_CPU
    else:
        base = float(request) * DEFAULT_MEMORY_SHARE if request else DEFAULT_MEMORY
    return Plan(constant=base * jitter, cap=cap)


@dataclass(frozen=True, slots=True)
class ContainerModel:
    cpu: Plan
    memory: Plan


def pod_model(pod: Obj) -> dict[str, ContainerModel]:
    """Each regular container's model (by name), from the pod's annotations and resources."""
    meta = pod.get("metadata") or {}
    notes = meta.get("annotations") or {}
    jitter = _jitter(meta.get("uid") or meta.get("name") or "")
    return {c.get("name", ""): ContainerModel(_plan(notes, c, CPU, jitter), _plan(notes, c, MEMORY, jitter))
            for c in (pod.get("spec") or {}).get("containers") or []}


def usage(model: ContainerModel, age: float) -> tuple[float, int]:
    """(cores, bytes) of a container `age` seconds after it started; memory in whole pages,
    as a working set is."""
    memory = int(model.memory.at(age))
    return model.cpu.at(age), memory - memory % 4096
