"""Cell formats shared by the per-type printers, reproduced from apimachinery and kubectl.

kubectl prints a server-side Table's cells verbatim, so every string here must match
kube-apiserver byte for byte: `duration.HumanDuration` ages, `labels.FormatLabels`,
`metav1.FormatLabelSelector`, the `<none>`/`<unset>`/`<unknown>` placeholders and the
"+ N more..." truncation. Times are epoch seconds so callers can pass an injected clock's
`now` instead of reading wall time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

_NS = 1_000_000_000
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC).timestamp()  # Go's time.Time{}: "not set"


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division, which truncates toward zero (Python's // floors)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration`: about three significant figures ("45s", "5m3s", "3h5m", "2d3h")."""
    d = round(seconds * _NS)  # Go works on integer nanoseconds; so do the boundaries below
    secs = _trunc_div(d, _NS)
    # up to two seconds in the future is clock skew between hosts, shown as "now"
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = d // (60 * _NS)
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = d // (3600 * _NS)
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> float | None:
    """An RFC 3339 `Time`/`MicroTime` as epoch seconds; None when unset, zero or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    seconds = stamp.timestamp()
    return None if seconds == _ZERO_TIME else seconds


def since(value: Any, now: float) -> str:
    """`translateTimestampSince`: the age of a timestamp, or `<unknown>` when it is unset."""
    stamp = value if isinstance(value, float) else parse_time(value)
    return "<unknown>" if stamp is None else human_duration(now - stamp)


def age(obj: Mapping, now: float) -> str:
    return since(meta(obj).get("creationTimestamp"), now)


def rfc3339(value: Any) -> str:
    """`Time.UTC().Format(time.RFC3339)`: whole seconds, `Z`; the zero time when unset."""
    stamp = parse_time(value)
    t = datetime(1, 1, 1, tzinfo=UTC) if stamp is None else datetime.fromtimestamp(math.floor(stamp), UTC)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


# --- reading objects: missing and null fields read as Go's zero values ---------------------

def field(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def mapping(obj: Any, *path: str) -> Mapping:
    value = field(obj, *path)
    return value if isinstance(value, Mapping) else {}


def items(obj: Any, *path: str) -> list:
    value = field(obj, *path)
    return value if isinstance(value, list) else []


def text(obj: Any, *path: str) -> str:
    value = field(obj, *path)
    return "" if value is None else str(value)


def number(obj: Any, *path: str) -> int:
    value = field(obj, *path)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def replicas(spec: Mapping) -> int:
    """`spec.replicas`, which defaulting sets to 1 when absent."""
    return 1 if spec.get("replicas") is None else number(spec, "replicas")


def meta(obj: Mapping) -> Mapping:
    return mapping(obj, "metadata")


def name(obj: Mapping) -> str:
    return text(obj, "metadata", "name")


def deleting(obj: Mapping) -> bool:
    return meta(obj).get("deletionTimestamp") is not None


def condition(conditions: Iterable, kind: str) -> Mapping | None:
    """The first condition of a type, as upstream's helpers find it."""
    return next((c for c in conditions if isinstance(c, Mapping) and c.get("type") == kind), None)


def condition_true(conditions: Iterable, kind: str) -> bool:
    found = condition(conditions, kind)
    return found is not None and found.get("status") == "True"


# --- value formats -------------------------------------------------------------------------

def or_placeholder(value: str, placeholder: str = "<none>") -> str:
    return value if value else placeholder


def print_bool(value: bool) -> str:
    return "True" if value else "False"


def print_bool_ptr(value: Any) -> str:
    return "<unset>" if value is None else print_bool(bool(value))


def int_or_string(value: Any) -> str:
    """`intstr.IntOrString.String()`."""
    return str(int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def quantity(value: Any) -> str:
    """`resource.Quantity.String()` of a stored quantity; the zero quantity is "0".

    Stored quantities are expected in canonical form already (the API server canonicalizes on
    write, as upstream's decoder does), so the stored text is printed as is.
    """
    return "0" if value is None else int_or_string(value)


def quantity_ptr(value: Any) -> str:
    """`(*resource.Quantity).String()`, which prints a nil pointer as `<nil>`."""
    return "<nil>" if value is None else quantity(value)


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `key=value` pairs, `<none>` when empty."""
    pairs = sorted(f"{k}={v}" for k, v in (labels or {}).items()) if isinstance(labels, Mapping) else []
    return ",".join(pairs) or "<none>"


_SELECTOR_OPS = {"In": "in", "NotIn": "notin"}


def selector_string(selector: Any) -> str | None:
    """`metav1.LabelSelectorAsSelector(s).String()`; None when the selector does not convert.

    A nil selector (`labels.Nothing()`) and an empty one (`labels.Everything()`) both print "".
    Requirements are sorted by key (stably) and set values sorted, as the selector's String() does.
    """
    if not isinstance(selector, Mapping):
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in mapping(selector, "matchLabels").items():
        requirements.append((key, f"{key}={value}"))
    for expr in items(selector, "matchExpressions"):
        key, op, values = text(expr, "key"), text(expr, "operator"), [str(v) for v in items(expr, "values")]
        if op in _SELECTOR_OPS:
            if not values:
                return None
            requirements.append((key, f"{key} {_SELECTOR_OPS[op]} ({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return None
            requirements.append((key, key if op == "Exists" else f"!{key}"))
        else:
            return None
    requirements.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in requirements)


def format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: `<none>` for an empty selector, `<error>` for a bad one."""
    result = selector_string(selector)
    return "<error>" if result is None else result or "<none>"


def go_label_selector(selector: Mapping) -> str:
    """The generated `(*metav1.LabelSelector).String()` (a Go struct dump, not selector syntax)."""
    labels = mapping(selector, "matchLabels")
    pairs = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{text(e, 'key')},Operator:{text(e, 'operator')},"
        f"Values:[{' '.join(str(v) for v in items(e, 'values'))}],}},"
        for e in items(selector, "matchExpressions")
    )
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{pairs}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def layout_containers(containers: Iterable) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, each comma-joined."""
    containers = [c for c in containers if isinstance(c, Mapping)]
    return ",".join(text(c, "name") for c in containers), ",".join(text(c, "image") for c in containers)


def list_with_more(values: list[str], more: bool, count: int, limit: int) -> str:
    joined = ",".join(values)
    if more:
        return f"{joined} + {count - limit} more..."
    return joined or "<unset>"


def load_balancer_ingress(status: Any, wide: bool = True) -> str:
    """`loadBalancerStatusStringer`: sorted unique IPs (else hostnames); clipped unless wide.

    The API server always prints wide, so the clip never shows in a served Table.
    """
    values = set()
    for ingress in items(status, "ingress"):
        value = text(ingress, "ip") or text(ingress, "hostname")
        if value:
            values.add(value)
    result = ",".join(sorted(values))
    if not wide and len(result) > 16:
        result = result[:13] + "..."
    return result


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: Iterable) -> str:
    """`helper.GetAccessModesAsString`: fixed order, duplicates dropped."""
    present = set(modes)
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def group_qualified(name: str, group: str) -> str:
    """`schema.GroupKind`/`GroupResource` `String()`: `name.group`, or `name` in the core group."""
    return f"{name}.{group}" if group else name
