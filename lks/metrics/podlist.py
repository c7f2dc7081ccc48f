"""The body of a PodMetricsList, as JSON or as Kubernetes protobuf (what kubectl asks for first,
and metrics-server answers), assembled from bytes kept per pod, so that `kubectl top pods -A`
over 10,000 pods neither builds 10,000 objects nor serializes them again each time.

A PodMetrics is made of three kinds of parts. The pod's name, namespace and labels change only
with a new version of the pod (the watch cache replaces the object on every change: its
identity tells); the window and the containers' quantities only with the pod's usage (the
source hands out one `containers` dict per pod version while the usage is constant); the
`creationTimestamp` (now) and the `timestamp` with each request. The first two are serialized
once and kept (`JsonParts`, `ProtoParts`), the last written per request. The JSON is byte for byte what orjson
writes for `lks.metrics.api.pod_metrics`'s objects, and the protobuf decodes to the same
object (tests/metrics/test_podlist.py checks both). `lks.metrics.api` chooses the format.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from lks.clock import rfc3339
from lks.metrics import quantities
from lks.metrics.source import PodUsage

Obj = dict[str, Any]
Found = tuple[str, Obj, PodUsage]  # a pod's key in the watch cache, the pod, its usage

API_VERSION = "metrics.k8s.io/v1beta1"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
_JSON_LIST = b'{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":['


# -- protobuf wire format (k8s.io/metrics/pkg/apis/metrics/v1beta1/generated.proto) ------------

@functools.lru_cache(maxsize=65536)
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # an int64 below zero: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes, message)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _string(number: int, text: str) -> bytes:
    return _bytes(number, text.encode())


def _integer(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _time(number: int, ts: float) -> bytes:
    """A meta/v1 Time at the second precision its JSON has (so both decode to one object)."""
    return _bytes(number, _integer(1, int(ts)) + _integer(2, 0))


def _labels(labels: dict[str, str] | None) -> bytes:
    """ObjectMeta.labels (field 11): map entries in key order, as Go's generated code writes them."""
    return b"".join(_bytes(11, _string(1, k) + _string(2, v)) for k, v in sorted((labels or {}).items()))


_CPU_KEY, _MEMORY_KEY = b"\x0a\x03cpu", b"\x0a\x06memory"  # map keys: field 1, "cpu" / "memory"


def _usage_entries(number: int, cpu: float, memory: int) -> bytes:
    """A `map<string, Quantity>` of cpu and memory: entries {1: name, 2: Quantity{1: string}}."""
    return (_bytes(number, _CPU_KEY + _bytes(2, _string(1, quantities.cpu_quantity(cpu))))
            + _bytes(number, _MEMORY_KEY + _bytes(2, _string(1, quantities.memory_quantity(memory)))))


def envelope(kind: str, raw: bytes) -> bytes:
    """The protobuf serializer's frame: the magic, then runtime.Unknown {typeMeta, raw,
    contentEncoding, contentType}."""
    type_meta = _string(1, API_VERSION) + _string(2, kind)
    return MAGIC + _bytes(1, type_meta) + _bytes(2, raw) + _string(3, "") + _string(4, "")


def object_meta(name: str, namespace: str, labels: dict[str, str] | None, created: float) -> bytes:
    """ObjectMeta {name, generateName, namespace, selfLink, uid, resourceVersion, generation,
    creationTimestamp, labels}: the scalars Go always writes, then the set fields."""
    return _meta_head(name, namespace) + _time(8, created) + _labels(labels)


# ObjectMeta's generateName (2) between name and namespace, and selfLink, uid, resourceVersion
# (4-6, empty) and generation (7, zero) after them, as Go writes the unset scalars
_GENERATE_NAME, _META_SCALARS = b"\x12\x00", b"\x22\x00\x2a\x00\x32\x00\x38\x00"


def _meta_head(name: str, namespace: str) -> bytes:
    return _string(1, name) + _GENERATE_NAME + _string(3, namespace) + _META_SCALARS


def node_metrics(node: Obj, cpu: float, memory: int, timestamp: float, window: float, now: float) -> bytes:
    """A NodeMetrics message {metadata, timestamp, window, usage}."""
    meta = node["metadata"]
    return (_bytes(1, object_meta(meta["name"], "", meta.get("labels"), now)) + _time(2, timestamp)
            + _bytes(3, _integer(1, quantities.nanoseconds(window))) + _usage_entries(4, cpu, memory))


def list_body(list_meta_items: bytes) -> bytes:
    """A *List message: an empty ListMeta {selfLink, resourceVersion, continue}, then the items."""
    return _bytes(1, _string(1, "") + _string(2, "") + _string(3, "")) + list_meta_items


# -- per pod -----------------------------------------------------------------------------------

class _Parts:
    """What one version of a pod contributes to its PodMetrics in one format, and the tail
    (window and containers) of the usage it was last listed with."""

    __slots__ = ("containers", "pod", "tail", "window")

    def __init__(self, pod: Obj):
        self.pod = pod
        self.containers: Any = None  # the usage.containers `tail` was made from
        self.window = 0.0
        self.tail = b""

    def update(self, usage: PodUsage) -> None:
        self.containers, self.window = usage.containers, usage.window
        self.tail = self.render(usage)

    def render(self, usage: PodUsage) -> bytes:
        raise NotImplementedError


