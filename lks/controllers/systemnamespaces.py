"""The system namespaces controller (upstream's `pkg/controlplane/controller/systemnamespaces`,
which kube-apiserver runs for itself): `default`, `kube-system`, `kube-public` and
`kube-node-lease` always exist. The first three cannot be deleted
(`lks.kube.strategies.namespace`, as the NamespaceLifecycle admission plugin); a deleted
`kube-node-lease` comes back once the namespace controller has emptied and removed it, so
the node agents' Leases have a home again.

Upstream looks every minute; here the namespace's DELETED event queues it, so nothing polls
(`Cluster.start` creates the missing ones when the cluster starts).
"""

from __future__ import annotations

from typing import Any

from lks.controllers.controller import Controller
from lks.controllers.kubernetesservice import WRITE
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.strategies.namespace import SYSTEM


class SystemNamespacesController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="system-namespaces", workers=1)
        self.namespaces = cluster.registry("", "v1", "namespaces")
        self.informer = self.watch(self.namespaces, self._on_event)

    def _on_event(self, kind: str, obj: dict[str, Any], _prev: Any) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED" and name in SYSTEM:
            self.queue.add(name)

    async def sync(self, name: str) -> None:
        if self.informer.get(None, name) is not None:
            return  # there, or still terminating: its DELETED event brings us back
        try:
            await self.namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                                         WRITE)
        except errors.APIError as err:
            if err.code != 409:
                raise
