"""The `Available` condition of an APIService, decided as kube-aggregator's status controllers
decide it (`pkg/controllers/status/{local,remote}`): a local APIService (no Service) is always
available; one behind a Service needs the Service, its port, ready endpoints with that port's
name, and an answer from the extension server's `/apis/<group>/<version>` (whose resource list
then feeds discovery). lks's in-process add-ons (`local.LocalAPI`) pass the checks by being
here. `lks.controllers.apiservice` runs this on every change and writes the status.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from lks.kube.aggregator import proxy
from lks.kube.authn import User

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
Condition = tuple[str, str, str]  # status, reason, message
CHECK_SECONDS = 5.0  # upstream's discovery client timeout
_AGGREGATOR = User("system:kube-aggregator", ("system:masters",))


async def check(cluster: Cluster, apiservice: Obj) -> Condition:
    spec = apiservice.get("spec") or {}
    group, version = spec.get("group") or "", spec.get("version") or ""
    ref = spec.get("service")
    if not ref:
        return "True", "Local", "Local APIServices are always available"
    if (group, version) in cluster.aggregator.local:
        return "True", "Passed", "all checks passed"
    namespace, name, port = ref.get("namespace") or "", ref.get("name") or "", ref.get("port") or 443
    services = cluster.registry("", "v1", "services")
    svc = (await services.cache()).objects.get(services.key(namespace, name))
    where = f'service/{name} in "{namespace}"'
    if svc is None:
        return "False", "ServiceNotFound", f"{where} is not present"
    if ((svc.get("spec") or {}).get("type") or "ClusterIP") == "ClusterIP":
        svc_port = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
        if svc_port is None:
            return "False", "ServicePortError", f"{where} is not listening on port {port}"
        port_name = svc_port.get("name") or ""
        slices = await proxy.slices(cluster, namespace, name)
        if not slices:
            return "False", "EndpointsNotFound", f"cannot find endpointslices for {where}"
        if not any(_has_endpoint(s, port_name) for s in slices):
            return ("False", "MissingEndpoints",
                    f'endpointslices for {where} have no addresses with port name "{port_name}"')
    failure = await _discovery_check(cluster, spec, group, version)
    if failure is not None:
        return "False", "FailedDiscoveryCheck", failure
    return "True", "Passed", "all checks passed"


def _has_endpoint(sl: Obj, port_name: str) -> bool:
    ready = any((e.get("conditions") or {}).get("ready") is not False for e in sl.get("endpoints") or [])
    return ready and any((p.get("name") or "") == port_name and p.get("port") is not None
                         for p in sl.get("ports") or [])


async def _discovery_check(cluster: Cluster, spec: Obj, group: str, version: str) -> str | None:
    """GET the group-version from the extension server as system:kube-aggregator (without
    verifying its certificate, as upstream); None when it answers 2xx. Its resource list is
    kept for discovery."""
    path = f"/apis/{group}/{version}"
    ref = spec.get("service") or {}
    namespace, name = ref.get("namespace") or "", ref.get("name") or ""
    try:
        ep = await proxy.endpoint(cluster, namespace, name, ref.get("port") or 443)
    except proxy.Unavailable as err:
        cluster.aggregator.set_remote(group, version, None)
        return f"failing or missing response from {path}: {err}"
    url = f"https://{ep.ip}:{ep.port}{path}"
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            conn = await proxy.dial(cluster, ep, cluster.aggregator.context(spec, verify=False),
                                    f"{name}.{namespace}.svc")
            try:
                status, headers, reader = await proxy.send(
                    conn, "GET", path, f"{ep.ip}:{ep.port}",
                    [("Accept", "application/json"), *proxy.identity_headers(_AGGREGATOR)], b"")
                body = b"".join([c async for c in proxy.body_chunks(reader, headers)])
            finally:
                conn[1].close()
    except TimeoutError:
        cluster.aggregator.set_remote(group, version, None)
        return f'failing or missing response from {url}: Get "{url}": context deadline exceeded'
    except (proxy.Unavailable, OSError, asyncio.IncompleteReadError, ValueError) as err:
        cluster.aggregator.set_remote(group, version, None)
        return f'failing or missing response from {url}: Get "{url}": {err}'
    if not 200 <= status < 300:
        cluster.aggregator.set_remote(group, version, None)
        return f"bad status from {url}: {status}"
    try:
        doc = orjson.loads(body)
        resources = [r for r in doc.get("resources") or [] if isinstance(r, dict)]
    except (orjson.JSONDecodeError, AttributeError):
        resources = []
    cluster.aggregator.set_remote(group, version, resources)
    return None


def set_condition(apiservice: Obj, cond: Condition, now: str) -> Obj:
    """The status with `Available` set; its transition time moves only when its status does."""
    status, reason, message = cond
    old = apiservice.get("status") or {}
    conds = [dict(c) for c in old.get("conditions") or []]
    prev = next((c for c in conds if c.get("type") == "Available"), None)
    new = {"type": "Available", "status": status,
           "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status
           and prev.get("lastTransitionTime") else now,
           "reason": reason, "message": message}
    conds = [c for c in conds if c.get("type") != "Available"] + [new] if prev is None \
        else [new if c.get("type") == "Available" else c for c in conds]
    return {**old, "conditions": conds}
