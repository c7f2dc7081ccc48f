"""The hosted "controller manager": the controllers that run inside the service for every
cluster. Each controller reads informer caches, writes through the registries like any API
client, and is safe to run twice (level-triggered). `ControllerManager` starts and stops a
cluster's set; `lks.controlplanes` owns one per running cluster.
"""

from __future__ import annotations

from lks.controllers.crd import CRDController
from lks.controllers.garbagecollector import GarbageCollector
from lks.controllers.namespace import NamespaceController
from lks.kube.cluster import Cluster


class ControllerManager:
    def __init__(self, cluster: Cluster):
        # one line per controller, in start order
        self.controllers = [
            CRDController(cluster),
            NamespaceController(cluster),
            GarbageCollector(cluster),
        ]

    async def start(self) -> None:
        for c in self.controllers:
            await c.start()

    async def stop(self) -> None:
        for c in reversed(self.controllers):
            await c.stop()
