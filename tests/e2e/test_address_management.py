"""Address management as AKS does it, through the Azure SDK (NetworkManagementClient for the
VNets and subnets, ContainerServiceClient for the clusters) and kubectl: a VNet and its subnets
made and refused by Network's rules; an Azure CNI cluster in a subnet of its own whose nodes and
pods take addresses of that subnet (each node holding maxPods of them after its own); scale-up and
a new pool refused when the subnet cannot hold `(maxPods + 1) x (nodes + surge)`; a subnet in use
that cannot be deleted; a subnet that does not exist, a delegated one, a service CIDR overlapping
it, a kubenet cluster of more than 400 nodes, all refused with AKS's codes; the managed VNet of an
overlay cluster; and the nodes of a cluster without a CNI, NotReady."""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
import urllib.parse

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPool,
    ContainerServiceNetworkProfile,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
)
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import AddressSpace, Delegation, Subnet, VirtualNetwork
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import StaticToken, lks_cli, lks_json, wait_until

GROUP = "addr-rg"
VNET = "byo-vnet"
NOT_READY = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
             "message:Network plugin returns error: cni plugin not initialized")


@pytest.fixture(scope="module")
def config(lks):
    return json.loads((lks.home / "config.json").read_text())


def _client(cls, config):
    return cls(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
               connection_verify=config["ca_file"])


@pytest.fixture(scope="module")
def aks(config):
    return _client(ContainerServiceClient, config)


@pytest.fixture(scope="module")
def net(config):
    return _client(NetworkManagementClient, config)


@pytest.fixture(scope="module")
def group(config):
    resources = _client(ResourceManagementClient, config)
    resources.resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    yield GROUP
    resources.resource_groups.begin_delete(GROUP)


@pytest.fixture(scope="module")
def vnet(net, group):
    """10.20.0.0/16 with `nodes` (10.20.0.0/24: 251 usable addresses)."""
    return net.virtual_networks.begin_create_or_update(group, VNET, VirtualNetwork(
        location="westeurope", address_space=AddressSpace(address_prefixes=["10.20.0.0/16"]),
        subnets=[Subnet(name="nodes", address_prefix="10.20.0.0/24")])).result()


def _subnet_id(config, name: str) -> str:
    return (f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/Microsoft.Network/"
            f"virtualNetworks/{VNET}/subnets/{name}")


def _cluster(*, plugin: str | None = "azure", subnet: str | None = None, count: int = 2, max_pods: int | None = 30,
             **network) -> ManagedCluster:
    profile = ContainerServiceNetworkProfile(network_plugin=plugin, **network) if plugin or network else None
    return ManagedCluster(location="westeurope", network_profile=profile, agent_pool_profiles=[
        ManagedClusterAgentPoolProfile(name="nodepool1", count=count, vm_size="Standard_DS2_v2", mode="System",
                                       max_pods=max_pods, vnet_subnet_id=subnet)])


def _error(fn) -> dict:
    with pytest.raises(HttpResponseError) as info:
        result = fn()
        if hasattr(result, "result"):
            result.result()
    return {"code": info.value.error.code, "message": info.value.error.message, "target": info.value.error.target}


def _kubeconfig(aks, name, tmp_path):
    path = tmp_path / f"{name}.kubeconfig"
    path.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, name).kubeconfigs[0].value)
    return path


