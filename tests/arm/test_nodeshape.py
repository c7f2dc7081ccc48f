"""What an AKS node of a VM size reports: reservations checked against real AKS nodes, worked
capacity/allocatable examples, max pods, names, node image, labels and nodeInfo."""

from __future__ import annotations

import pytest

from lks.arm import nodeshape, vmsizes

MI = 1024 * 1024


@pytest.mark.parametrize(("vcpus", "millis"), [
    pytest.param(1, 60, id="1"), pytest.param(2, 100, id="2"), pytest.param(4, 140, id="4"),
    pytest.param(8, 180, id="8"), pytest.param(16, 260, id="16"), pytest.param(32, 420, id="32"),
    pytest.param(64, 740, id="64"),
    # between the documented points: karpenter-provider-azure's TestKubeReservedResources (3 cores)
    # and real nodes (NC6s_v3 reports 5840m, NC24ads_A100_v4 23660m)
    pytest.param(3, 120, id="3"), pytest.param(6, 160, id="6"), pytest.param(24, 340, id="24"),
])
def test_kube_reserved_cpu(vcpus, millis):
    assert nodeshape.kube_reserved_cpu_millis(vcpus) == millis


@pytest.mark.parametrize(("memory_gib", "max_pods", "version", "mib"), [
    # before 1.29: the regressive rate (karpenter-provider-azure's test: 7 GiB 1638Mi, 8 GiB
    # 1843Mi, 64 GiB 5611Mi; AKS kubelet flags --kube-reserved=cpu=100m,memory=1638Mi / 1843Mi)
    pytest.param(7, 110, "1.28.5", 1638, id="7GiB-pre-1.29"),
    pytest.param(8, 110, "1.28.5", 1843, id="8GiB-pre-1.29"),
    pytest.param(64, 110, "1.28.5", 5611, id="64GiB-pre-1.29"),
    pytest.param(4, 110, "1.28.5", 1024, id="4GiB-pre-1.29"),
    pytest.param(220, 30, "1.28.5", 11427, id="220GiB-pre-1.29"),
    # from 1.29: min(20 MiB * maxPods + 50 MiB, 25% of memory); the docs' two examples first
    pytest.param(8, 30, "1.36.2", 650, id="doc-8GiB-30-pods"),
    pytest.param(4, 70, "1.36.2", 1024, id="doc-4GiB-70-pods"),
    pytest.param(7, 250, "1.36.2", 1792, id="7GiB-250-pods-capped"),
    pytest.param(32, 250, "1.34.12", 5050, id="32GiB-250-pods"),
    pytest.param(8, 110, "1.34.12", 2048, id="8GiB-110-pods-capped"),
])
def test_kube_reserved_memory(memory_gib, max_pods, version, mib):
    assert nodeshape.kube_reserved_memory_mib(memory_gib, max_pods, version) == mib


# Real AKS nodes (`kubectl describe node`, sources in the ids): capacity and allocatable memory. The
# versions stand for the rule in force (before or from 1.29), not the exact version each node ran.
@pytest.mark.parametrize(("capacity_ki", "vcpus", "memory_gib", "max_pods", "version", "cpu", "allocatable_ki"), [
    pytest.param(7116264, 2, 7, 110, "1.25.6", "1900m", 4670952, id="DS2_v2-2023"),
    pytest.param(4025836, 2, 4, 100, "1.24.9", "1900m", 2209260, id="4GiB-AKS#3525"),
    pytest.param(32863116, 8, 32, 110, "1.28.5", "7820m", 28362636, id="8-core-32GiB-docs"),
    pytest.param(115397144, 6, 112, 110, "1.26.6", "5840m", 105863704, id="NC6s_v3-2023"),
    pytest.param(226783616, 24, 220, 30, "1.27.3", "23660m", 214314368, id="NC24ads_A100_v4"),
    pytest.param(32865016, 4, 32, 250, "1.31.5", "3860m", 27591416, id="4-core-32GiB-250-pods-2025"),
    pytest.param(8129936, 2, 8, 110, "1.33.3", "1900m", 5930384, id="D2as_v4-2025"),
    pytest.param(65937008, 16, 64, 110, "1.32.4", None, 63530608, id="D16a_v4-2026"),
])
def test_reservations_reproduce_real_nodes(capacity_ki, vcpus, memory_gib, max_pods, version, cpu, allocatable_ki):
    reserved = (nodeshape.kube_reserved_memory_mib(memory_gib, max_pods, version)
                + nodeshape.eviction_hard_memory_mib(version))
    assert capacity_ki * 1024 - reserved * MI == allocatable_ki * 1024
    if cpu:
        assert f"{vcpus * 1000 - nodeshape.kube_reserved_cpu_millis(vcpus)}m" == cpu


