"""What a node of a given VM size looks like in Kubernetes on AKS: its capacity and allocatable
resources, its name, its labels, its node image and its `nodeInfo`.

The node agents (`lks.nodes`) register nodes with these values, so kubectl, the scheduler and the
cluster autoscaler see the numbers an AKS node of that size reports.

**Reservations** (`node-resource-reservations.md`, checked against real nodes, see the tests):

* kube-reserved CPU: 60m, 100m, 140m, 180m, 260m, 420m, 740m for 1, 2, 4, 8, 16, 32, 64 cores.
  The table is a bracketed rate (6% of the first core, 4% of the second, 2% of the third and
  fourth, 1% of the rest) which AKS applies to any core count: 6 cores give 160m, 24 give 340m
  (Azure/karpenter-provider-azure `instancetype.go`, and real NC6s_v3 / NC24ads_A100_v4 nodes).
* kube-reserved memory, from the size's nominal memory, in whole MiB (the "MB" of the docs):
  from 1.29 the lesser of `20 MiB * maxPods + 50 MiB` and 25% of memory; before 1.29 a
  regressive 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% up to 128 GiB and
  2% above.
* hard eviction: `memory.available<100Mi` from 1.29 (750Mi before) and `nodefs.available<10%`;
  the kubelet subtracts both from allocatable, the percentage computed in float32 as it does.
* AKS sets no system-reserved.

**Capacity** is what the kubelet reads from the machine, so it is a model calibrated on real AKS
nodes rather than a published figure: memory is the kernel's MemTotal, the nominal size less
1/64 (the kernel's page structures) and 127600Ki (kernel image, firmware and crash-kernel
reservations), within 0.2% of the nodes seen; ephemeral-storage is the root filesystem of the OS
disk (128 GiB by default), 129886128Ki for 128 GiB and 259966896Ki for 256 GiB on every AKS
Ubuntu node seen, linear in between.

**Names and labels** follow `use-labels.md` and label dumps of AKS Ubuntu nodes from 2025-2026
(1.33-1.35). Node names are `aks-<pool>-<8 digits>-vmss<instance id in base 36>`.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Mapping
from fractions import Fraction

from lks.arm import versions
from lks.arm.vmsizes import VMSize

OS_DISK_GB_DEFAULT = 128
MAX_PODS_MIN, MAX_PODS_MAX = 10, 250

# The node image releases lks offers, oldest first: AKS ships Linux images weekly, named
# <yyyymm>.<dd>.<n> after their build date (node-image-upgrade.md). A new pool gets the newest;
# `upgradeNodeImageVersion` moves a pool to it (`latest_node_image_version`).
NODE_IMAGE_RELEASES: tuple[str, ...] = ("202610.12.0", "202610.19.0", "202610.26.0", "202611.02.0",
                                        "202611.09.0", "202611.16.0", "202611.23.0", "202611.30.0")

_KI, _MI = 1024, 1024 * 1024
# The kubelet keeps eviction percentages as float32 (`nodefs.available<10%` is 0.1f).
_NODEFS_EVICTION = struct.unpack("f", struct.pack("f", 0.1))[0]
# Capacity models (see the module docstring): MemTotal = nominal - nominal/64 - 127600Ki, and the
# root filesystem = disk - 194640Ki - 32320Ki per GiB of disk.
_KERNEL_RESERVED_KI = 127600  # makes an 8 GiB node report 8129936Ki, as a D2as_v4 did (2025)
_FS_FIXED_KI, _FS_PER_GIB_KI = 194640, 32320


# -- reservations ------------------------------------------------------------------------------------

def kube_reserved_cpu_millis(vcpus: int) -> int:
    """AKS's kube-reserved CPU in millicores."""
    millis = 60 * min(vcpus, 1)
    millis += 40 * min(max(vcpus - 1, 0), 1)
    millis += 20 * min(max(vcpus - 2, 0), 2)
    millis += 10 * max(vcpus - 4, 0)
    return millis


def _since_1_29(kubernetes_version: str) -> bool:
    return versions.key(kubernetes_version)[:2] >= (1, 29)


