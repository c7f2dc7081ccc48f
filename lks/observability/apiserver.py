"""Request metrics of the hosted API servers, as upstream's `endpoints/metrics`:
`apiserver_request_total`, `apiserver_request_duration_seconds` and
`apiserver_current_inflight_requests`, with upstream's reported verbs (POST, PUT, APPLY, WATCH,
CONNECT ...) and scopes. `lks.kube.http.app` calls `begin` once a request's cluster and
RequestInfo are known and `finish` with the response; the numbers land in the cluster's
`ClusterStats`. The cost per request is two dict updates and one bisect.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from lks.observability import stats as _stats
from lks.observability.histogram import REQUEST_BUCKETS, Histogram

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.http.requestinfo import RequestInfo

COMPONENT = "apiserver"
READ_ONLY, MUTATING = 0, 1
REQUEST_KINDS = ("readOnly", "mutating")
_VERBS = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT", "patch": "PATCH",
          "delete": "DELETE", "deletecollection": "DELETECOLLECTION"}
_CONNECT = frozenset(("exec", "attach", "portforward", "proxy"))  # upstream's validConnectRequests
_LONG_RUNNING_SUBRESOURCES = _CONNECT | {"log"}
_APPLY = "application/apply-patch+yaml"


class _Request:
    __slots__ = ("cluster", "stats", "info", "kind", "started")

    def __init__(self, cluster: Cluster, stats: _stats.ClusterStats, info: RequestInfo, kind: int | None,
                 started: float):
        self.cluster, self.stats, self.info, self.kind, self.started = cluster, stats, info, kind, started


_KEY = web.RequestKey("lks.observability", _Request)


def begin(cluster: Cluster, info: RequestInfo, request: web.Request) -> None:
    """The request's cluster and RequestInfo are known: it is in flight from now."""
    long_running = info.verb == "watch" or info.subresource in _LONG_RUNNING_SUBRESOURCES
    kind = None if long_running else READ_ONLY if info.verb in ("get", "list", "head") else MUTATING
    stats = _stats.of(cluster)
    if kind is not None:
        stats.inflight[kind] += 1
    request[_KEY] = _Request(cluster, stats, info, kind, time.perf_counter())


def finish(request: web.Request, response: web.StreamResponse | None) -> tuple[str, str, float] | None:
    """The request is answered (`response` None: the client went away first): counted. Returns
    what the request log writes of it (cluster ID, reported verb, latency), None for a request
    `begin` did not see."""
    rec = request.get(_KEY)
    if rec is None:
        return None
    del request[_KEY]
    stats = rec.stats
    if rec.kind is not None:
        stats.inflight[rec.kind] -= 1
    if response is not None:
        code = response.status
    else:  # a watch or stream ends when its client leaves; anything else was cut short
        code = 200 if rec.kind is None else 499
    labels = _labels(rec.cluster, rec.info, request, code)
    hist = stats.durations.get(labels)
    if hist is None:
        hist = stats.durations[labels] = Histogram(REQUEST_BUCKETS)
    latency = time.perf_counter() - rec.started
    hist.observe(latency)
    counted = (*labels, str(code))
    stats.requests[counted] = stats.requests.get(counted, 0) + 1
    return rec.cluster.id, labels[0], latency


def _labels(cluster: Cluster, info: RequestInfo, request: web.Request, code: int) -> tuple[str, ...]:
    """(verb, dry_run, group, version, resource, subresource, scope, component)."""
    dry_run = "All" if "All" in request.query.getall("dryRun", ()) else ""
    if not info.is_resource:  # upstream reports the path as the subresource; not for a 404 (unbounded)
        return request.method, dry_run, "", "", "", info.path if code != 404 else "", "", COMPONENT
    group, version, resource, sub = info.group, info.version, info.resource, info.subresource
    if code == 404 and cluster.catalog.lookup(group, version, resource) is None:
        group = version = resource = sub = ""  # a type nobody serves: no label of its name
    verb = _VERBS.get(info.verb, "other")
    if sub in _CONNECT:
        verb = "CONNECT"
    elif verb == "PATCH" and request.content_type == _APPLY:
        verb = "APPLY"
    scope = ("resource" if info.name or info.verb == "create" else "namespace" if info.namespace
             else "cluster")
    return verb, dry_run, group, version, resource, sub, scope, COMPONENT
