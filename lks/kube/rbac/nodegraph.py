"""What each node may read, as upstream's node authorizer graph keeps it (simplified): the pods
bound to a node, and the secrets, config maps, persistent volume claims and service accounts
those pods reference (a claim's bound volume is looked up through the claim). Fed by the pods'
watch cache once the first node asks; `lks.kube.rbac.node` decides with it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from lks.kube import watchcache
from lks.kube.authn import AUTHENTICATED, User

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

NODE_PREFIX = "system:node:"
NODES = "system:nodes"
Obj = dict[str, Any]
Ref = tuple[str, str, str]  # (kind, namespace, name): kind is pod, secret, configmap, pvc or serviceaccount


def node_name(user: User) -> str | None:
    """The node a user speaks for ("" for a node nobody can tell), None for other users
    (upstream's NodeIdentifier: `system:node:<name>` in `system:nodes`)."""
    if NODES not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    return user.name[len(NODE_PREFIX):]


def node_user(name: str) -> User:
    """The identity of node `name`'s kubelet, as its client certificate names it
    (`CN=system:node:<name>`, `O=system:nodes`)."""
    return User(f"{NODE_PREFIX}{name}", (NODES, AUTHENTICATED))


def _named(ref: Any, key: str = "name") -> str:
    return ref.get(key) or "" if isinstance(ref, dict) else ""


def pod_references(pod: Obj) -> set[Ref]:
    """The objects a pod needs from the API (upstream's VisitPodSecretNames, VisitPodConfigmapNames,
    its claims and service account)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    ns = meta.get("namespace") or ""
    refs: set[Ref] = {("pod", ns, meta["name"])}

    def add(kind: str, name: str) -> None:
        if name:
            refs.add((kind, ns, name))

    add("serviceaccount", spec.get("serviceAccountName") or "")
    for secret in spec.get("imagePullSecrets") or ():
        add("secret", _named(secret))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or ():
            for env in container.get("env") or ():
                source = env.get("valueFrom") or {}
                add("secret", _named(source.get("secretKeyRef")))
                add("configmap", _named(source.get("configMapKeyRef")))
            for env_from in container.get("envFrom") or ():
                add("secret", _named(env_from.get("secretRef")))
                add("configmap", _named(env_from.get("configMapRef")))
    for volume in spec.get("volumes") or ():
        add("secret", _named(volume.get("secret"), "secretName"))
        add("configmap", _named(volume.get("configMap")))
        add("pvc", _named(volume.get("persistentVolumeClaim"), "claimName"))
        if volume.get("ephemeral"):
            add("pvc", f"{meta['name']}-{volume.get('name', '')}")
        for source in (volume.get("projected") or {}).get("sources") or ():
            add("secret", _named(source.get("secret")))
            add("configmap", _named(source.get("configMap")))
        for kind, source in volume.items():  # azureFile, cephfs, csi, flexVolume, iscsi, rbd ... name secrets too
            if isinstance(source, dict) and kind not in ("secret", "configMap", "projected"):
                add("secret", _named(source.get("secretRef")) or _named(source.get("nodePublishSecretRef"))
                    or (source.get("secretName") or "" if kind == "azureFile" else ""))
    return refs


class NodeGraph(watchcache.Handler):
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._refs: dict[Ref, Counter[str]] = {}  # -> nodes whose pods reference it
        self._pods: dict[str, tuple[str, set[Ref]]] = {}  # pod key -> (node, references)
        self._claims: dict[str, Counter[tuple[str, str]]] = {}  # node -> its pods' claims
        self._started: asyncio.Task[None] | None = None
        self._cache: watchcache.WatchCache | None = None

    async def ready(self) -> None:
        """Start following the pods on first use (clusters without nodes asking pay nothing)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self._cache = await self.cluster.registry("", "v1", "pods").cache()
        self._cache.add_handler(self)

    def stop(self) -> None:
        if self._cache is not None:
            self._cache.remove_handler(self)
        if self._started is not None:
            self._started.cancel()

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        key = f"{meta.get('namespace')}/{meta['name']}"
        self._forget(key)
        node = (obj.get("spec") or {}).get("nodeName")
        if kind == "DELETED" or not node:
            return
        refs = pod_references(obj)
        self._pods[key] = (node, refs)
        for ref in refs:
            self._refs.setdefault(ref, Counter())[node] += 1
            if ref[0] == "pvc":
                self._claims.setdefault(node, Counter())[ref[1:]] += 1

    def _forget(self, key: str) -> None:
        found = self._pods.pop(key, None)
        if found is None:
            return
        node, refs = found
        for ref in refs:
            nodes = self._refs.get(ref)
            if nodes is not None:
                nodes[node] -= 1
                if nodes[node] <= 0:
                    del nodes[node]
                if not nodes:
                    del self._refs[ref]
            if ref[0] == "pvc":
                claims = self._claims.get(node)
                if claims is not None:
                    claims[ref[1:]] -= 1
                    if claims[ref[1:]] <= 0:
                        del claims[ref[1:]]

    def cache_closed(self) -> None:
        self._pods.clear()
        self._refs.clear()
        self._claims.clear()
        self._started = None  # the next question follows the new cache

    def related(self, node: str, kind: str, namespace: str, name: str) -> bool:
        return (self._refs.get((kind, namespace, name)) or {}).get(node, 0) > 0

    async def volume_related(self, node: str, name: str) -> bool:
        """Whether one of the node's pods' claims is bound to the volume `name`."""
        claims = self._claims.get(node)
        if not claims:
            return False
        reg = self.cluster.registry("", "v1", "persistentvolumeclaims")
        cache = await reg.cache()
        for namespace, claim in claims:
            pvc = cache.objects.get(reg.key(namespace, claim))
            if pvc is not None and (pvc.get("spec") or {}).get("volumeName") == name:
                return True
        return False
