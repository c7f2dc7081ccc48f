"""The virtual node add-on (`aciConnectorLinux`) through the official Azure SDK: AKS accepts it
only on Azure CNI in its node subnet mode (not kubenet, not CNI Overlay) and with the virtual
node subnet's name (`config.SubnetName`); a refused request changes nothing. Once on, the
cluster has the node `virtual-node-aci-linux` and the `aci-connector-linux` Deployment."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice.models import (
    ContainerServiceNetworkProfile,
    ManagedCluster,
    ManagedClusterAddonProfile,
    ManagedClusterAgentPoolProfile,
)

from .conftest import aks_client

GROUP = "vn-rg"
ACI = "aciConnectorLinux"
NODE = "virtual-node-aci-linux"


@pytest.fixture(scope="module")
def aks(lks):
    return aks_client(lks, GROUP)


def _cluster(network: ContainerServiceNetworkProfile | None, config: dict[str, str] | None) -> ManagedCluster:
    pool = ManagedClusterAgentPoolProfile(name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System",
                                          os_type="Linux")
    return ManagedCluster(location="westeurope", dns_prefix="vn", agent_pool_profiles=[pool], network_profile=network,
                          addon_profiles={ACI: ManagedClusterAddonProfile(enabled=True, config=config)})


def _refused(call) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400, err.value
    return err.value


@pytest.mark.parametrize("network", [
    pytest.param(ContainerServiceNetworkProfile(network_plugin="kubenet"), id="kubenet"),
    pytest.param(ContainerServiceNetworkProfile(network_plugin="azure", network_plugin_mode="overlay"), id="overlay"),
    pytest.param(None, id="default-overlay"),
])
def test_refused_without_azure_cni(aks, network):
    err = _refused(lambda: aks.managed_clusters.begin_create_or_update(
        GROUP, "vn-bad", _cluster(network, {"SubnetName": "virtual-node-subnet"})).result())
    assert err.error.code == "AddonInvalid"
    assert "Azure CNI" in err.error.message
    with pytest.raises(HttpResponseError) as missing:
        aks.managed_clusters.get(GROUP, "vn-bad")
    assert missing.value.status_code == 404


def test_refused_without_subnet_name(aks):
    err = _refused(lambda: aks.managed_clusters.begin_create_or_update(
        GROUP, "vn-bad", _cluster(ContainerServiceNetworkProfile(network_plugin="azure"), None)).result())
    assert err.error.code == "InvalidParameter"
    assert err.error.target == f"addonProfiles.{ACI}.config.SubnetName"


def test_accepted_on_azure_cni(aks):
    mc = aks.managed_clusters.begin_create_or_update(
        GROUP, "vn1", _cluster(ContainerServiceNetworkProfile(network_plugin="azure"),
                               {"SubnetName": "virtual-node-subnet"})).result()
    addon = mc.addon_profiles[ACI]
    assert addon.enabled and addon.config == {"SubnetName": "virtual-node-subnet"}
    assert mc.network_profile.network_plugin == "azure" and mc.network_profile.network_plugin_mode is None


def test_node_on_and_off(aks, lks, tmp_path):
    """The accepted add-on's node is there as the virtual kubelet registers it, with the
    connector's Deployment; turning the add-on off removes both."""
    creds = aks.managed_clusters.list_cluster_admin_credentials(GROUP, "vn1")
    kubeconfig = tmp_path / "vn1.kubeconfig"
    kubeconfig.write_bytes(creds.kubeconfigs[0].value)
    node = json.loads(lks.kubectl("get", "node", NODE, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert node["metadata"]["labels"]["type"] == "virtual-kubelet"
    assert node["spec"]["taints"] == [{"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}]
    lks.kubectl("get", "deployment", "-n", "kube-system", "aci-connector-linux", kubeconfig=kubeconfig)
    mc = aks.managed_clusters.get(GROUP, "vn1")
    mc.addon_profiles[ACI] = ManagedClusterAddonProfile(enabled=False)
    aks.managed_clusters.begin_create_or_update(GROUP, "vn1", mc).result()
    gone = lks.kubectl("get", "node", NODE, kubeconfig=kubeconfig, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    gone = lks.kubectl("get", "deployment", "-n", "kube-system", "aci-connector-linux", kubeconfig=kubeconfig,
                       check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
