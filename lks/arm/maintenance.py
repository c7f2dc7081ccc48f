"""`managedClusters/{name}/maintenanceConfigurations`: a cluster's planned maintenance windows
(`default`, `aksManagedAutoUpgradeSchedule`, `aksManagedNodeOSUpgradeSchedule`) as child
resources of the cluster. Writes are synchronous, as AKS's are (PUT 200/201, DELETE 200/204);
`lks.upgrade.schedules` checks the bodies and `lks.upgrade.auto` reads the windows. A
configuration goes with its cluster (`ManagementPlane._teardown` deletes a cluster's children).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm import documents
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, not_found
from lks.arm.managedclusters import API_VERSIONS, CLUSTER, ManagedClusters
from lks.upgrade import schedules

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
CONFIGS = CLUSTER + "/maintenanceConfigurations"
TYPE = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"


def routes(plane: ManagementPlane) -> list[Route]:
    h = MaintenanceConfigurations(plane)
    kind = "managedClusters/maintenanceConfigurations"
    return [route(CONFIGS, {"GET": h.list}, api_versions=API_VERSIONS, type_name=kind),
            route(CONFIGS + "/{config}", {"PUT": h.put, "GET": h.get, "DELETE": h.delete},
                  api_versions=API_VERSIONS, type_name=kind)]


def config_id(cluster_id: str, name: str) -> str:
    return f"{cluster_id}/maintenanceConfigurations/{name}"


class MaintenanceConfigurations:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.clusters = ManagedClusters(plane)

    async def list(self, call: Call) -> web.Response:
        cluster = (await self.clusters.load(call)).doc
        docs = await self.plane.docs.list(f"{cluster['id']}/maintenanceConfigurations")
        return json_response({"value": [documents.public(d) for d in docs if d.get("type") == TYPE]})

    async def get(self, call: Call) -> web.Response:
        cluster = (await self.clusters.load(call)).doc
        stored = await self.plane.docs.get(config_id(cluster["id"], call.params["config"]))
        if stored is None:
            raise not_found(TYPE, f"{cluster['name']}/{call.params['config']}", call.params["group"])
        return json_response(documents.public(stored.doc))

    async def put(self, call: Call) -> web.Response:
        cluster = (await self.clusters.load(call)).doc
        name = schedules.canonical_name(call.params["config"])
        body = call.body
        if not isinstance(body, dict):
            raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
        rid = config_id(cluster["id"], name)
        stored = await self.plane.docs.get(rid)
        old = stored.doc if stored else None
        now = datetime.fromtimestamp(self.plane.clock.now(), UTC)
        props = schedules.check(name, body.get("properties"), existing=(old or {}).get("properties"), today=now.date())
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        created = (old or {}).get("systemData") or {"createdAt": stamp, "createdBy": "lks", "createdByType": "User"}
        doc = {"id": rid, "name": name, "type": TYPE, "properties": props,
               "systemData": {**created, "lastModifiedAt": stamp, "lastModifiedBy": "lks",
                              "lastModifiedByType": "User"}}
        await self.plane.docs.put(doc)
        return json_response(documents.public(doc), 200 if stored else 201)

    async def delete(self, call: Call) -> web.Response:
        cluster = (await self.clusters.load(call)).doc
        rid = config_id(cluster["id"], call.params["config"])
        if await self.plane.docs.get(rid) is None:
            return web.Response(status=204)
        await self.plane.docs.delete(rid)
        return web.Response(status=200)
