"""Azure CNI addresses survive a restart of the service: a private `lks up` with a cluster in a
subnet of its own, restarted; its nodes keep their addresses of the subnet, its pods keep theirs
(adopted, not recreated), and a node added afterwards takes the next free block (.66 after .4
and .35, at maxPods 30), not one of the nodes' or pods'."""

from __future__ import annotations

import json

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    ContainerServiceNetworkProfile,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
)
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import AddressSpace, Subnet, VirtualNetwork
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import LKS, StaticToken, wait_until

GROUP = "addr-restart-rg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-addr"))
    s.start()
    yield s
    s.stop()


def _clients(server):
    config = json.loads((server.home / "config.json").read_text())
    args = (StaticToken(config["token"]), config["subscription_id"])
    kw = {"base_url": config["endpoint"], "connection_verify": config["ca_file"]}
    return (config, ResourceManagementClient(*args, **kw), NetworkManagementClient(*args, **kw),
            ContainerServiceClient(*args, **kw))


def _ips(server, kubeconfig) -> tuple[dict[str, str], dict[str, str]]:
    nodes = json.loads(server.kubectl("get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
    pods = json.loads(server.kubectl("get", "pods", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
    return ({n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
             for n in nodes},
            {p["metadata"]["uid"]: p["status"].get("podIP") for p in pods})


def test_addresses_after_a_restart(server, tmp_path):
    config, resources, net, aks = _clients(server)
    resources.resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    net.virtual_networks.begin_create_or_update(GROUP, "v", VirtualNetwork(
        location="westeurope", address_space=AddressSpace(address_prefixes=["10.50.0.0/16"]),
        subnets=[Subnet(name="nodes", address_prefix="10.50.0.0/24")])).result()
    subnet = (f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}/providers/Microsoft.Network/"
              "virtualNetworks/v/subnets/nodes")
    aks.managed_clusters.begin_create_or_update(GROUP, "flat", ManagedCluster(
        location="westeurope", network_profile=ContainerServiceNetworkProfile(network_plugin="azure"),
        agent_pool_profiles=[ManagedClusterAgentPoolProfile(name="nodepool1", count=2, vm_size="Standard_DS2_v2",
                                                            mode="System", vnet_subnet_id=subnet)])).result()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, "flat").kubeconfigs[0].value)
    server.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", kubeconfig=kubeconfig)
    server.kubectl("rollout", "status", "deployment/web", "--timeout=60s", kubeconfig=kubeconfig)
    nodes, pods = _ips(server, kubeconfig)
    assert sorted(nodes.values()) == ["10.50.0.35", "10.50.0.4"] and all(pods.values())

    server.restart()
    wait_until(lambda: _ips(server, kubeconfig) == (nodes, pods), what="the same addresses after the restart")
    server.kubectl("rollout", "status", "deployment/web", "--timeout=60s", kubeconfig=kubeconfig)
    assert _ips(server, kubeconfig) == (nodes, pods)

    pool = aks.agent_pools.get(GROUP, "flat", "nodepool1")
    pool.count = 3
    aks.agent_pools.begin_create_or_update(GROUP, "flat", "nodepool1", pool).result()
    after, _ = wait_until(lambda: (got := _ips(server, kubeconfig)) and len(got[0]) == 3 and got,
                          what="a third node")
    assert sorted(after.values()) == ["10.50.0.35", "10.50.0.4", "10.50.0.66"]
