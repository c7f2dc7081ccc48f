"""The protocol of an in-process API served through the aggregation layer: lks's own add-ons
(the metrics API of `lks.metrics`) register one per cluster by group/version with
`cluster.aggregator.register_local(group, version, api)`; the add-on's APIService (e.g.
`v1beta1.metrics.k8s.io`, service kube-system/metrics-server as on AKS) then routes its
group-version here instead of proxying to the Service.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from lks.kube.authn import User


@runtime_checkable
class LocalAPI(Protocol):
    def resources(self) -> list[dict[str, Any]]:
        """The `APIResourceList.resources` entries of the group-version (name, singularName,
        namespaced, kind, verbs ...), as legacy discovery lists them; aggregated discovery is
        derived from them."""
        ...

    async def handle(self, request: web.Request, user: User, path_rest: str) -> web.StreamResponse:
        """Serve one request under `/apis/<group>/<version>/`; `path_rest` is what follows
        (`namespaces/default/pods/web-0`, `nodes`, "" for the group-version root). The request
        is already authenticated and authorized (by its RequestInfo, as kube-apiserver does
        before proxying), so the API only answers it."""
        ...
