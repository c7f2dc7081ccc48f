"""What cluster DNS knows: the cluster's Services, EndpointSlices and Namespaces, read from the
API server's watch caches as CoreDNS's kubernetes plugin reads its informers.

Informers hand every change over as the cache applies it; `Records` keeps the indexes a query
needs (slices by Service, Services and endpoints by IP) so that no query lists anything, and an
answer reflects a change as soon as its watch event is applied. `zone.py` answers from here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SERVICE_NAME = "kubernetes.io/service-name"  # the label tying a slice to its Service


class Records:
    """The cluster's DNS data; `start()` subscribes to the caches, `stop()` lets go."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.services: dict[tuple[str, str], Obj] = {}
        self.namespaces: set[str] = set()
        # (namespace, service) -> slice name -> slice
        self.slices: dict[tuple[str, str], dict[str, Obj]] = defaultdict(dict)
        self._slice_owner: dict[tuple[str, str], str] = {}  # (namespace, slice) -> its Service
        self.service_ips: dict[str, set[tuple[str, str]]] = defaultdict(set)  # cluster IP -> Services
        self.endpoint_ips: dict[str, set[tuple[str, str, str]]] = defaultdict(set)  # ready IP -> slices
        self.modified = int(cluster.clock.now())  # the SOA serial: when the data last changed
        self.generation = 0  # bumped on every change: answers cached before it are stale
        self._informers = [
            Informer(cluster.registry("", "v1", "namespaces"), self._on_namespace),
            Informer(cluster.registry("", "v1", "services"), self._on_service),
            Informer(cluster.registry("discovery.k8s.io", "v1", "endpointslices"), self._on_slice),
        ]

    async def start(self) -> None:
        for informer in self._informers:
            await informer.start()

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._informers)

    def _touch(self) -> None:
        self.modified = int(self.cluster.clock.now())
        self.generation += 1

    def _on_namespace(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.namespaces.discard(name)
        else:
            self.namespaces.add(name)
        self._touch()

    def _on_service(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        old = self.services.pop(key, None)
        for ip in cluster_ips(old):
            self._discard(self.service_ips, ip, key)
        if kind != "DELETED":
            self.services[key] = obj
            for ip in cluster_ips(obj):
                self.service_ips[ip].add(key)
        self._touch()

    def _on_slice(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = self._slice_owner.pop((ns, name), None)
        if owner is not None:  # forget what it said before: its IPs, even its Service, may have changed
            old = self.slices.get((ns, owner), {}).pop(name, None)
            if not self.slices.get((ns, owner), True):
                del self.slices[(ns, owner)]
            for ip in ready_ips(old):
                self._discard(self.endpoint_ips, ip, (ns, owner, name))
        service = (meta.get("labels") or {}).get(SERVICE_NAME)
        if kind != "DELETED" and service:
            self._slice_owner[(ns, name)] = service
            self.slices[(ns, service)][name] = obj
            for ip in ready_ips(obj):
                self.endpoint_ips[ip].add((ns, service, name))
        self._touch()

    @staticmethod
    def _discard(index: dict[str, set], ip: str, value: Any) -> None:
        entries = index.get(ip)
        if entries is not None:
            entries.discard(value)
            if not entries:
                del index[ip]


def cluster_ips(service: Obj | None) -> list[str]:
    """A Service's virtual IPs (none for headless and ExternalName Services)."""
    if not service:
        return []
    spec = service.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def ready_endpoints(slice_: Obj | None) -> list[Obj]:
    """The endpoints CoreDNS serves: ready, or with no ready condition at all (as upstream)."""
    if not slice_ or slice_.get("addressType") == "FQDN":
        return []
    return [ep for ep in slice_.get("endpoints") or [] if (ep.get("conditions") or {}).get("ready", True) is not False]


def ready_ips(slice_: Obj | None) -> list[str]:
    return [ip for ep in ready_endpoints(slice_) for ip in ep.get("addresses") or []]