def kube_reserved_memory_mib(memory_gib: float, max_pods: int, kubernetes_version: str) -> int:
    """AKS's kube-reserved memory in MiB, from the size's nominal memory."""
    memory = Fraction(memory_gib)
    if _since_1_29(kubernetes_version):
        return int(min(Fraction(20 * max_pods + 50), memory * 1024 / 4))
    reserved, lower = Fraction(0), Fraction(0)
    for upper, rate in ((4, "0.25"), (8, "0.20"), (16, "0.10"), (128, "0.06"), (None, "0.02")):
        top = memory if upper is None else min(memory, Fraction(upper))
        if top > lower:
            reserved += (top - lower) * Fraction(rate)
        if upper is None or memory <= upper:
            break
        lower = Fraction(upper)
    return int(reserved * 1024)


def eviction_hard_memory_mib(kubernetes_version: str) -> int:
    return 100 if _since_1_29(kubernetes_version) else 750


# -- capacity and allocatable ------------------------------------------------------------------------

def memory_capacity_bytes(vm: VMSize) -> int:
    nominal_ki = int(Fraction(vm.memory_gib) * 1024 * 1024)
    return (nominal_ki - nominal_ki // 64 - _KERNEL_RESERVED_KI) * _KI


def ephemeral_storage_capacity_bytes(os_disk_gb: int = OS_DISK_GB_DEFAULT) -> int:
    return (os_disk_gb * _MI - _FS_FIXED_KI - _FS_PER_GIB_KI * os_disk_gb) * _KI


def _binary(n: int) -> str:
    """A byte count as the API server prints a binary-SI quantity: the largest exact suffix,
    plain digits below 1024 or when not a multiple of 1024."""
    if -1024 < n < 1024:
        return str(n)
    exponent = 0
    while n % 1024 == 0 and exponent < 6:
        n //= 1024
        exponent += 1
    return f"{n}{('', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei')[exponent]}"


def _cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def capacity(vm: VMSize, *, max_pods: int, os_disk_gb: int = OS_DISK_GB_DEFAULT,
             gpu_device_plugin: bool = True) -> dict[str, str]:
    """`status.capacity` of a node of size `vm` (keys sorted, as the API server prints them).
    NVIDIA GPUs appear as `nvidia.com/gpu` once the device plugin runs on the node."""
    out = {
        "cpu": str(vm.vcpus),
        "ephemeral-storage": _binary(ephemeral_storage_capacity_bytes(os_disk_gb)),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": _binary(memory_capacity_bytes(vm)),
        "pods": str(max_pods),
    }
    if vm.gpus and gpu_device_plugin:
        out["nvidia.com/gpu"] = str(vm.gpus)
    return dict(sorted(out.items()))


def allocatable(vm: VMSize, max_pods: int, kubernetes_version: str, *, os_disk_gb: int = OS_DISK_GB_DEFAULT,
                gpu_device_plugin: bool = True) -> dict[str, str]:
    """`status.allocatable`: capacity less AKS's kube-reserved and the kubelet's hard eviction."""
    out = capacity(vm, max_pods=max_pods, os_disk_gb=os_disk_gb, gpu_device_plugin=gpu_device_plugin)
    out["cpu"] = _cpu(vm.vcpus * 1000 - kube_reserved_cpu_millis(vm.vcpus))
    reserved_mib = (kube_reserved_memory_mib(vm.memory_gib, max_pods, kubernetes_version)
                    + eviction_hard_memory_mib(kubernetes_version))
    out["memory"] = _binary(memory_capacity_bytes(vm) - reserved_mib * _MI)
    disk = ephemeral_storage_capacity_bytes(os_disk_gb)
    out["ephemeral-storage"] = _binary(disk - int(disk * _NODEFS_EVICTION))
    return out


def max_pods_default(network_plugin: str | None, network_plugin_mode: str | None = None, *,
                     pod_subnet: bool = False) -> int:
    """AKS's default `maxPods` (concepts-network-ip-address-planning.md "Maximum pods per node";
    "none" from the CLI help). No plugin means lks's default network, Azure CNI Overlay, as the CLI."""
    plugin = (network_plugin or "azure").lower()
    if plugin == "kubenet":
        return 110
    if plugin == "none":
        return 250
    if (network_plugin_mode or "").lower() == "overlay" or network_plugin is None:
        return 250
    return 110 if pod_subnet else 30  # Azure CNI with a pod subnet, else the legacy node-subnet mode


# -- node image and OS -------------------------------------------------------------------------------

def os_sku_effective(os_sku: str, kubernetes_version: str) -> str:
    """The OS a pool's `osSKU` means for a Kubernetes version: plain "Ubuntu" is 22.04 up to 1.34
    and 24.04 from 1.35 (upgrade-os-version.md); plain "AzureLinux" is Azure Linux 3."""
    sku = os_sku or "Ubuntu"
    if sku == "Ubuntu":
        return "Ubuntu2204" if versions.key(kubernetes_version)[:2] <= (1, 34) else "Ubuntu2404"
    if sku in ("AzureLinux", "AzureLinux3"):
        return "AzureLinux3"
    if sku in ("Ubuntu2204", "Ubuntu2404"):
        return sku
    raise ValueError(f"unsupported osSKU {os_sku!r}")


def node_image_version(os_sku: str = "Ubuntu", kubernetes_version: str | None = None, *, gen2: bool = True,
                       release: str | None = None) -> str:
    """The node image a pool gets, e.g. `AKSUbuntu-2404gen2containerd-202611.30.0` (the newest
    release unless `release` says): the image definitions AKS publishes
    (Azure/karpenter-provider-azure `pkg/providers/imagefamily`), the gen2 one when the VM size
    supports Hyper-V generation 2."""
    release = release or NODE_IMAGE_RELEASES[-1]
    effective = os_sku_effective(os_sku, kubernetes_version or versions.default_version())
    if effective == "AzureLinux3":
        return f"AKSAzureLinux-V3{'gen2' if gen2 else ''}-{release}"
    return f"AKSUbuntu-{effective[-4:]}{'gen2' if gen2 else ''}containerd-{release}"


# What an AKS node of each OS reports (kubectl get nodes -o wide on AKS nodes in 2026:
# 1.34.7 on Ubuntu 22.04, 1.35.8 on Ubuntu 24.04). Azure Linux figures are from the AKS 1.36
# component list (containerd 2.2.4-2.azl3) and not from a node seen.
_OS_INFO = {
    "Ubuntu2204": ("Ubuntu 22.04.5 LTS", "5.15.0-1110-azure", "containerd://1.7.31-1"),
    "Ubuntu2404": ("Ubuntu 24.04.5 LTS", "6.8.0-1067-azure", "containerd://2.3.3-2"),
    "AzureLinux3": ("Microsoft Azure Linux 3.0", "6.6.117.1-1.azl3", "containerd://2.2.4"),
}


def node_info(kubernetes_version: str, *, os_sku: str = "Ubuntu", seed: str = "") -> dict[str, str]:
    """`status.nodeInfo` of a node; the machine, system and boot ids derive from `seed` (the node
    name, say) so a node reports the same ids every time it registers."""
    os_image, kernel, runtime = _OS_INFO[os_sku_effective(os_sku, kubernetes_version)]
    digest = hashlib.sha256(f"lks-node:{seed}".encode()).hexdigest()
    return {
        "architecture": "amd64",
        "bootID": str(uuid.UUID(digest[32:64])),
        "containerRuntimeVersion": runtime,
        "kernelVersion": kernel,
        "kubeletVersion": f"v{kubernetes_version}",
        "machineID": digest[:32],
        "operatingSystem": "linux",
        "osImage": os_image,
        "systemUUID": str(uuid.UUID(hashlib.sha256(f"lks-vm:{seed}".encode()).hexdigest()[:32])),
    }


# -- names and labels --------------------------------------------------------------------------------

def name_suffix(seed: str) -> str:
    """The 8 digits in a pool's VMSS and node names (`aks-nodepool1-12345678-vmss`), stable for a
    seed. AKS derives them from the cluster; lks hashes the cluster's resource id."""
    return f"{int(hashlib.sha256(seed.lower().encode()).hexdigest(), 16) % 10**8:08d}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def node_name(pool: str, suffix: str, index: int) -> str:
    """`aks-<pool>-<suffix>-vmss<index>`, the VMSS instance id in base 36 over six characters
    (instance 10 is `vmss00000a`, 525 is `vmss0000el`)."""
    if not 0 <= index < 36**6:
        raise ValueError(f"VMSS instance index out of range: {index}")
    return f"aks-{pool}-{suffix}-vmss{_base36(index):0>6}"


def cluster_label(node_resource_group: str) -> str:
    """The `kubernetes.azure.com/cluster` value: the node resource group, made a valid label value
    as AKS does (parentheses to "-", cut to 63 characters, a trailing "-", "_" or "." replaced by
    "z"; Azure/karpenter-provider-azure `NormalizeClusterResourceGroupNameForLabel`)."""
    value = node_resource_group.replace("(", "-").replace(")", "-")[:63]
    if value.endswith(("-", "_", ".")):
        value = (value[:-1] if len(value) > 62 else value) + "z"
    return value


def node_labels(*, pool: str, mode: str, node_name: str, vm: VMSize, location: str, node_resource_group: str,
                kubernetes_version: str, node_image_version: str, os_sku: str = "Ubuntu", zone: str | None = None,
                priority: str = "Regular", network_plugin: str | None = "azure",
                network_plugin_mode: str | None = "overlay", network_policy: str | None = None,
                vnet_name: str | None = None, subnet_name: str | None = None,
                kubelet_identity_client_id: str | None = None, os_disk_type: str = "Managed",
                user_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels an AKS node of a pool carries (sorted), the pool's own `nodeLabels` included.

    `zone` is the availability zone number ("1"); without one the zone labels are "0". Labels
    that carry ids lks does not have (`consolidated-additional-properties`,
    `nodenetwork-vnetguid`, `network-subscription`) are left out; `kubernetes.azure.com/managedby`
    is listed in use-labels.md but absent from every recent node seen, so it is left out too.
    """
    zone_value = f"{location}-{zone}" if zone else "0"
    sku = os_sku or "Ubuntu"
    tier = "Premium_LRS" if vm.premium_io else "Standard_LRS"
    profile = "managed" if os_disk_type.lower() == "managed" else os_disk_type.lower()
    labels = {
        "agentpool": pool,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": vm.name,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": location,
        "failure-domain.beta.kubernetes.io/zone": zone_value,
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.azure.com/cluster": cluster_label(node_resource_group),
        "kubernetes.azure.com/kubelet-serving-ca": "cluster",
        "kubernetes.azure.com/localdns-state": "disabled",
        "kubernetes.azure.com/mode": mode.lower(),
        "kubernetes.azure.com/node-image-version": node_image_version,
        "kubernetes.azure.com/nodepool-type": "VirtualMachineScaleSets",
        "kubernetes.azure.com/os-sku": sku,
        "kubernetes.azure.com/os-sku-effective": os_sku_effective(sku, kubernetes_version),
        "kubernetes.azure.com/os-sku-requested": sku,
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/sku-cpu": str(vm.vcpus),
        "kubernetes.azure.com/sku-memory": str(vm.memory_mib),  # MiB: 8192 on an 8 GiB node
        "kubernetes.azure.com/storageprofile": profile,
        "kubernetes.azure.com/storagetier": tier,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": vm.name,
        "storageprofile": profile,  # the pre-2021 unprefixed labels are still set
        "storagetier": tier,
        "topology.kubernetes.io/region": location,
        "topology.kubernetes.io/zone": zone_value,
    }
    if kubelet_identity_client_id:
        labels["kubernetes.azure.com/kubelet-identity-client-id"] = kubelet_identity_client_id
    if priority.lower() == "spot":
        # "regular" is never written; spot nodes carry both the old and the new key
        labels["kubernetes.azure.com/priority"] = "spot"
        labels["kubernetes.azure.com/scalesetpriority"] = "spot"
    if vm.gpus:
        labels["kubernetes.azure.com/accelerator"] = "nvidia"
    if network_policy and network_policy.lower() != "none":
        labels["kubernetes.azure.com/network-policy"] = network_policy.lower()
    if (network_plugin or "azure").lower() == "azure":
        if (network_plugin_mode or "").lower() == "overlay":
            labels["kubernetes.azure.com/azure-cni-overlay"] = "true"
            labels["kubernetes.azure.com/podnetwork-type"] = "overlay"
        # stateless CNI from 1.34 (Azure/karpenter-provider-azure `labels.go`)
        labels["kubernetes.azure.com/network-stateless-cni"] = str(
            versions.key(kubernetes_version)[:2] >= (1, 34)).lower()
        if vnet_name:
            labels["kubernetes.azure.com/network-name"] = vnet_name
        if subnet_name:
            labels["kubernetes.azure.com/network-subnet"] = subnet_name
    labels.update(user_labels or {})
    return dict(sorted(labels.items()))
