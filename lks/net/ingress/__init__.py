"""The application routing add-on (`ingressProfile.webAppRouting`): AKS's managed NGINX ingress,
served by lks itself. Turning it on applies the add-on's objects
(`lks.controllers.addons.approuting`: namespace, IngressClass, the `nginx` Deployment and its
LoadBalancer Service ...) and keeps them with an `AddonManager` of their own; the ingress
controller (`controller`) watches the cluster and the reverse proxy (`proxy`) serves the
Ingresses of the class on the Service's external IP, reaching pods through the cluster's
network namespace (`upstream`). Turning it off stops serving and deletes the objects.

`configure(cluster, enabled=..., nginx=...)` is called by `lks.controlplanes` from the managed
cluster's `ingressProfile.webAppRouting` (`enabled`, `nginx.defaultIngressControllerType`: None
makes no default controller, Internal puts its Service on AKS's internal load balancer, served
inside the cluster's network) on start and on every change; `stop(cluster_id)` when the cluster
stops. `nicstatus` is the default NginxIngressController's status.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from lks.controllers.addons import AddonManager, approuting
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.net.ingress import controller, proxy, routes, upstream

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MANAGER = "addon-manager"
_ESTABLISH_WAIT = 30.0  # seconds for the NginxIngressController CRD to be served

__all__ = ["Ingress", "configure", "routes", "running", "stop"]


def _pod_network(cluster: Cluster) -> Any:
    """The cluster's pod network (`lks.net.podnet.PodNetwork`) where its Process pods' IPs
    route; None: none (yet)."""
    # read-only, as lks.metrics reads it: the Process runtime owns the pod network
    from lks.nodes import pods

    runtime = pods.PodWorkers.process_of(cluster)
    return runtime.net if runtime is not None and runtime.network else None


def _pod_netns(cluster: Cluster) -> Callable[[], str | None]:
    def find() -> str | None:
        net = _pod_network(cluster)
        return net.name if net is not None else None
    return find


def _inside(cluster: Cluster) -> proxy.Inside:
    async def listen(ip: str, port: int) -> socket.socket | None:
        """A listening socket on `ip`:`port` in the cluster's network (the address put on its
        namespace's loopback, as the DNS service IP is); None without a pod network."""
        net = _pod_network(cluster)
        if net is None:
            return None
        udp, tcp = await net.service_sockets(ip)
        udp.close()
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((ip, port))
            tcp.listen(1024)
        except OSError:
            tcp.close()
            raise
        tcp.setblocking(False)
        return tcp
    return listen


class Ingress:
    """One cluster's app routing: its kept objects, the controller, the proxy."""

    def __init__(self, cluster: Cluster, *, namespace: Callable[[], str | None] | None = None, allocate: bool = True,
                 nginx: str | None = None):
        """`namespace`: where connections to pods are made (None: the cluster's pod network);
        `allocate`: the external IP is taken here, no LoadBalancer controller gives it; `nginx`:
        the default controller's type (`nginx.defaultIngressControllerType`): "None" makes no
        default controller (one made before is left, and still served, as AKS leaves it)."""
        self.cluster = cluster
        self.nginx = nginx or "AnnotationControlled"
        self.upstreams = upstream.Upstreams(namespace=namespace or _pod_netns(cluster))
        self.controller = controller.IngressController(cluster, listen=self._listen, allocate=allocate)
        self.proxy = proxy.Proxy(self.controller, self.upstreams, inside=_inside(cluster))
        self.addons: AddonManager | None = None  # made once the NginxIngressController type serves

    async def _listen(self, ip: str) -> bool:
        return await self.proxy.listen(ip)

    async def start(self) -> None:
        kept = approuting.objects(internal=self.nginx == "Internal")  # in order (the CRD and namespace first)
        if self.nginx == "None":
            kept = [o for o in kept if o["kind"] in ("CustomResourceDefinition", "Namespace")]
        await self._apply(kept)
        async with asyncio.timeout(_ESTABLISH_WAIT):  # the CRD controller serves the type
            while await self.cluster.lookup(approuting.NIC_GROUP, approuting.NIC_VERSION,
                                            approuting.NIC_PLURAL) is None:
                await asyncio.sleep(0.02)
        if self.nginx != "None":
            kept.append(approuting.default_controller())
            await self._apply(kept[-1:])
        self.controller.watch_nic()
        self.addons = AddonManager(cluster=self.cluster, objects=kept, name="approuting-addon-manager")  # then kept
        await self.upstreams.start()
        await self.addons.start()
        await self.controller.start()

    async def _apply(self, objs: list[Obj]) -> None:
        opts = WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore")
        for obj in objs:
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = self.cluster.catalog.by_kind(group, version, obj["kind"])
            assert rt is not None, obj["kind"]
            meta = obj["metadata"]
            await self.cluster.registry(group, version, rt.resource).apply(meta.get("namespace"), meta["name"], obj, opts)

    async def stop(self) -> None:
        await self.controller.stop()
        if self.addons is not None:
            await self.addons.stop()
        await self.proxy.close()
        await self.upstreams.close()

    async def remove(self) -> None:
        """Turning the add-on off: its objects go (the namespace with what is in it), the CRD
        stays with the NginxIngressControllers users made."""
        for obj in [*reversed(approuting.objects()), approuting.default_controller()]:
            if obj["kind"] == "CustomResourceDefinition":
                continue
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = self.cluster.catalog.by_kind(group, version, obj["kind"])
            if rt is None:
                continue
            meta = obj["metadata"]
            try:
                await self.cluster.registry(group, version, rt.resource).delete(
                    meta.get("namespace"), meta["name"], deletion.DeleteOptions())
            except errors.APIError as err:
                if err.code != 404:
                    raise


_RUNNING: dict[str, Ingress] = {}  # cluster id -> its app routing


async def configure(cluster: Cluster, *, enabled: bool, nginx: str | None = None, allocate: bool = True) -> None:
    """Turn app routing on or off for `cluster` (idempotent); `nginx`: the default controller's
    type (None: AnnotationControlled); `allocate`: no LoadBalancer controller gives the `nginx`
    Service its external IP, it is taken here."""
    current = _RUNNING.get(cluster.id)
    if current is not None and (current.cluster is not cluster or (enabled and current.nginx != (
            nginx or "AnnotationControlled"))):  # the cluster restarted, or another type: a new one
        _RUNNING.pop(cluster.id, None)
        await current.stop()
        current = None
    if enabled and current is None:
        ingress = Ingress(cluster, allocate=allocate, nginx=nginx)
        _RUNNING[cluster.id] = ingress
        try:
            await ingress.start()
        except BaseException:
            _RUNNING.pop(cluster.id, None)
            await ingress.stop()
            raise
    elif not enabled and current is not None:
        _RUNNING.pop(cluster.id, None)
        await current.stop()
        await current.remove()


async def stop(cluster_id: str) -> None:
    """The cluster stops serving: its ingress stops, its objects stay."""
    current = _RUNNING.pop(cluster_id, None)
    if current is not None:
        await current.stop()


def running(cluster_id: str) -> Ingress | None:
    return _RUNNING.get(cluster_id)
