"""Where `lks.kube.http` hands a request under an aggregated group-version: after
authentication and authorization (kube-apiserver authorizes before it proxies), a local API
answers in process and a Service-backed APIService is proxied (`proxy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from lks.kube.aggregator import discovery, proxy
from lks.kube.authn import User
from lks.kube.http import negotiation

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster


async def serve(request: web.Request, cluster: Cluster, user: User, parts: tuple[str, ...]) -> web.StreamResponse | None:
    """The answer for `/apis/<group>/<version>/...` when an APIService or local API serves that
    group-version (None: the cluster's own registries do)."""
    if len(parts) < 3 or parts[0] != "apis" or not discovery.has_any(cluster):
        return None
    group, version = parts[1], parts[2]
    hit = cluster.aggregator.target(discovery.served(cluster), group, version)
    if hit is None:
        return None
    apiservice, local = hit
    if local is not None:
        if len(parts) == 3:
            if request.method not in ("GET", "HEAD"):
                return None  # the caller's 405
            body, ctype = negotiation.encode(discovery.resource_list(cluster, group, version), "json")
            return web.Response(body=body, content_type=ctype)
        return await local.handle(request, user, "/".join(parts[3:]))
    assert apiservice is not None
    return await proxy.forward(request, cluster, apiservice, user, "/" + "/".join(parts))
