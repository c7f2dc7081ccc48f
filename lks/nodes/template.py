"""What the nodes of one node pool share, and how AKS names them.

An AKS node pool is a VM scale set (VMSS) named `aks-<pool>-<8 digits>-vmss`; each VM's
computer name, and so its Node's name, is that prefix plus the VMSS instance id as 6 base-36
digits (`aks-nodepool1-12345678-vmss00000a` is instance 10), and its `spec.providerID` points at
the VMSS instance. A `NodeTemplate` holds everything else a pool's Nodes have in common: labels
(the caller supplies AKS's reserved ones: `lks.arm.nodeshape.node_labels`), taints, capacity, the `nodeInfo`
versions and the node subnet. The management layer builds one template per agent pool;
`lks.nodes.pool` keeps that many `lks.nodes.agent.NodeAgent`s, which turn it into Node objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

POOL_LABEL = "kubernetes.azure.com/agentpool"  # how a pool finds its Nodes again after a restart
# lks's: on an Azure CNI node, `node-subnet`: its pods' addresses are the node subnet's, held with
# the node's own (what `lks.nodes.pool` counts as taken, `lks.controllers.nodeipam` leaves alone)
POD_IPS_ANNOTATION = "lks.dev/pod-ips"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_SUFFIX_DIGITS = 6  # VMSS computer names: prefix + 6 base-36 digits of the instance id
_TAINT = re.compile(r"^(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)$")


@dataclass(frozen=True)
class NodeTemplate:
    """The shared part of a pool's Nodes. Immutable: a pool update builds a new template and
    hands it to `NodePool.apply`, which works out what changed."""

    pool: str
    name_digits: str  # the 8 digits of `aks-<pool>-<digits>-vmss`, fixed for the pool's life
    subscription_id: str
    node_resource_group: str  # `MC_<rg>_<cluster>_<location>`
    mode: str = "System"  # System | User
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()  # {key, value, effect}; AKS sets none by default
    annotations: Mapping[str, str] = field(default_factory=dict)  # beyond the ones kubelet sets
    capacity: Mapping[str, str] = field(default_factory=dict)  # cpu, memory, pods, ephemeral-storage...
    allocatable: Mapping[str, str] = field(default_factory=dict)  # capacity minus AKS's reservations
    # nodeInfo. The OS values are those of an AKS Ubuntu node image; the caller passes the pool's.
    kubelet_version: str = "v1.36.0"
    # Deprecated: kubelet stopped filling it in 1.33 (DisableNodeKubeProxyVersion on by default),
    # and the field has no omitempty, so a current Node shows "".
    kube_proxy_version: str = ""
    container_runtime_version: str = "containerd://2.1.4"
    kernel_version: str = "6.8.0-1031-azure"
    os_image: str = "Ubuntu 24.04.3 LTS"
    operating_system: str = "linux"
    architecture: str = "amd64"
    swap_capacity: int | None = 0  # kubelet reports nodeInfo.swap (0 without swap); None omits it
    subnet: str = "10.224.0.0/16"  # AKS's default node subnet (aks-vnet/aks-subnet), or the pool's vnetSubnetID's
    # Where pods get their IPs (`lks.nodes.runtime`): `node-cidr` (kubenet, Azure CNI Overlay: the
    # Node's spec.podCIDR), `node-subnet` (Azure CNI: each node takes `max_pods` addresses of
    # `subnet` after its own, as AKS preallocates them on the NIC), `none` (no CNI installed).
    pod_network: str = "node-cidr"
    max_pods: int = 110

    @property
    def addresses_per_node(self) -> int:
        """How many addresses of the node subnet one node holds: its own, and its pods' with Azure CNI."""
        return 1 + (self.max_pods if self.pod_network == "node-subnet" else 0)
    kubelet_port: int = 10250
    # The agent pool's `workloadRuntime`: `Process` nodes run each container's command as a host
    # process (`lks.nodes.process`); every other value (AKS's `OCIContainer` default, `WasmWasi`,
    # `KataVmIsolation`) means the simulated runtime (`lks.nodes.runtime`).
    workload_runtime: str = "OCIContainer"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{8}", self.name_digits):
            raise ValueError(f"name_digits must be 8 digits, not {self.name_digits!r}")
        for taint in self.taints:
            if not taint.get("key") or taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise ValueError(f"bad taint {dict(taint)!r}")

    # -- names --------------------------------------------------------------------------

    @property
    def vmss_name(self) -> str:
        return f"aks-{self.pool}-{self.name_digits}-vmss"

    def node_name(self, index: int) -> str:
        """The Node (and VM computer) name of VMSS instance `index`."""
        return self.vmss_name + base36(index, _SUFFIX_DIGITS)

    def index_of(self, node_name: str) -> int | None:
        """The instance index a Node name stands for, or None if it is not one of this pool's."""
        prefix = self.vmss_name
        suffix = node_name[len(prefix):]
        if not node_name.startswith(prefix) or len(suffix) != _SUFFIX_DIGITS or suffix.strip(_BASE36):
            return None
        return int(suffix, 36)

    def provider_id(self, index: int) -> str:
        # the cloud provider writes the resource group in lower case
        return (f"azure:///subscriptions/{self.subscription_id}/resourceGroups/{self.node_resource_group.lower()}"
                f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.vmss_name}/virtualMachines/{index}")

    # -- what a Node gets -----------------------------------------------------------------

    def node_labels(self, node_name: str) -> dict[str, str]:
        """The caller's labels plus the ones kubelet always sets itself, and the pool label the
        pool's discovery depends on."""
        return {
            **self.labels,
            POOL_LABEL: self.pool,
            "beta.kubernetes.io/arch": self.architecture,
            "beta.kubernetes.io/os": self.operating_system,
            "kubernetes.io/arch": self.architecture,
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": self.operating_system,
        }

    def node_taints(self) -> list[dict[str, str]]:
        return [{k: v for k, v in t.items() if v is not None} for t in self.taints]


def base36(n: int, width: int) -> str:
    if n < 0 or n >= 36 ** width:
        raise ValueError(f"instance index {n} out of range")
    digits = []
    for _ in range(width):
        n, d = divmod(n, 36)
        digits.append(_BASE36[d])
    return "".join(reversed(digits))


def parse_taint(text: str) -> dict[str, str]:
    """An ARM `nodeTaints` entry (`key=value:Effect`) as a Node taint."""
    m = _TAINT.match(text)
    if m is None:
        raise ValueError(f"taint {text!r} is not key=value:NoSchedule|PreferNoSchedule|NoExecute")
    taint = {"key": m["key"], "effect": m["effect"]}
    if m["value"]:
        taint["value"] = m["value"]
    return taint


