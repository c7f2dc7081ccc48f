"""`managedClusters/{name}/agentPools`: node pools on their own. A pool lives inside its
cluster's document (`agentPoolProfiles`), so every change here is a change of the cluster,
reconciled by the same operation; this module only reads and rewrites the pool's part.

Deletion is an operation of its own (`agentPools.delete`): the pool stays listed as
`Deleting` while `lks.arm.fleet` cordons and drains its nodes (honouring PodDisruptionBudgets
unless `?ignore-pod-disruption-budget=true`) and deletes them; then it leaves the document.
A drain that runs out of time fails the operation with `PodDrainFailure` and leaves the pool
(and the cluster) `Failed`, with the nodes that could not be drained; deleting again retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks import store
from lks.arm import addressing, documents, model, nodeshape, versions, vmsizes
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, invalid_parameter, not_found
from lks.arm.managedclusters import API_VERSIONS, CLUSTER, ManagedClusters
from lks.upgrade import rollback

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
POOLS = CLUSTER + "/agentPools"
DELETE = "agentPools.delete"  # the operation kind of a pool deletion
IGNORE_PDB = "ignore-pod-disruption-budget"
READ = "Microsoft.ContainerService/managedClusters/agentPools/read"  # what a list shows a pool to


def routes(plane: ManagementPlane) -> list[Route]:
    h = AgentPools(plane)

    def r(path: str, methods: dict, type_name: str = "managedClusters/agentPools") -> Route:
        return route(path, methods, api_versions=API_VERSIONS, type_name=type_name)

    return [
        r(POOLS, {"GET": h.list}),
        r(POOLS + "/{pool}", {"PUT": h.put, "GET": h.get, "DELETE": h.delete}),
        r(POOLS + "/{pool}/upgradeProfiles/default", {"GET": h.upgrade_profile},
          "managedClusters/agentPools/upgradeProfiles"),
        r(POOLS + "/{pool}/upgradeNodeImageVersion", {"POST": h.upgrade_node_image}),
    ]


class AgentPools:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.clusters = ManagedClusters(plane)
        plane.operations.register(DELETE, self._delete_pool)

    def _find(self, doc: Doc, call: Call) -> Doc:
        name = call.params["pool"]
        for pool in doc["properties"]["agentPoolProfiles"]:
            if pool["name"].lower() == name.lower():
                return pool
        raise not_found("Microsoft.ContainerService/managedClusters/agentPools", f"{doc['name']}/{name}",
                        call.params["group"])

    async def list(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        return json_response({"value": [model.pool_resource(doc["id"], p) for p in doc["properties"]["agentPoolProfiles"]
                                        if call.may(READ, f"{doc['id']}/agentPools/{p['name']}")]})

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
                                network=props["networkProfile"],
                                recently_used=model.recently_used(props, existing and existing["name"]))
        new_pools = [pool if p is existing else p for p in pools] if existing else [*pools, pool]
        model.check_pools(new_pools)
        scaler = model.autoscaler({}, props, new_pools)  # the profile shows once a pool autoscales
        if scaler is not None:
            props["autoScalerProfile"] = scaler
        props["agentPoolProfiles"] = new_pools
        await addressing.admit(self.plane, doc)  # the pool's subnet and its room (AKS's checks)
        rollback.record({"agentPoolProfiles": pools}, props, now=self.plane.clock.now())
        state = "Creating" if existing is None else "Upgrading" if model.pool_versions(existing) != \
            model.pool_versions(pool) else (
            "Scaling" if existing.get("count") != pool["count"] and
            {**existing, "count": 0, "eTag": ""} == {**pool, "count": 0, "eTag": ""} else "Updating")
        pool["provisioningState"] = state  # `stored` is `doc`: begin_operation cannot see the pool change
        op = await self.plane.begin_operation(call, doc, stored, "Updating" if state == "Creating" else state,
                                              created=False)
        accepted = model.pool_resource(doc["id"], pool)
        accepted["properties"]["provisioningState"] = state

        async def final() -> Doc:
            return model.pool_resource(doc["id"], self._find((await self.clusters.load(call)).doc, call))

        return await self.plane.operations.answer_put(op, call.api_version, status=201 if existing is None else 200,
                                                      accepted=accepted, final=final)

    async def delete(self, call: Call) -> web.Response:
        stored = await self.clusters.load(call)
        doc = stored.doc
        props = doc["properties"]
        name = call.params["pool"]
        pool = next((p for p in props["agentPoolProfiles"] if p["name"].lower() == name.lower()), None)
        if pool is None:
            return web.Response(status=204)
        ignore_pdb = _flag(call.request.query.get(IGNORE_PDB))
        op = self.plane.operations.running(doc["id"])
        if op is None or pool.get("provisioningState") != "Deleting":  # else: the same deletion again
            self.plane.refuse_if_busy(doc, doc["id"])
            rest = [p for p in props["agentPoolProfiles"] if p is not pool]
            if not any(p["mode"] == "System" for p in rest):
                raise ARMError("OperationNotAllowed", f"Cannot delete agent pool '{pool['name']}': a managed cluster "
                               "must have at least one agent pool with mode System.", 400)
            props["provisioningState"] = "Updating"
            pool["provisioningState"] = "Deleting"
            doc["eTag"] = documents.new_etag()
            try:
                await self.plane.docs.update(doc, stored.revision)
            except store.RevisionConflict as err:
                raise ARMError("Conflict", "The resource was changed by another request; retry.", 409) from err
            op = await self.plane.operations.begin(
                DELETE, subscription=call.params["subscription"], location=doc["location"], resource_id=doc["id"],
                action=f"delete {doc['name']}/{pool['name']}", args={"pool": pool["name"], "ignorePDB": ignore_pdb})
        return await self.plane.operations.answer_action(op, call.api_version)

    async def _delete_pool(self, op: Doc) -> None:
        """The work of a pool deletion: drain and delete its nodes, then drop it from the
        document; a drain failure marks the pool and the cluster Failed and fails the operation."""
        meta = op[documents.PRIVATE]
        rid, name, ignore_pdb = meta["resourceId"], meta["args"]["pool"], bool(meta["args"].get("ignorePDB"))
        stored = await self.plane.docs.get(rid)
        if stored is None:
            return
        doc = stored.doc
        props = doc["properties"]
        cp_id = props.get(documents.PRIVATE, {}).get("controlPlane")
        listed = any(p["name"] == name for p in props["agentPoolProfiles"])
        if listed and cp_id and props["powerState"]["code"] == "Running":
            cluster = self.plane.planes.get(cp_id) or await self.plane.planes.start(cp_id)
            if not any(cp == cluster.id for cp, _ in self.plane.fleet.pools):
                # the service restarted during the deletion: bring back the cluster's other pools
                others = {**doc, "properties": {**props, "agentPoolProfiles": [
                    p for p in props["agentPoolProfiles"] if p["name"] != name]}}
                await self.plane.fleet.sync(others, cluster)
            try:
                await self.plane.fleet.delete_pool(doc, cluster, name, ignore_pdb=ignore_pdb)
            except ARMError:
                await self._change(rid, lambda d: _set_states(d, name, "Failed", "Failed"))
                raise

        def drop(d: Doc) -> None:
            d["properties"]["agentPoolProfiles"] = [p for p in d["properties"]["agentPoolProfiles"]
                                                    if p["name"] != name]
            d["properties"]["provisioningState"] = "Succeeded"

        await self._change(rid, drop)

    async def _change(self, rid: str, change: Callable[[Doc], None]) -> None:
        """Apply `change` to the stored cluster document, again over concurrent writes (tags)."""
        for _ in range(16):
            stored = await self.plane.docs.get(rid)
            if stored is None:
                return
            change(stored.doc)
            try:
                await self.plane.docs.update(stored.doc, stored.revision)
                return
            except store.RevisionConflict:
                continue
        raise ARMError("Conflict", "The resource keeps changing; retry.", 409)

    async def upgrade_node_image(self, call: Call) -> web.Response:
        """`POST .../upgradeNodeImageVersion`: the pool moves to the newest node image of its OS
        and version, through the same reconcile operation (and surge upgrade) as a PUT; answered
        as AKS does, 202 with the pool `UpgradingNodeImageVersion` while it runs, else 200."""
        stored = await self.clusters.load(call)
        doc = stored.doc
        self.plane.refuse_if_busy(doc, doc["id"])
        props = doc["properties"]
        pool = self._find(doc, call)
        before = {"agentPoolProfiles": [dict(p) for p in props["agentPoolProfiles"]]}
        pool["nodeImageVersion"] = latest_node_image(pool)
        pool["eTag"] = documents.new_etag()
        rollback.record(before, props, now=self.plane.clock.now())
        state = pool["provisioningState"] = "UpgradingNodeImageVersion"
        op = await self.plane.begin_operation(call, doc, stored, state, created=False)
        record = await self.plane.operations.settle(op["name"])
        if record is not None and record["status"] == "Succeeded":
            return json_response(model.pool_resource(doc["id"], self._find((await self.clusters.load(call)).doc,
                                                                           call)))
        accepted = model.pool_resource(doc["id"], pool)
        accepted["properties"]["provisioningState"] = state
        return json_response(accepted, 202, self.plane.operations.monitors(op, call.api_version, location=False))

    async def upgrade_profile(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        pool = self._find(doc, call)
        body = versions.agent_pool_upgrade_profile(pool["currentOrchestratorVersion"],
                                                   doc["properties"]["currentKubernetesVersion"],
                                                   pool.get("osType", "Linux"),
                                                   latest_node_image_version=latest_node_image(pool),
                                                   recently_used=model.recently_used(doc["properties"], pool["name"]))
        body.update(id=f"{doc['id']}/agentPools/{pool['name']}/upgradeProfiles/default", name="default",
                    type="Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles")
        return json_response(body)


def latest_node_image(pool: Doc) -> str:
    """The newest node image for the pool's OS, Kubernetes version and VM generation."""
    return nodeshape.node_image_version(pool.get("osSKU") or "Ubuntu", pool["currentOrchestratorVersion"],
                                        gen2=vmsizes.lookup(pool["vmSize"]).gen2)


def _flag(value: str | None) -> bool:
    """A boolean query parameter (`true`/`false`, any case; absent is false)."""
    if value is None or value == "":
        return False
    if value.lower() not in ("true", "false"):
        raise invalid_parameter(f"The value '{value}' of query parameter '{IGNORE_PDB}' is not a valid boolean.",
                                IGNORE_PDB)
    return value.lower() == "true"


def _set_states(doc: Doc, pool: str, pool_state: str, cluster_state: str) -> None:
    doc["properties"]["provisioningState"] = cluster_state
    for p in doc["properties"]["agentPoolProfiles"]:
        if p["name"] == pool:
            p["provisioningState"] = pool_state
