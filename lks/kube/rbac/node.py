"""The Node authorizer (upstream's `plugin/pkg/auth/authorizer/node`), first in the chain after
system:masters: a kubelet (`system:node:<name>` in `system:nodes`) reads only its own Node, the
pods bound to it and the secrets, config maps, claims, volumes and service-account tokens those
pods need; it touches only its own Lease and CSINode; everything else it may do is the static
`system:node` rules. Writes to nodes and pods are allowed here and narrowed by the NodeRestriction
admission plugin (`lks.kube.admission.noderestriction`). Other users get no opinion.

From 1.32 (`AuthorizeNodeWithSelectors`, beta then, locked on from 1.34) pods and nodes are
decided here alone: a node lists and watches only the pods bound to it, named by the field
selector `spec.nodeName=<itself>` (or one pod related to it), and creates, deletes and writes
the status of pods (NodeRestriction narrows those to its own); before 1.32 the static rules let
it read every pod and every Node. Simplified from upstream: resource claims, resource slices and volume
secrets reached through volumes are not partitioned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.kube import authz
from lks.kube.authn import User
from lks.kube.rbac import policy
from lks.kube.rbac.nodegraph import NodeGraph, node_name
from lks.kube.rbac.rules import compile_rules

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

NODE_LEASES = "kube-node-lease"
_NODE_RULES = compile_rules(policy.CLUSTER_ROLES["system:node"])
# the static rules as (verb, group, resource[/subresource]) for a set lookup, since every write of
# every node agent that the cases below leave (its Events) comes to them; rules naming objects,
# paths or wildcards (none today) are matched one by one
_SIMPLE = [r for r in _NODE_RULES if not (r.names or r.urls or r.all_verbs or r.all_groups or r.all_resources)]
_NODE_ALLOWED = frozenset((verb, group, resource) for r in _SIMPLE for verb in r.verbs for group in r.groups
                          for resource in r.resources)
_NODE_OTHER_RULES = tuple(r for r in _NODE_RULES if r not in _SIMPLE)
_KINDS = {("", "secrets"): "secret", ("", "configmaps"): "configmap", ("", "persistentvolumeclaims"): "pvc",
          ("", "pods"): "pod", ("", "serviceaccounts"): "serviceaccount"}
NO = authz.NO_OPINION


@authz.authorizer
class NodeAuthorizer:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.graph = NodeGraph(cluster)
        # AuthorizeNodeWithSelectors: on by default from 1.32
        self.with_selectors = int(cluster.kubernetes_version.split(".")[1]) >= 32

    def stop(self) -> None:
        self.graph.stop()

    async def rules_for(self, user: User, namespace: str) -> authz.Rules:
        if node_name(user) is None:
            return authz.Rules()
        return authz.Rules(incomplete=True, evaluation_error="node authorizer does not support user rule resolution")

    async def authorize(self, attrs: authz.Attributes) -> tuple[str, str]:
        node = node_name(attrs.user)
        if node is None:
            return NO, ""
        if not node:
            return NO, f'unknown node for user "{attrs.user.name}"'
        if attrs.resource_request:
            key = (attrs.api_group, attrs.resource)
            if key in (("", "secrets"), ("", "configmaps")):
                return await self._read_namespaced(node, attrs)
            if key == ("", "persistentvolumeclaims"):
                if attrs.subresource == "status":
                    if attrs.verb not in ("update", "patch"):
                        return NO, "can only get/update/patch this type"
                    return await self._related(node, attrs)
                return await self._get(node, attrs)
            if key == ("", "persistentvolumes"):
                return await self._get(node, attrs)
            if key == ("storage.k8s.io", "volumeattachments"):
                return await self._get(node, attrs)
            if key == ("", "serviceaccounts"):
                return await self._create_token(node, attrs)
            if key == ("coordination.k8s.io", "leases"):
                return self._own(node, attrs, "a node lease", "node lease", namespace=NODE_LEASES)
            if key == ("storage.k8s.io", "csinodes"):
                if attrs.subresource:
                    return NO, "cannot authorize CSINode subresources"
                return self._own(node, attrs, "a CSINode", "CSINode")
            if key == ("", "nodes") and self.with_selectors:
                return self._node(node, attrs)
            if key == ("", "pods") and self.with_selectors:
                return await self._pod(node, attrs)
        if _static_allows(attrs):
            return authz.ALLOW, ""
        return NO, ""

    async def _read_namespaced(self, node: str, attrs: authz.Attributes) -> tuple[str, str]:
        if attrs.verb not in ("get", "list", "watch"):
            return NO, "can only read resources of this type"
        if attrs.subresource:
            return NO, "cannot read subresource"
        if not attrs.namespace:
            return NO, "can only read namespaced object of this type"
        return await self._related(node, attrs)

    async def _get(self, node: str, attrs: authz.Attributes) -> tuple[str, str]:
        if attrs.verb != "get":
            return NO, "can only get individual resources of this type"
        if attrs.subresource:
            return NO, "cannot get subresource"
        return await self._related(node, attrs)

    async def _create_token(self, node: str, attrs: authz.Attributes) -> tuple[str, str]:
        if attrs.verb != "create" or not attrs.name:
            return NO, "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return NO, "can only create token subresource of serviceaccount"
        return await self._related(node, attrs)

    async def _related(self, node: str, attrs: authz.Attributes) -> tuple[str, str]:
        if not attrs.name:
            return NO, "No Object name found"
        if attrs.resource == "persistentvolumes":
            await self.graph.ready()
            found = await self.graph.volume_related(node, attrs.name)
        elif attrs.resource == "volumeattachments":
            reg = self.cluster.registry("storage.k8s.io", "v1", "volumeattachments")
            va = (await reg.cache()).objects.get(reg.key(None, attrs.name))
            found = va is not None and (va.get("spec") or {}).get("nodeName") == node
        else:
            await self.graph.ready()
            found = self.graph.related(node, _KINDS[(attrs.api_group, attrs.resource)], attrs.namespace, attrs.name)
        if found:
            return authz.ALLOW, ""
        return NO, f"no relationship found between node '{node}' and this object"

    @staticmethod
    def _own(node: str, attrs: authz.Attributes, what: str, which: str, namespace: str | None = None
             ) -> tuple[str, str]:
        """Leases and CSINodes: only the one named after the node (create is checked by NodeRestriction)."""
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return NO, f"can only get, create, update, patch, or delete {what}"
        if namespace is not None and attrs.namespace != namespace:
            return NO, f'can only access leases in the "{namespace}" system namespace'
        if attrs.verb != "create" and attrs.name != node:
            return NO, f"can only access {which} with the same name as the requesting node"
        return authz.ALLOW, ""

    async def _pod(self, node: str, attrs: authz.Attributes) -> tuple[str, str]:
        """Pods, with AuthorizeNodeWithSelectors: writes are NodeRestriction's to narrow."""
        verb, sub = attrs.verb, attrs.subresource
        if not sub:
            if verb == "get":
                return await self._get(node, attrs)
            if verb in ("list", "watch"):
                if any(r.field == "spec.nodeName" and r.equal and r.value == node for r in attrs.field_selector):
                    return authz.ALLOW, ""
                if attrs.name:  # one pod (metadata.name=), known to be bound to it
                    return await self._related(node, attrs)
                return NO, "can only list/watch pods with spec.nodeName field selector"
            if verb in ("create", "delete"):  # mirror pods; NodeRestriction keeps them its own
                return authz.ALLOW, ""
        elif sub == "status" and verb in ("update", "patch"):
            return authz.ALLOW, ""
        elif sub == "eviction" and verb == "create":
            return authz.ALLOW, ""
        return NO, ""

    @staticmethod
    def _node(node: str, attrs: authz.Attributes) -> tuple[str, str]:
        if not attrs.subresource:
            if attrs.verb in ("create", "update", "patch"):
                return authz.ALLOW, ""  # NodeRestriction keeps it to its own Node
            if attrs.verb in ("get", "list", "watch"):
                if attrs.name == node:
                    return authz.ALLOW, ""
                if not attrs.name:
                    return NO, f"node '{node}' cannot read all nodes, only its own Node object"
                return NO, f"node '{node}' cannot read '{attrs.name}', only its own Node object"
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return authz.ALLOW, ""
        return NO, ""


def _static_allows(attrs: authz.Attributes) -> bool:
    """Whether the static `system:node` rules allow `attrs` (upstream's RulesAllow over them)."""
    if attrs.resource_request:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if (attrs.verb, attrs.api_group, resource) in _NODE_ALLOWED:
            return True
    return any(rule.allows(attrs) for rule in _NODE_OTHER_RULES)
