"""Address planning of a managed cluster, checked as AKS's resource provider does before an
operation starts (create, scale, a new pool, an upgrade): the node subnet of every pool (its
`vnetSubnetID`, which must name an existing subnet of `lks.arm.vnets`, else the managed
`aks-vnet-<n>/aks-subnet` 10.224.0.0/16), the addresses each subnet must hold, kubenet's
400-node route table limit, and ranges that must not overlap. A pod CIDR with fewer /24s than
nodes is let through (AKS refuses it with InsufficientSubnetSize on `networkProfile.podCIDR`):
lks shows what then happens to the nodes without one (`lks.controllers.nodeipam`).

Counts are what AKS counts: a pool's `count` (its `maxCount` when it autoscales) plus its
`maxSurge` nodes; an Azure CNI (flat) node takes `maxPods + 1` addresses of its subnet (its own
and its pods', preallocated), any other node one. What passes is recorded in the cluster's
private fields (`nodeSubnets`: pool -> cidr, vnet, subnet) for `lks.arm.fleet` to give the nodes
their addresses from (`lks.nodes.pool`).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import TYPE_CHECKING, Any

from lks.arm import documents, nodeshape
from lks.arm.errors import ARMError

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
MANAGED_SUBNET, MANAGED_SUBNET_NAME = "10.224.0.0/16", "aks-subnet"
MANAGED_ADDRESS_SPACE = "10.224.0.0/12"
AZURE_RESERVED = 5  # Azure keeps a subnet's first four addresses and its last
KUBENET_MAX_NODES = 400  # one route per node in the cluster's route table
SUBNET_ID = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/"
                       r"Microsoft\.Network/virtualNetworks/(?P<vnet>[^/]+)/subnets/(?P<subnet>[^/]+)$", re.I)
_INSUFFICIENT = ("Pre-allocated IPs {need} exceeds IPs available {have} in Subnet Cidr {cidr}, Subnet Name {name}. "
                 "If Autoscaler is enabled, the max-count from each nodepool is counted towards this total (which "
                 "means that pre-allocated IPs count represents a theoretical max value, not the actual number of "
                 "IPs requested). http://aka.ms/aks/insufficientsubnetsize")


def managed_vnet_name(cluster_id: str) -> str:
    """The managed VNet of a cluster's node resource group: `aks-vnet-<the pools' 8 digits>`."""
    return f"aks-vnet-{nodeshape.name_suffix(cluster_id)}"


def flat_cni(network: Doc) -> bool:
    """Azure CNI without overlay (node subnet mode): pods take addresses of the node subnet."""
    return network.get("networkPlugin") == "azure" and network.get("networkPluginMode") != "overlay"


def surge(pool: Doc, nodes: int) -> int:
    """The nodes a surge upgrade of `pool` adds at most: maxSurge, a number or a share rounded up."""
    raw = str((pool.get("upgradeSettings") or {}).get("maxSurge") or "10%")
    if raw.endswith("%"):
        return math.ceil(nodes * int(raw[:-1]) / 100)
    return int(raw)


def planned_nodes(pool: Doc) -> int:
    """A pool's nodes as AKS plans addresses for them: maxCount when it autoscales, plus surge."""
    nodes = pool["maxCount"] if pool.get("enableAutoScaling") else pool["count"]
    return nodes + surge(pool, nodes)


async def admit(plane: ManagementPlane, doc: Doc) -> None:
    """Check the cluster document's address plan (raises AKS's ARMError) and record each pool's
    node subnet in its private fields. No I/O but reading the VNets."""
    props = doc["properties"]
    network = props["networkProfile"]
    pools = props["agentPoolProfiles"]
    subnets: dict[str, Doc] = {}  # pool -> {cidr, vnet, subnet, id}
    vnets: list[Doc] = []  # the VNets the pools are in, for the overlap checks
    for i, pool in enumerate(pools):
        sid = pool.get("vnetSubnetID")
        if not sid:
            subnets[pool["name"]] = {"cidr": MANAGED_SUBNET, "vnet": managed_vnet_name(doc["id"]),
                                     "subnet": MANAGED_SUBNET_NAME, "id": ""}
            continue
        m = SUBNET_ID.match(sid) if isinstance(sid, str) else None
        if m is None:
            raise ARMError("LinkedInvalidPropertyId", f"Property id '{sid}' at path 'properties.agentPoolProfiles[{i}]."
                           "vnetSubnetID' is invalid. Expect fully qualified resource Id that start with "
                           "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.", 400)
        vnet, subnet = await plane.vnets.find_subnet(m["subscription"], m["group"], m["vnet"], m["subnet"])
        if subnet is None:
            raise ARMError("SubnetNotFound", f"Could not find subnet {m['subnet']} in vnet {m['vnet']} from resource "
                           f"group {m['group']} of subscription {m['subscription']}.", 400,
                           target="agentPoolProfile.vnetSubnetID")
        for d in subnet["properties"].get("delegations") or []:
            service = (d.get("properties") or {}).get("serviceName")
            raise ARMError("SubnetIsDelegated", f"Subnet {subnet['name']} is delegated to {service} and cannot be "
                           f"used for agent pool {pool['name']}.", 400, target="agentPoolProfile.vnetSubnetID")
        if vnet is not None and all(v["id"].lower() != vnet["id"].lower() for v in vnets):
            vnets.append(vnet)
        subnets[pool["name"]] = {"cidr": subnet["properties"]["addressPrefix"], "vnet": vnet["name"],
                                 "subnet": subnet["name"], "id": subnet["id"]}
    _check_overlaps(network, subnets, vnets)
    _check_counts(network, pools, subnets)
    props.setdefault(documents.PRIVATE, {})["nodeSubnets"] = {
        name: {k: v for k, v in s.items() if k != "id"} for name, s in subnets.items()}


def _check_overlaps(network: Doc, subnets: dict[str, Doc], vnets: list[Doc]) -> None:
    """The service CIDR, and the pod CIDR of kubenet and overlay, against every subnet of the
    pools' VNets (and the managed subnet): AKS's ...OverlapExistingSubnetsCidr."""
    existing = [s["cidr"] for s in subnets.values()]
    for vnet in vnets:
        existing += [s["properties"]["addressPrefix"] for s in vnet["properties"].get("subnets") or []
                     if s["properties"].get("addressPrefix")]
    service = ipaddress.ip_network(network["serviceCidr"], strict=False)
    pod = ipaddress.ip_network(network["podCidr"], strict=False) if network.get("podCidr") and \
        not flat_cni(network) else None
    for cidr in dict.fromkeys(existing):
        net = ipaddress.ip_network(cidr, strict=False)
        if net.overlaps(service):
            raise ARMError("ServiceCidrOverlapExistingSubnetsCidr", f"The specified service CIDR {service} is "
                           f"conflicted with an existing subnet CIDR {net}", 400, target="networkProfile.serviceCIDR")
        if pod is not None and net.overlaps(pod):
            raise ARMError("PodCidrOverlapExistingSubnetsCidr", f"The specified pod CIDR {pod} is conflicted with an "
                           f"existing subnet CIDR {net}", 400, target="networkProfile.podCIDR")


def _check_counts(network: Doc, pools: list[Doc], subnets: dict[str, Doc]) -> None:
    plugin = network.get("networkPlugin")
    flat = flat_cni(network)
    nodes = sum(p["maxCount"] if p.get("enableAutoScaling") else p["count"] for p in pools)
    if plugin == "kubenet" and nodes > KUBENET_MAX_NODES:
        raise ARMError("InvalidParameter", f"The kubenet network plugin supports at most {KUBENET_MAX_NODES} nodes "
                       f"in a cluster (one route per node in the cluster's route table): the agent pools would have "
                       f"{nodes}. Use Azure CNI Overlay for larger clusters.", 400, target="agentPoolProfiles")
    need: dict[str, int] = {}
    for pool in pools:
        per_node = pool["maxPods"] + 1 if flat else 1
        need[pool["name"]] = planned_nodes(pool) * per_node
    by_subnet: dict[tuple[str, str], int] = {}
    for name, n in need.items():
        s = subnets[name]
        key = (s["id"].lower() or s["subnet"], s["cidr"])
        by_subnet[key] = by_subnet.get(key, 0) + n
    for (key, cidr), n in by_subnet.items():
        have = ipaddress.ip_network(cidr, strict=False).num_addresses - AZURE_RESERVED
        if n > have:
            name = next(s["subnet"] for s in subnets.values() if (s["id"].lower() or s["subnet"]) == key)
            raise ARMError("InsufficientSubnetSize", _INSUFFICIENT.format(need=n, have=have, cidr=cidr, name=name), 400,
                           target="agentPoolProfile.vnetSubnetID")
