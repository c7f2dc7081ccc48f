"""`Microsoft.ContainerService/managedClusters`: create or update, get, tag, delete, list,
credentials, start and stop, upgrade profiles, the autoscaler's status (an lks extension) — each
mutating request as an ARM long-running operation whose work (`reconcile`, `delete`) the
`ManagementPlane` carries out.
"""

from __future__ import annotations

import base64
import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm import aad, addressing, controlplanelogs, documents, model, runcommand, versions
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, not_found
from lks.arm.operations import RETRY_AFTER
from lks.upgrade import apis, rollback, whatif

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]

API_VERSIONS = ("2024-09-01", "2024-10-01", "2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01",
                "2025-05-01", "2025-06-01", "2025-07-01", "2025-08-01", "2025-09-01", "2025-10-01",
                "2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01",
                "2026-07-01", "2026-08-01")
PROVIDER = "/providers/Microsoft.ContainerService"
CLUSTERS = "/subscriptions/{subscription}/resourcegroups/{group}" + PROVIDER + "/managedClusters"
CLUSTER = CLUSTERS + "/{name}"
READ = "Microsoft.ContainerService/managedClusters/read"  # what a list shows a cluster to


def cluster_id(subscription: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourcegroups/{group}{PROVIDER}/managedClusters/{name}"


def routes(plane: ManagementPlane) -> list[Route]:
    h = ManagedClusters(plane)

    def r(path: str, methods: dict, type_name: str = "managedClusters") -> Route:
        return route(path, methods, api_versions=API_VERSIONS, type_name=type_name)

    sub_provider = "/subscriptions/{subscription}" + PROVIDER
    return [
        r(sub_provider + "/managedClusters", {"GET": h.list_subscription}),
        r(CLUSTERS, {"GET": h.list_group}),
        r(CLUSTER, {"PUT": h.put, "GET": h.get, "PATCH": h.patch, "DELETE": h.delete}),
        r(CLUSTER + "/listClusterAdminCredential", {"POST": h.admin_credential}),
        r(CLUSTER + "/listClusterUserCredential", {"POST": h.user_credential}),
        r(CLUSTER + "/start", {"POST": h.start}),
        r(CLUSTER + "/stop", {"POST": h.stop}),
        r(CLUSTER + "/upgradeProfiles/default", {"GET": h.upgrade_profile}, "managedClusters/upgradeProfiles"),
        r(CLUSTER + "/autoscalerStatus/default", {"GET": h.autoscaler_status}, "managedClusters/autoscalerStatus"),
        r(CLUSTER + "/availableAgentPoolVersions", {"GET": h.available_pool_versions},
          "managedClusters/availableAgentPoolVersions"),
        r(sub_provider + "/locations/{location}/kubernetesVersions", {"GET": h.kubernetes_versions},
          "locations/kubernetesVersions"),
        r(sub_provider + "/locations/{location}/operations/{operation}", {"GET": h.operation_status},
          "locations/operations"),
        r(sub_provider + "/locations/{location}/operationresults/{operation}", {"GET": h.operation_result},
          "locations/operationresults"),
        route("/providers/Microsoft.ContainerService/operations", {"GET": h.provider_operations},
              api_versions=API_VERSIONS, type_name="operations"),
        *runcommand.routes(plane, cluster=CLUSTER, api_versions=API_VERSIONS, load=h.load),
        *controlplanelogs.routes(plane, cluster=CLUSTER, api_versions=API_VERSIONS, load=h.load),
    ]



async def admit_update(plane: ManagementPlane, existing: Doc, doc: Doc) -> None:
    """What every change of an existing cluster's document goes through before its operation
    starts (a PUT, an automatic upgrade): the service's private part carried over, AKS's
    deprecated-API gate, and the pools' version history for rollback. Raises the ARMError
    that refuses the change; nothing is stored then."""
    props = doc["properties"]
    props[documents.PRIVATE] = copy.deepcopy(existing["properties"].get(documents.PRIVATE, {}))
    await apis.check_upgrade(plane.planes.get(props[documents.PRIVATE].get("controlPlane", "")),
                             current=existing["properties"]["currentKubernetesVersion"],
                             target=props["currentKubernetesVersion"], settings=props.get("upgradeSettings"),
                             now=plane.clock.now())
    rollback.record(existing["properties"], props, now=plane.clock.now())


class ManagedClusters:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane

    # -- reads ---------------------------------------------------------------------------

    async def load(self, call: Call) -> documents.Stored:
        """The cluster named by the call, or ARM's not-found errors."""
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        stored = await self.plane.docs.get(cluster_id(p["subscription"], p["group"], p["name"]))
        if stored is None:
            raise not_found("Microsoft.ContainerService/managedClusters", p["name"], p["group"])
        return stored

    async def get(self, call: Call) -> web.Response:
        stored = await self.load(call)
        return json_response(self.plane.shown(stored.doc), headers={"ETag": stored.doc.get("eTag", "")})

    async def list_group(self, call: Call) -> web.Response:
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        docs = await self.plane.docs.list(f"/subscriptions/{p['subscription']}/resourcegroups/{p['group']}"
                                          f"{PROVIDER}/managedClusters")
        return json_response({"value": [self.plane.shown(d) for d in docs
                                         if d.get("type") == model.CLUSTER_TYPE and call.may(READ, d["id"])]})

    async def list_subscription(self, call: Call) -> web.Response:
        docs = await self.plane.all_clusters(call.params["subscription"])
        return json_response({"value": [self.plane.shown(d) for d in docs if call.may(READ, d["id"])]})

    # -- writes --------------------------------------------------------------------------

    async def put(self, call: Call) -> web.Response:
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        rid = cluster_id(p["subscription"], p["group"], p["name"])
        stored = await self.plane.docs.get(rid)
        _check_match(call, stored)
        self.plane.refuse_if_busy(stored.doc if stored else None, rid)
        existing = stored.doc if stored else None
        if existing is not None:
            rid = existing["id"]  # the id keeps the case it was created with
        def build() -> Doc:
            return model.managed_cluster(call.body, existing=existing, resource_id=rid, name=existing["name"]
                                         if existing else p["name"], group=p["group"], subscription=p["subscription"],
                                         tenant_id=self.plane.tenant_id)

        if whatif.requested(call.request.query):  # answers what the PUT would do; nothing changes
            if existing is None:
                raise not_found("Microsoft.ContainerService/managedClusters", p["name"], p["group"])
            return json_response(await whatif.assess(self.plane, existing, build))
        doc = build()
        if existing is None:
            doc["properties"][documents.PRIVATE] = {}
        else:
            await admit_update(self.plane, existing, doc)
        await addressing.admit(self.plane, doc)  # subnets, their sizes, overlaps (AKS's checks)
        state = "Creating" if existing is None else _update_state(existing, doc)
        return await self.plane.begin_change(call, doc, stored, state, created=existing is None)

    async def patch(self, call: Call) -> web.Response:
        """Update tags (ManagedClusters_UpdateTags)."""
        stored = await self.load(call)
        body = call.body if isinstance(call.body, dict) else {}
        doc = stored.doc
        if "tags" in body:
            doc["tags"] = body["tags"] or {}
            doc["eTag"] = documents.new_etag()
            await self.plane.docs.update(doc, stored.revision)
        return json_response(self.plane.shown(doc))

    async def delete(self, call: Call) -> web.Response:
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        stored = await self.plane.docs.get(cluster_id(p["subscription"], p["group"], p["name"]))
        if stored is None:
            return web.Response(status=204)
        _check_match(call, stored)
        return await self.plane.begin_delete(call, stored)

    async def start(self, call: Call) -> web.Response:
        return await self._power(call, "Running")

    async def stop(self, call: Call) -> web.Response:
        return await self._power(call, "Stopped")

    async def _power(self, call: Call, code: str) -> web.Response:
        stored = await self.load(call)
        doc = stored.doc
        props = doc["properties"]
        self.plane.refuse_if_busy(doc, doc["id"])
        if props["powerState"]["code"] == code and props.get("provisioningState") == "Succeeded":
            return web.Response(status=204)  # already there: nothing to do, as AKS answers
        props["powerState"] = {"code": code}
        for pool in props["agentPoolProfiles"]:
            pool["powerState"] = {"code": code}
        state = "Starting" if code == "Running" else "Stopping"
        return await self.plane.begin_change(call, doc, stored, state, created=False, action_response=True)

    # -- credentials and profiles -------------------------------------------------------

    async def admin_credential(self, call: Call) -> web.Response:
        return await self._credential((await self.load(call)).doc, admin=True)

    async def user_credential(self, call: Call) -> web.Response:
        return await self._credential((await self.load(call)).doc, admin=False,
                                      format=call.request.query.get("format"))

    async def _credential(self, doc: Doc, *, admin: bool, format: str | None = None) -> web.Response:
        entra = (doc["properties"].get("aadProfile") or {}).get("managed")
        # static credentials are refused; an Entra cluster's user kubeconfig holds none (AKS hands it out)
        if doc["properties"].get("disableLocalAccounts") and (admin or not entra):
            raise ARMError("BadRequest", "Getting static credential is not allowed because this cluster is set to "
                           "disable local accounts.", 400)
        if format and format.lower() not in aad.FORMATS:
            raise ARMError("InvalidParameter", f"The value of parameter format is invalid: '{format}'. Allowed values "
                           f"are {', '.join(aad.FORMATS)}.", 400, target="format")
        kubeconfig = await self.plane.kubeconfig(doc, admin=admin, format=(format or "exec").lower())
        name = "clusterAdmin" if admin else "clusterUser"
        return json_response({"kubeconfigs": [{"name": name, "value": base64.b64encode(kubeconfig.encode()).decode()}]})

    async def upgrade_profile(self, call: Call) -> web.Response:
        doc = (await self.load(call)).doc
        props = doc["properties"]
        pools = [(p["name"], p["currentOrchestratorVersion"], p.get("osType", "Linux"))
                 for p in props["agentPoolProfiles"]]
        body = versions.upgrade_profile(props["currentKubernetesVersion"], pools)
        body.update(id=f"{doc['id']}/upgradeprofiles/default", name="default",
                    type="Microsoft.ContainerService/managedClusters/upgradeprofiles")
        return json_response(body)

    async def autoscaler_status(self, call: Call) -> web.Response:
        """An lks extension, read-only: what the cluster autoscaler's last scan concluded, per
        pending pod and per node of an autoscaled pool (`lks.autoscaler.explain`)."""
        doc = (await self.load(call)).doc
        if self.plane.autoscaler is None:
            props = {"state": "Unavailable", "message": "The cluster autoscaler does not run in this service."}
        else:
            props = self.plane.autoscaler.explain(doc["id"], doc)
        return json_response({"id": f"{doc['id']}/autoscalerStatus/default", "name": "default",
                              "type": "Microsoft.ContainerService/managedClusters/autoscalerStatus",
                              "properties": props})

    async def available_pool_versions(self, call: Call) -> web.Response:
        doc = (await self.load(call)).doc
        body = versions.available_agent_pool_versions()
        body.update(id=f"{doc['id']}/availableagentpoolversions", name="default",
                    type="Microsoft.ContainerService/managedClusters/availableAgentpoolVersions")
        return json_response(body)

    async def kubernetes_versions(self, call: Call) -> web.Response:
        return json_response(versions.kubernetes_versions_response(call.params["location"]))

    # -- operations ------------------------------------------------------------------------

    async def operation_status(self, call: Call) -> web.Response:
        op = await self._operation(call)
        # clients poll again after Retry-After; without it the SDK waits 30 s
        headers = {"Retry-After": RETRY_AFTER} if op["status"] == "InProgress" else None
        return json_response(documents.public(op), headers=headers)

    async def operation_result(self, call: Call) -> web.Response:
        op = await self._operation(call)
        if op["status"] == "InProgress":
            return web.Response(status=202, headers={"Location": str(call.request.url), "Retry-After": RETRY_AFTER})
        if op["status"] != "Succeeded":
            return json_response({"error": op.get("error")}, 400)
        result = op[documents.PRIVATE].get("result")
        return json_response(result) if result is not None else web.Response(status=204)

    async def _operation(self, call: Call) -> Doc:
        op = await self.plane.operations.settle(call.params["operation"])
        if op is None or op[documents.PRIVATE].get("location", "").lower() != call.params["location"].lower():
            raise ARMError("NotFound", f"Operation '{call.params['operation']}' was not found.", 404)
        return op

    async def provider_operations(self, call: Call) -> web.Response:
        names = ["managedClusters/read", "managedClusters/write", "managedClusters/delete",
                 "managedClusters/start/action", "managedClusters/stop/action",
                 "managedClusters/listClusterAdminCredential/action", "managedClusters/listClusterUserCredential/action",
                 "managedClusters/agentPools/read", "managedClusters/agentPools/write",
                 "managedClusters/agentPools/delete", "locations/operations/read"]
        return json_response({"value": [{"name": f"Microsoft.ContainerService/{n}", "display": {
            "provider": "Microsoft Container Service", "resource": n.split("/")[0], "operation": n,
            "description": n}, "origin": "user,system"} for n in names]})


def _update_state(old: Doc, new: Doc) -> str:
    """The provisioningState AKS shows while an update runs."""
    old_props, new_props = old["properties"], new["properties"]
    if old_props.get("currentKubernetesVersion") != new_props["currentKubernetesVersion"]:
        return "Upgrading"
    old_pools = {p["name"]: p for p in old_props["agentPoolProfiles"]}
    new_pools = {p["name"]: p for p in new_props["agentPoolProfiles"]}
    if any(n in old_pools and model.pool_versions(old_pools[n]) != model.pool_versions(p) for n, p in new_pools.items()):
        return "Upgrading"  # a pool's version or node image: its nodes are upgraded
    if old_pools.keys() == new_pools.keys() and any(
            old_pools[n].get("count") != p.get("count") for n, p in new_pools.items()):
        return "Scaling"
    return "Updating"


def _check_match(call: Call, stored: documents.Stored | None) -> None:
    """`If-Match` / `If-None-Match` against the resource's eTag."""
    if_match = call.request.headers.get("If-Match")
    if_none = call.request.headers.get("If-None-Match")
    etag = stored.doc.get("eTag") if stored else None
    if if_none == "*" and stored is not None:
        raise ARMError("PreconditionFailed", "The resource already exists; If-None-Match '*' does not match.", 412)
    if if_match and if_match != "*" and if_match.strip('"') != etag:
        raise ARMError("PreconditionFailed", f"The specified eTag '{if_match}' does not match the resource's eTag "
                       f"'{etag}'.", 412)
    if if_match == "*" and stored is None:
        raise ARMError("PreconditionFailed", "The resource does not exist; If-Match '*' does not match.", 412)



