"""NodeRestriction admission (upstream's `plugin/pkg/admission/noderestriction`): what the Node
authorizer (`lks.kube.rbac.node`) lets a kubelet write, narrowed to its own: only its own Node
(no taint changes, no kubernetes.io labels outside the kubelet's set), only mirror pods bound to
itself that reference nothing else, status of pods bound to itself, and its own Lease and
CSINode. Other users pass untouched. The node agents (`lks.nodes`) act as their nodes
(`authn.ACTING`), so their writes are checked here as a kubelet's requests are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import admission, authn, errors
from lks.kube.rbac.nodegraph import node_name, pod_references

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
MIRROR = "kubernetes.io/config.mirror"
NODE_LEASES = "kube-node-lease"
_KUBELET_LABELS = frozenset((
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os", "kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/arch"))
_KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_REFERENCE_WORDS = {"serviceaccount": "a service account", "secret": "secrets", "configmap": "configmaps",
                    "pvc": "persistentvolumeclaims"}


def _in(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def forbidden_labels(new: dict | None, old: dict | None) -> list[str]:
    """The changed labels a kubelet may not set (upstream's getForbiddenLabels), sorted."""
    new, old = new or {}, old or {}
    changed = {k for k in new.keys() | old.keys() if new.get(k) != old.get(k) or (k in new) != (k in old)}
    out = set()
    for label in changed:
        namespace = label.split("/", 1)[0] if "/" in label else ""
        if _in(namespace, "node-restriction.kubernetes.io"):
            out.add(label)
        kubernetes = _in(namespace, "kubernetes.io") or _in(namespace, "k8s.io")
        kubelet = label in _KUBELET_LABELS or any(_in(namespace, n) for n in _KUBELET_NAMESPACES)
        if kubernetes and not kubelet:
            out.add(label)
    return sorted(out)


async def check_token_request(cluster: Cluster, user: authn.User | None, namespace: str, name: str,
                              spec: Obj) -> None:
    """NodeRestriction of a TokenRequest (`serviceaccounts/<name>/token`, which
    `lks.kube.subresources.tokenrequest` brings here after its validation, as upstream's
    TokenREST calls validating admission): a node asks only for tokens bound to a pod, by
    uid, that is scheduled on it. Other users pass."""
    node = node_name(user) if user is not None else None
    if node is None:
        return

    def refuse(why: str) -> errors.APIError:
        return errors.forbidden("serviceaccounts", "", name, why)

    if not node:
        raise refuse(f'could not determine node from user "{user.name}"')  # type: ignore[union-attr]
    ref = spec.get("boundObjectRef")
    if not isinstance(ref, dict) or ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        raise refuse("node requested token not bound to a pod")
    if not ref.get("uid"):
        raise refuse("node requested token with a pod binding without a uid")
    pod = await cluster.registry("", "v1", "pods").get(namespace, ref["name"])  # its NotFound as it is
    if ref["uid"] != pod["metadata"].get("uid"):
        raise refuse(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                     "The object might have been deleted and then recreated")
    if (pod.get("spec") or {}).get("nodeName") != node:
        raise refuse("node requested token bound to a pod scheduled on a different node")


@admission.plugin
class NodeRestriction:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        user = opts.user or authn.ACTING.get()  # an in-process kubelet (a node agent) acts as its node
        node = node_name(user) if user is not None else None
        if node is None:
            return
        rt = reg.rt
        current = obj if obj is not None else old
        name = (current or {}).get("metadata", {}).get("name", "")

        def refuse(why: str) -> errors.APIError:
            return errors.forbidden(rt.resource, rt.group, name, why)

        if not node:
            raise refuse(f'could not determine node from user "{user.name}"')
        key = (rt.group, rt.resource)
        if key == ("", "pods"):
            await self._pod(node, operation, obj, old, opts.subresource, refuse)
        elif key == ("", "nodes"):
            self._node(node, operation, name, obj, old, refuse)
        elif key == ("coordination.k8s.io", "leases"):
            if (current or {}).get("metadata", {}).get("namespace") != NODE_LEASES:
                raise refuse(f'can only access leases in the "{NODE_LEASES}" system namespace')
            if name != node:
                raise refuse("can only access node lease with the same name as the requesting node")
        elif key == ("storage.k8s.io", "csinodes") and name != node:
            raise refuse("can only access CSINode with the same name as the requesting node")

    @staticmethod
    async def _pod(node: str, operation: str, obj: Obj | None, old: Obj | None, subresource: str, refuse) -> None:
        if subresource == "status":
            if operation == "UPDATE" and ((old or {}).get("spec") or {}).get("nodeName") != node:
                raise refuse(f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
            if operation == "UPDATE" and (obj or {}).get("metadata", {}).get("labels") != \
                    (old or {}).get("metadata", {}).get("labels"):
                raise refuse(f'node "{node}" cannot update labels through pod status')
            return
        if subresource not in ("", "eviction"):
            raise refuse(f"unexpected pod subresource \"{subresource}\", only 'status' and 'eviction' are allowed")
        if subresource == "eviction":
            return
        if operation == "DELETE":
            if ((old or {}).get("spec") or {}).get("nodeName") != node:
                raise refuse(f'node "{node}" can only delete pods with spec.nodeName set to itself')
            return
        if operation != "CREATE":
            raise refuse(f'unexpected operation "{operation}", node "{node}" can only create and delete mirror pods')
        assert obj is not None
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if MIRROR not in (meta.get("annotations") or {}):
            raise refuse(f'pod does not have "{MIRROR}" annotation, node "{node}" can only create mirror pods')
        if spec.get("nodeName") != node:
            raise refuse(f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise refuse(f'node "{node}" can only create pods with a single owner reference set to itself')
        if not owners or owners[0].get("apiVersion") != "v1" or owners[0].get("kind") != "Node" \
                or owners[0].get("name") != node:
            raise refuse(f'node "{node}" can only create pods with an owner reference set to itself')
        if not owners[0].get("controller"):
            raise refuse(f'node "{node}" can only create pods with a controller owner reference set to itself')
        if owners[0].get("blockOwnerDeletion"):
            raise refuse(f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        kinds = {kind for kind, _, _ in pod_references(obj)}
        for kind, words in _REFERENCE_WORDS.items():
            if kind in kinds:
                raise refuse(f'node "{node}" can not create pods that reference {words}')

    @staticmethod
    def _node(node: str, operation: str, name: str, obj: Obj | None, old: Obj | None, refuse) -> None:
        if name != node:
            raise refuse(f'node "{node}" is not allowed to modify node "{name}"')
        if operation == "CREATE" and obj is not None:
            labels = forbidden_labels(obj["metadata"].get("labels"), None)
            if labels:
                raise refuse(f'node "{node}" is not allowed to set the following labels: {", ".join(labels)}')
        elif operation == "UPDATE" and obj is not None and old is not None:
            if (obj.get("spec") or {}).get("taints") != (old.get("spec") or {}).get("taints"):
                raise refuse(f'node "{node}" is not allowed to modify taints')
            labels = forbidden_labels(obj["metadata"].get("labels"), old["metadata"].get("labels"))
            if labels:
                raise refuse(f"is not allowed to modify labels: {', '.join(labels)}")
