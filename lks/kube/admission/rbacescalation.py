"""RBAC escalation prevention on every write of a Role, ClusterRole, RoleBinding or
ClusterRoleBinding by a user (upstream does it in those resources' storage; here it is a
validating admission step, after defaulting, with the stored object, so every write path
(create, update, patch, apply) meets the same check). The rules are `lks.kube.rbac.escalation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import admission
from lks.kube.rbac import escalation, index

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
_RESOURCES = frozenset(("roles", "clusterroles", "rolebindings", "clusterrolebindings"))


@admission.plugin
class RBACEscalation:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if (obj is None or opts.user is None or reg.rt.group != escalation.GROUP
                or reg.rt.resource not in _RESOURCES or opts.subresource):
            return
        policy = index.index_of(self.cluster)
        if policy is not None:  # RBAC is on
            await escalation.check(self.cluster, policy, reg.rt.resource, obj, old, opts.user)
