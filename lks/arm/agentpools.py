"""`managedClusters/{name}/agentPools`: node pools on their own. A pool lives inside its
cluster's document (`agentPoolProfiles`), so every change here is a change of the cluster,
reconciled by the same operation; this module only reads and rewrites the pool's part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm import model, versions
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, not_found
from lks.arm.managedclusters import API_VERSIONS, CLUSTER, ManagedClusters

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
POOLS = CLUSTER + "/agentPools"


def routes(plane: ManagementPlane) -> list[Route]:
    h = AgentPools(plane)

    def r(path: str, methods: dict, type_name: str = "managedClusters/agentPools") -> Route:
        return route(path, methods, api_versions=API_VERSIONS, type_name=type_name)

    return [
        r(POOLS, {"GET": h.list}),
        r(POOLS + "/{pool}", {"PUT": h.put, "GET": h.get, "DELETE": h.delete}),
        r(POOLS + "/{pool}/upgradeProfiles/default", {"GET": h.upgrade_profile},
          "managedClusters/agentPools/upgradeProfiles"),
    ]


class AgentPools:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.clusters = ManagedClusters(plane)

    def _find(self, doc: Doc, call: Call) -> Doc:
        name = call.params["pool"]
        for pool in doc["properties"]["agentPoolProfiles"]:
            if pool["name"].lower() == name.lower():
                return pool
        raise not_found("Microsoft.ContainerService/managedClusters/agentPools", f"{doc['name']}/{name}",
                        call.params["group"])

    async def list(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        return json_response({"value": [model.pool_resource(doc["id"], p) for p in doc["properties"]["agentPoolProfiles"]]})

    async def get(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        return json_response(model.pool_resource(doc["id"], self._find(doc, call)))

    async def put(self, call: Call) -> web.Response:
        stored = await self.clusters.load(call)
        doc = stored.doc
        self.plane.refuse_if_busy(doc, doc["id"])
        body = call.body if isinstance(call.body, dict) else {}
        props_in = body.get("properties")
        if props_in is not None and not isinstance(props_in, dict):
            raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
        props = doc["properties"]
        pools = props["agentPoolProfiles"]
        existing = next((p for p in pools if p["name"].lower() == call.params["pool"].lower()), None)
        pool = model.agent_pool(props_in or {}, existing=existing, name=existing["name"] if existing else
                                call.params["pool"], cluster_version=props["currentKubernetesVersion"],
                                network=props["networkProfile"])
        new_pools = [pool if p is existing else p for p in pools] if existing else [*pools, pool]
        model.check_pools(new_pools)
        props["agentPoolProfiles"] = new_pools
        state = "Creating" if existing is None else (
            "Scaling" if existing.get("count") != pool["count"] and
            {**existing, "count": 0, "eTag": ""} == {**pool, "count": 0, "eTag": ""} else "Updating")
        await self.plane.begin_change(call, doc, stored, "Updating" if state == "Creating" else state, created=False)
        shown = model.pool_resource(doc["id"], next(p for p in doc["properties"]["agentPoolProfiles"]
                                                    if p["name"] == pool["name"]))
        shown["properties"]["provisioningState"] = state
        op_url = await self._async_url(call, doc)
        return json_response(shown, 201 if existing is None else 200,
                             {"Azure-AsyncOperation": op_url, "Retry-After": "1"})

    async def delete(self, call: Call) -> web.Response:
        stored = await self.clusters.load(call)
        doc = stored.doc
        props = doc["properties"]
        name = call.params["pool"]
        pool = next((p for p in props["agentPoolProfiles"] if p["name"].lower() == name.lower()), None)
        if pool is None:
            return web.Response(status=204)
        self.plane.refuse_if_busy(doc, doc["id"])
        rest = [p for p in props["agentPoolProfiles"] if p is not pool]
        if not any(p["mode"] == "System" for p in rest):
            raise ARMError("OperationNotAllowed", f"Cannot delete agent pool '{pool['name']}': a managed cluster must "
                           "have at least one agent pool with mode System.", 400)
        props["agentPoolProfiles"] = rest
        await self.plane.begin_change(call, doc, stored, "Updating", created=False)
        op_url = await self._async_url(call, doc)
        location = op_url.replace("/operations/", "/operationresults/")
        return web.Response(status=202, headers={"Azure-AsyncOperation": op_url, "Location": location,
                                                 "Retry-After": "1"})

    async def _async_url(self, call: Call, doc: Doc) -> str:
        running = self.plane.operations.running(doc["id"])
        assert running is not None
        path = self.plane.operations.path(call.params["subscription"], doc["location"], running["name"])
        return self.plane.url(path, call.api_version)

    async def upgrade_profile(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        pool = self._find(doc, call)
        body = versions.agent_pool_upgrade_profile(pool["currentOrchestratorVersion"],
                                                   doc["properties"]["currentKubernetesVersion"],
                                                   pool.get("osType", "Linux"))
        body.update(id=f"{doc['id']}/agentPools/{pool['name']}/upgradeProfiles/default", name="default",
                    type="Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles")
        return json_response(body)
