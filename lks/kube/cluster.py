"""A hosted cluster's control plane state: its store, its catalog of served types, the
registries built on demand per type, its watch feed, and its credentials.

Many `Cluster`s live in one process; `lks.kube.http` routes `/clusters/<id>/...` to one. The
management side (`lks.server`, later `lks.arm`) creates, starts and stops them.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from lks import pki, store
from lks.clock import Clock
from lks.kube import (
    access,
    admission,
    aggregator,
    apiusage,
    authz,
    catalog,
    crds,
    errors,
    priorityclasses,
    scale,
    serviceaccounts,
    strategies,
    watchcache,
)
from lks.kube.authn import ANONYMOUS_USER, TokenAuthenticator, User, authenticated
from lks.kube.registry import Registry
from lks.kube.strategies.namespace import SYSTEM
from lks.store import timing

ROOT = "/registry/"
CRD_PREFIX = "/registry/apiextensions.k8s.io/customresourcedefinitions/"

__all__ = ["Cluster", "User"]


class Cluster:
    def __init__(
        self, *, id: str, name: str, kubernetes_version: str, backend: store.Backend,
        ca: pki.KeyPair, tokens: dict[str, User], clock: Clock | None = None,
        network: dict[str, str] | None = None, api_endpoint: tuple[str, int] = ("127.0.0.1", 443),
        serving_ca_pem: bytes | None = None, service_account_key: bytes | None = None,
        service_account_issuer: str | None = None,
    ):
        """`tokens` maps each static bearer token of the cluster to the identity it stands for;
        `network` holds the managed cluster's `podCidr`, `serviceCidr`, `dnsServiceIP` and `networkPlugin`;
        `api_endpoint` is where pods reach the API server, `serving_ca_pem` the CA its
        certificate chains to (what `kube-root-ca.crt` carries); `service_account_key` (PEM) signs
        service-account tokens with `service_account_issuer` as their issuer."""
        network = network or {}
        self.pod_cidr = network.get("podCidr") or "10.244.0.0/16"
        self.service_cidr = network.get("serviceCidr") or "10.0.0.0/16"
        self.dns_service_ip = network.get("dnsServiceIP") or "10.0.0.10"
        self.network_plugin = network.get("networkPlugin") or "azure"  # which add-ons a node runs
        self.api_endpoint = api_endpoint
        self.serving_ca_pem = serving_ca_pem or ca.cert_pem
        self.id = id
        self.name = name
        self.store = timing.Timed(backend)  # etcd_request_duration_seconds (lks.observability)
        self.ca = ca
        self._tokens = {hashlib.sha256(t.encode()).digest(): user for t, user in tokens.items()}
        self.clock = clock or Clock()
        minor = ".".join(kubernetes_version.split(".")[:2])
        self.base_catalog = self.catalog = catalog.load(minor)
        self.kubernetes_version = self.catalog.kubernetes_version  # "1.36"
        self.patch_version = kubernetes_version if kubernetes_version.count(".") == 2 else f"{minor}.0"
        self.feed = watchcache.ClusterFeed(backend, ROOT)
        self._registries: dict[tuple[str, str, str], Registry] = {}
        self.crds: dict[str, dict] = {}  # store key -> CustomResourceDefinition
        self.custom_types: dict[tuple[str, str, str], crds.CustomType] = {}
        self._cert_cache: dict[bytes, User | None] = {}
        self.admission = admission.for_cluster(self)
        self.token_issuer = serviceaccounts.Issuer(clock=self.clock, key_pem=service_account_key,
                                                   issuer=service_account_issuer)
        # bearer-token authenticators besides the static tokens (service-account JWTs ...)
        self.token_authenticators: list[TokenAuthenticator] = [serviceaccounts.Authenticator(self, self.token_issuer)]
        self.authorizer = authz.for_cluster(self)
        self.access = access.OPEN  # AKS's authorized IP ranges and local accounts (lks.controlplanes sets it)
        self.api_usage = apiusage.Usage(backend, self.clock)  # writes to APIs a later minor removes
        self.aggregator = aggregator.Aggregator()  # APIServices and in-process APIs (lks.kube.aggregator)

    async def start(self) -> None:
        self.feed.listeners.append(self._on_crd_event)
        await self.feed.start()
        listed = await self.store.list(CRD_PREFIX)
        self.crds = {kv.key: orjson.loads(kv.value) for kv in listed.items}
        self._rebuild_catalog()
        await self.aggregator.start(self)
        namespaces = self.registry("", "v1", "namespaces")
        for ns in SYSTEM:
            try:
                await namespaces.create(None, {"metadata": {"name": ns}})
            except errors.APIError as err:
                if err.code != 409:
                    raise
        await priorityclasses.bootstrap(self)
        for member in self.authorizer.members:  # stateful authorizers load (RBAC: its index, the bootstrap policy)
            start = getattr(member, "start", None)
            if start is not None:
                await start()

    async def stop(self) -> None:
        for member in self.authorizer.members:
            stop = getattr(member, "stop", None)
            if stop is not None:
                stop()
        await self.feed.stop()

    # -- types -----------------------------------------------------------------------

    def registry(self, group: str, version: str, resource: str) -> Registry:
        key = (group, version, resource)
        reg = self._registries.get(key)
        rt = self.catalog.lookup(group, version, resource)
        if reg is None or reg.rt is not rt:  # new, or its CRD changed
            if rt is None or rt.virtual:
                raise errors.path_not_found(f"{group}/{version}/{resource}")
            custom = self.custom_types.get(key)
            if custom is not None:
                strategy: strategies.Strategy = crds.CustomResourceStrategy(custom)
            else:
                strategy = strategies.for_resource(
                    group, resource, namespaced=rt.namespaced, has_status="status" in rt.subresources
                )
            reg = self._registries[key] = Registry(self, rt, strategy)
        return reg

    # -- custom resources ----------------------------------------------------------------

    def _on_crd_event(self, ev: store.Event, _obj: dict | None = None) -> None:
        """Keep the catalog in step with the CRDs (runs in the feed, in revision order)."""
        if not ev.kv.key.startswith(CRD_PREFIX):
            return
        if ev.type == "DELETE":
            self.crds.pop(ev.kv.key, None)
        else:
            self.crds[ev.kv.key] = orjson.loads(ev.kv.value)
        self._rebuild_catalog()

    def _rebuild_catalog(self) -> None:
        types, schemas, groups = crds.resource_types(list(self.crds.values()))
        self.custom_types = {(t.rt.group, t.rt.version, t.rt.resource): t for t in types}
        self.catalog = self.base_catalog.extended([t.rt for t in types], schemas, groups) if types else self.base_catalog

    async def lookup(self, group: str, version: str, resource: str) -> catalog.ResourceType | None:
        """A served type; for one not (yet) known, first let the feed catch up with the store
        so that a CRD established a moment ago is seen."""
        rt = self.catalog.lookup(group, version, resource)
        if rt is None and await self.feed.wait_for(await self.store.current_revision(), 0.5):
            rt = self.catalog.lookup(group, version, resource)
        return rt

    def storage_registries(self, *, namespaced: bool | None = None) -> list[Registry]:
        """One registry per stored resource (its storage version), for controllers that walk
        every type (namespace deletion, garbage collection)."""
        seen: dict[str, Registry] = {}
        for rt in self.catalog.all():
            if rt.virtual or rt.storage_prefix in seen or (namespaced is not None and rt.namespaced != namespaced):
                continue
            if rt.gv != rt.storage_gv:
                continue
            seen[rt.storage_prefix] = self.registry(rt.group, rt.version, rt.resource)
        return list(seen.values())

    def scale_paths(self, rt: catalog.ResourceType) -> scale.ScalePaths | None:
        """Where a type keeps what its `scale` subresource shows, if it has one."""
        if "scale" not in rt.subresources:
            return None
        custom = self.custom_types.get((rt.group, rt.version, rt.resource))
        return custom.scale if custom is not None else scale.BUILTIN.get((rt.group, rt.resource))

    def registry_for_key(self, key: str) -> Registry | None:
        """The registry whose storage prefix holds `key`."""
        for reg in self.storage_registries():
            if key.startswith(reg.prefix):
                return reg
        return None

    # -- namespaces ------------------------------------------------------------------

    async def require_namespace(self, namespace: str, *, resource: str = "", group: str = "", name: str = "") -> None:
        """Upstream's NamespaceLifecycle admission for creates: the namespace must exist and
        not be terminating."""
        reg = self.registry("", "v1", "namespaces")
        cache = await reg.cache()
        obj = cache.objects.get(reg.key(None, namespace))
        if obj is None:
            kv = await self.store.get(reg.key(None, namespace))
            if kv is None:
                raise errors.not_found("namespaces", "", namespace)
            obj = reg.decode(kv)
        if "deletionTimestamp" in obj["metadata"]:
            raise errors.forbidden(
                resource, group, name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                causes=[{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                         "field": "metadata.namespace"}],
            )

    # -- authentication ----------------------------------------------------------------

    async def authenticate(self, *, bearer: str | None, peer_cert_der: bytes | None) -> User | None:
        """Who is asking: a client certificate this cluster's CA signed, one of its tokens, or
        else the anonymous user; None for a bearer token or certificate nobody knows (a 401, as
        upstream)."""
        if peer_cert_der:
            if peer_cert_der not in self._cert_cache:
                cert = pki.issued_by(peer_cert_der, self.ca)
                user = None
                if cert is not None:
                    name, groups = pki.identity(cert)
                    user = authenticated(User(name, groups))
                if len(self._cert_cache) > 1024:
                    self._cert_cache.clear()
                self._cert_cache[peer_cert_der] = user
            user = self._cert_cache[peer_cert_der]
            if user is not None:
                return user
            if not bearer:  # a certificate another CA signed fails, as upstream's x509 error: not anonymous
                return None
        if bearer:
            digest = hashlib.sha256(bearer.encode()).digest()
            for known, user in self._tokens.items():
                if hmac.compare_digest(digest, known):
                    return user
            for authenticator in self.token_authenticators:
                user = await authenticator(bearer)
                if user is not None:
                    return user
            return None
        return ANONYMOUS_USER
