"""`Microsoft.Network` virtual networks and their subnets, for clusters that bring their own
subnet (`agentPoolProfiles[].vnetSubnetID`): create or update, get, list and delete, as
azure-mgmt-network's `NetworkManagementClient` (`virtual_networks`, `subnets`) drives them.

A VNet is one document; its subnets live inside it (`properties.subnets`), as ARM shows them,
so a subnet PUT rewrites its VNet. Writes are synchronous: the answer carries
`provisioningState: Succeeded`, which ends the SDK's poller at once. Network's rules are kept:
prefixes in CIDR notation (`InvalidCIDRNotation` when the address is not the range's first),
subnets inside the VNet's address space (`NetcfgSubnetRangeOutsideVnet`) and apart from each
other (`NetcfgSubnetRangesOverlap`), and a subnet that an agent pool uses cannot be deleted
(`InUseSubnetCannotBeDeleted`, naming a node's NIC IP configuration), neither alone, nor left out
of a VNet PUT, nor with its VNet. An in-use subnet lists those IP configurations.

Each cluster's node resource group shows its managed VNet read-only, as AKS creates it when no
pool brings a subnet: `aks-vnet-<n>` (10.224.0.0/12) with `aks-subnet` (10.224.0.0/16).
`lks.arm.addressing` checks clusters against these subnets.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from lks import store
from lks.arm import addressing, documents, nodeshape
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, group_not_found, invalid_parameter, not_found
from lks.arm.resourcegroups import group_id

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
NAMESPACE = "Microsoft.Network"
VNET_TYPE = f"{NAMESPACE}/virtualNetworks"
SUBNET_TYPE = f"{VNET_TYPE}/subnets"
DELEGATION_TYPE = f"{SUBNET_TYPE}/delegations"
READ = f"{VNET_TYPE}/read"


def routes(plane: ManagementPlane) -> list[Route]:
    h = plane.vnets
    group = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks"

    def r(path: str, methods: dict[str, Any], type_name: str) -> Route:
        return route(path, methods, api_versions=None, type_name=type_name, namespace=NAMESPACE)

    return [
        r("/subscriptions/{subscription}/providers/Microsoft.Network/virtualNetworks", {"GET": h.list_all},
          "virtualNetworks"),
        r(group, {"GET": h.list_group}, "virtualNetworks"),
        r(group + "/{vnet}", {"PUT": h.put, "GET": h.get, "DELETE": h.delete}, "virtualNetworks"),
        r(group + "/{vnet}/subnets", {"GET": h.list_subnets}, "virtualNetworks/subnets"),
        r(group + "/{vnet}/subnets/{subnet}", {"PUT": h.put_subnet, "GET": h.get_subnet, "DELETE": h.delete_subnet},
          "virtualNetworks/subnets"),
    ]


def vnet_id(subscription: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{VNET_TYPE}/{name}"


class VirtualNetworks:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane

    # -- for lks.arm.addressing ----------------------------------------------------------------

    async def find_subnet(self, subscription: str, group: str, vnet: str, subnet: str
                          ) -> tuple[Doc | None, Doc | None]:
        """(the VNet, its subnet) by name, either None when missing."""
        stored = await self.plane.docs.get(vnet_id(subscription, group, vnet))
        if stored is None:
            return None, None
        found = next((s for s in stored.doc["properties"]["subnets"] if s["name"].lower() == subnet.lower()), None)
        return stored.doc, found

    async def _users(self, subnet_id: str) -> list[str]:
        """The NIC IP configurations of the nodes of every pool using the subnet (what makes it in use)."""
        out = []
        for doc in await self.plane.all_clusters(subnet_id.split("/")[2]):
            props = doc["properties"]
            for pool in props.get("agentPoolProfiles") or []:
                if (pool.get("vnetSubnetID") or "").lower() != subnet_id.lower():
                    continue
                vmss = f"aks-{pool['name']}-{nodeshape.name_suffix(doc['id'])}-vmss"
                base = (f"/subscriptions/{doc['id'].split('/')[2]}/resourceGroups/{props['nodeResourceGroup']}/providers/"
                        f"Microsoft.Compute/virtualMachineScaleSets/{vmss}")
                out += [f"{base}/virtualMachines/{i}/networkInterfaces/{vmss}/ipConfigurations/ipconfig1"
                        for i in range(max(pool.get("count") or 0, 1))]
        return out

    async def _refuse_in_use(self, subnet: Doc) -> None:
        users = await self._users(subnet["id"])
        if users:
            raise ARMError("InUseSubnetCannotBeDeleted", f"Subnet {subnet['name']} is in use by {users[0]} and cannot "
                           "be deleted. In order to delete the subnet, delete all the resources within the subnet. "
                           "See aka.ms/deletesubnet.", 400)

    async def _shown(self, doc: Doc) -> Doc:
        out = documents.public(doc)
        for subnet in out["properties"]["subnets"]:
            users = await self._users(subnet["id"])
            if users:
                subnet["properties"]["ipConfigurations"] = [{"id": u} for u in users]
        return out

    # -- virtual networks ------------------------------------------------------------------------

    async def _require_group(self, subscription: str, group: str) -> None:
        """The group exists, or is a cluster's node resource group (which lks keeps no document of)."""
        if await self.plane.docs.get(group_id(subscription, group)) is None and \
                not await self._managed(subscription, group, any_cluster=True):
            raise group_not_found(group)

    async def _load(self, call: Call) -> documents.Stored:
        p = call.params
        await self._require_group(p["subscription"], p["group"])
        stored = await self.plane.docs.get(vnet_id(p["subscription"], p["group"], p["vnet"]))
        if stored is None:
            managed = await self._managed(p["subscription"], p["group"])
            for doc in managed:
                if doc["name"].lower() == p["vnet"].lower():
                    return documents.Stored(doc, 0)
            raise not_found(VNET_TYPE, p["vnet"], p["group"])
        return stored

    async def get(self, call: Call) -> web.Response:
        return json_response(await self._shown((await self._load(call)).doc))

    async def list_group(self, call: Call) -> web.Response:
        p = call.params
        await self._require_group(p["subscription"], p["group"])
        docs = await self.plane.docs.list(f"/subscriptions/{p['subscription']}/resourceGroups/{p['group']}/providers/"
                                          f"{VNET_TYPE}")
        docs += await self._managed(p["subscription"], p["group"])
        return json_response({"value": [await self._shown(d) for d in docs if call.may(READ, d["id"])]})

    async def list_all(self, call: Call) -> web.Response:
        sub = call.params["subscription"]
        res = await self.plane.docs.store.list(documents.key(f"/subscriptions/{sub}/"))
        docs = [d for d in (orjson.loads(kv.value) for kv in res.items if "/virtualnetworks/" in kv.key)
                if d.get("type") == VNET_TYPE]
        docs += await self._managed(sub, None)
        return json_response({"value": [await self._shown(d) for d in docs if call.may(READ, d["id"])]})

    async def put(self, call: Call) -> web.Response:
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        if any(d["name"].lower() == p["vnet"].lower() for d in await self._managed(p["subscription"], p["group"])):
            raise ARMError("AuthorizationFailed", "The managed virtual network of an AKS node resource group is "
                           "managed by AKS and cannot be changed.", 403)
        rid = vnet_id(p["subscription"], p["group"], p["vnet"])
        stored = await self.plane.docs.get(rid)
        old = stored.doc if stored else None
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        location = body.get("location") or (old or {}).get("location")
        if not location:
            raise ARMError("LocationRequired", "The location property is required for this definition.", 400)
        if not isinstance(location, str) or not isinstance(body.get("tags") or {}, dict):
            raise ARMError("InvalidRequestFormat", "Cannot parse the request.", 400)
        rid = old["id"] if old else rid
        space = _prefixes(props.get("addressSpace") or (old or {}).get("properties", {}).get("addressSpace") or {},
                          rid, "addressSpace.addressPrefixes")
        if not space:
            raise invalid_parameter("The value of parameter addressSpace.addressPrefixes is invalid: a virtual network "
                                    "needs at least one address prefix.", "addressSpace")
        old_subnets = {s["name"].lower(): s for s in (old or {}).get("properties", {}).get("subnets") or []}
        given = props.get("subnets")
        if given is None:
            subnets = list(old_subnets.values())
        else:
            if not isinstance(given, list):
                raise invalid_parameter("The value of parameter subnets is invalid.", "subnets")
            subnets = [_subnet(s if isinstance(s, dict) else {}, rid, s.get("name") if isinstance(s, dict) else None,
                               old_subnets.get(str((s or {}).get("name")).lower()) if isinstance(s, dict) else None)
                       for s in given]
            kept = {s["name"].lower() for s in subnets}
            for name, s in old_subnets.items():
                if name not in kept:
                    await self._refuse_in_use(s)
        doc = {
            "id": rid, "name": old["name"] if old else p["vnet"], "type": VNET_TYPE, "location": location,
            "tags": body.get("tags", (old or {}).get("tags")) or {}, "etag": f'W/"{uuid.uuid4()}"',
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": (old or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4()),
                "addressSpace": {"addressPrefixes": space},
                "subnets": subnets, "virtualNetworkPeerings": [], "enableDdosProtection": False,
            },
        }
        _check_layout(doc)
        await self._store(doc, stored)
        return json_response(await self._shown(doc), 201 if stored is None else 200)

    async def delete(self, call: Call) -> web.Response:
        p = call.params
        await self.plane.groups.require(p["subscription"], p["group"])
        stored = await self.plane.docs.get(vnet_id(p["subscription"], p["group"], p["vnet"]))
        if stored is None:
            return web.Response(status=204)
        for subnet in stored.doc["properties"]["subnets"]:
            await self._refuse_in_use(subnet)
        await self.plane.docs.delete(stored.doc["id"])
        return web.Response(status=200)

    # -- subnets ----------------------------------------------------------------------------------

    def _find(self, doc: Doc, call: Call) -> Doc:
        name = call.params["subnet"]
        found = next((s for s in doc["properties"]["subnets"] if s["name"].lower() == name.lower()), None)
        if found is None:
            raise not_found(SUBNET_TYPE, f"{doc['name']}/{name}", call.params["group"])
        return found

    async def get_subnet(self, call: Call) -> web.Response:
        doc = await self._shown((await self._load(call)).doc)
        return json_response(self._find(doc, call))

    async def list_subnets(self, call: Call) -> web.Response:
        doc = await self._shown((await self._load(call)).doc)
        return json_response({"value": doc["properties"]["subnets"]})

    async def put_subnet(self, call: Call) -> web.Response:
        stored = await self._load(call)
        if stored.revision == 0:  # a managed VNet's
            raise ARMError("AuthorizationFailed", "The managed virtual network of an AKS node resource group is "
                           "managed by AKS and cannot be changed.", 403)
        doc = stored.doc
        body = call.body if isinstance(call.body, dict) else {}
        subnets = doc["properties"]["subnets"]
        name = call.params["subnet"]
        old = next((s for s in subnets if s["name"].lower() == name.lower()), None)
        subnet = _subnet(body, doc["id"], old["name"] if old else name, old)
        if old is not None and await self._users(old["id"]) and \
                subnet["properties"]["addressPrefix"] != old["properties"]["addressPrefix"]:
            raise ARMError("InUseSubnetCannotBeUpdated", f"Subnet {old['name']} is in use by agent pool nodes and its "
                           "address prefix cannot be changed.", 400)
        doc["properties"]["subnets"] = [subnet if s is old else s for s in subnets] if old else [*subnets, subnet]
        doc["etag"] = f'W/"{uuid.uuid4()}"'
        _check_layout(doc)
        await self._store(doc, stored)
        shown = self._find(await self._shown(doc), call)
        return json_response(shown, 200 if old else 201)

    async def delete_subnet(self, call: Call) -> web.Response:
        stored = await self._load(call)
        doc = stored.doc
        name = call.params["subnet"]
        old = next((s for s in doc["properties"]["subnets"] if s["name"].lower() == name.lower()), None)
        if old is None:
            return web.Response(status=204)
        if stored.revision == 0:
            raise ARMError("AuthorizationFailed", "The managed virtual network of an AKS node resource group is "
                           "managed by AKS and cannot be changed.", 403)
        await self._refuse_in_use(old)
        doc["properties"]["subnets"] = [s for s in doc["properties"]["subnets"] if s is not old]
        await self._store(doc, stored)
        return web.Response(status=200)

    async def _store(self, doc: Doc, stored: documents.Stored | None) -> None:
        try:
            if stored is None:
                await self.plane.docs.create(doc)
            else:
                await self.plane.docs.update(doc, stored.revision)
        except (store.KeyExists, store.RevisionConflict) as err:
            raise ARMError("Conflict", "The resource was changed by another request; retry.", 409) from err

    # -- the managed VNets of node resource groups -----------------------------------------------

    async def _managed(self, subscription: str, group: str | None, *, any_cluster: bool = False) -> list[Doc]:
        """The `aks-vnet-<n>` of each cluster whose node resource group is `group` (None: any) and
        whose pools bring no subnet of their own (`any_cluster`: of every such cluster)."""
        out = []
        for doc in await self.plane.all_clusters(subscription):
            props = doc["properties"]
            node_group = props.get("nodeResourceGroup") or ""
            if group is not None and node_group.lower() != group.lower():
                continue
            if not any_cluster and any(p.get("vnetSubnetID") for p in props.get("agentPoolProfiles") or []):
                continue
            name = addressing.managed_vnet_name(doc["id"])
            rid = vnet_id(doc["id"].split("/")[2], node_group, name)
            seed = uuid.uuid5(uuid.NAMESPACE_URL, rid.lower())
            subnet = _subnet({"properties": {"addressPrefix": addressing.MANAGED_SUBNET}}, rid,
                             addressing.MANAGED_SUBNET_NAME, None)
            subnet["etag"] = f'W/"{uuid.uuid5(seed, "subnet")}"'
            out.append({"id": rid, "name": name, "type": VNET_TYPE, "location": doc["location"],
                        "tags": {}, "etag": f'W/"{uuid.uuid5(seed, "etag")}"', "properties": {
                            "provisioningState": "Succeeded", "resourceGuid": str(seed),
                            "addressSpace": {"addressPrefixes": [addressing.MANAGED_ADDRESS_SPACE]},
                            "subnets": [subnet], "virtualNetworkPeerings": [], "enableDdosProtection": False}})
        return out


