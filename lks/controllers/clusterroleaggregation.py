"""The ClusterRole aggregation controller (upstream's `pkg/controller/clusterroleaggregation`):
a ClusterRole with an `aggregationRule` gets as rules the union of the rules of every other
ClusterRole its `clusterRoleSelectors` select (in selector order, then by name, each rule once),
rewritten whenever any ClusterRole changes. This is how `admin`, `edit` and `view` grow when a
CRD's author labels a role `rbac.authorization.k8s.io/aggregate-to-view: "true"`.
"""

from __future__ import annotations

from typing import Any

from lks.controllers.controller import Controller
from lks.kube import errors, selectors
from lks.kube.cluster import Cluster

Obj = dict[str, Any]


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj]:
    """The rules `role`'s aggregationRule selects from `roles`."""
    out: list[Obj] = []
    name = role["metadata"]["name"]
    for raw in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ():
        try:
            selector = selectors.from_label_selector_object(raw)
        except (KeyError, TypeError):
            continue
        for other in sorted(roles, key=lambda r: r["metadata"]["name"]):
            if other["metadata"]["name"] == name or not selector.matches(other["metadata"].get("labels")):
                continue
            for rule in other.get("rules") or ():
                if rule not in out:
                    out.append(rule)
    return out


class ClusterRoleAggregationController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="clusterrole-aggregation", workers=1)
        self.roles = cluster.registry("rbac.authorization.k8s.io", "v1", "clusterroles")
        self.informer = self.watch(self.roles, self._on_role)

    def _on_role(self, _kind: str, _role: Obj, _prev: Obj | None) -> None:
        self.prime()  # any role may be selected by any aggregated one, as upstream re-queues them all

    def prime(self) -> None:
        for role in self.informer.list():
            if role.get("aggregationRule"):
                self.queue.add(role["metadata"]["name"])

    async def sync(self, name: str) -> None:
        role = self.informer.get(None, name)
        if role is None or not role.get("aggregationRule"):
            return
        rules = aggregated_rules(role, self.informer.list())
        if rules == (role.get("rules") or []):
            return
        updated = {**role, "rules": rules}
        try:
            await self.roles.update(None, name, updated)
        except errors.APIError as err:
            if err.code == 404:
                return
            raise  # a conflict: the queue retries with the newer role
