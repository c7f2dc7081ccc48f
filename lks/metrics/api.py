"""`metrics.k8s.io/v1beta1` as metrics-server serves it: `NodeMetrics` (cluster-scoped) and
`PodMetrics` (namespaced), `get` and `list` with label and field selectors, from a cluster's
`lks.metrics.source.Usage`. It is a `lks.kube.aggregator.LocalAPI`: the aggregation layer routes
`/apis/metrics.k8s.io/v1beta1/...` here after authenticating and authorizing the request (RBAC
on `pods.metrics.k8s.io`/`nodes.metrics.k8s.io`, which `system:aggregated-metrics-reader`
aggregates into view, edit and admin).

Objects look like metrics-server's: the pod's (node's) name, namespace and labels, a
`creationTimestamp` of now, the `timestamp` and `window` of the measurement, and usage in the
quantities metrics-server writes (`resource.NewScaledQuantity(nanocores, -9)`, memory in bytes
as a BinarySI quantity), printed in their canonical form: `1234567n`, `250m`, `65536Ki`, `64Mi`
(`lks.metrics.quantities`). They are sent as the client asks, as metrics-server sends them:
Kubernetes protobuf to client-go (kubectl top's first choice), JSON otherwise, a Table to
`kubectl get`; a PodMetricsList in JSON or protobuf is assembled from bytes kept per pod
(`lks.metrics.podlist`), lists in pods' namespace and name order.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lks.clock import rfc3339
from lks.kube import errors, fields, selectors
from lks.kube.authn import User
from lks.kube.http import negotiation
from lks.metrics import podlist, quantities, tables
from lks.metrics.quantities import cpu_quantity, memory_quantity
from lks.metrics.source import NodeUsage, PodUsage, Usage

Obj = dict[str, Any]

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
RESOURCES: list[Obj] = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]
__all__ = ["API_VERSION", "GROUP", "VERSION", "MetricsAPI", "cpu_quantity", "memory_quantity", "node_metrics",
           "pod_metrics"]


def pod_metrics(pod: Obj, usage: PodUsage, now: float) -> Obj:
    meta = pod["metadata"]
    out_meta: Obj = {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": rfc3339(now)}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    containers = [{"name": name, "usage": {"cpu": cpu_quantity(c.cpu), "memory": memory_quantity(c.memory)}}
                  for name, c in usage.containers.items()]
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": out_meta,
            "timestamp": rfc3339(usage.timestamp), "window": quantities.window(usage.window), "containers": containers}


def node_metrics(node: Obj, usage: NodeUsage, now: float) -> Obj:
    meta = node["metadata"]
    out_meta: Obj = {"name": meta["name"], "creationTimestamp": rfc3339(now)}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": out_meta,
            "timestamp": rfc3339(usage.timestamp), "window": quantities.window(usage.window),
            "usage": {"cpu": cpu_quantity(usage.cpu), "memory": memory_quantity(usage.memory)}}


def _respond(obj: Obj, status: int = 200) -> web.Response:
    body, ctype = negotiation.encode(obj, "json")
    return web.Response(body=body, status=status, content_type=ctype)


def _format(request: web.Request) -> str:
    """"table", "protobuf" (client-go's first choice, which metrics-server answers) or "json";
    pretty JSON when the request asks for it (`negotiation.PRETTY`)."""
    accept = request.headers.get("Accept")
    if tables.wanted(accept):
        return "table"
    for mt in negotiation.parse_accept(accept):
        if not mt.as_:
            if mt.type == podlist.PROTOBUF:
                return "protobuf"
            break
    return "pretty" if negotiation.PRETTY.get() else "json"


class MetricsAPI:
    """The `metrics.k8s.io/v1beta1` LocalAPI of one cluster."""

    def __init__(self, usage: Usage):
        self.usage = usage
        self._lists = podlist.PodList()

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
        fmt = _format(request)
        if name is not None:
            found = self.usage.lookup_pod(namespace or "", name)
            if found is None:
                raise errors.not_found("podmetrics", GROUP, f"{namespace}/{name}")
            if fmt == "protobuf":
                return _binary(podlist.pod_protobuf(*found, now))
            return self._answer(fmt, include=request.query.get("includeObject"),
                                items=[pod_metrics(*found, now)], usages=[found[1]], list_kind=None)
        self._list_only(request)
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fieldsel = selectors.parse_fields(request.query.get("fieldSelector"), fields.supported("", "pods"))
        found = self.usage.pod_items(namespace, ordered=True)  # metrics-server's order: namespace, name
        if labels or fieldsel:
            found = ((key, pod, usage) for key, pod, usage in found
                     if labels.matches(pod["metadata"].get("labels"))
                     and (not fieldsel or fieldsel.matches(fields.reader(pod))))
        if fmt == "json":  # the bytes of every pod's PodMetrics are kept: `podlist`
            body = self._lists.json(found, self.usage.pods_cached(), now)
            return web.Response(body=body, content_type=negotiation.JSON)
        if fmt == "protobuf":
            return _binary(self._lists.protobuf(found, self.usage.pods_cached(), now))
        listed = list(found)
        return self._answer(fmt, include=request.query.get("includeObject"),
                            items=[pod_metrics(pod, usage, now) for _, pod, usage in listed],
                            usages=[u for _, _, u in listed], list_kind="PodMetricsList")

    @staticmethod
    def _answer(fmt: str, *, include: str | None, items: list[Obj], usages: list[Any],
                list_kind: str | None) -> web.Response:
        """The object (`list_kind` None) or list, or the Table kubectl asks for."""
        if fmt == "table":
            return _respond(tables.table(items, [{"cpu": u.cpu, "memory": u.memory} for u in usages],
                                         cpu=cpu_quantity, memory=memory_quantity, include_object=include or "Metadata"))
        if list_kind is None:
            return _respond(items[0])
        return _respond({"kind": list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items})

    def _nodes(self, request: web.Request, name: str | None) -> web.Response:
        now = self.usage.clock.now()
        fmt = _format(request)
        if name is not None:
            hit = self.usage.lookup_node(name)
            if hit is None:
                raise errors.not_found("nodemetrics", GROUP, name)
            if fmt == "protobuf":
                return _binary(podlist.node_protobuf([hit], now, single=True))
            return self._answer(fmt, include=request.query.get("includeObject"),
                                items=[node_metrics(*hit, now)], usages=[hit[1]], list_kind=None)
        self._list_only(request)
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fieldsel = selectors.parse_fields(request.query.get("fieldSelector"), fields.supported("", "nodes"))
        nodes = sorted(((node, usage) for node, usage in self.usage.all_nodes()
                        if labels.matches(node["metadata"].get("labels"))
                        and (not fieldsel or fieldsel.matches(fields.reader(node)))),
                       key=lambda f: f[0]["metadata"]["name"])
        if fmt == "protobuf":
            return _binary(podlist.node_protobuf(nodes, now, single=False))
        return self._answer(fmt, include=request.query.get("includeObject"),
                            items=[node_metrics(node, usage, now) for node, usage in nodes],
                            usages=[u for _, u in nodes], list_kind="NodeMetricsList")


def _binary(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=podlist.PROTOBUF)
