"""The RBAC authorizer of a cluster's chain (`lks.kube.authz`): allows what a binding of the
user, one of its groups or its service account grants; never denies, so the next authorizer
(or the chain's "no") decides the rest. Started from `Cluster.start`: it fills its index from
the watch caches and reconciles the bootstrap policy (`lks.kube.rbac.bootstrap`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.kube import authz
from lks.kube.authn import User
from lks.kube.rbac import bootstrap
from lks.kube.rbac.index import PolicyIndex, aggregate

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster


@authz.authorizer
class RBACAuthorizer:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.index = PolicyIndex()

    async def start(self) -> None:
        await self.index.start(self.cluster)
        await bootstrap.reconcile(self.cluster)

    def stop(self) -> None:
        self.index.stop()

    async def authorize(self, attrs: authz.Attributes) -> tuple[str, str]:
        allowed, reason = self.index.authorize(attrs)
        return (authz.ALLOW if allowed else authz.NO_OPINION), reason

    async def rules_for(self, user: User, namespace: str) -> authz.Rules:
        rules, missing = self.index.rules_for(user, namespace)
        out = authz.Rules(evaluation_error=aggregate(missing) if missing else "")
        for rule in rules:
            if rule.get("nonResourceURLs"):
                out.non_resource_rules.append({k: list(rule[k]) for k in ("verbs", "nonResourceURLs") if k in rule})
            else:
                out.resource_rules.append(
                    {k: list(rule[k]) for k in ("verbs", "apiGroups", "resources", "resourceNames") if rule.get(k)})
        return out

