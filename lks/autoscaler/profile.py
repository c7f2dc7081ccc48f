"""The cluster autoscaler's profile as AKS has it: `properties.autoScalerProfile` of a managed
cluster, its keys (hyphenated, as on the wire), their defaults, the parsing of their values and
AKS's refusal of a bad one.

Values arrive as strings (`"10s"`, `"0.5"`, `"true"`), except the three booleans the API added
later (`daemonset-eviction-for-*`, `ignore-daemonsets-utilization`), which are JSON booleans.
`normalize(...)` turns a request's profile (merged over the stored one) into the stored form
with every key filled in; `parse(...)` gives the typed `Profile` the autoscaler's loop
(`lks.autoscaler`) reads, durations in seconds of the service's clock.

Beyond AKS, an agent pool may override the keys upstream lets a node group set on its own
(`NodeGroupAutoscalingOptions`): `normalize_pool(...)` checks a pool's `autoScalerProfile`
(only the keys it sets are stored: the others follow the cluster's), `for_pool(...)` lays it
over the cluster's `Profile` for that pool's nodes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from lks.arm.errors import ARMError, invalid_parameter

EXPANDERS = ("least-waste", "most-pods", "priority", "random")
BOOL_KEYS = ("daemonset-eviction-for-empty-nodes", "daemonset-eviction-for-occupied-nodes",
              "ignore-daemonsets-utilization")  # JSON booleans; every other key is a string

# Every key, with the value AKS shows for it when the user set none (`az aks show` of a cluster
# with an autoscaled pool), in the order of the API's model (az lists the valid keys in it).
# `scale-down-delay-after-delete` defaults to the scan interval.
DEFAULTS: dict[str, Any] = {
    "balance-similar-node-groups": "false",
    "daemonset-eviction-for-empty-nodes": False,
    "daemonset-eviction-for-occupied-nodes": True,
    "ignore-daemonsets-utilization": False,
    "expander": "random",
    "max-empty-bulk-delete": "10",
    "max-graceful-termination-sec": "600",
    "max-node-provision-time": "15m",
    "max-total-unready-percentage": "45",
    "new-pod-scale-up-delay": "0s",
    "ok-total-unready-count": "3",
    "scan-interval": "10s",
    "scale-down-delay-after-add": "10m",
    "scale-down-delay-after-delete": "10s",
    "scale-down-delay-after-failure": "3m",
    "scale-down-unneeded-time": "10m",
    "scale-down-unready-time": "20m",
    "scale-down-utilization-threshold": "0.5",
    "skip-nodes-with-local-storage": "false",
    "skip-nodes-with-system-pods": "true",
}
KEYS = tuple(DEFAULTS)

_SECONDS = re.compile(r"^(\d+)s?$")  # scan-interval: "an integer number of seconds" ("20s" or "20")
_MINUTES = re.compile(r"^(\d+)m$")  # "an integer followed by an 'm'"
_SECONDS_OR_MINUTES = re.compile(r"^(\d+)([sm])$")
_DURATION = re.compile(r"^(\d+)(s|m|h)$")  # "an integer followed by a unit ('s', 'm', 'h')"
_UNITS = {"s": 1, "m": 60, "h": 3600}


# The keys a pool may set for itself: upstream's per-node-group options that AKS's profile has.
POOL_KEYS = ("ignore-daemonsets-utilization", "max-node-provision-time", "scale-down-unneeded-time",
             "scale-down-unready-time", "scale-down-utilization-threshold")
_CLUSTER = "autoScalerProfile"
_POOL = "agentPoolProfile.autoScalerProfile"


def _bad(key: str, field: str = _CLUSTER) -> Exception:
    # AKS's own wording (seen in Azure/azure-sdk-for-go#14311 and MicrosoftDocs/azure-docs#123289)
    return invalid_parameter(f"Invalid value specified for the cluster-autoscaler parameter '{key}'. Please refer "
                             "to https://aka.ms/cluster-autoscaler for more details.", f"{field}.{key}")


def _seconds(pattern: re.Pattern[str], *, positive: bool = False) -> Callable[[str], float]:
    def parse(value: str) -> float:
        m = pattern.match(value)
        if m is None:
            raise ValueError(value)
        unit = m[2] if m.re.groups >= 2 else ("m" if pattern is _MINUTES else "s")
        seconds = int(m[1]) * _UNITS[unit]
        if positive and seconds <= 0:
            raise ValueError(value)
        return float(seconds)
    return parse


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not re.fullmatch(r"\d+", value):
            raise ValueError(value)
        number = int(value)
        if number < low or (high is not None and number > high):
            raise ValueError(value)
        return number
    return parse


def _threshold(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


def _truth(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


def _expander(value: str) -> str:
    if value not in EXPANDERS:
        raise ValueError(value)
    return value


# How each string key parses; the booleans of `BOOL_KEYS` are handled apart.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "balance-similar-node-groups": _truth,
    "expander": _expander,
    "max-empty-bulk-delete": _integer(1),
    "max-graceful-termination-sec": _integer(0),
    "max-node-provision-time": _seconds(_MINUTES, positive=True),
    "max-total-unready-percentage": _integer(0, 100),
    "new-pod-scale-up-delay": _seconds(_DURATION),
    "ok-total-unready-count": _integer(0),
    "scale-down-delay-after-add": _seconds(_MINUTES),
    "scale-down-delay-after-delete": _seconds(_SECONDS_OR_MINUTES),
    "scale-down-delay-after-failure": _seconds(_MINUTES),
    "scale-down-unneeded-time": _seconds(_MINUTES),
    "scale-down-unready-time": _seconds(_MINUTES),
    "scale-down-utilization-threshold": _threshold,
    "scan-interval": _seconds(_SECONDS, positive=True),
    "skip-nodes-with-local-storage": _truth,
    "skip-nodes-with-system-pods": _truth,
}


def _check(key: str, value: Any, field: str = _CLUSTER) -> Any:
    """The stored form of one key's value, or AKS's refusal (`field`: where the profile sits)."""
    if key in BOOL_KEYS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(key, field)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad(key, field)
    text = str(value).strip()
    try:
        _PARSERS[key](text)
    except ValueError:
        raise _bad(key, field) from None
    return text.lower() if _PARSERS[key] is _truth else text


def normalize(given: Any, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile to store: `stored` (the cluster's current one) overlaid with `given` (the
    request's), each key checked, every key AKS has filled in. A key given as null or "" falls
    back to its default, as `az aks update --cluster-autoscaler-profile key=` does. Keys AKS does
    not know are dropped, as ARM drops unknown properties."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise invalid_parameter("The value of parameter autoScalerProfile is invalid.", "autoScalerProfile")
    merged = {k: v for k, v in (stored or {}).items() if k in DEFAULTS}
    for key, value in given.items():
        if key not in DEFAULTS:
            continue
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = _check(key, value)
    profile = {}
    for key in KEYS:
        if key in merged:
            profile[key] = merged[key]
        elif key == "scale-down-delay-after-delete":
            profile[key] = merged.get("scan-interval", DEFAULTS["scan-interval"])
        else:
            profile[key] = DEFAULTS[key]
    if re.fullmatch(r"\d+", str(profile["scale-down-delay-after-delete"])):  # a bare scan interval, in seconds
        profile["scale-down-delay-after-delete"] += "s"
    return profile


@dataclasses.dataclass(frozen=True)
class Profile:
    """The profile in the autoscaler's terms: durations in seconds, numbers as numbers."""

    scan_interval: float = 10.0
    scale_down_delay_after_add: float = 600.0
    scale_down_delay_after_delete: float = 10.0
    scale_down_delay_after_failure: float = 180.0
    scale_down_unneeded_time: float = 600.0
    scale_down_unready_time: float = 1200.0
    scale_down_utilization_threshold: float = 0.5
    max_graceful_termination_sec: int = 600
    balance_similar_node_groups: bool = False
    expander: str = "random"
    skip_nodes_with_local_storage: bool = False
    skip_nodes_with_system_pods: bool = True
    max_empty_bulk_delete: int = 10
    new_pod_scale_up_delay: float = 0.0
    max_total_unready_percentage: int = 45
    ok_total_unready_count: int = 3
    max_node_provision_time: float = 900.0
    daemonset_eviction_for_empty_nodes: bool = False
    daemonset_eviction_for_occupied_nodes: bool = True
    ignore_daemonsets_utilization: bool = False


