"""`metrics.k8s.io/v1beta1` as metrics-server serves it: `NodeMetrics` (cluster-scoped) and
`PodMetrics` (namespaced), `get` and `list` with label and field selectors, from a cluster's
`lks.metrics.source.Usage`. It is a `lks.kube.aggregator.LocalAPI`: the aggregation layer routes
`/apis/metrics.k8s.io/v1beta1/...` here after authenticating and authorizing the request (RBAC
on `pods.metrics.k8s.io`/`nodes.metrics.k8s.io`, which `system:aggregated-metrics-reader`
aggregates into view, edit and admin).

Objects look like metrics-server's: the pod's (node's) name, namespace and labels, a
`creationTimestamp` of now, the `timestamp` and `window` of the measurement, and usage in the
quantities metrics-server writes (`resource.NewScaledQuantity(nanocores, -9)`, memory in bytes
as a BinarySI quantity), printed in their canonical form: `1234567n`, `250m`, `65536Ki`, `64Mi`.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from lks.clock import go_duration, rfc3339
from lks.kube import errors, fields, selectors
from lks.kube.authn import User
from lks.kube.http import negotiation
from lks.metrics import tables
from lks.metrics.source import NodeUsage, PodUsage, Usage

Obj = dict[str, Any]

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
RESOURCES: list[Obj] = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]
_DECIMAL = ((10**9, ""), (10**6, "m"), (10**3, "u"))
_BINARY = ((2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki"))


def cpu_quantity(cores: float) -> str:
    """Cores as metrics-server's nanocore quantity, canonical: `1234567n`, `250m`, `2`."""
    n = max(round(cores * 1e9), 0)
    if n == 0:
        return "0"
    for size, suffix in _DECIMAL:
        if n % size == 0:
            return f"{n // size}{suffix}"
    return f"{n}n"


def memory_quantity(size: int) -> str:
    """Bytes as a canonical BinarySI quantity: `65536Ki`, `64Mi`, or plain bytes."""
    size = max(int(size), 0)
    if size == 0:
        return "0"
    for unit, suffix in _BINARY:
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


@functools.lru_cache(maxsize=1024)
def _window(seconds: float) -> str:
    return go_duration(round(seconds * 1000) * 1_000_000)


def _containers(containers: dict[str, Any]) -> list[Obj]:
    return [{"name": name, "usage": {"cpu": cpu_quantity(c.cpu), "memory": memory_quantity(c.memory)}}
            for name, c in containers.items()]


def pod_metrics(pod: Obj, usage: PodUsage, now: float, rendered: dict[int, tuple[Any, list[Obj]]] | None = None) -> Obj:
    """A PodMetrics; `rendered` memoizes the containers' quantities by the identity of
    `usage.containers` (which the usage source shares between calls while they do not change)."""
    meta = pod["metadata"]
    out_meta: Obj = {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": rfc3339(now)}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    if rendered is None:
        containers = _containers(usage.containers)
    else:
        hit = rendered.get(id(usage.containers))
        if hit is None or hit[0] is not usage.containers:
            hit = rendered[id(usage.containers)] = (usage.containers, _containers(usage.containers))
        containers = hit[1]
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": out_meta,
            "timestamp": rfc3339(usage.timestamp), "window": _window(usage.window), "containers": containers}


def node_metrics(node: Obj, usage: NodeUsage, now: float) -> Obj:
    meta = node["metadata"]
    out_meta: Obj = {"name": meta["name"], "creationTimestamp": rfc3339(now)}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": out_meta,
            "timestamp": rfc3339(usage.timestamp), "window": _window(usage.window),
            "usage": {"cpu": cpu_quantity(usage.cpu), "memory": memory_quantity(usage.memory)}}


def _respond(obj: Obj, status: int = 200) -> web.Response:
    body, ctype = negotiation.encode(obj, "json")
    return web.Response(body=body, status=status, content_type=ctype)


