"""The hosted control planes of this process: their records, their data, their lifecycle.

A control plane's record (name, Kubernetes version, its CA, tokens and service-account signing
key) lives in the service's
own store under `/lks/controlplanes/<id>`; its Kubernetes objects live in a store of its own
(one SQLite file per cluster by default, or a prefix of a shared etcd). `lks.server` starts
every recorded control plane at boot; the management API (`lks.arm`) creates and deletes them
through `create` and `delete`, both safe to run again after an interruption: a create with the
id its caller recorded first, a delete that starts by marking the record.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import shutil
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from lks import pki, store
from lks.aci import virtualnode
from lks.clock import Clock
from lks.controllers import ControllerManager
from lks.kube import access, entra
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.serviceaccounts import DEFAULT_ISSUER, SigningKey
from lks.net import dns as clusterdns
from lks.net import ingress as approuting
from lks.net.netpol import controller as netpol
from lks.policy import gatekeeper
from lks.store.compactor import Compactor

log = logging.getLogger(__name__)

_PREFIX = "/lks/controlplanes/"

# The identities of a cluster's static tokens: the admin credential and AKS's "clusterUser".
ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
USER = User("clusterUser", ("system:masters", "system:authenticated"))
# the admin kubeconfig's client certificate (AKS's `masterclient`), as authentication reads it
MASTERCLIENT = User("masterclient", ("system:masters", "system:authenticated"))
LOCAL_USERS = frozenset((ADMIN, USER, MASTERCLIENT))  # what `disableLocalAccounts` turns away


class ControlPlanes:
    def __init__(
        self, *, meta: store.Backend, data_dir: Path, tls: ssl.SSLContext | None = None,
        store_url: str | None = None, clock: Clock | None = None, history: float = 300.0,
        api_endpoint: tuple[str, int] = ("127.0.0.1", 443), serving_ca_pem: bytes | None = None,
    ):
        """`store_url` (an etcd URL) puts every cluster's objects in one store under a prefix
        per cluster; without it each cluster gets its own SQLite file under `data_dir`."""
        self.meta = meta
        self.data_dir = data_dir
        self.tls = tls
        self.store_url = store_url
        self.clock = clock or Clock()
        self.history = history  # seconds of store history kept (watch resumption window)
        self.api_endpoint = api_endpoint  # where pods reach the API servers
        self.serving_ca_pem = serving_ca_pem
        self.clusters: dict[str, Cluster] = {}
        # what Entra-integrated clusters ask the tenant (`lks.identity.clusterauth`; set by lks.server)
        self.directory: entra.Directory | None = None
        # AKS's cloud provider for LoadBalancer Services (`lks.net.loadbalancer`; set by lks.server)
        self.load_balancers: Any = None
        self._compactors: dict[str, Compactor] = {}
        self._controllers: dict[str, ControllerManager] = {}
        self._lock = asyncio.Lock()

    def get(self, id: str) -> Cluster | None:
        return self.clusters.get(id)

    def by_name(self, name: str) -> Cluster | None:
        return next((c for c in self.clusters.values() if c.name == name), None)

    async def records(self) -> list[dict[str, Any]]:
        res = await self.meta.list(_PREFIX)
        return [orjson.loads(kv.value) for kv in res.items]

    async def start_all(self) -> None:
        for record in await self.records():
            if not record.get("stopped") and not record.get("deleting"):
                await self._start(record)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(8)

    async def stop_all(self) -> None:
        for id in list(self.clusters):
            await self._stop(id)

    async def create(self, name: str, kubernetes_version: str, network: dict[str, str] | None = None, *,
                     id: str | None = None) -> Cluster:
        """A new control plane; with `id` (from `new_id`, recorded by the caller first), one that
        an interrupted create of that id may have begun: it is finished, not made twice."""
        async with self._lock:
            id = id or self.new_id()
            if id in self.clusters:
                return self.clusters[id]
            kv = await self.meta.get(_PREFIX + id)
            if kv is not None:
                record = orjson.loads(kv.value)
                if record.get("deleting"):
                    raise KeyError(f"control plane {id} is being deleted")
                return await self._start(record)
            ca = pki.create_ca(f"lks-cluster-{id}")
            record = {
                "id": id, "name": name, "kubernetesVersion": kubernetes_version,
                "caCert": ca.cert_pem.decode(), "caKey": ca.key_pem.decode(),
                "serviceAccountKey": SigningKey.generate().pem.decode(),
                "token": secrets.token_urlsafe(32), "userToken": secrets.token_urlsafe(32),
                "created": self.clock.now(), "network": network or {},
            }
            await self.meta.create(_PREFIX + id, orjson.dumps(record))
            return await self._start(record)

    async def delete(self, id: str) -> None:
        """Delete a control plane completely: its record with the CA key and tokens (history
        included), its objects (store files or etcd prefix) and its folder. Each step can run
        again, so a delete interrupted anywhere completes when its operation resumes."""
        async with self._lock:
            kv = await self.meta.get(_PREFIX + id)
            if kv is not None:
                # first the secrets go and the mark that keeps a restart from serving it again
                record = orjson.loads(kv.value)
                scrubbed = {"id": id, "name": record.get("name", ""), "deleting": True}
                if record != scrubbed:
                    await self.meta.update(_PREFIX + id, orjson.dumps(scrubbed), mod_revision=kv.mod_revision)
            await self._stop(id)
            if self.load_balancers is not None:
                await self.load_balancers.forget(id)
            if self.store_url:  # its keys in the shared etcd; a SQLite store goes with the folder
                backend = store.open_store(self._store_url(id))
                await backend.start()
                await backend.drop()
            await _remove_tree(self.data_dir / id)
            try:
                revision, _ = await self.meta.delete(_PREFIX + id)
            except store.NotFound:
                return
            # the service's store forgets the record's earlier versions: the CA key and tokens
            await self.meta.compact(revision)

    async def stop(self, id: str) -> None:
        """Stop serving a control plane, keeping its state (`az aks stop`)."""
        async with self._lock:
            await self._set_field(id, "stopped", True, default=False)
            await self._stop(id)

    async def start(self, id: str) -> Cluster:
        """Serve a stopped control plane again (`az aks start`)."""
        async with self._lock:
            record = await self._set_field(id, "stopped", False, default=False)
            return self.clusters.get(id) or await self._start(record)

    async def set_version(self, id: str, kubernetes_version: str) -> None:
        """Serve another Kubernetes version (an upgrade): the API server restarts on it."""
        async with self._lock:
            kv = await self.meta.get(_PREFIX + id)
            if kv is None:
                raise KeyError(id)
            record = orjson.loads(kv.value)
            record["kubernetesVersion"] = kubernetes_version
            await self.meta.update(_PREFIX + id, orjson.dumps(record), mod_revision=kv.mod_revision)
            if id in self.clusters:
                await self._stop(id)
                await self._start(record)

    async def set_issuer(self, id: str, url: str | None) -> None:
        """Record the service-account issuer the cluster signs with (the managed cluster's OIDC
        issuer URL, None for the in-cluster default) and apply it; earlier tokens still verify."""
        async with self._lock:
            await self._set_field(id, "serviceAccountIssuer", url)
            cluster = self.clusters.get(id)
            if cluster is not None:
                cluster.token_issuer.set_issuer(url or DEFAULT_ISSUER)

    async def set_access(self, id: str, *, authorized_ip_ranges: list[str], disable_local_accounts: bool) -> None:
        """Record who may reach the cluster's API server (the managed cluster's
        `apiServerAccessProfile.authorizedIPRanges` and `disableLocalAccounts`) and apply it."""
        wanted = {"authorizedIPRanges": list(authorized_ip_ranges), "disableLocalAccounts": disable_local_accounts}
        async with self._lock:
            record = await self._set_field(id, "access", wanted, default=_OPEN)
            if (cluster := self.clusters.get(id)) is not None:
                cluster.access = _access(record)

    async def set_directory(self, directory: entra.Directory) -> None:
        """What Entra-integrated clusters ask the tenant (the service makes it after its
        control planes start): given to those already serving."""
        self.directory = directory
        for id, cluster in list(self.clusters.items()):
            record = await self.record(id)
            await entra.configure(cluster, entra.Settings.of((record or {}).get("entra")), directory)

    async def set_entra(self, id: str, settings: dict[str, Any] | None) -> None:
        """Record the cluster's Entra integration (`lks.kube.entra.Settings`' fields: the managed
        cluster's id and `aadProfile`; None: none) and apply it."""
        async with self._lock:
            await self._set_field(id, "entra", settings)
            if (cluster := self.clusters.get(id)) is not None:
                await entra.configure(cluster, entra.Settings.of(settings), self.directory)

    async def set_addons(self, id: str, *, azure_policy: bool, web_app_routing: str | None = None,
                         virtual_node: str | None = None) -> None:
        """Record the cluster's in-cluster add-ons the service runs (`azurepolicy`: Gatekeeper,
        `lks.policy.gatekeeper`; `webAppRouting`: the app routing ingress, `lks.net.ingress`, by its
        default controller's type, None: off; `aciConnectorLinux`: the virtual node, `lks.aci.virtualnode`,
        by its subnet's name, None: off) and apply them."""
        wanted = {"azurepolicy": azure_policy, **({"webAppRouting": web_app_routing} if web_app_routing else {}),
                  **({"aciConnectorLinux": virtual_node} if virtual_node is not None else {})}
        async with self._lock:
            await self._set_field(id, "addons", wanted, default={"azurepolicy": False})
            if (cluster := self.clusters.get(id)) is not None:
                await gatekeeper.configure(cluster, enabled=azure_policy)
                await approuting.configure(cluster, enabled=bool(web_app_routing), nginx=web_app_routing,
                                           allocate=self.load_balancers is None)
                await virtualnode.configure(cluster, enabled=virtual_node is not None, subnet=virtual_node)

    async def set_network_policy(self, id: str, mode: str) -> None:
        """Record the cluster's `networkProfile.networkPolicy` and enforce it from now on
        (`lks.net.netpol`; none: the policies' tables go)."""
        async with self._lock:
            kv = await self.meta.get(_PREFIX + id)
            network = (orjson.loads(kv.value).get("network") or {}) if kv is not None else {}
            if (network.get("networkPolicy") or "none") == mode:
                return
            await self._set_field(id, "network", {**network, "networkPolicy": mode}, default={})
            if (cluster := self.clusters.get(id)) is not None:
                await netpol.start(cluster, mode=mode)

    async def _set_field(self, id: str, field: str, value: Any, *, default: Any = None) -> dict[str, Any]:
        """The cluster's record with `field` (`default` when absent) set to `value`, written only
        when that changes it. Callers hold the lock."""
        kv = await self.meta.get(_PREFIX + id)
        if kv is None:
            raise KeyError(id)
        record = orjson.loads(kv.value)
        if record.get(field, default) != value:
            record[field] = value
            await self.meta.update(_PREFIX + id, orjson.dumps(record), mod_revision=kv.mod_revision)
        return record

    def _store_url(self, id: str) -> str:
        if self.store_url:  # the cluster's prefix goes on the path; options stay in the query
            parts = urlsplit(self.store_url)
            return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{id}"))
        return f"sqlite://{(self.data_dir / id / 'state.db').resolve()}"

    async def _start(self, record: dict[str, Any]) -> Cluster:
        id = record["id"]
        if "serviceAccountKey" not in record:  # a cluster recorded before keys were: one, kept from now on
            record = await self._add_signing_key(id) or record
        backend = store.open_store(self._store_url(id))
        await backend.start()
        ca = pki.KeyPair(record["caCert"].encode(), record["caKey"].encode())
        if self.tls is not None:
            self.tls.load_verify_locations(cadata=record["caCert"])
        cluster = Cluster(
            id=id, name=record["name"], kubernetes_version=record["kubernetesVersion"], backend=backend,
            ca=ca, tokens={record["token"]: ADMIN, **({record["userToken"]: USER} if "userToken" in record else {})},
            clock=self.clock, network=record.get("network"), api_endpoint=self.api_endpoint,
            serving_ca_pem=self.serving_ca_pem, service_account_key=(record.get("serviceAccountKey") or "").encode() or None,
            service_account_issuer=record.get("serviceAccountIssuer"),
        )
        cluster.access = _access(record)  # before the cluster serves a request
        await cluster.start()
        await entra.configure(cluster, entra.Settings.of(record.get("entra")), self.directory)
        controllers = ControllerManager(cluster)
        await controllers.start()
        self._controllers[id] = controllers
        await gatekeeper.configure(cluster, enabled=bool((record.get("addons") or {}).get("azurepolicy")))
        await clusterdns.start(cluster, state_dir=self.data_dir / id)
        routing = (record.get("addons") or {}).get("webAppRouting")
        await approuting.configure(cluster, enabled=bool(routing), nginx=routing if isinstance(routing, str) else None,
                                   allocate=self.load_balancers is None)
        aci = (record.get("addons") or {}).get("aciConnectorLinux")
        await virtualnode.configure(cluster, enabled=aci is not None, subnet=aci)
        await netpol.start(cluster, mode=(record.get("network") or {}).get("networkPolicy"))
        if self.load_balancers is not None:
            await self.load_balancers.start_cluster(cluster)
        compactor = Compactor(store=backend, clock=self.clock, retention=self.history,
                              interval=min(self.history, 60.0))
        await compactor.start()
        self._compactors[id] = compactor
        self.clusters[id] = cluster
        log.info("control plane %s (%s) started", record["name"], id)
        return cluster

    async def _add_signing_key(self, id: str) -> dict[str, Any] | None:
        kv = await self.meta.get(_PREFIX + id)
        if kv is None:
            return None
        record = orjson.loads(kv.value)
        if "serviceAccountKey" not in record:
            record["serviceAccountKey"] = SigningKey.generate().pem.decode()
            await self.meta.update(_PREFIX + id, orjson.dumps(record), mod_revision=kv.mod_revision)
        return record

    async def _stop(self, id: str) -> None:
        cluster = self.clusters.pop(id, None)
        compactor = self._compactors.pop(id, None)
        if compactor is not None:
            await compactor.stop()
        await gatekeeper.stop(id)
        await clusterdns.stop(id)
        await approuting.stop(id)
        await virtualnode.stop(id)
        await netpol.stop(id)
        if self.load_balancers is not None:
            await self.load_balancers.stop_cluster(id)
        controllers = self._controllers.pop(id, None)
        if controllers is not None:
            await controllers.stop()
        if cluster is not None:
            await cluster.stop()
            await cluster.store.close()

    async def record(self, id: str) -> dict[str, Any] | None:
        """The control plane's record; None when there is none, or it is being deleted."""
        kv = await self.meta.get(_PREFIX + id)
        record = orjson.loads(kv.value) if kv else None
        return None if record is None or record.get("deleting") else record


_OPEN = {"authorizedIPRanges": [], "disableLocalAccounts": False}


def _access(record: dict[str, Any]) -> access.Policy:
    wanted = record.get("access") or _OPEN
    return access.policy(authorized_ranges=wanted["authorizedIPRanges"], local_accounts=not wanted["disableLocalAccounts"],
                         local_users=LOCAL_USERS, pod_cidr=(record.get("network") or {}).get("podCidr") or "")


async def _remove_tree(path: Path) -> None:
    """Remove `path` and everything in it; a file that appears meanwhile (a pod's, as its node
    stops) is taken on the next pass rather than left behind."""
    for pause in (0.05, 0.1, 0.2, 0.4, None):
        try:
            shutil.rmtree(path)
        except FileNotFoundError:  # gone, or a file of it went meanwhile
            pass
        except OSError:
            if pause is None:
                raise
        if not path.exists():
            return
        if pause is None:
            raise OSError(errno.ENOTEMPTY, "could not remove", str(path))
        await asyncio.sleep(pause)
