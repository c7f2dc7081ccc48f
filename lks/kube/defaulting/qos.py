"""A Pod's QoS class, computed as upstream's `qos.ComputePodQOS` does.

The Pod strategy writes it into `status.qosClass` on create (`GetPodQOS` of a fresh Pod), after
defaulting has copied limits into missing requests. Only cpu and memory count, and only
quantities above zero; pod-level `spec.resources` replaces the containers' when it is set
(PodLevelResources, beta and on since 1.34). Quantities are compared exactly, after the
round-up to milli-units that upstream's `SetDefaults_ResourceList` applies.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Any

import orjson

from lks.kube.defaulting._json import Obj, child, children

_COMPUTE = ("cpu", "memory")
_NUMBER = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(.*)")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_SUFFIXES = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


@functools.lru_cache(maxsize=4096)
def quantity(value: Any) -> Fraction | None:
    """The exact value of a resource quantity (string or JSON number), None if malformed."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    match = _NUMBER.fullmatch(str(value))
    if match is None:
        return None
    number, suffix = Fraction(match[1]), match[2]
    if suffix in _SUFFIXES:
        scale = _SUFFIXES[suffix]
    elif exp := _EXPONENT.fullmatch(suffix):
        scale = Fraction(10) ** int(exp[1])
    else:
        return None
    return Fraction(math.ceil(number * scale * 1000), 1000)


_classes: dict[bytes, str] = {}  # by the pod's resources: a ReplicaSet's pods share them


def pod_qos(spec: Obj) -> str:
    try:
        key = orjson.dumps([spec.get("resources"), [c.get("resources") for c in children(spec, "containers")],
                            [c.get("resources") for c in children(spec, "initContainers")]])
    except (TypeError, orjson.JSONEncodeError):
        return _pod_qos(spec)
    qos = _classes.get(key)
    if qos is None:
        if len(_classes) >= 1024:
            _classes.clear()
        qos = _classes[key] = _pod_qos(spec)
    return qos


def _pod_qos(spec: Obj) -> str:
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    pod_level = child(spec, "resources")
    if pod_level is not None:
        _add(requests, pod_level.get("requests"))
        if pod_level.get("limits"):
            if not _add(limits, pod_level["limits"]) >= set(_COMPUTE):
                guaranteed = False
    else:
        # ephemeral containers cannot set resources, so they never count
        for container in [*children(spec, "containers"), *children(spec, "initContainers")]:
            resources = child(container, "resources") or {}
            _add(requests, resources.get("requests"))
            if not _add(limits, resources.get("limits")) >= set(_COMPUTE):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()):
        if len(requests) == len(limits):
            return "Guaranteed"
    return "Burstable"


def _add(total: dict[str, Fraction], resources: Any) -> set[str]:
    """Sum the positive cpu and memory quantities into `total`; the names that had one."""
    found: set[str] = set()
    if not isinstance(resources, dict):
        return found
    for name in _COMPUTE:
        value = quantity(resources.get(name))
        if value is not None and value > 0:
            total[name] = total.get(name, Fraction(0)) + value
            found.add(name)
    return found