class MetricsAPI:
    """The `metrics.k8s.io/v1beta1` LocalAPI of one cluster."""

    def __init__(self, usage: Usage):
        self.usage = usage
        self._rendered: dict[int, tuple[Any, list[Obj]]] = {}  # see `pod_metrics`

    def resources(self) -> list[Obj]:
        return [dict(r) for r in RESOURCES]

    async def handle(self, request: web.Request, user: User, path_rest: str) -> web.StreamResponse:
        try:
            return self._serve(request, path_rest)
        except errors.APIError as err:
            body, ctype = negotiation.encode(err.status(), "json")
            return web.Response(body=body, status=err.code, content_type=ctype, headers=err.headers)

    def _serve(self, request: web.Request, path_rest: str) -> web.Response:
        parts = [p for p in path_rest.strip("/").split("/") if p]
        if not parts:
            return _respond({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
                             "resources": self.resources()})
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        if parts[0] == "nodes" and len(parts) <= 2:
            return self._nodes(request, parts[1] if len(parts) == 2 else None)
        if parts == ["pods"]:
            return self._pods(request, None, None)
        if len(parts) in (3, 4) and parts[0] == "namespaces" and parts[2] == "pods":
            return self._pods(request, parts[1], parts[3] if len(parts) == 4 else None)
        raise errors.path_not_found(path_rest)

    @staticmethod
    def _list_only(request: web.Request) -> None:
        if request.query.get("watch") in ("1", "true", "True"):
            raise errors.method_not_allowed()  # metrics-server serves no watch

    def _pods(self, request: web.Request, namespace: str | None, name: str | None) -> web.Response:
        now = self.usage.clock.now()
        if name is not None:
            found = self.usage.lookup_pod(namespace or "", name)
            if found is None:
                raise errors.not_found("podmetrics", GROUP, f"{namespace}/{name}")
            return self._answer(request, [pod_metrics(*found, now)], [found[1]], None)
        self._list_only(request)
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fieldsel = selectors.parse_fields(request.query.get("fieldSelector"), fields.supported("", "pods"))
        rendered = self._rendered
        if len(rendered) > 2 * len(self.usage.pods_cached()) + 1024:
            rendered.clear()  # pods gone or changed: render again
        found = sorted(((pod, usage) for pod, usage in self.usage.all_pods(namespace)
                        if (not labels or labels.matches(pod["metadata"].get("labels")))
                        and (not fieldsel or fieldsel.matches(fields.reader(pod)))),
                       key=lambda f: (f[0]["metadata"]["namespace"], f[0]["metadata"]["name"]))
        items = [pod_metrics(pod, usage, now, rendered) for pod, usage in found]
        return self._answer(request, items, [u for _, u in found], "PodMetricsList")

    @staticmethod
    def _answer(request: web.Request, items: list[Obj], usages: list[Any], list_kind: str | None) -> web.Response:
        """The object (`list_kind` None) or list, or the Table kubectl asks for."""
        if tables.wanted(request.headers.get("Accept")):
            include = request.query.get("includeObject") or "Metadata"
            return _respond(tables.table(items, [{"cpu": u.cpu, "memory": u.memory} for u in usages],
                                         cpu=cpu_quantity, memory=memory_quantity, include_object=include))
        if list_kind is None:
            return _respond(items[0])
        return _respond({"kind": list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items})

    def _nodes(self, request: web.Request, name: str | None) -> web.Response:
        now = self.usage.clock.now()
        if name is not None:
            hit = self.usage.lookup_node(name)
            if hit is None:
                raise errors.not_found("nodemetrics", GROUP, name)
            return self._answer(request, [node_metrics(*hit, now)], [hit[1]], None)
        self._list_only(request)
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fieldsel = selectors.parse_fields(request.query.get("fieldSelector"), fields.supported("", "nodes"))
        nodes = sorted(((node, usage) for node, usage in self.usage.all_nodes()
                        if labels.matches(node["metadata"].get("labels"))
                        and (not fieldsel or fieldsel.matches(fields.reader(node)))),
                       key=lambda f: f[0]["metadata"]["name"])
        items = [node_metrics(node, usage, now) for node, usage in nodes]
        return self._answer(request, items, [u for _, u in nodes], "NodeMetricsList")
