"""Gatekeeper's mutation (`mutations.gatekeeper.sh`), as users of a stand-alone Gatekeeper know
it: the mutator CRDs (`lks.policy.gatekeeper.crds.mutation_crds`), the location language
(`path`), the four mutators (`mutators`), their schema conflicts (`schema`), the fixed-point
system (`system`), the controller that feeds it and writes statuses (`controller`) and the
`mutation.gatekeeper.sh` webhook answered in process (`webhook`). `Mutation` is one cluster's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.kube.webhooks import local
from lks.policy.gatekeeper import manifests
from lks.policy.gatekeeper.mutation import controller, mutators, system, webhook

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.policy.gatekeeper.state import State

__all__ = ["Mutation", "mutators", "system"]


class Mutation:
    def __init__(self, cluster: Cluster, state: State):
        self.cluster = cluster
        self.system = system.System()
        self.webhook = webhook.Webhook(state, self.system)
        self.controller = controller.MutatorController(cluster, state, self.system)

    async def start(self) -> None:
        """Serve the webhook, then watch the mutators (the CRDs are established by now)."""
        local.register(self.cluster.id, manifests.NAMESPACE, manifests.SERVICE, self.webhook.admit,
                       path=manifests.MUTATE_PATH)
        await self.controller.start()

    async def stop(self) -> None:
        local.unregister(self.cluster.id, manifests.NAMESPACE, manifests.SERVICE, path=manifests.MUTATE_PATH)
        await self.controller.stop()
