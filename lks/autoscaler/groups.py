"""Node groups: the autoscaled agent pools of a cluster document, as upstream's cloud provider
lists node groups (on AKS one per VMSS): the pool's template, its target size (the ARM
`count`), `minCount`/`maxCount`, the pool's own profile keys (an lks extension), and the Nodes
it has now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lks.arm import fleet
from lks.autoscaler import profile
from lks.nodes import NodeTemplate
from lks.nodes.template import POOL_LABEL

Doc = dict[str, Any]


@dataclass
class Group:
    name: str  # the agent pool's name
    template: NodeTemplate
    target: int  # the pool's count: what the "cloud provider" is asked for
    min_size: int
    max_size: int
    nodes: list[str] = field(default_factory=list)  # names of its registered Nodes
    overrides: dict[str, Any] = field(default_factory=dict)  # the pool's `autoScalerProfile`

    def settings(self, base: profile.Profile) -> profile.Profile:
        """The profile for this group's nodes: the cluster's, with the pool's own keys over it
        (upstream's per-node-group options)."""
        return profile.for_pool(base, self.overrides)

    @property
    def id(self) -> str:
        """The node group id upstream prints (AKS's: the VMSS name)."""
        return self.template.vmss_name


def autoscaled(doc: Doc) -> list[Doc]:
    """The running pools with `enableAutoScaling`."""
    return [p for p in doc["properties"]["agentPoolProfiles"]
            if p.get("enableAutoScaling") and (p.get("powerState") or {}).get("code", "Running") == "Running"]


def of(doc: Doc, node_objs: dict[str, Doc]) -> list[Group]:
    out = []
    for pool in autoscaled(doc):
        count = int(pool.get("count") or 0)
        group = Group(name=pool["name"], template=fleet.template(doc, pool), target=count,
                      min_size=int(pool.get("minCount") if pool.get("minCount") is not None else count),
                      max_size=int(pool.get("maxCount") if pool.get("maxCount") is not None else count),
                      overrides=dict(pool.get("autoScalerProfile") or {}))
        group.nodes = sorted(n for n, obj in node_objs.items()
                             if (obj["metadata"].get("labels") or {}).get(POOL_LABEL) == pool["name"])
        out.append(group)
    return out
