"""The system PriorityClasses every cluster has, `system-node-critical` and
`system-cluster-critical`, created as the cluster starts (upstream's
`scheduling/bootstrap-system-priority-classes` post-start hook). Priority admission
(`lks.kube.admission.priority`) keeps them from being deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.kube import errors
from lks.kube.typevalidation.scheduling import SYSTEM_CLASSES

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

_DESCRIPTIONS = {  # upstream's SystemPriorityClasses
    "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
    "system-cluster-critical": "Used for system critical pods that must run in the cluster, but can be moved to "
                               "another node if necessary.",
}


async def bootstrap(cluster: Cluster) -> None:
    """Create the system PriorityClasses a cluster lacks (a restart finds them there)."""
    reg = cluster.registry("scheduling.k8s.io", "v1", "priorityclasses")
    cache = await reg.cache()
    for name, value in SYSTEM_CLASSES.items():
        if reg.key(None, name) in cache.objects:
            continue
        try:
            await reg.create(None, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                    "metadata": {"name": name}, "value": value, "description": _DESCRIPTIONS[name]})
        except errors.APIError as err:
            if err.code != 409:
                raise