def normalize_pool(given: Any, stored: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A pool's overrides to store: `stored` overlaid with `given`, each value checked as the
    cluster's are, a key given as null or "" dropped (back to the cluster's value); None when
    none is left. A key outside `POOL_KEYS` is refused by name: unlike the cluster's profile,
    this extension has no older API version whose keys it must pass over in silence."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise invalid_parameter(f"The value of parameter {_POOL} is invalid.", _POOL)
    merged = {k: v for k, v in (stored or {}).items() if k in POOL_KEYS}
    for key, value in given.items():
        if key not in POOL_KEYS:
            scope = ("applies to the whole cluster: set it in the managed cluster's autoScalerProfile"
                     if key in DEFAULTS else "is not a cluster-autoscaler parameter")
            raise invalid_parameter(f"The cluster-autoscaler parameter '{key}' cannot be set on an agent pool: it "
                                    f"{scope}. An agent pool's autoScalerProfile takes {', '.join(POOL_KEYS)}.",
                                    f"{_POOL}.{key}")
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = _check(key, value, _POOL)
    return {k: merged[k] for k in POOL_KEYS if k in merged} or None


def for_pool(base: Profile, overrides: dict[str, Any] | None) -> Profile:
    """`base` (the cluster's profile) with a pool's overrides; an unreadable override (stored
    before a rule tightened) keeps the cluster's value."""
    if not overrides:
        return base
    fields = {}
    for key, value in overrides.items():
        if key not in POOL_KEYS:
            continue
        try:
            fields[key.replace("-", "_")] = _check(key, value) if key in BOOL_KEYS else _PARSERS[key](str(value))
        except (ValueError, ARMError):
            continue
    return dataclasses.replace(base, **fields) if fields else base


def parse(stored: dict[str, Any] | None) -> Profile:
    """The typed profile of a cluster document's `autoScalerProfile` (None: every default)."""
    profile = normalize(None, stored)
    fields = {}
    for key, value in profile.items():
        name = key.replace("-", "_")
        fields[name] = value if key in BOOL_KEYS else _PARSERS[key](str(value))
    return Profile(**fields)