def _nodes(lks, kubeconfig) -> list[dict]:
    return json.loads(lks.kubectl("get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]


def _ip(node: dict) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def _ready(node: dict) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_vnet_and_subnets_through_the_network_sdk(net, group, vnet):
    assert vnet.provisioning_state == "Succeeded" and vnet.address_space.address_prefixes == ["10.20.0.0/16"]
    assert [s.name for s in vnet.subnets] == ["nodes"] and vnet.subnets[0].address_prefix == "10.20.0.0/24"
    made = net.subnets.begin_create_or_update(group, VNET, "aci", Subnet(
        address_prefix="10.20.9.0/24",
        delegations=[Delegation(name="aci", service_name="Microsoft.ContainerInstance/containerGroups")])).result()
    assert made.id.endswith(f"/virtualNetworks/{VNET}/subnets/aci")
    assert made.delegations[0].service_name == "Microsoft.ContainerInstance/containerGroups"
    assert {s.name for s in net.subnets.list(group, VNET)} == {"nodes", "aci"}
    assert net.subnets.get(group, VNET, "aci").address_prefix == "10.20.9.0/24"
    assert VNET in [v.name for v in net.virtual_networks.list(group)]
    assert VNET in [v.name for v in net.virtual_networks.list_all()]

    overlap = _error(lambda: net.subnets.begin_create_or_update(group, VNET, "dup", Subnet(address_prefix="10.20.0.128/25")))
    assert overlap["code"] == "NetcfgSubnetRangesOverlap" and "'dup'" in overlap["message"]
    outside = _error(lambda: net.subnets.begin_create_or_update(group, VNET, "far", Subnet(address_prefix="10.99.0.0/24")))
    assert outside["code"] == "NetcfgSubnetRangeOutsideVnet"
    notation = _error(lambda: net.subnets.begin_create_or_update(group, VNET, "odd", Subnet(address_prefix="10.20.5.7/24")))
    assert notation["code"] == "InvalidCIDRNotation" and "should be 10.20.5.0/24" in notation["message"]


def test_azure_cni_pods_and_nodes_take_addresses_of_the_subnet(aks, net, config, group, vnet, lks, tmp_path):
    mc = aks.managed_clusters.begin_create_or_update(group, "flat", _cluster(subnet=_subnet_id(config, "nodes"))).result()
    assert mc.network_profile.network_plugin == "azure" and mc.network_profile.network_plugin_mode is None
    assert mc.network_profile.pod_cidr is None and mc.agent_pool_profiles[0].max_pods == 30
    kubeconfig = _kubeconfig(aks, "flat", tmp_path)

    nodes = wait_until(lambda: (n := _nodes(lks, kubeconfig)) and len(n) == 2 and all(
        _ready(x)["status"] == "True" for x in n) and n, what="two Ready nodes")
    # AKS's layout: the first node at .4, its 30 pods' addresses after it, the next node at .35
    assert sorted(_ip(n) for n in nodes) == ["10.20.0.35", "10.20.0.4"]
    assert all(not n["spec"].get("podCIDR") for n in nodes)
    assert nodes[0]["metadata"]["labels"]["kubernetes.azure.com/network-subnet"] == "nodes"
    assert nodes[0]["metadata"]["labels"]["kubernetes.azure.com/network-name"] == VNET

    lks.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=4", kubeconfig=kubeconfig)
    lks.kubectl("rollout", "status", "deployment/web", "--timeout=60s", kubeconfig=kubeconfig)
    pods = json.loads(lks.kubectl("get", "pods", "-l", "app=web", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
    by_node = {n["metadata"]["name"]: ipaddress.ip_address(_ip(n)) for n in nodes}
    for pod in pods:
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        host = by_node[pod["spec"]["nodeName"]]
        assert host < ip <= host + 30, (pod["metadata"]["name"], ip, host)

    # the subnet shows the nodes' NIC IP configurations, and cannot go while they are there
    subnet = net.subnets.get(group, VNET, "nodes")
    assert subnet.ip_configurations and "/virtualMachineScaleSets/aks-nodepool1-" in subnet.ip_configurations[0].id
    err = _error(lambda: net.subnets.begin_delete(group, VNET, "nodes"))
    assert err["code"] == "InUseSubnetCannotBeDeleted" and "is in use by" in err["message"]
    assert _error(lambda: net.virtual_networks.begin_delete(group, VNET))["code"] == "InUseSubnetCannotBeDeleted"

    # scale: 8 nodes + 1 surge, 31 addresses each = 279 > 251
    pool = aks.agent_pools.get(group, "flat", "nodepool1")
    pool.count = 8
    err = _error(lambda: aks.agent_pools.begin_create_or_update(group, "flat", "nodepool1", pool))
    assert err["code"] == "InsufficientSubnetSize"
    assert err["message"].startswith("Pre-allocated IPs 279 exceeds IPs available 251 in Subnet Cidr 10.20.0.0/24, "
                                     "Subnet Name nodes.")
    assert aks.agent_pools.get(group, "flat", "nodepool1").count == 2
    # the surge nodes of an upgrade are counted at every change: maxSurge 7 does not fit ((2 + 7) x 31 = 279)
    pool.count = 2
    pool.upgrade_settings.max_surge = "7"
    err = _error(lambda: aks.agent_pools.begin_create_or_update(group, "flat", "nodepool1", pool))
    assert err["code"] == "InsufficientSubnetSize" and err["message"].startswith("Pre-allocated IPs 279 ")
    # a new pool in a /27 (27 usable): 1 node + 1 surge at 31 addresses
    net.subnets.begin_create_or_update(group, VNET, "small", Subnet(address_prefix="10.20.1.0/27")).result()
    err = _error(lambda: aks.agent_pools.begin_create_or_update(group, "flat", "extra", AgentPool(
        count=1, vm_size="Standard_DS2_v2", mode="User", max_pods=30, vnet_subnet_id=_subnet_id(config, "small"))))
    assert err["code"] == "InsufficientSubnetSize" and "Pre-allocated IPs 62 exceeds IPs available 27" in err["message"]

    # the same pool fits with maxPods 10 (2 x 11 = 22); its node is .4 of its own subnet
    aks.agent_pools.begin_create_or_update(group, "flat", "extra", AgentPool(
        count=1, vm_size="Standard_DS2_v2", mode="User", max_pods=10,
        vnet_subnet_id=_subnet_id(config, "small"))).result()
    extra = wait_until(lambda: [n for n in _nodes(lks, kubeconfig) if "-extra-" in n["metadata"]["name"]],
                       what="the extra pool's node")
    assert _ip(extra[0]) == "10.20.1.4"


def test_cluster_subnet_refusals(aks, net, config, group, vnet):
    missing = _error(lambda: aks.managed_clusters.begin_create_or_update(
        group, "nosubnet", _cluster(subnet=_subnet_id(config, "nope"))))
    assert missing["code"] == "SubnetNotFound"
    assert missing["message"] == (f"Could not find subnet nope in vnet {VNET} from resource group {GROUP} of "
                                  f"subscription {config['subscription_id']}.")
    bad = _error(lambda: aks.managed_clusters.begin_create_or_update(group, "badid", _cluster(subnet="subnet1")))
    assert bad["code"] == "LinkedInvalidPropertyId"
    net.subnets.begin_create_or_update(group, VNET, "delegated", Subnet(
        address_prefix="10.20.10.0/24",
        delegations=[Delegation(name="d", service_name="Microsoft.ContainerInstance/containerGroups")])).result()
    assert _error(lambda: aks.managed_clusters.begin_create_or_update(
        group, "deleg", _cluster(subnet=_subnet_id(config, "delegated"))))["code"] == "SubnetIsDelegated"
    net.subnets.begin_create_or_update(group, VNET, "free", Subnet(address_prefix="10.20.2.0/24")).result()
    overlap = _error(lambda: aks.managed_clusters.begin_create_or_update(group, "svc", _cluster(
        subnet=_subnet_id(config, "free"), service_cidr="10.20.0.0/16", dns_service_ip="10.20.0.10")))
    assert overlap == {"code": "ServiceCidrOverlapExistingSubnetsCidr", "target": "networkProfile.serviceCIDR",
                       "message": "The specified service CIDR 10.20.0.0/16 is conflicted with an existing subnet "
                                  "CIDR 10.20.2.0/24"}
    pods = _error(lambda: aks.managed_clusters.begin_create_or_update(group, "podov", _cluster(
        plugin="kubenet", max_pods=None, subnet=_subnet_id(config, "free"), pod_cidr="10.20.0.0/16")))
    assert pods["code"] == "PodCidrOverlapExistingSubnetsCidr"
    # a subnet nobody uses can go
    net.subnets.begin_delete(group, VNET, "free").result()
    assert "free" not in {s.name for s in net.subnets.list(group, VNET)}


def test_kubenet_route_table_limit(aks, group):
    mc = _cluster(plugin="kubenet", max_pods=None, count=201, pod_cidr="10.240.0.0/14")
    mc.agent_pool_profiles.append(ManagedClusterAgentPoolProfile(
        name="more", count=200, vm_size="Standard_DS2_v2", mode="User"))
    err = _error(lambda: aks.managed_clusters.begin_create_or_update(group, "big", mc))
    assert err["code"] == "InvalidParameter" and "at most 400 nodes" in err["message"] and "401" in err["message"]


def test_overlay_cluster_shows_its_managed_vnet(aks, net, group, lks, tmp_path):
    mc = aks.managed_clusters.begin_create_or_update(group, "ovl", _cluster(plugin=None, max_pods=None,
                                                                            count=1)).result()
    assert mc.network_profile.network_plugin_mode == "overlay"
    node_group = mc.node_resource_group
    vnets = list(net.virtual_networks.list(node_group))
    assert len(vnets) == 1 and vnets[0].name.startswith("aks-vnet-")
    assert vnets[0].address_space.address_prefixes == ["10.224.0.0/12"]
    subnet = net.subnets.get(node_group, vnets[0].name, "aks-subnet")
    assert subnet.address_prefix == "10.224.0.0/16"
    kubeconfig = _kubeconfig(aks, "ovl", tmp_path)
    node = wait_until(lambda: (n := _nodes(lks, kubeconfig)) and n[0]["spec"].get("podCIDR") and n[0],
                      what="a node with a pod CIDR")
    assert _ip(node) == "10.224.0.4" and node["spec"]["podCIDR"].endswith("/24")
    assert node["metadata"]["labels"]["kubernetes.azure.com/network-name"] == vnets[0].name


def test_no_cni_nodes_are_not_ready_until_a_cni_is_installed(aks, group, lks, tmp_path):
    """`networkPlugin: none`: NotReady with containerd's message until a CNI is "installed", which
    for lks is the Node's lks.dev/cni-config annotation (where a CNI's DaemonSet writes its config
    file); then Ready, and pods get addresses of the node's pod CIDR."""
    aks.managed_clusters.begin_create_or_update(group, "byocni", _cluster(plugin="none", max_pods=None,
                                                                          count=1)).result()
    kubeconfig = _kubeconfig(aks, "byocni", tmp_path)
    node = wait_until(lambda: (n := _nodes(lks, kubeconfig)) and n[0], what="a node")
    ready = _ready(node)
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "KubeletNotReady", NOT_READY)

    name = node["metadata"]["name"]
    lks.kubectl("annotate", "node", name, "lks.dev/cni-config=cilium", kubeconfig=kubeconfig)
    node = wait_until(lambda: (n := _nodes(lks, kubeconfig)[0]) and _ready(n)["status"] == "True" and n,
                      what="the node Ready once a CNI is installed")
    assert _ready(node)["reason"] == "KubeletReady"
    lks.kubectl("run", "p", "--image=nginx", kubeconfig=kubeconfig)
    lks.kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=60s", kubeconfig=kubeconfig)
    pod = json.loads(lks.kubectl("get", "pod", "p", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])


def test_hostile_vnet_bodies_are_400s(lks, group):
    config = json.loads((lks.home / "config.json").read_text())
    url = urllib.parse.urlsplit(config["endpoint"])
    path = (f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/Microsoft.Network/"
            "virtualNetworks/hostile?api-version=2024-05-01")
    bodies = [
        {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]}, "subnets": [
            {"name": "a", "properties": {"addressPrefix": "10.30.0.0/24", "delegations": 5}}]}},
        {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": "10.30.0.0/16"}}},
        {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [7]}}},
        {"location": ["westeurope"], "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]}}},
        {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]},
                                                  "subnets": [3, {"name": None}]}},
        {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]},
                                                  "subnets": [{"name": "a", "properties": {"addressPrefix": {}}}]}},
    ]
    for body in bodies:
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                           context=ssl.create_default_context(cafile=config["ca_file"]))
        try:
            conn.request("PUT", path, body=json.dumps(body), headers={
                "Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
        finally:
            conn.close()
        assert resp.status == 400 and answer["error"]["code"], (body, resp.status, answer)


def test_cli_vnet_and_byo_subnet(lks, group, tmp_path):
    made = lks_json(lks, "network", "vnet", "create", "-g", GROUP, "-n", "cli-vnet", "--address-prefixes",
                    "10.40.0.0/16", "--subnet-name", "aks", "--subnet-prefixes", "10.40.0.0/24")["newVNet"]
    assert made["addressSpace"]["addressPrefixes"] == ["10.40.0.0/16"]
    assert made["subnets"][0]["name"] == "aks" and made["subnets"][0]["addressPrefix"] == "10.40.0.0/24"
    sub = lks_json(lks, "network", "vnet", "subnet", "create", "-g", GROUP, "--vnet-name", "cli-vnet", "-n", "pool2",
                   "--address-prefixes", "10.40.1.0/28")
    assert sub["addressPrefix"] == "10.40.1.0/28" and sub["provisioningState"] == "Succeeded"
    mc = lks_json(lks, "aks", "create", "-g", GROUP, "-n", "clinet", "--node-count", "1", "--network-plugin", "azure",
                  "--vnet-subnet-id", made["subnets"][0]["id"])
    assert mc["agentPoolProfiles"][0]["vnetSubnetId"] == made["subnets"][0]["id"]
    assert mc["agentPoolProfiles"][0]["maxPods"] == 30 and mc["networkProfile"].get("networkPluginMode") is None
    # a /28 holds 11 addresses: a node with 30 pods and its surge need 62
    failed = lks_cli(lks, "aks", "nodepool", "add", "-g", GROUP, "--cluster-name", "clinet", "-n", "pool2",
                     "--node-count", "1", "--vnet-subnet-id", sub["id"])
    assert failed.returncode != 0 and "(InsufficientSubnetSize) Pre-allocated IPs 62 exceeds IPs available 11" in \
        failed.stderr
    gone = lks_cli(lks, "network", "vnet", "subnet", "delete", "-g", GROUP, "--vnet-name", "cli-vnet", "-n", "aks")
    assert gone.returncode != 0 and "InUseSubnetCannotBeDeleted" in gone.stderr
    listed = lks_json(lks, "network", "vnet", "list", "-g", GROUP)
    assert "cli-vnet" in [v["name"] for v in listed]