def test_memory_capacity_model_matches_an_8_gib_node():
    assert nodeshape.capacity(vmsizes.lookup("Standard_D2s_v3"), max_pods=110)["memory"] == "8129936Ki"


@pytest.mark.parametrize(("disk_gb", "capacity", "allocatable"), [
    pytest.param(128, "129886128Ki", "119703055367", id="128GiB"),  # every AKS Ubuntu node with the default disk
    pytest.param(256, "259966896Ki", "239585490957", id="256GiB"),  # Azure/AKS#3525
])
def test_ephemeral_storage_matches_real_nodes(disk_gb, capacity, allocatable):
    vm = vmsizes.lookup("Standard_DS2_v2")
    assert nodeshape.capacity(vm, max_pods=110, os_disk_gb=disk_gb)["ephemeral-storage"] == capacity
    assert nodeshape.allocatable(vm, 110, "1.36.2", os_disk_gb=disk_gb)["ephemeral-storage"] == allocatable


# -- worked examples ------------------------------------------------------------------------------------

def test_ds2_v2_capacity():
    # memory: 7 GiB = 7340032Ki, less 1/64 (114688Ki) and 127600Ki of kernel reservations
    assert nodeshape.capacity(vmsizes.lookup("Standard_DS2_v2"), max_pods=250) == {
        "cpu": "2", "ephemeral-storage": "129886128Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        "memory": "7097744Ki", "pods": "250"}


def test_ds2_v2_allocatable_250_pods():
    # 20*250+50 = 5050 MiB is more than 25% of 7 GiB (1792 MiB): 1792 + 100 (eviction) = 1892 MiB
    assert nodeshape.allocatable(vmsizes.lookup("Standard_DS2_v2"), 250, "1.36.4") == {
        "cpu": "1900m", "ephemeral-storage": "119703055367", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        "memory": f"{7097744 - 1892 * 1024}Ki", "pods": "250"}


def test_ds2_v2_allocatable_30_pods():
    # 20*30+50 = 650 MiB + 100 MiB eviction = 750 MiB
    alloc = nodeshape.allocatable(vmsizes.lookup("Standard_DS2_v2"), 30, "1.36.4")
    assert (alloc["cpu"], alloc["memory"], alloc["pods"]) == ("1900m", "6329744Ki", "30")


def test_d4s_v3_allocatable():
    vm = vmsizes.lookup("Standard_D4s_v3")
    assert nodeshape.capacity(vm, max_pods=30)["memory"] == "16387472Ki"  # 16777216 - 262144 - 127600
    alloc = nodeshape.allocatable(vm, 30, "1.35.8")
    assert (alloc["cpu"], alloc["memory"]) == ("3860m", f"{16387472 - 750 * 1024}Ki")
    # overlay's default 250 pods: 5050 MiB is more than 25% of 16 GiB, so 4096 + 100 MiB
    assert nodeshape.allocatable(vm, 250, "1.35.8")["memory"] == f"{16387472 - 4196 * 1024}Ki"


def test_gpu_nodes_report_nvidia_gpus():
    vm = vmsizes.lookup("Standard_NC6s_v3")
    alloc = nodeshape.allocatable(vm, 110, "1.36.2")
    assert (alloc["nvidia.com/gpu"], alloc["cpu"]) == ("1", "5840m")
    assert list(alloc) == sorted(alloc)
    assert "nvidia.com/gpu" not in nodeshape.capacity(vm, max_pods=110, gpu_device_plugin=False)


@pytest.mark.parametrize(("plugin", "mode", "pod_subnet", "expected"), [
    pytest.param("azure", "overlay", False, 250, id="overlay"),
    pytest.param("azure", None, False, 30, id="azure-cni-node-subnet"),
    pytest.param("azure", None, True, 110, id="azure-cni-pod-subnet"),
    pytest.param("kubenet", None, False, 110, id="kubenet"),
    pytest.param("none", None, False, 250, id="byo-cni"),
    pytest.param(None, None, False, 250, id="default-network"),
])
def test_max_pods_default(plugin, mode, pod_subnet, expected):
    assert nodeshape.max_pods_default(plugin, mode, pod_subnet=pod_subnet) == expected
    assert nodeshape.MAX_PODS_MIN <= expected <= nodeshape.MAX_PODS_MAX


# -- names, images, labels ------------------------------------------------------------------------------

@pytest.mark.parametrize(("index", "suffix"), [
    pytest.param(0, "vmss000000", id="0"), pytest.param(10, "vmss00000a", id="10"),
    pytest.param(525, "vmss0000el", id="525"), pytest.param(36**6 - 1, "vmsszzzzzz", id="last"),
])
def test_node_names(index, suffix):
    assert nodeshape.node_name("nodepool1", "26280851", index) == f"aks-nodepool1-26280851-{suffix}"


def test_node_name_limits_and_suffix():
    with pytest.raises(ValueError):
        nodeshape.node_name("nodepool1", "26280851", 36**6)
    suffix = nodeshape.name_suffix("/subscriptions/s/resourceGroups/rg/providers/x/managedClusters/c")
    assert len(suffix) == 8 and suffix.isdigit()
    assert suffix == nodeshape.name_suffix("/subscriptions/s/resourcegroups/RG/providers/x/managedClusters/c")


@pytest.mark.parametrize(("os_sku", "version", "gen2", "image"), [
    pytest.param("Ubuntu", "1.34.12", True, "AKSUbuntu-2204gen2containerd-202611.30.0", id="1.34-ubuntu-22.04"),
    pytest.param("Ubuntu", "1.35.8", True, "AKSUbuntu-2404gen2containerd-202611.30.0", id="1.35-ubuntu-24.04"),
    pytest.param("Ubuntu", "1.36.2", False, "AKSUbuntu-2404containerd-202611.30.0", id="gen1"),
    pytest.param("Ubuntu2204", "1.36.2", True, "AKSUbuntu-2204gen2containerd-202611.30.0", id="pinned-22.04"),
    pytest.param("AzureLinux", "1.36.2", True, "AKSAzureLinux-V3gen2-202611.30.0", id="azure-linux"),
])
def test_node_image_version(os_sku, version, gen2, image):
    assert nodeshape.node_image_version(os_sku, version, gen2=gen2) == image


def test_node_image_version_defaults_to_the_default_kubernetes_version():
    assert nodeshape.node_image_version("Ubuntu") == "AKSUbuntu-2404gen2containerd-202611.30.0"
    with pytest.raises(ValueError):
        nodeshape.node_image_version("Windows2022", "1.36.2")


def test_node_labels_of_a_system_node():
    vm = vmsizes.lookup("Standard_D2s_v3")
    labels = nodeshape.node_labels(
        pool="nodepool1", mode="System", node_name="aks-nodepool1-26280851-vmss000000", vm=vm,
        location="centralindia", node_resource_group="MC_rg_aks_centralindia", kubernetes_version="1.36.2",
        node_image_version="AKSUbuntu-2404gen2containerd-202611.09.0", vnet_name="aks-vnet-26280851",
        subnet_name="aks-subnet", user_labels={"dept": "IT"})
    assert labels == {
        "agentpool": "nodepool1",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "Standard_D2s_v3",
        "beta.kubernetes.io/os": "linux",
        "dept": "IT",
        "failure-domain.beta.kubernetes.io/region": "centralindia",
        "failure-domain.beta.kubernetes.io/zone": "0",
        "kubernetes.azure.com/agentpool": "nodepool1",
        "kubernetes.azure.com/azure-cni-overlay": "true",
        "kubernetes.azure.com/cluster": "MC_rg_aks_centralindia",
        "kubernetes.azure.com/kubelet-serving-ca": "cluster",
        "kubernetes.azure.com/localdns-state": "disabled",
        "kubernetes.azure.com/mode": "system",
        "kubernetes.azure.com/network-name": "aks-vnet-26280851",
        "kubernetes.azure.com/network-stateless-cni": "true",
        "kubernetes.azure.com/network-subnet": "aks-subnet",
        "kubernetes.azure.com/node-image-version": "AKSUbuntu-2404gen2containerd-202611.09.0",
        "kubernetes.azure.com/nodepool-type": "VirtualMachineScaleSets",
        "kubernetes.azure.com/os-sku": "Ubuntu",
        "kubernetes.azure.com/os-sku-effective": "Ubuntu2404",
        "kubernetes.azure.com/os-sku-requested": "Ubuntu",
        "kubernetes.azure.com/podnetwork-type": "overlay",
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/sku-cpu": "2",
        "kubernetes.azure.com/sku-memory": "8192",
        "kubernetes.azure.com/storageprofile": "managed",
        "kubernetes.azure.com/storagetier": "Premium_LRS",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "aks-nodepool1-26280851-vmss000000",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "Standard_D2s_v3",
        "storageprofile": "managed",
        "storagetier": "Premium_LRS",
        "topology.kubernetes.io/region": "centralindia",
        "topology.kubernetes.io/zone": "0",
    }


def test_node_labels_variants():
    common = dict(pool="gpu", mode="User", node_name="aks-gpu-1-vmss000000", location="eastus",
                  node_resource_group="MC_rg_c_eastus", kubernetes_version="1.34.12", node_image_version="img")
    labels = nodeshape.node_labels(vm=vmsizes.lookup("Standard_NC6s_v3"), zone="2", priority="Spot",
                                   network_plugin="kubenet", network_policy="calico", **common)
    assert labels["topology.kubernetes.io/zone"] == labels["failure-domain.beta.kubernetes.io/zone"] == "eastus-2"
    assert labels["kubernetes.azure.com/priority"] == labels["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert labels["kubernetes.azure.com/accelerator"] == "nvidia"
    assert labels["kubernetes.azure.com/network-policy"] == "calico"
    assert labels["kubernetes.azure.com/os-sku-effective"] == "Ubuntu2204"
    assert labels["kubernetes.azure.com/mode"] == "user"
    assert not any(k.startswith(("kubernetes.azure.com/network-stateless", "kubernetes.azure.com/azure-cni"))
                   for k in labels)
    regular = nodeshape.node_labels(vm=vmsizes.lookup("Standard_D2_v3"), **common)
    assert "kubernetes.azure.com/priority" not in regular  # "regular" is never written
    assert regular["kubernetes.azure.com/storagetier"] == "Standard_LRS"  # no premium storage on D2_v3
    assert regular["kubernetes.azure.com/network-stateless-cni"] == "true"


@pytest.mark.parametrize(("group", "label"), [
    pytest.param("MC_rg_aks_eastus", "MC_rg_aks_eastus", id="short"),
    # a real node (2026): the node resource group cut to 63 characters
    pytest.param("MC_fitfile-cloud-testing-rg_fitfile-cloud-testing-aks-cluster_uksouth",
                 "MC_fitfile-cloud-testing-rg_fitfile-cloud-testing-aks-cluster_u", id="truncated"),
    pytest.param("MC_rg(1)_c_eastus", "MC_rg-1-_c_eastus", id="parentheses"),
    pytest.param("MC_" + "a" * 59 + "_x", "MC_" + "a" * 59 + "z", id="trailing-underscore"),
])
def test_cluster_label(group, label):
    assert nodeshape.cluster_label(group) == label
    assert len(label) <= 63


def test_node_info():
    info = nodeshape.node_info("1.36.2", seed="aks-nodepool1-26280851-vmss000000")
    assert info == nodeshape.node_info("1.36.2", seed="aks-nodepool1-26280851-vmss000000")
    assert {k: info[k] for k in ("architecture", "containerRuntimeVersion", "kernelVersion", "kubeletVersion",
                                 "operatingSystem", "osImage")} == {
        "architecture": "amd64", "containerRuntimeVersion": "containerd://2.3.3-2",
        "kernelVersion": "6.8.0-1067-azure", "kubeletVersion": "v1.36.2", "operatingSystem": "linux",
        "osImage": "Ubuntu 24.04.5 LTS"}
    assert len(info["machineID"]) == 32 and len(info["systemUUID"]) == 36 and len(info["bootID"]) == 36
    old = nodeshape.node_info("1.34.12", seed="n")
    assert (old["osImage"], old["containerRuntimeVersion"]) == ("Ubuntu 22.04.5 LTS", "containerd://1.7.31-1")
    assert nodeshape.node_info("1.34.12", seed="m")["machineID"] != old["machineID"]
