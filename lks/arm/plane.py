"""The management plane: the ARM resource provider that turns managed cluster documents into
hosted control planes (`lks.controlplanes`) and node pools (`lks.arm.fleet`).

Handlers store the desired state and start an operation; the operation's work is
`reconcile` (make the control plane and the pools match the document, then mark it
`Succeeded`) or `delete`. Both are level-triggered, so an operation that a restart
interrupted simply runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from lks import kubeconfig, pki, store
from lks.arm import (
    aad,
    agentpools,
    authorization,
    documents,
    maintenance,
    managedclusters,
    model,
    netpolcheck,
    network,
    policy,
    resourcegroups,
    vnets,
)
from lks.arm.app import Call, Route
from lks.arm.errors import ARMError
from lks.arm.fleet import Fleet
from lks.arm.operations import Operations
from lks.clock import Clock
from lks.controlplanes import ControlPlanes
from lks.identity import rbac
from lks.observability import service
from lks.policy.azure import addon

log = logging.getLogger(__name__)

Doc = dict[str, Any]
PRIVATE = documents.PRIVATE


class ManagementPlane:
    def __init__(self, *, meta: store.Backend, planes: ControlPlanes, endpoint: str, ca_file: Path,
                 clock: Clock | None = None, tenant_id: str | None = None):
        """`tenant_id` is the service's tenant (config.json), the clusters' `identity.tenantId`."""
        self.clock = clock or Clock()
        self.tenant_id = tenant_id
        self.docs = documents.Documents(meta)
        self.rbac = rbac.RoleAssignments(meta)  # Azure RBAC: loaded by the service before it serves
        self.operations = Operations(meta, clock=self.clock, url=self.url)
        self.planes = planes
        self.endpoint = endpoint
        self.ca_file = ca_file
        self.fleet = Fleet(clock=self.clock, data_dir=planes.data_dir, tls=planes.tls)
        self.groups = resourcegroups.ResourceGroups(self)
        self.vnets = vnets.VirtualNetworks(self)  # Microsoft.Network VNets and subnets (vnetSubnetID)
        # the cluster autoscaler (`lks.autoscaler`, a layer above) registers here once started:
        # `managedClusters/{name}/autoscalerStatus` asks it to explain itself
        self.autoscaler: Any = None
        # the azure-policy add-on's sync of assignments into clusters, and of compliance back
        self.policy_addon = addon.AddonSync(meta=meta, targets=self.policy_targets, cluster_of=planes.get,
                                            clock=self.clock)
        # lks_clusters and lks_nodes of the management endpoint's /metrics
        service.SERVICE.clusters = lambda: len(planes.clusters)
        service.SERVICE.nodes = lambda: sum(len(pool.agents) for pool in self.fleet.pools.values())
        # what else a resource group's deletion takes with it (container groups: `lks.aci`)
        self.group_contents: list[Callable[[str, str], Awaitable[None]]] = []
        self.operations.register("managedClusters.reconcile", self._reconcile)
        self.operations.register("managedClusters.delete", self._delete)

    def routes(self) -> list[Route]:
        return [*resourcegroups.routes(self), *managedclusters.routes(self), *agentpools.routes(self),
                *maintenance.routes(self), *authorization.routes(self), *policy.routes(self),
                *netpolcheck.routes(self), *network.routes(self), *vnets.routes(self)]

    async def start(self) -> None:
        """Bring back what was running: node agents of running clusters, interrupted operations."""
        for doc in await self.all_clusters(None):
            props = doc["properties"]
            if props.get("provisioningState") in ("Succeeded", "Failed") and props["powerState"]["code"] == "Running":
                cluster = self.planes.get(props.get(PRIVATE, {}).get("controlPlane", ""))
                if cluster is not None:
                    await self.fleet.sync(doc, cluster)
        await self.policy_addon.start()
        await self.operations.resume()
        # read again: resuming may have finished deletes; what is left Deleting without an
        # operation stopped before its operation was journaled
        for doc in await self.all_clusters(None):
            if doc["properties"].get("provisioningState") == "Deleting" and self.operations.running(doc["id"]) is None:
                await self._begin_delete(doc)

    async def stop(self) -> None:
        await self.policy_addon.stop()
        await self.operations.stop()
        await self.fleet.shutdown()

    # -- helpers for handlers -----------------------------------------------------------------

    def url(self, path: str, api_version: str) -> str:
        return f"{self.endpoint}{path}?api-version={api_version}"

    def shown(self, doc: Doc) -> Doc:
        return documents.public(doc)

    def refuse_if_busy(self, doc: Doc | None, resource_id: str) -> None:
        """AKS refuses a second mutating operation while one runs on the cluster."""
        if doc is None or self.operations.running(resource_id) is None:
            return
        state = doc["properties"].get("provisioningState", "Updating")
        raise ARMError(
            "OperationNotAllowed",
            f"Operation is not allowed because there's an in progress {_verb(state)} operation on the managed "
            f"cluster {doc['name']}. Please wait until the operation is completed and then retry.", 409)

    async def all_clusters(self, subscription: str | None) -> list[Doc]:
        res = await self.docs.store.list(documents.PREFIX + "/subscriptions/")
        import orjson

        docs = [orjson.loads(kv.value) for kv in res.items if "/managedclusters/" in kv.key
                and kv.key.count("/managedclusters/") == 1 and kv.key.rsplit("/managedclusters/", 1)[1].count("/") == 0]
        return [d for d in docs if subscription is None or d["id"].split("/")[2].lower() == subscription.lower()]

    async def policy_targets(self) -> list[tuple[str, str]]:
        """(id, control plane id) of the clusters whose azurepolicy add-on is on."""
        return [(d["id"], d["properties"][PRIVATE]["controlPlane"]) for d in await self.all_clusters(None)
                if ((d["properties"].get("addonProfiles") or {}).get("azurepolicy") or {}).get("enabled")
                and (d["properties"].get(PRIVATE) or {}).get("controlPlane")]

    async def begin_change(self, call: Call, doc: Doc, stored: documents.Stored | None, state: str, *,
                           created: bool, action_response: bool = False) -> web.Response:
        """Store `doc` in `state` and start reconciling it; ARM's answer to the request (a PUT's,
        or with `action_response` a POST action's)."""
        op = await self.begin_operation(call, doc, stored, state, created=created)
        if action_response:
            return await self.operations.answer_action(op, call.api_version)
        return await self.operations.answer_put(op, call.api_version, status=201 if created else 200,
                                                accepted=self.shown(doc), final=lambda: self.current(doc["id"]))

    async def begin_operation(self, call: Call | None, doc: Doc, stored: documents.Stored | None, state: str, *,
                              created: bool) -> Doc:
        """Store `doc` in `state` and start the operation that reconciles it (its record); `call`
        is None when the service itself changes the cluster (`lks.upgrade.auto`)."""
        props = doc["properties"]
        props["provisioningState"] = state
        old_pools = {p["name"]: p for p in (stored.doc["properties"]["agentPoolProfiles"] if stored else [])}
        for pool in props["agentPoolProfiles"]:
            if created or pool != old_pools.get(pool["name"]) or state in ("Starting", "Stopping", "Upgrading"):
                pool["provisioningState"] = state
            else:
                pool["provisioningState"] = pool.get("provisioningState", "Succeeded")
        doc["eTag"] = documents.new_etag()
        try:
            if stored is None:
                await self.docs.create(doc)
            else:
                await self.docs.update(doc, stored.revision)
        except (store.KeyExists, store.RevisionConflict) as err:
            raise ARMError("Conflict", "The resource was changed by another request; retry.", 409) from err
        return await self.operations.begin("managedClusters.reconcile", subscription=doc["id"].split("/")[2],
                                           location=doc["location"], resource_id=doc["id"],
                                           action=f"{state.lower()} {doc['name']}")

    async def current(self, resource_id: str) -> Doc:
        """The resource as the API shows it now (the final state of a synchronous answer)."""
        stored = await self.docs.get(resource_id)
        if stored is None:
            raise ARMError("ResourceNotFound", f"The resource {resource_id} was deleted.", 404)
        return self.shown(stored.doc)

    async def begin_delete(self, call: Call, stored: documents.Stored) -> web.Response:
        doc = stored.doc
        op = self.operations.running(doc["id"])
        if op is None or doc["properties"].get("provisioningState") != "Deleting":
            self.refuse_if_busy(doc, doc["id"])
            doc["properties"]["provisioningState"] = "Deleting"
            await self.docs.update(doc, stored.revision)
            op = await self._begin_delete(doc)
        return await self.operations.answer_action(op, call.api_version)

    async def _begin_delete(self, doc: Doc) -> Doc:
        return await self.operations.begin("managedClusters.delete", subscription=doc["id"].split("/")[2],
                                           location=doc["location"], resource_id=doc["id"],
                                           action=f"delete {doc['name']}")

    async def kubeconfig(self, doc: Doc, *, admin: bool, format: str = "exec") -> str:
        """The admin or user kubeconfig; the user one of an Entra-integrated cluster
        authenticates with Entra tokens (`format`: AKS's `exec` or `azure`, `lks.arm.aad`)."""
        cp_id = doc["properties"].get(PRIVATE, {}).get("controlPlane")
        record = await self.planes.record(cp_id) if cp_id else None
        if record is None:
            raise ARMError("OperationNotAllowed", "The cluster's control plane is not provisioned yet.", 409)
        group = doc["id"].split("/")[4]
        name = doc["name"]
        server = f"{self.endpoint}/clusters/{cp_id}"
        if admin:
            ca = pki.KeyPair(record["caCert"].encode(), record["caKey"].encode())
            credential = kubeconfig.client_certificate(ca, "masterclient", ("system:masters",))
            user = f"clusterAdmin_{group}_{name}"
        else:
            profile = doc["properties"].get("aadProfile") or {}
            credential = aad.user_credential(profile, self.endpoint, format) if profile.get("managed") else {
                "token": record["userToken"]}
            user = f"clusterUser_{group}_{name}"
        return kubeconfig.build(name=name, server=server, ca_pem=self.ca_file.read_bytes(), user=user,
                                credential=credential)

    async def delete_group_contents(self, subscription: str, group: str) -> None:
        for doc in await self.docs.list(f"/subscriptions/{subscription}/resourcegroups/{group}"
                                        f"{managedclusters.PROVIDER}/managedClusters"):
            if doc.get("type") == model.CLUSTER_TYPE:
                await self._teardown(doc)
                await self.docs.delete(doc["id"])
        for doc in await self.docs.list(vnets.vnet_id(subscription, group, "").rstrip("/")):
            await self.docs.delete(doc["id"])  # the group's virtual networks go with it
        for delete in self.group_contents:
            await delete(subscription, group)

    # -- operation work ---------------------------------------------------------------------

    async def _reconcile(self, op: Doc) -> None:
        rid = op[PRIVATE]["resourceId"]
        stored = await self.docs.get(rid)
        if stored is None:
            return
        doc = stored.doc
        props = doc["properties"]
        private = props.setdefault(PRIVATE, {})
        cp_id = private.get("controlPlane")
        record = await self.planes.record(cp_id) if cp_id else None
        version = props["currentKubernetesVersion"]
        if record is None:
            if not cp_id:  # the id is recorded before the control plane exists: a resumed create
                cp_id = self.planes.new_id()  # finishes that one instead of leaving it orphaned
                stored = await self._save(rid, lambda d: d["properties"].setdefault(PRIVATE, {}).update(
                    controlPlane=cp_id))
                doc = stored.doc
                props = doc["properties"]
            net = props.get("networkProfile") or {}
            await self.planes.create(doc["name"], version, id=cp_id, network={
                k: net[k] for k in ("podCidr", "serviceCidr", "dnsServiceIP", "networkPlugin", "networkPolicy") if k in net})
        elif record["kubernetesVersion"] != version:
            await self.fleet.stop(doc, delete_nodes=False, keep_processes=True)  # AKS's nodes run on
            await self.planes.set_version(cp_id, version)
        await self.planes.set_access(cp_id, authorized_ip_ranges=(props.get("apiServerAccessProfile") or {}).get(
            "authorizedIPRanges") or [], disable_local_accounts=bool(props.get("disableLocalAccounts")))
        await self.planes.set_entra(cp_id, aad.settings(doc, doc["id"]))
        await self.planes.set_addons(cp_id, azure_policy=bool(
            ((props.get("addonProfiles") or {}).get("azurepolicy") or {}).get("enabled")),
            web_app_routing=model.web_app_routing(doc), virtual_node=model.virtual_node(doc))
        await self.planes.set_network_policy(cp_id, (props.get("networkProfile") or {}).get("networkPolicy") or "none")
        # AKS's issuer is https://<region>.oic.prod-aks.azure.com/<tenant>/<cluster guid>/; lks's is the
        # cluster's own endpoint, which serves the discovery documents to anyone once it is enabled
        issuer = f"{self.endpoint}/clusters/{cp_id}/" if (props.get("oidcIssuerProfile") or {}).get("enabled") else None
        await self.planes.set_issuer(cp_id, issuer)
        if props["powerState"]["code"] == "Running":
            cluster = self.planes.get(cp_id) or await self.planes.start(cp_id)
            try:
                await self.fleet.sync(doc, cluster, progress=lambda pct: self.operations.progress(op, pct))
            except ARMError:  # a drain that did not finish: the cluster is Failed, as on AKS
                await self._save(rid, lambda d: _set_all(d, "Failed"))
                raise
        else:
            cluster = self.planes.get(cp_id)
            if cluster is not None:
                await self.fleet.stop(doc, delete_nodes=True, cluster=cluster)
            await self.planes.stop(cp_id)

        await self._save(rid, lambda d: _set_all(d, "Succeeded", issuer_url=issuer))

    async def _delete(self, op: Doc) -> None:
        rid = op[PRIVATE]["resourceId"]
        stored = await self.docs.get(rid)
        if stored is None:
            return
        await self._teardown(stored.doc)
        await self.docs.delete(rid)

    async def _teardown(self, doc: Doc) -> None:
        cp_id = doc["properties"].get(PRIVATE, {}).get("controlPlane")
        await self.fleet.forget(doc)
        if cp_id:
            await self.planes.delete(cp_id)
        for child in await self.docs.list(doc["id"]):  # its maintenance configurations
            await self.docs.delete(child["id"])
        await self.rbac.delete_within(doc["id"])
        await policy.forget_scope(self, doc["id"])

    async def _save(self, rid: str, change: Any) -> documents.Stored:
        """Apply `change` to the stored document, retrying over concurrent writes (tags)."""
        for _ in range(16):
            stored = await self.docs.get(rid)
            if stored is None:
                raise ARMError("ResourceNotFound", f"The resource {rid} was deleted.", 404)
            change(stored.doc)
            try:
                rev = await self.docs.update(stored.doc, stored.revision)
                return documents.Stored(stored.doc, rev)
            except store.RevisionConflict:
                continue
        raise ARMError("Conflict", "The resource keeps changing; retry.", 409)


def _verb(state: str) -> str:
    return {"Creating": "create managed cluster", "Updating": "update managed cluster",
            "Scaling": "scale managed cluster", "Upgrading": "upgrade managed cluster",
            "Starting": "start managed cluster", "Stopping": "stop managed cluster",
            "Deleting": "delete managed cluster"}.get(state, "update managed cluster")


def _set_all(doc: Doc, state: str, *, issuer_url: str | None = None) -> None:
    """The cluster's provisioningState and every pool's, at the end of an operation (and the
    OIDC issuer's URL once it serves)."""
    doc["properties"]["provisioningState"] = state
    if issuer_url and (doc["properties"].get("oidcIssuerProfile") or {}).get("enabled"):
        doc["properties"]["oidcIssuerProfile"]["issuerURL"] = issuer_url
    for pool in doc["properties"]["agentPoolProfiles"]:
        pool["provisioningState"] = state
