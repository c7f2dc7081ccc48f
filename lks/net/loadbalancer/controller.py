"""The service controller of AKS's cloud-controller-manager (upstream's
`k8s.io/cloud-provider/controllers/service`): for every Service of `type: LoadBalancer` without a
`loadBalancerClass` (a class means another implementation serves it), a load balancer from the
cloud provider (`lks.net.loadbalancer.balancer`), its address in `status.loadBalancer.ingress`,
and the `service.kubernetes.io/load-balancer-cleanup` finalizer, so a Service is only gone once
its load balancer is; a Service that stops being a LoadBalancer, or is deleted, has its load
balancer deleted and the finalizer removed.

Events are upstream's, from component `service-controller`: `EnsuringLoadBalancer`,
`EnsuredLoadBalancer`, `DeletingLoadBalancer`, `DeletedLoadBalancer`, `SyncLoadBalancerFailed`
(Warning, then retried with backoff), `UnAvailableLoadBalancer` (no Ready node), the notes of
what changed (`Type`, `LoadbalancerIP`, ...) when an update needs the load balancer synced, and
`UpdatedLoadBalancer` on every load balancer when the set of nodes behind them changes (the
backend pool, which `lks.arm.network` reads from the Nodes).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from lks.controllers import events
from lks.controllers.controller import Controller
from lks.controllers.pvcprotection import set_finalizer
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.net.loadbalancer.balancer import ClusterBalancer
from lks.net.loadbalancer.frontends import Unavailable

log = logging.getLogger("lks.net.loadbalancer")

Obj = dict[str, Any]
Key = tuple[str, str]
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
COMPONENT = "service-controller"
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="cloud-controller-manager")
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
TO_BE_DELETED = "ToBeDeletedByClusterAutoscaler"
NODE_SYNC: Key = ("", "")  # the queue's key for "the hosts changed" (no Service has an empty name)


def wants_load_balancer(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def has_finalizer(service: Obj) -> bool:
    return FINALIZER in (service["metadata"].get("finalizers") or [])


def needs_cleanup(service: Obj) -> bool:
    if not has_finalizer(service):
        return False
    return "deletionTimestamp" in service["metadata"] or (service.get("spec") or {}).get("type") != "LoadBalancer"


def _lb_ports(service: Obj) -> list[tuple]:
    return [(p.get("name"), p.get("protocol"), p.get("port"), p.get("nodePort"), p.get("targetPort"))
            for p in (service.get("spec") or {}).get("ports") or []]


def changes(old: Obj, new: Obj) -> tuple[bool, list[tuple[str, str]]]:
    """Upstream's `needsUpdate`: whether the load balancer must be synced after `old` became
    `new`, and the Normal events that say why."""
    was, wants = wants_load_balancer(old), wants_load_balancer(new)
    if not was and not wants:
        return False, []
    o, n = old.get("spec") or {}, new.get("spec") or {}
    if was != wants:
        return True, [("Type", f"{o.get('type')} -> {n.get('type')}")]
    if o.get("loadBalancerSourceRanges") != n.get("loadBalancerSourceRanges"):
        return True, [("LoadBalancerSourceRanges", f"{_go_list(o.get('loadBalancerSourceRanges'))} -> "
                                                   f"{_go_list(n.get('loadBalancerSourceRanges'))}")]
    if _lb_ports(old) != _lb_ports(new) or o.get("sessionAffinity") != n.get("sessionAffinity") \
            or o.get("sessionAffinityConfig") != n.get("sessionAffinityConfig"):
        return True, []
    if o.get("loadBalancerIP", "") != n.get("loadBalancerIP", ""):
        return True, [("LoadbalancerIP", f"{o.get('loadBalancerIP', '')} -> {n.get('loadBalancerIP', '')}")]
    old_ips, new_ips = o.get("externalIPs") or [], n.get("externalIPs") or []
    if len(old_ips) != len(new_ips):
        return True, [("ExternalIP", f"Count: {len(old_ips)} -> {len(new_ips)}")]
    for a, b in zip(old_ips, new_ips, strict=True):
        if a != b:
            return True, [("ExternalIP", f"Added: {b}")]
    if (old["metadata"].get("annotations") or {}) != (new["metadata"].get("annotations") or {}):
        return True, []
    if old["metadata"].get("uid") != new["metadata"].get("uid"):
        return True, [("UID", f"{old['metadata'].get('uid')} -> {new['metadata'].get('uid')}")]
    for field, reason in (("externalTrafficPolicy", "ExternalTrafficPolicy"), ("healthCheckNodePort", "HealthCheckNodePort")):
        if o.get(field) != n.get(field):
            return True, [(reason, f"{o.get(field, '')} -> {n.get(field, '')}")]
    return False, []


def _go_list(values: list[str] | None) -> str:
    return "[" + " ".join(values or []) + "]"


def available(node: Obj) -> bool:
    """Upstream's node predicate: a Ready node not excluded, not about to be scaled away."""
    if EXCLUDE_LABEL in (node["metadata"].get("labels") or {}):
        return False
    if any(t.get("key") == TO_BE_DELETED for t in (node.get("spec") or {}).get("taints") or []):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return bool(conditions) and all(c.get("status") == "True" for c in conditions if c.get("type") == "Ready")


