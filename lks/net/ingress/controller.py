"""The in-process ingress controller of one cluster (ingress-nginx's, for the app routing
add-on): informers on Ingresses, IngressClasses, Services, EndpointSlices and Secrets; the routing
table (`routes`) rebuilt when an Ingress or class changes; a Service port's ready endpoints,
kept per backend until a Service or slice changes; and the writes: the `nginx` Service's external
IP and each served Ingress's `status.loadBalancer.ingress`.

Which Ingresses: `spec.ingressClassName` (or the legacy `kubernetes.io/ingress.class`
annotation) naming an IngressClass whose controller is ours, or neither when one of ours is
marked default (`ingressclass.kubernetes.io/is-default-class: "true"`), as ingress-nginx picks.

The external IP: the one in the Service's `status.loadBalancer.ingress`, which the LoadBalancer
controller (`lks.net.loadbalancer`) writes for it as for any LoadBalancer Service (it leaves the
listening to us: `lks.dev/served-in-process`); where none runs (`allocate`), one taken here
from the same pool (127.224.0.0/16, loopback addresses every host has), tried by binding ports
80 and 443 on it. `proxy.py` listens there.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from lks.clock import rfc3339
from lks.controllers.addons import approuting
from lks.controllers.controller import Controller
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.net.ingress import nicstatus, routes

Obj = dict[str, Any]
Key = tuple[str, ...]  # ("ingress", namespace, name) | ("service",)
log = logging.getLogger(__name__)

POOL = ipaddress.ip_network("127.224.0.0/16")  # the LoadBalancer controller's pool
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
SERVICE_NAME = "kubernetes.io/service-name"
SERVICE: Key = ("service",)
NIC: Key = ("nginxingresscontroller",)
_HELD: dict[str, str] = {}  # external IP -> cluster id: what this process's ingresses hold

Listen = Callable[[str], Awaitable[bool]]  # bind the proxy on an IP (False: it is taken)


class IngressController(Controller[Key]):
    def __init__(self, cluster: Cluster, *, listen: Listen, allocate: bool = True):
        """`allocate`: take an address for the Service here when it has none; False where the
        LoadBalancer controller (`lks.net.loadbalancer`) gives it one."""
        super().__init__(cluster, name="ingress-nginx", workers=2)
        self.listen = listen
        self.allocate = allocate
        self.ip: str | None = None  # where the proxy listens
        self.ingresses = self.watch(cluster.registry("networking.k8s.io", "v1", "ingresses"), self._on_ingress)
        self.classes = self.watch(cluster.registry("networking.k8s.io", "v1", "ingressclasses"), self._on_class)
        self.services = self.watch(cluster.registry("", "v1", "services"), self._on_service)
        self.slices = self.watch(cluster.registry("discovery.k8s.io", "v1", "endpointslices"), self._on_slice)
        self.secrets = self.watch(cluster.registry("", "v1", "secrets"), self._on_secret)
        self.nics: Any = None  # the NginxIngressController informer, once its CRD serves (`watch_nic`)
        self.deployments: Any = None
        self._table: routes.Table | None = None  # None: rebuild on next use
        self._endpoints: dict[routes.Backend, list[tuple[str, int]]] = {}
        self._slices: dict[tuple[str, str], dict[str, Obj]] = defaultdict(dict)  # (ns, service) -> slices
        self.secret_version = 0  # bumped when a Secret changes: TLS contexts made before are stale

    def watch_nic(self) -> None:
        """Keep the default NginxIngressController's status too (its CRD is established; before
        `start`)."""
        self.nics = self.watch(self.cluster.registry(approuting.NIC_GROUP, approuting.NIC_VERSION,
                                                     approuting.NIC_PLURAL), self._on_nic)
        self.deployments = self.watch(self.cluster.registry("apps", "v1", "deployments"), self._on_deployment)

    # -- events: note and queue --------------------------------------------------------------

    def _on_nic(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        if obj["metadata"]["name"] == approuting.DEFAULT_NIC and kind != "DELETED":
            self.queue.add(NIC)

    def _on_deployment(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        if meta.get("namespace") == approuting.NAMESPACE and meta["name"] == approuting.NAME:
            self.queue.add(NIC)

    def _on_ingress(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self._table = None
        meta = obj["metadata"]
        if kind != "DELETED":
            self.queue.add(("ingress", meta["namespace"], meta["name"]))

    def _on_class(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self._table = None
        self.queue.add(NIC)
        for ing in self.ingresses.list() if self.ingresses.cache is not None else ():
            self.queue.add(("ingress", ing["metadata"]["namespace"], ing["metadata"]["name"]))

    def _on_service(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self._endpoints.clear()
        meta = obj["metadata"]
        if meta.get("namespace") == approuting.NAMESPACE and meta["name"] == approuting.NAME:
            self.queue.add(SERVICE)

    def _on_slice(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self._endpoints.clear()
        meta = obj["metadata"]
        owner = (meta.get("labels") or {}).get(SERVICE_NAME)
        if prev is not None:
            old = ((prev["metadata"].get("labels") or {}).get(SERVICE_NAME))
            if old and old != owner:
                self._slices[(meta["namespace"], old)].pop(meta["name"], None)
        if not owner:
            return
        if kind == "DELETED":
            self._slices[(meta["namespace"], owner)].pop(meta["name"], None)
        else:
            self._slices[(meta["namespace"], owner)][meta["name"]] = obj

    def _on_secret(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        if obj.get("type") == "kubernetes.io/tls" or (prev or {}).get("type") == "kubernetes.io/tls":
            self.secret_version += 1

    def prime(self) -> None:
        for obj in self.slices.list():
            self._on_slice("ADDED", obj, None)
        self.queue.add(SERVICE)

    # -- what is served ----------------------------------------------------------------------

    def ours(self) -> tuple[set[str], bool]:
        """The names of our IngressClasses, and whether one of them is the default class."""
        names, default = set(), False
        for ic in self.classes.list():
            if (ic.get("spec") or {}).get("controller") == approuting.CONTROLLER:
                names.add(ic["metadata"]["name"])
                default = default or (ic["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
        return names, default

    def serves(self, ingress: Obj, ours: tuple[set[str], bool]) -> bool:
        names, default = ours
        cls = (ingress.get("spec") or {}).get("ingressClassName") or \
            (ingress["metadata"].get("annotations") or {}).get(CLASS_ANNOTATION)
        return cls in names if cls else default

    @property
    def table(self) -> routes.Table:
        if self._table is None:
            ours = self.ours()
            self._table = routes.build([i for i in self.ingresses.list()
                                        if self.serves(i, ours) and not i["metadata"].get("deletionTimestamp")])
        return self._table

    def endpoints(self, backend: routes.Backend) -> list[tuple[str, int]]:
        """The ready (address, port) pairs of a backend's Service port (cached until a Service
        or slice changes)."""
        found = self._endpoints.get(backend)
        if found is None:
            found = self._endpoints[backend] = self._resolve(backend)
        return found

    def _resolve(self, backend: routes.Backend) -> list[tuple[str, int]]:
        svc = self.services.get(backend.namespace, backend.service)
        if svc is None:
            return []
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if sp.get("port") == backend.port or (sp.get("name") or "") == backend.port:
                break
        else:
            return []
        name = sp.get("name") or ""
        out: list[tuple[str, int]] = []
        for slc in self._slices.get((backend.namespace, backend.service), {}).values():
            port = next((p.get("port") for p in slc.get("ports") or [] if (p.get("name") or "") == name), None)
            if not port:
                continue
            for ep in slc.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                for address in ep.get("addresses") or []:
                    if (address, port) not in out:
                        out.append((address, port))
        return out

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(namespace, name)

    # -- writes ------------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        if key == SERVICE:
            await self._sync_service()
        elif key == NIC:
            await self._sync_nic()
        else:
            await self._sync_ingress(key[1], key[2])

    async def _sync_service(self) -> None:
        svc = self.services.get(approuting.NAMESPACE, approuting.NAME)
        if svc is None:
            return
        written = [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                   if i.get("ip")]
        if written:  # allocated before (here, or by the LoadBalancer controller): served there
            if written[0] != self.ip:
                if not await self.listen(written[0]):
                    log.warning("ingress of %s: cannot listen on %s", self.cluster.name, written[0])
                    return
                self._hold(written[0])
        elif self.allocate:
            ip = self.ip or await self._allocate()
            if ip is None:
                return
            registry = self.cluster.registry("", "v1", "services")
            try:
                await registry.patch(approuting.NAMESPACE, approuting.NAME,
                                     lambda cur: {**cur, "status": {**(cur.get("status") or {}),
                                                                    "loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}},
                                     subresource="status")
            except errors.APIError as err:
                if err.code != 404:
                    raise
        for ing in self.ingresses.list():
            self.queue.add(("ingress", ing["metadata"]["namespace"], ing["metadata"]["name"]))

    def _hold(self, ip: str) -> None:
        if self.ip is not None and _HELD.get(self.ip) == self.cluster.id:
            del _HELD[self.ip]
        self.ip = ip
        _HELD[ip] = self.cluster.id

    async def _allocate(self) -> str | None:
        """A free address of the pool, from a start the cluster's id picks (so a cluster tends to
        get the same one again), the proxy bound on it."""
        size = POOL.num_addresses - 2
        start = int.from_bytes(hashlib.sha256(self.cluster.id.encode()).digest()[:4], "big") % size
        for i in range(size):
            ip = str(POOL.network_address + 1 + (start + i) % size)
            if ip in _HELD:
                continue
            if await self.listen(ip):
                self._hold(ip)
                return ip
        log.warning("ingress of %s: no free address in %s", self.cluster.name, POOL)
        return None

    async def _sync_ingress(self, namespace: str, name: str) -> None:
        ing = self.ingresses.get(namespace, name)
        if ing is None or ing["metadata"].get("deletionTimestamp"):
            return
        current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if self.serves(ing, self.ours()):
            if self.ip is None:
                return  # the Service's sync queues every Ingress once it has an address
            wanted = [{"ip": self.ip}]
        elif any(i.get("ip") == self.ip for i in current):
            wanted = []  # no longer ours: what we wrote goes
        else:
            return
        if current == wanted:
            return
        registry = self.cluster.registry("networking.k8s.io", "v1", "ingresses")
        try:
            await registry.patch(namespace, name, lambda cur: {**cur, "status": {
                **(cur.get("status") or {}), "loadBalancer": {"ingress": wanted} if wanted else {}}},
                subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _sync_nic(self) -> None:
        if self.nics is None:
            return
        nic = self.nics.get(None, approuting.DEFAULT_NIC)
        if nic is None:
            return
        wanted = nicstatus.status(nic, ingress_class=self.classes.get(None, (nic.get("spec") or {}).get(
            "ingressClassName") or ""), deployment=self.deployments.get(approuting.NAMESPACE, approuting.NAME),
            now=rfc3339(self.cluster.clock.now()))
        if wanted == nic.get("status"):
            return
        registry = self.cluster.registry(approuting.NIC_GROUP, approuting.NIC_VERSION, approuting.NIC_PLURAL)
        try:
            await registry.patch(None, approuting.DEFAULT_NIC, lambda cur: {**cur, "status": wanted},
                                 subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def stop(self) -> None:
        await super().stop()
        if self.ip is not None and _HELD.get(self.ip) == self.cluster.id:
            del _HELD[self.ip]