class JsonParts(_Parts):
    """`{"kind":...,"metadata":{"name":...,"creationTimestamp":"` head, `"`...`"timestamp":"` mid,
    `","window":...}` tail."""

    __slots__ = ("head", "mid")

    def __init__(self, pod: Obj):
        super().__init__(pod)
        meta = pod["metadata"]
        self.head = (b'{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":'
                     + orjson.dumps(meta["name"]) + b',"namespace":' + orjson.dumps(meta["namespace"])
                     + b',"creationTimestamp":"')
        labels = meta.get("labels")
        self.mid = b'"' + (b',"labels":' + orjson.dumps(labels) if labels else b"") + b'},"timestamp":"'

    def render(self, usage: PodUsage) -> bytes:
        containers = [{"name": name, "usage": {"cpu": quantities.cpu_quantity(c.cpu),
                                               "memory": quantities.memory_quantity(c.memory)}}
                      for name, c in usage.containers.items()]
        return (b'","window":' + orjson.dumps(quantities.window(usage.window))
                + b',"containers":' + orjson.dumps(containers) + b"}")


class ProtoParts(_Parts):
    """ObjectMeta's fields before its creationTimestamp (head) and after it (labels), and the
    window and containers fields (tail)."""

    __slots__ = ("head", "labels", "meta_len")

    def __init__(self, pod: Obj):
        super().__init__(pod)
        meta = pod["metadata"]
        self.head = _meta_head(meta["name"], meta["namespace"])
        self.labels = _labels(meta.get("labels"))
        self.meta_len = len(self.head) + len(self.labels)  # without the creationTimestamp

    def render(self, usage: PodUsage) -> bytes:
        return _bytes(3, _integer(1, quantities.nanoseconds(usage.window))) + b"".join(
            _bytes(4, _string(1, name) + _usage_entries(2, c.cpu, c.memory)) for name, c in usage.containers.items())

    def message(self, created: bytes, ts: bytes) -> bytes:
        """The PodMetrics message {metadata, timestamp, window, containers}; `created` is the
        ObjectMeta's creationTimestamp field, `ts` the timestamp field."""
        return b"".join((b"\x0a", _varint(self.meta_len + len(created)), self.head, created, self.labels, ts,
                         self.tail))


class PodList:
    """The parts of every pod listed lately, per format, by pod key; one per metrics API."""

    def __init__(self) -> None:
        self._memos: dict[type[_Parts], dict[str, Any]] = {JsonParts: {}, ProtoParts: {}}

    def _parts(self, kind: type[_Parts], found: Iterable[Found], objects: dict[str, Obj]) -> Iterator[tuple[Any, float]]:
        """Each found pod's parts, their tail made for its usage, and its usage's timestamp."""
        memo = self._memos[kind]
        if len(memo) > 2 * len(objects) + 1024:  # pods gone: keep only the current ones
            self._memos[kind] = memo = {k: p for k, p in memo.items() if objects.get(k) is p.pod}
        for key, pod, usage in found:
            parts = memo.get(key)
            if parts is None or parts.pod is not pod:
                parts = memo[key] = kind(pod)
            if usage.containers is not parts.containers or usage.window != parts.window:
                parts.update(usage)
            yield parts, usage.timestamp

    def json(self, found: Iterable[Found], objects: dict[str, Obj], now: float) -> bytes:
        """The PodMetricsList of `found` (in its order) as JSON, ending with a newline as Go's
        encoder writes it; `objects` are every pod there is (to forget the parts of others)."""
        created = rfc3339(now).encode()
        stamps: dict[float, bytes] = {}
        items = []
        for parts, timestamp in self._parts(JsonParts, found, objects):
            ts = stamps.get(timestamp)
            if ts is None:
                ts = stamps[timestamp] = rfc3339(timestamp).encode()
            items.append(b"".join((parts.head, created, parts.mid, ts, parts.tail)))
        return _JSON_LIST + b",".join(items) + b"]}\n"

    def protobuf(self, found: Iterable[Found], objects: dict[str, Obj], now: float) -> bytes:
        """The same list as a Kubernetes protobuf body."""
        created = _time(8, now)
        stamps: dict[float, bytes] = {}
        items = []
        varint = _varint
        for parts, timestamp in self._parts(ProtoParts, found, objects):
            ts = stamps.get(timestamp)
            if ts is None:
                ts = stamps[timestamp] = _time(2, timestamp)
            message = parts.message(created, ts)
            items.append(b"\x12" + varint(len(message)) + message)
        return envelope("PodMetricsList", list_body(b"".join(items)))


def pod_protobuf(pod: Obj, usage: PodUsage, now: float) -> bytes:
    """One PodMetrics as a Kubernetes protobuf body."""
    parts = ProtoParts(pod)
    parts.update(usage)
    return envelope("PodMetrics", parts.message(_time(8, now), _time(2, usage.timestamp)))


def node_protobuf(found: list[tuple[Obj, Any]], now: float, *, single: bool) -> bytes:
    """NodeMetrics (`single`) or a NodeMetricsList as a Kubernetes protobuf body; `found` holds
    (node, NodeUsage) pairs."""
    messages = [node_metrics(node, u.cpu, u.memory, u.timestamp, u.window, now) for node, u in found]
    if single:
        return envelope("NodeMetrics", messages[0])
    return envelope("NodeMetricsList", list_body(b"".join(_bytes(2, m) for m in messages)))