class ServiceController(Controller[Key]):
    def __init__(self, cluster: Cluster, *, balancer: ClusterBalancer):
        super().__init__(cluster, name="service-lb")
        self.balancer = balancer
        self.registry = cluster.registry("", "v1", "services")
        self.recorder = events.EventRecorder(cluster, component=COMPONENT)
        self.nodes = self.watch(cluster.registry("", "v1", "nodes"), self._on_node)
        self._hosts: set[str] = set()  # the available nodes' names, kept from the node events
        self.services = self.watch(self.registry, self._on_service)
        self._known: dict[Key, Obj] = {}  # the last state synced (a Service deleted without finalizer)
        self._notes: dict[Key, list[tuple[str, str]]] = {}  # events noted by the handler, for its sync

    async def start(self) -> None:
        await self.balancer.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.balancer.stop()

    def prime(self) -> None:
        assert self.nodes.cache is not None
        self._hosts = {n["metadata"]["name"] for n in self.nodes.cache.objects.values() if available(n)}

    def _on_node(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        now = kind != "DELETED" and available(obj)
        if now != (name in self._hosts):
            (self._hosts.add if now else self._hosts.discard)(name)
            self.queue.add(NODE_SYNC)

    def _on_service(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if kind == "DELETED":
            if key in self._known:
                self.queue.add(key)  # deleted without our finalizer: its load balancer goes now
            return
        if kind == "MODIFIED" and prev is not None:
            needed, notes = changes(prev, obj)
            if notes:
                self._notes.setdefault(key, []).extend(notes)
            if needed or needs_cleanup(obj):
                self.queue.add(key)
        elif wants_load_balancer(obj) or needs_cleanup(obj):
            self.queue.add(key)

    async def sync(self, key: Key) -> None:
        if key == NODE_SYNC:
            await self._update_hosts()
            return
        service = self.services.get(*key)
        for reason, message in self._notes.pop(key, []):
            if service is not None:
                await self.recorder.record(service, events.NORMAL, reason, message)
        known = self._known.get(key)
        if service is None:
            if known is not None:
                await self._delete_gone(known)
                self._known.pop(key, None)
                self._retry_waiting()
            return
        if known is not None and known["metadata"].get("uid") != service["metadata"].get("uid"):
            await self._delete_gone(known)  # deleted and made again in between: the old one's goes
        self._known[key] = service
        try:
            deleted = await self._sync(service)
        except (Unavailable, errors.APIError) as err:
            text = err.message if isinstance(err, errors.APIError) else str(err)
            await self.recorder.record(service, events.WARNING, "SyncLoadBalancerFailed",
                                       f"Error syncing load balancer: {text}")
            raise
        if deleted:
            self._known.pop(key, None)
            self._retry_waiting()

    def _retry_waiting(self) -> None:
        """An address was released: the Services still waiting for one try again now rather
        than after their backoff (one may have asked for that very address)."""
        assert self.services.cache is not None
        for svc in self.services.cache.objects.values():
            if wants_load_balancer(svc) and not ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                self.queue.add((svc["metadata"]["namespace"], svc["metadata"]["name"]))

    async def _sync(self, service: Obj) -> bool:
        """Upstream's `syncLoadBalancerIfNeeded`; whether the load balancer was deleted."""
        previous = (service.get("status") or {}).get("loadBalancer") or {}
        if not wants_load_balancer(service) or needs_cleanup(service):
            if self.balancer.exists(service):
                await self.recorder.record(service, events.NORMAL, "DeletingLoadBalancer", "Deleting load balancer")
                try:
                    await self.balancer.ensure_deleted(service)
                except Unavailable as err:
                    raise Unavailable(f"failed to delete load balancer: {err}") from err
            if has_finalizer(service):
                await self._finalizer(service, present=False)
            await self.recorder.record(service, events.NORMAL, "DeletedLoadBalancer", "Deleted load balancer")
            await self._status(service, previous, {})
            return True
        await self.recorder.record(service, events.NORMAL, "EnsuringLoadBalancer", "Ensuring load balancer")
        if not has_finalizer(service):
            await self._finalizer(service, present=True)
        if not self._hosts:
            await self.recorder.record(service, events.WARNING, "UnAvailableLoadBalancer",
                                       "There are no available nodes for LoadBalancer")
        try:
            status = await self.balancer.ensure(service)
        except Unavailable as err:
            raise Unavailable(f"failed to ensure load balancer: {err}") from err
        await self.recorder.record(service, events.NORMAL, "EnsuredLoadBalancer", "Ensured load balancer")
        await self._status(service, previous, status)
        return False

    async def _update_hosts(self) -> None:
        """Upstream's node sync: every load balancer now has these hosts behind it."""
        assert self.services.cache is not None
        for service in list(self.services.cache.objects.values()):
            if not wants_load_balancer(service) or not self.balancer.exists(service):
                continue
            if self._hosts:
                await self.recorder.record(service, events.NORMAL, "UpdatedLoadBalancer",
                                           "Updated load balancer with new hosts")
            else:
                await self.recorder.record(service, events.WARNING, "UnAvailableLoadBalancer",
                                           "There are no available nodes for LoadBalancer")

    async def _delete_gone(self, service: Obj) -> None:
        """Upstream's `processLoadBalancerDelete`, for a Service deleted without the finalizer."""
        if not wants_load_balancer(service):
            return
        await self.recorder.record(service, events.NORMAL, "DeletingLoadBalancer", "Deleting load balancer")
        await self.balancer.ensure_deleted(service)
        await self.recorder.record(service, events.NORMAL, "DeletedLoadBalancer", "Deleted load balancer")

    async def _finalizer(self, service: Obj, *, present: bool) -> None:
        try:
            await set_finalizer(self.registry, service, FINALIZER, present=present)
        except errors.APIError as err:
            verb = "add" if present else "remove"
            raise Unavailable(f"failed to {verb} load balancer cleanup finalizer: {err.message}") from err

    async def _status(self, service: Obj, previous: Obj, status: Obj) -> None:
        if previous == status:
            return
        meta = service["metadata"]

        def change(current: Obj) -> Obj:
            if current["metadata"].get("uid") != meta.get("uid"):
                raise errors.conflict("services", "", meta["name"], "the object was replaced")
            current = copy.deepcopy(current)
            current.setdefault("status", {})["loadBalancer"] = status
            return current

        try:
            await self.registry.patch(meta["namespace"], meta["name"], change, WRITE, subresource="status")
        except errors.APIError as err:
            if err.code != 404:  # gone right after the finalizer went: nothing to write
                raise Unavailable(f"failed to update load balancer status: {err.message}") from err
