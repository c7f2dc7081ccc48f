"""Requests to a deprecated API version: upstream's warning on the response, and the use
recorded for AKS's deprecated-API upgrade check.

kube-apiserver's resource handlers add `Warning: 299 - "<gv> <Kind> is deprecated in vX+,
unavailable in vY+; use <gv> <Kind>"` to every response of a deprecated version, errors and
watches included, ahead of the warnings admission or validation add. `note` runs once the
request is authorized and its resource known; `add_warning` puts the header on the response,
from the handler's return or, for a stream, as aiohttp prepares it (whichever comes first).
"""

from __future__ import annotations

from aiohttp import web

from lks.kube import lifecycle
from lks.kube.catalog import ResourceType
from lks.kube.cluster import Cluster

_WARNING = web.RequestKey("deprecation_warning", str)


async def note(request: web.Request, cluster: Cluster, rt: ResourceType, verb: str) -> None:
    if lifecycle.lookup(rt.group, rt.version, rt.resource) is None:  # nearly every request: one dict lookup
        return
    text = lifecycle.warning(rt.group, rt.version, rt.resource, cluster.kubernetes_version)
    if text is not None:
        request[_WARNING] = text
    await cluster.api_usage.record(rt.group, rt.version, rt.resource, verb, request.headers.get("User-Agent"))


def add_warning(request: web.Request, response: web.StreamResponse | None) -> None:
    text = request.pop(_WARNING, None)  # once per response
    if text is None or response is None or response.prepared:
        return
    others = response.headers.getall("Warning", [])
    response.headers.popall("Warning", None)
    response.headers.add("Warning", f'299 - "{_quoted(text)}"')
    for other in others:
        response.headers.add("Warning", other)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
