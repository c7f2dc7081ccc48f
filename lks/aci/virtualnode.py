"""The virtual node (`addonProfiles.aciConnectorLinux`): the Node `virtual-node-aci-linux` that
AKS's ACI virtual kubelet (virtual-kubelet/azure-aci) registers, with its labels, its
`virtual-kubelet.io/provider=azure:NoSchedule` taint, its large fixed capacity and its conditions,
and its Lease in kube-node-lease renewed on the same 10 s rhythm as the other nodes' (one
`lks.nodes.agent.Heartbeats` of its own). The add-on's Deployment and RBAC
(`lks.controllers.addons.aciconnector`) are kept by an `AddonManager` while the add-on is on;
turning it off deletes them, the Node and its Lease.

`configure(cluster, enabled=..., subnet=...)` applies the managed cluster's add-on profile;
`stop(cluster_id)` ends it when the cluster stops (the objects stay, as any node's do).
"""

from __future__ import annotations

import logging
from typing import Any

from lks.controllers.addons import AddonManager, aciconnector
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.nodes import agent

Obj = dict[str, Any]
log = logging.getLogger(__name__)
NODE_NAME = aciconnector.NODE_NAME
MANAGER = "addon-manager"
KUBELET_VERSION = "v1.25.0-vk-azure-aci-1.6.2"  # the provider reports its own build, not the cluster's
LABELS = {
    "type": "virtual-kubelet",
    "kubernetes.io/role": "agent",
    "kubernetes.io/hostname": NODE_NAME,
    "kubernetes.io/os": "linux",
    "beta.kubernetes.io/os": "linux",
    "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
    "node.kubernetes.io/exclude-from-external-load-balancers": "true",
    "kubernetes.azure.com/managed": "false",
}
TAINT = {"key": aciconnector.TAINT_KEY, "value": "azure", "effect": "NoSchedule"}
CAPACITY = {"cpu": "10k", "memory": "4Ti", "pods": "5k", "nvidia.com/gpu": "100"}
# (type, status, reason, message) as the azure-aci provider posts them
_CONDITIONS = (
    ("Ready", "True", "KubeletReady", "kubelet is ready."),
    ("OutOfDisk", "False", "KubeletHasSufficientDisk", "kubelet has sufficient disk space available"),
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"),
)


class VirtualNode:
    """One cluster's virtual node: the Node, its Lease heartbeat, the add-on's kept objects."""

    def __init__(self, cluster: Cluster, *, subnet: str):
        self.cluster = cluster
        self.subnet = subnet
        self.name = NODE_NAME  # what `Heartbeats` logs
        self.uid: str | None = None
        self._nodes = cluster.registry("", "v1", "nodes")
        self._leases = cluster.registry("coordination.k8s.io", "v1", "leases")
        self._heartbeats = agent.Heartbeats(clock=cluster.clock)
        self._addons: AddonManager | None = None

    def _node(self) -> Obj:
        now = self.cluster.clock.now()
        conditions = [{"type": t, "status": s, "reason": r, "message": m,
                       "lastHeartbeatTime": agent.rfc3339(now), "lastTransitionTime": agent.rfc3339(now)}
                      for t, s, r, m in _CONDITIONS]
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": dict(LABELS)},
            "spec": {"taints": [dict(TAINT)]},
            "status": {
                "capacity": dict(CAPACITY), "allocatable": dict(CAPACITY), "conditions": conditions,
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": "amd64",
                             "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "",
                             "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        }

    async def start(self) -> None:
        objs = aciconnector.objects(subnet=self.subnet)
        self._addons = AddonManager(cluster=self.cluster, objects=objs, name="aci-connector-addon-manager")
        self._addons.prime()
        await self._addons.start()
        await self._register()
        await self.heartbeat()
        await self._heartbeats.start()
        self._heartbeats.add(self)

    async def _register(self) -> None:
        want = self._node()
        opts = WriteOptions(field_manager=NODE_NAME, trusted=True)

        def adopt(node: Obj) -> Obj:  # a Node left from before: the provider's labels and taint again
            node["metadata"].setdefault("labels", {}).update(LABELS)
            taints = [t for t in node.get("spec", {}).get("taints") or [] if t.get("key") != TAINT["key"]]
            node.setdefault("spec", {})["taints"] = [*taints, dict(TAINT)]
            return node

        try:
            node = await self._nodes.create(None, want, opts)
        except errors.APIError as err:
            if err.code != 409:
                raise
            node = await self._nodes.patch(None, NODE_NAME, adopt, opts)
        self.uid = node["metadata"]["uid"]

        def status(node: Obj) -> Obj:
            node["status"] = {**(node.get("status") or {}), **want["status"]}
            return node

        await self._nodes.patch(None, NODE_NAME, status, opts, subresource="status")

    async def heartbeat(self) -> None:
        """Renew the Lease (called by `Heartbeats` every 10 s), creating it owned by the Node."""
        def renew(lease: Obj) -> Obj:
            lease["metadata"].update(name=NODE_NAME, namespace=agent.LEASE_NAMESPACE,
                                     ownerReferences=[{"apiVersion": "v1", "kind": "Node", "name": NODE_NAME,
                                                       "uid": self.uid}])
            lease.setdefault("spec", {}).update(holderIdentity=NODE_NAME, leaseDurationSeconds=agent.LEASE_DURATION,
                                                renewTime=agent.micro_time(self.cluster.clock.now()))
            return lease
        try:
            await self._leases.patch(agent.LEASE_NAMESPACE, NODE_NAME, renew)
        except errors.APIError as err:
            if err.code != 404:
                raise
            await self._leases.create(agent.LEASE_NAMESPACE,
                                      renew({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {}}))

    async def stop(self, *, delete: bool = False) -> None:
        """End the heartbeats and the kept objects; with `delete` (the add-on turned off) the
        Node, its Lease and the add-on's objects go too."""
        self._heartbeats.discard(self)
        await self._heartbeats.stop()
        if self._addons is not None:
            await self._addons.stop()
        if not delete:
            return
        await agent.delete_if_present(self._nodes, None, NODE_NAME)
        await agent.delete_if_present(self._leases, agent.LEASE_NAMESPACE, NODE_NAME)
        for obj in reversed(aciconnector.objects(subnet=self.subnet)):
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = self.cluster.catalog.by_kind(group, version, obj["kind"])
            assert rt is not None, obj["kind"]
            meta = obj["metadata"]
            await agent.delete_if_present(self.cluster.registry(group, version, rt.resource),
                                             meta.get("namespace"), meta["name"])


_running: dict[str, VirtualNode] = {}


async def configure(cluster: Cluster, *, enabled: bool, subnet: str | None = None) -> None:
    """Turn the cluster's virtual node on (for the virtual node subnet `subnet`) or off."""
    current = _running.get(cluster.id)
    if current is not None and (not enabled or current.subnet != subnet):
        del _running[cluster.id]
        await current.stop(delete=not enabled)
        current = None
    if enabled and current is None:
        node = VirtualNode(cluster, subnet=subnet or "")
        await node.start()
        _running[cluster.id] = node


async def stop(cluster_id: str) -> None:
    """The cluster stops: end its virtual node's heartbeats (the Node stays, as others' do)."""
    node = _running.pop(cluster_id, None)
    if node is not None:
        await node.stop()


def running(cluster_id: str) -> VirtualNode | None:
    return _running.get(cluster_id)
