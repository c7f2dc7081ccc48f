"""`Microsoft.Network` resources of the node resource groups (`MC_<rg>_<cluster>_<location>`),
as AKS's cloud provider leaves them there for LoadBalancer Services, read-only (GET and list):
the load balancer `kubernetes` (public frontends) and `kubernetes-internal` (frontends in the node
subnet), each with a frontend IP configuration per Service (`a` and the Service's uid without
dashes, 32 characters, as upstream's `DefaultLoadBalancerName`), a load-balancing rule and a
probe per port (`<frontend>-<protocol>-<port>`), and the backend pool `kubernetes` listing the
nodes' VMSS NIC IP configurations; and a public IP address `kubernetes-<frontend>` per public
frontend, tagged `k8s-azure-service` and `k8s-azure-cluster-name` (`kubernetes`, the cluster name
AKS gives its cloud provider). The cluster's managed outbound IP is there as on AKS: a public IP
named by a GUID, tagged `aks-managed-type: aks-slb-managed-outbound-ip`, the frontend of the
`kubernetes` load balancer's outbound rule `aksOutboundRule` over the pool `aksOutboundBackendPool`.

They are views: the frontends are `lks.net.loadbalancer.frontends`' records, the backends the
cluster's Nodes, so what they show is what the service controller did.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm import documents, nodeshape
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import group_not_found, not_found
from lks.arm.resourcegroups import group_id
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.net.loadbalancer.frontends import OUTBOUND

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
NAMESPACE = "Microsoft.Network"
PUBLIC_LB, INTERNAL_LB = "kubernetes", "kubernetes-internal"
CLUSTER_NAME = "kubernetes"  # what AKS calls the cluster in its cloud provider's names and tags
BACKEND_POOL = "kubernetes"
OUTBOUND_POOL, OUTBOUND_RULE = "aksOutboundBackendPool", "aksOutboundRule"
LB_TYPE, PIP_TYPE = f"{NAMESPACE}/loadBalancers", f"{NAMESPACE}/publicIPAddresses"
VNET, SUBNET = "aks-vnet", "aks-subnet"  # the managed VNet is `aks-vnet-<n>`
_EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))


def frontend_name(uid: str) -> str:
    """Upstream's `DefaultLoadBalancerName`: `a` + the uid without dashes, cut at 32 characters."""
    return ("a" + uid.replace("-", ""))[:32]


def routes(plane: ManagementPlane) -> list[Route]:
    h = Network(plane)
    group = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network"
    every = "/subscriptions/{subscription}/providers/Microsoft.Network"

    def r(path: str, handler: Any, type_name: str) -> Route:
        return route(path, {"GET": handler}, api_versions=None, type_name=type_name, namespace=NAMESPACE)

    return [
        r(group + "/loadBalancers", h.list_load_balancers, "loadBalancers"),
        r(group + "/loadBalancers/{name}", h.get_load_balancer, "loadBalancers"),
        r(every + "/loadBalancers", h.list_load_balancers, "loadBalancers"),
        r(group + "/publicIPAddresses", h.list_public_ips, "publicIPAddresses"),
        r(group + "/publicIPAddresses/{name}", h.get_public_ip, "publicIPAddresses"),
        r(every + "/publicIPAddresses", h.list_public_ips, "publicIPAddresses"),
    ]


class Network:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane

    # -- handlers ----------------------------------------------------------------------------

    async def list_load_balancers(self, call: Call) -> web.Response:
        found = [lb for view in await self._views(call) for lb in await view.load_balancers()]
        return json_response({"value": [lb for lb in found if call.may(f"{LB_TYPE}/read", lb["id"])]})

    async def get_load_balancer(self, call: Call) -> web.Response:
        name = call.params["name"]
        for view in await self._views(call):
            for lb in await view.load_balancers():
                if lb["name"].lower() == name.lower():
                    return json_response(lb)
        raise not_found(LB_TYPE, name, call.params["group"])

    async def list_public_ips(self, call: Call) -> web.Response:
        found = [pip for view in await self._views(call) for pip in view.public_ips()]
        return json_response({"value": [p for p in found if call.may(f"{PIP_TYPE}/read", p["id"])]})

    async def get_public_ip(self, call: Call) -> web.Response:
        name = call.params["name"]
        for view in await self._views(call):
            for pip in view.public_ips():
                if pip["name"].lower() == name.lower():
                    return json_response(pip)
        raise not_found(PIP_TYPE, name, call.params["group"])

    async def _views(self, call: Call) -> list[_NodeGroup]:
        """The node resource groups the request is about (one group, or the subscription's)."""
        sub = call.params["subscription"]
        group = call.params.get("group")
        docs = [d for d in await self.plane.all_clusters(sub)
                if group is None or d["properties"].get("nodeResourceGroup", "").lower() == group.lower()]
        if group is not None and not docs and await self.plane.docs.get(group_id(sub, group)) is None:
            raise group_not_found(group)
        balancers = self.plane.planes.load_balancers
        views = []
        for doc in docs:
            cp_id = (doc["properties"].get(documents.PRIVATE) or {}).get("controlPlane")
            if cp_id and balancers is not None:
                views.append(_NodeGroup(self.plane, doc, cp_id, balancers.frontends.of_cluster(cp_id)))
        return views


