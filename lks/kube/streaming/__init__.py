"""The streaming subresources of pods, served as upstream's API server serves them to kubectl:
`log` (`logs`), `exec` and `attach` (`remotecommand`, over WebSocket channels or SPDY) and
`portforward` (`portforward`, SPDY plain or tunneled in a WebSocket). Each checks the request
against the Pod, then talks to the node's kubelet through `lks.nodes.streams`.

`lks.kube.http.app` hands these requests to `serve` after authenticating them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from lks.kube import errors
from lks.kube.streaming import logs, portforward, remotecommand

if TYPE_CHECKING:
    from lks.kube.registry import Registry

SUBRESOURCES = ("log", "exec", "attach", "portforward")


async def serve(request: web.Request, reg: Registry, ns: str, name: str, subresource: str) -> web.StreamResponse:
    if subresource == "log":
        return await logs.serve(request, reg, ns, name)
    if subresource in ("exec", "attach"):
        return await remotecommand.serve(request, reg, ns, name, subresource)
    if subresource == "portforward":
        return await portforward.serve(request, reg, ns, name)
    raise errors.path_not_found(request.path)