def _prefixes(space: Any, rid: str, field: str) -> list[str]:
    prefixes = space.get("addressPrefixes") if isinstance(space, dict) else None
    if not isinstance(prefixes, list):
        raise invalid_parameter(f"The value of parameter {field} is invalid.", field)
    return [_cidr(p, rid) for p in prefixes]


def _cidr(value: Any, rid: str) -> str:
    """A prefix in CIDR notation, as Network checks it."""
    try:
        net = ipaddress.ip_network(value, strict=False) if isinstance(value, str) and "/" in value else None
    except ValueError:
        net = None
    if net is None:
        raise ARMError("InvalidAddressPrefixFormat", f"Address prefix {value} of resource {rid} is not formatted "
                       "correctly. It should follow CIDR notation, for example 10.0.0.0/24.", 400)
    if str(net) != value.strip():
        raise ARMError("InvalidCIDRNotation", f"The address prefix {value} in resource {rid} has an invalid CIDR "
                       f"notation. For the given prefix length, the address prefix should be {net}.", 400)
    return str(net)


def _subnet(body: Doc, vnet: str, name: Any, old: Doc | None) -> Doc:
    """A subnet from its PUT body (alone, or inside its VNet's)."""
    if not isinstance(name, str) or not name:
        raise invalid_parameter("The value of parameter subnets[].name is invalid: a subnet needs a name.", "subnets")
    rid = f"{vnet}/subnets/{name}"
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    prefix = props.get("addressPrefix")
    if prefix is None and isinstance(props.get("addressPrefixes"), list) and props["addressPrefixes"]:
        prefix = props["addressPrefixes"][0]
    if prefix is None:
        raise ARMError("SubnetMissingRequiredProperty", f"Subnet {rid} does not have required property "
                       "'addressPrefix' or 'addressPrefixes'.", 400)
    delegations = []
    given = props.get("delegations") or []
    if not isinstance(given, list):
        raise invalid_parameter("The value of parameter delegations is invalid.", "delegations")
    for d in given:
        if not isinstance(d, dict):
            raise invalid_parameter("The value of parameter delegations is invalid.", "delegations")
        dprops = d.get("properties") if isinstance(d.get("properties"), dict) else {}
        service = dprops.get("serviceName")
        dname = d.get("name") or service
        if not isinstance(service, str) or not service or not isinstance(dname, str):
            raise invalid_parameter("The value of parameter delegations[].properties.serviceName is invalid.",
                                    "delegations")
        delegations.append({"id": f"{rid}/delegations/{dname}", "name": dname, "type": DELEGATION_TYPE,
                            "etag": f'W/"{uuid.uuid4()}"', "properties": {
                                "provisioningState": "Succeeded", "serviceName": service,
                                "actions": dprops.get("actions") or []}})
    return {"id": rid, "name": name, "type": SUBNET_TYPE, "etag": f'W/"{uuid.uuid4()}"', "properties": {
        "provisioningState": "Succeeded", "addressPrefix": _cidr(prefix, rid), "delegations": delegations,
        "privateEndpointNetworkPolicies": props.get("privateEndpointNetworkPolicies") or "Disabled",
        "privateLinkServiceNetworkPolicies": props.get("privateLinkServiceNetworkPolicies") or "Enabled"}}


def _check_layout(doc: Doc) -> None:
    """Every subnet inside the address space, no two overlapping, names unique."""
    space = [ipaddress.ip_network(p) for p in doc["properties"]["addressSpace"]["addressPrefixes"]]
    seen: list[tuple[str, Any]] = []
    for s in doc["properties"]["subnets"]:
        net = ipaddress.ip_network(s["properties"]["addressPrefix"])
        if not any(net.version == a.version and net.subnet_of(a) for a in space):  # type: ignore[arg-type]
            raise ARMError("NetcfgSubnetRangeOutsideVnet", f"Subnet '{s['name']}' is not valid because its IP address "
                           f"range is outside the IP address range of virtual network '{doc['name']}'.", 400)
        for name, other in seen:
            if name.lower() == s["name"].lower():
                raise invalid_parameter(f"Subnet name '{s['name']}' is duplicated.", "subnets")
            if other.overlaps(net):
                raise ARMError("NetcfgSubnetRangesOverlap", f"Subnet '{s['name']}' is not valid because its IP "
                               f"address range overlaps with that of an existing subnet in virtual network "
                               f"'{doc['name']}'.", 400)
        seen.append((s["name"], net))

