"""The load balancers of every cluster the service runs (AKS's cloud provider, one per
service): the frontend addresses they share (`frontends`), and per running cluster its service
controller (`controller`) over its load balancers (`balancer`).

`lks.server` makes one and hands it to the control planes (`lks.controlplanes`), which call
`start_cluster(cluster)` and `stop_cluster(id)` as a cluster starts and stops, and `forget(id)`
once it is deleted; `lks.arm.network` reads `frontends` for the node resource groups.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from lks import store
from lks.kube.cluster import Cluster
from lks.net.loadbalancer.balancer import ClusterBalancer, NetworkOf
from lks.net.loadbalancer.controller import ServiceController
from lks.net.loadbalancer.frontends import DEFAULT_RANGE, OUTBOUND, Frontend, Frontends, Unavailable

log = logging.getLogger("lks.net.loadbalancer")


class LoadBalancers:
    def __init__(self, *, meta: store.Backend, public_range: str = DEFAULT_RANGE,
                 alive: Callable[[str], Awaitable[bool]] | None = None, network_of: NetworkOf | None = None):
        """`public_range`: where public frontend addresses come from; `alive(id)`: whether a
        cluster still exists (its addresses are free once not); `network_of(cluster)`: the
        cluster's pod network, into which connections go (None: pods share the host's)."""
        self.frontends = Frontends(meta=meta, public_range=public_range, alive=alive)
        self.network_of = network_of
        self._controllers: dict[str, ServiceController] = {}

    async def start(self) -> None:
        await self.frontends.load()

    async def stop(self) -> None:
        for id in list(self._controllers):
            await self.stop_cluster(id)

    async def start_cluster(self, cluster: Cluster) -> None:
        await self.stop_cluster(cluster.id)
        balancer = ClusterBalancer(cluster, frontends=self.frontends, network_of=self.network_of)
        controller = ServiceController(cluster, balancer=balancer)
        await controller.start()
        self._controllers[cluster.id] = controller
        # the public address of the cluster's outbound rule (AKS's `managedOutboundIPs`), held while it exists
        try:
            await self.frontends.claim(Frontend("", cluster.id, "", "", OUTBOUND), requested=None)
        except Unavailable as err:  # the cluster runs without one (its Services can still get theirs)
            log.warning("cluster %s has no outbound IP: %s", cluster.name, err)

    async def stop_cluster(self, id: str) -> None:
        """The cluster stops: its listeners close; its addresses stay held."""
        controller = self._controllers.pop(id, None)
        if controller is not None:
            await controller.stop()

    async def forget(self, id: str) -> None:
        """The cluster is deleted: its addresses are free again."""
        await self.stop_cluster(id)
        await self.frontends.forget(id)