class _NodeGroup:
    """What one cluster's node resource group shows."""

    def __init__(self, plane: ManagementPlane, doc: Doc, cp_id: str, frontends: list[Any]):
        self.plane = plane
        self.doc = doc
        self.cp_id = cp_id
        self.outbound = next((f for f in frontends if f.uid == OUTBOUND), None)
        self.frontends = sorted((f for f in frontends if f.uid != OUTBOUND), key=lambda f: (f.namespace, f.name))
        self.outbound_name = self._guid("outbound-ip")
        self.subscription = doc["id"].split("/")[2]
        self.group = doc["properties"]["nodeResourceGroup"]
        self.base = f"/subscriptions/{self.subscription}/resourceGroups/{self.group}/providers/{NAMESPACE}"
        self.tags = {"aks-managed-cluster-name": doc["name"], "aks-managed-cluster-rg": doc["id"].split("/")[4]}

    def _guid(self, *parts: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join((self.cp_id, *parts))))

    def _etag(self, *parts: str) -> str:
        return f'W/"{self._guid("etag", *parts)}"'

    def public_ips(self) -> list[Doc]:
        out = []
        if self.outbound is not None:
            name = self.outbound_name
            out.append(self._public_ip(name, self.outbound.ip, {**self.tags, "aks-managed-type": "aks-slb-managed-outbound-ip"},
                                       idle=30, frontend=name))
        for f in self.frontends:
            if f.internal:
                continue
            name = f"{CLUSTER_NAME}-{frontend_name(f.uid)}"
            tags = {**self.tags, "k8s-azure-cluster-name": CLUSTER_NAME, "k8s-azure-service": f"{f.namespace}/{f.name}"}
            out.append(self._public_ip(name, f.ip, tags, idle=4, frontend=frontend_name(f.uid)))
        return out

    def _public_ip(self, name: str, ip: str, tags: dict[str, str], *, idle: int, frontend: str) -> Doc:
        return {
            "name": name, "id": f"{self.base}/publicIPAddresses/{name}", "etag": self._etag(name),
            "type": PIP_TYPE, "location": self.doc["location"], "tags": tags,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "provisioningState": "Succeeded", "resourceGuid": self._guid(name), "ipAddress": ip,
                "publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static",
                "idleTimeoutInMinutes": idle, "ipTags": [],
                "ipConfiguration": {"id": f"{self.base}/loadBalancers/{PUBLIC_LB}/frontendIPConfigurations/{frontend}"},
            },
        }

    async def load_balancers(self) -> list[Doc]:
        backends = await self._backend_ip_configurations()
        out = []
        for name, internal in ((PUBLIC_LB, False), (INTERNAL_LB, True)):
            frontends = [f for f in self.frontends if f.internal == internal]
            if frontends or (not internal and self.outbound is not None):
                out.append(self._load_balancer(name, frontends, backends))
        return out

    def _load_balancer(self, name: str, frontends: list[Any], backends: list[str]) -> Doc:
        lb_id = f"{self.base}/loadBalancers/{name}"
        pool_id = f"{lb_id}/backendAddressPools/{BACKEND_POOL}"
        configs, rules, probes = [], [], []
        for f in frontends:
            fname = frontend_name(f.uid)
            fid = f"{lb_id}/frontendIPConfigurations/{fname}"
            rule_refs = []
            for port in f.ports:
                if port["protocol"] not in ("TCP", "UDP"):
                    continue  # an Azure load balancer has TCP and UDP rules only
                rname = f"{fname}-{port['protocol']}-{port['port']}"
                rid, pid = f"{lb_id}/loadBalancingRules/{rname}", f"{lb_id}/probes/{rname}"
                rule_refs.append({"id": rid})
                tcp = port["protocol"] == "TCP"  # a UDP port gets no probe (the cloud provider's rule)
                rules.append(_child(rid, rname, "loadBalancingRules", self._etag(name, rname), {
                    "frontendIPConfiguration": {"id": fid}, "backendAddressPool": {"id": pool_id},
                    "backendAddressPools": [{"id": pool_id}], **({"probe": {"id": pid}} if tcp else {}),
                    "protocol": port["protocol"].capitalize(),
                    "loadDistribution": "SourceIP" if f.client_affinity else "Default",
                    "frontendPort": port["port"], "backendPort": port["port"], "idleTimeoutInMinutes": 4,
                    "enableFloatingIP": True, "enableTcpReset": tcp, "disableOutboundSnat": True,
                }))
                if tcp:
                    probes.append(_child(pid, rname, "probes", self._etag(name, "probe", rname), {
                        "protocol": "Tcp", "port": port.get("nodePort") or port["port"], "intervalInSeconds": 5,
                        "numberOfProbes": 2, "probeThreshold": 1, "loadBalancingRules": [{"id": rid}],
                    }))
            props: Doc = {"privateIPAllocationMethod": "Dynamic", "loadBalancingRules": rule_refs}
            if f.internal:
                props |= {"privateIPAddress": f.ip, "privateIPAddressVersion": "IPv4",
                          "subnet": {"id": self._subnet_id()}}
            else:
                props["publicIPAddress"] = {"id": f"{self.base}/publicIPAddresses/{CLUSTER_NAME}-{fname}"}
            configs.append(_child(fid, fname, "frontendIPConfigurations", self._etag(name, fname), props))
        pools = [_child(pool_id, BACKEND_POOL, "backendAddressPools", self._etag(name, BACKEND_POOL), {
            "loadBalancingRules": [{"id": r["id"]} for r in rules],
            "backendIPConfigurations": [{"id": b} for b in backends],
        })]
        outbound_rules = []
        if name == PUBLIC_LB and self.outbound is not None:
            oname = self.outbound_name
            fid, rid = f"{lb_id}/frontendIPConfigurations/{oname}", f"{lb_id}/outboundRules/{OUTBOUND_RULE}"
            opool_id = f"{lb_id}/backendAddressPools/{OUTBOUND_POOL}"
            configs.insert(0, _child(fid, oname, "frontendIPConfigurations", self._etag(name, oname), {
                "privateIPAllocationMethod": "Dynamic", "outboundRules": [{"id": rid}],
                "publicIPAddress": {"id": f"{self.base}/publicIPAddresses/{oname}"}}))
            pools.insert(0, _child(opool_id, OUTBOUND_POOL, "backendAddressPools", self._etag(name, OUTBOUND_POOL), {
                "outboundRules": [{"id": rid}], "backendIPConfigurations": [{"id": b} for b in backends]}))
            outbound_rules.append(_child(rid, OUTBOUND_RULE, "outboundRules", self._etag(name, OUTBOUND_RULE), {
                "allocatedOutboundPorts": 0, "protocol": "All", "enableTcpReset": True, "idleTimeoutInMinutes": 30,
                "backendAddressPool": {"id": opool_id}, "frontendIPConfigurations": [{"id": fid}]}))
        return {
            "name": name, "id": lb_id, "etag": self._etag(name), "type": LB_TYPE, "location": self.doc["location"],
            "tags": dict(self.tags), "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "provisioningState": "Succeeded", "resourceGuid": self._guid(name),
                "frontendIPConfigurations": configs, "backendAddressPools": pools,
                "loadBalancingRules": rules, "probes": probes, "inboundNatRules": [], "inboundNatPools": [],
                "outboundRules": outbound_rules,
            },
        }

    def _subnet_id(self) -> str:
        """The node subnet: the one the first pool brings (`vnetSubnetID`), else the managed
        `aks-vnet-<the pools' digits>/aks-subnet` of the node resource group."""
        pools = self.doc["properties"].get("agentPoolProfiles") or []
        brought = next((p["vnetSubnetID"] for p in pools if p.get("vnetSubnetID")), None)
        return brought or (f"{self.base}/virtualNetworks/{VNET}-{nodeshape.name_suffix(self.doc['id'])}"
                           f"/subnets/{SUBNET}")

    async def _backend_ip_configurations(self) -> list[str]:
        """Each node's primary NIC IP configuration (a VMSS instance's, from its providerID)."""
        cluster = self.plane.planes.get(self.cp_id)
        if cluster is None:
            return []
        nodes = (await cluster.registry("", "v1", "nodes").list(None, _EVERYTHING))["items"]
        out = []
        for node in nodes:
            provider = (node.get("spec") or {}).get("providerID") or ""
            vm = provider.removeprefix("azure://")
            if "/virtualMachineScaleSets/" not in vm:
                continue
            vmss = vm.split("/virtualMachineScaleSets/")[1].split("/")[0]
            out.append(f"{vm}/networkInterfaces/{vmss}/ipConfigurations/ipconfig1")
        return sorted(out)


def _child(id: str, name: str, kind: str, etag: str, props: Doc) -> Doc:
    return {"name": name, "id": id, "etag": etag, "type": f"{LB_TYPE}/{kind}",
            "properties": {"provisioningState": "Succeeded", **props}}
