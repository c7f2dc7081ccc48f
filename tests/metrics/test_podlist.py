"""PodMetricsList bodies assembled from kept per-pod bytes (`lks.metrics.podlist`): the JSON is
byte for byte what serializing `api.pod_metrics`'s objects gives, the protobuf (what kubectl
asks for first) carries the same object in upstream's field numbers, and a pod's parts follow
its new versions and usage. The API picks the format from the Accept header."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from support import ADMIN

from lks.clock import rfc3339
from lks.kube.http import negotiation
from lks.metrics import api, podlist
from lks.metrics.source import ContainerUsage, PodUsage

from .test_api import _get, _node, _pod, served  # noqa: F401 (fixture)

NOW = 1_790_000_000.7
MI = 2**20


def _podobj(name, ns="default", labels=None, rv="1"):
    meta = {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": rv}
    if labels is not None:
        meta["labels"] = labels
    return {"metadata": meta, "spec": {"nodeName": "n1"}}


def _found():
    """Pods as the source yields them: labels or none, one or two containers, a simulated usage
    (timestamp now, a 15 s window) and a measured one (its own timestamp, a ms-precise window)."""
    return [
        ("/registry/pods/default/a", _podobj("a", labels={"app": "a", "pod-template-hash": "5d8f"}),
         PodUsage({"app": ContainerUsage(0.25, 64 * MI), "side": ContainerUsage(0.001234567, 12288)}, NOW, 15.0)),
        ("/registry/pods/default/b", _podobj("b"), PodUsage({"app": ContainerUsage(0.0, 0)}, NOW, 15.0)),
        ("/registry/pods/kube-system/c", _podobj("c", ns="kube-system", labels={"k": "v"}),
         PodUsage({"main": ContainerUsage(1.5, 1500)}, NOW - 3.2, 1.234)),
    ]


def _expected_json(found, now):
    items = [api.pod_metrics(pod, usage, now) for _, pod, usage in found]
    return negotiation.encode({"kind": "PodMetricsList", "apiVersion": api.API_VERSION, "metadata": {},
                               "items": items}, "json", pretty=False)[0]


def test_the_json_is_what_serializing_the_objects_gives():
    found = _found()
    lists = podlist.PodList()
    objects = {key: pod for key, pod, _ in found}
    assert lists.json(found, objects, NOW) == _expected_json(found, NOW)
    assert lists.json(found, objects, NOW + 20) == _expected_json(found, NOW + 20)  # kept parts, new stamps
    assert lists.json([], objects, NOW) == _expected_json([], NOW)


def test_parts_follow_new_pod_versions_and_usage():
    found = _found()
    lists = podlist.PodList()
    objects = {key: pod for key, pod, _ in found}
    lists.json(found, objects, NOW)
    key, _, usage = found[0]
    relabeled = _podobj("a", labels={"app": "other"}, rv="2")  # a new version: a new object
    found[0] = (key, relabeled, PodUsage({"app": ContainerUsage(0.5, 32 * MI)}, NOW, usage.window))
    objects[key] = relabeled
    body = lists.json(found, objects, NOW)
    assert body == _expected_json(found, NOW)
    item = orjson.loads(body)["items"][0]
    assert item["metadata"]["labels"] == {"app": "other"}
    assert item["containers"] == [{"name": "app", "usage": {"cpu": "500m", "memory": "32Mi"}}]


# -- protobuf ----------------------------------------------------------------------------------

def _varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _fields(buf):
    """A message's fields: {number: [values]}, bytes for length-delimited, ints for varints."""
    out, pos = {}, 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise AssertionError(f"wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _one(fields, number, default=b""):
    return fields.get(number, [default])[-1]


def _time(buf):
    t = _fields(buf)
    return rfc3339(_one(t, 1, 0) + _one(t, 2, 0) / 1e9)


def _quantities(entries):
    out = {}
    for entry in entries:
        e = _fields(entry)
        out[_one(e, 1).decode()] = _one(_fields(_one(e, 2)), 1).decode()
    return out


def _pod_metrics(buf, kind="PodMetrics"):
    """A PodMetrics message (generated.proto of k8s.io/metrics v1beta1) as its JSON object."""
    f = _fields(buf)
    m = _fields(_one(f, 1))
    meta = {"name": _one(m, 1).decode(), "namespace": _one(m, 3).decode(), "creationTimestamp": _time(_one(m, 8))}
    if not meta["namespace"]:
        del meta["namespace"]
    labels = _quantities_like(m.get(11, []))
    if labels:
        meta["labels"] = labels
    window = api.quantities.window(_one(_fields(_one(f, 3)), 1, 0) / 1e9)
    out = {"kind": kind, "apiVersion": api.API_VERSION, "metadata": meta, "timestamp": _time(_one(f, 2)),
           "window": window}
    if kind == "NodeMetrics":
        out["usage"] = _quantities(f.get(4, []))
    else:
        out["containers"] = [{"name": _one(c, 1).decode(), "usage": _quantities(c.get(2, []))}
                             for c in map(_fields, f.get(4, []))]
    return out


def _quantities_like(entries):  # a map<string, string>
    return {_one(e, 1).decode(): _one(e, 2).decode() for e in map(_fields, entries)}


def _unwrap(body):
    """runtime.Unknown behind the magic: (apiVersion, kind, raw)."""
    assert body[:4] == podlist.MAGIC
    unknown = _fields(body[4:])
    type_meta = _fields(_one(unknown, 1))
    return _one(type_meta, 1).decode(), _one(type_meta, 2).decode(), _one(unknown, 2)


def _decode_list(body, kind="PodMetricsList"):
    api_version, got_kind, raw = _unwrap(body)
    assert (api_version, got_kind) == (api.API_VERSION, kind)
    f = _fields(raw)
    assert _fields(_one(f, 1)) == {1: [b""], 2: [b""], 3: [b""]}  # an empty ListMeta
    item_kind = kind.removesuffix("List")
    return {"kind": kind, "apiVersion": api.API_VERSION, "metadata": {},
            "items": [_pod_metrics(item, item_kind) for item in f.get(2, [])]}


def test_the_protobuf_carries_the_same_objects():
    found = _found()
    objects = {key: pod for key, pod, _ in found}
    lists = podlist.PodList()
    expected = orjson.loads(_expected_json(found, NOW))
    assert _decode_list(lists.protobuf(found, objects, NOW)) == expected
    assert _decode_list(lists.protobuf(found, objects, NOW)) == expected  # from kept parts
    _, pod, usage = found[2]
    api_version, kind, raw = _unwrap(podlist.pod_protobuf(pod, usage, NOW))
    assert (kind, _pod_metrics(raw)) == ("PodMetrics", api.pod_metrics(pod, usage, NOW))


PROTOBUF = {"Accept": "application/vnd.kubernetes.protobuf, */*"}  # client-go's, kubectl top's


async def _raw(local, path, headers, **query):
    cluster = local.usage.cluster
    assert await cluster.feed.wait_for(await cluster.store.current_revision(), 5)
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    req = make_mocked_request("GET", f"/apis/metrics.k8s.io/v1beta1/{path}" + (f"?{qs}" if qs else ""),
                              headers=headers)
    return await local.handle(req, ADMIN, path)


@pytest.mark.parametrize("path,kind", [
    pytest.param("pods", "PodMetricsList", id="pods"),
    pytest.param("namespaces/default/pods", "PodMetricsList", id="namespace"),
    pytest.param("nodes", "NodeMetricsList", id="nodes"),
])
async def test_the_api_answers_client_go_in_protobuf(cluster, served, clock, path, kind):  # noqa: F811
    await _node(cluster)
    await _pod(cluster, "web", notes={"lks.dev/simulate-cpu": "250m", "lks.dev/simulate-memory": "64Mi"},
               containers=("app", "side"))
    await _pod(cluster, "db", notes={"lks.dev/simulate-cpu-curve": "100m@0s,1@100s"})
    await _pod(cluster, "other", ns="kube-system")
    await clock.advance(50)
    resp = await _raw(served, path, PROTOBUF)
    assert resp.status == 200 and resp.content_type == podlist.PROTOBUF
    status, as_json = await _get(served, path)
    assert status == 200
    assert _decode_list(resp.body, kind) == as_json


async def test_one_object_in_protobuf_and_the_formats_chosen(cluster, served, clock):  # noqa: F811
    await _node(cluster)
    await _pod(cluster, "web", labels={"app": "web", "tier": "front"})
    await clock.advance(5)
    resp = await _raw(served, "namespaces/default/pods/web", PROTOBUF)
    _, as_json = await _get(served, "namespaces/default/pods/web")
    assert _unwrap(resp.body)[1] == "PodMetrics" and _pod_metrics(_unwrap(resp.body)[2]) == as_json
    resp = await _raw(served, "nodes/n1", PROTOBUF)
    _, as_json = await _get(served, "nodes/n1")
    assert _pod_metrics(_unwrap(resp.body)[2], "NodeMetrics") == as_json
    resp = await _raw(served, "pods", {"Accept": "application/json, application/vnd.kubernetes.protobuf"})
    assert resp.content_type == "application/json" and orjson.loads(resp.body)["kind"] == "PodMetricsList"
    resp = await _raw(served, "pods", PROTOBUF, labelSelector="app%3Dnone")
    assert _decode_list(resp.body)["items"] == []
    missing = await _raw(served, "namespaces/default/pods/nope", PROTOBUF)  # errors stay JSON Status
    assert missing.status == 404 and orjson.loads(missing.body)["reason"] == "NotFound"
