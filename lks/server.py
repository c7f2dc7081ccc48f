"""`lks up`: one asyncio process serving HTTPS, hosting every control plane recorded in
`$LKS_HOME`, and (with `--demo`) a first cluster with a ready kubeconfig.

`$LKS_HOME` (default `~/.lks`) holds `pki/` (the service CA and serving certificate),
`config.json` (endpoint, CA file, the management API token, subscription and tenant ids), `lks.db` (the
service's own store) and `clusters/<id>/state.db` (each cluster's objects); all of it private
to the owner (`lks.homedir`).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import secrets
import signal
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from lks import homedir, kubeconfig, pki, store
from lks.aci.groups import ContainerGroups
from lks.arm import containergroups, subscriptions
from lks.arm.app import ManagementAPI
from lks.arm.plane import ManagementPlane
from lks.autoscaler.autoscaler import ClusterAutoscaler
from lks.clock import Clock, ScaledClock, iso8601
from lks.controlplanes import ControlPlanes
from lks.identity.caller import Caller
from lks.identity.clusterauth import Directory
from lks.identity.graph import GraphAPI
from lks.identity.issuer import Issuer
from lks.identity.principals import Principals
from lks.identity.routes import IdentityAPI
from lks.identity.tokens import Tokens
from lks.kube.cluster import Cluster
from lks.kube.http.app import KubeAPI
from lks.kube.serviceaccounts import DEFAULT_ISSUER, SigningKey
from lks.net import loadbalancer, podnet
from lks.net.loadbalancer import frontends
from lks.nodes.pods import PodWorkers
from lks.upgrade.auto import AutoUpgrader

log = logging.getLogger(__name__)

DEMO_CLUSTER = "demo"
DEMO_LOCATION = "eastus"
API_VERSION = "2026-08-01"
DEFAULT_KUBERNETES_VERSION = "1.36"


def lks_home() -> Path:
    return Path(os.environ.get("LKS_HOME") or Path.home() / ".lks")


def _write_private(path: Path, data: bytes) -> None:
    """Write `path` readable by its owner only, atomically: a client reading it while the
    service (re)starts sees the old content or the new, never a truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Service:
    """Everything `lks up` runs, with `start()`/`stop()` so tests can host it in-process."""

    def __init__(self, *, home: Path, host: str = "127.0.0.1", port: int = 8443, store_url: str | None = None,
                 history: float = 300.0, clock: Clock | None = None, node_provisioning_time: float = 0.0,
                 load_balancer_range: str = frontends.DEFAULT_RANGE):
        """`clock` is the management plane's (maintenance windows, automatic upgrades, drain
        minutes): a `ScaledClock` for `lks up --time-scale`, a `ManualClock` in tests. The hosted
        clusters, their certificates and tokens keep wall time. `node_provisioning_time`: seconds of
        that clock a new node takes to register (`lks up --node-provisioning-time`; 0: at once).
        `load_balancer_range`: where LoadBalancer Services' public IPs come from."""
        self.home = home
        self.node_provisioning_time = node_provisioning_time
        self.load_balancer_range = load_balancer_range
        self.clock = clock or Clock()
        self.auto_upgrades: AutoUpgrader | None = None
        self.autoscaler: ClusterAutoscaler | None = None
        self.history = history
        self.host = host
        self.port = port
        self.store_url = store_url
        self.runner: web.AppRunner | None = None
        self.meta: store.Backend | None = None
        self.planes: ControlPlanes | None = None
        self.plane: ManagementPlane | None = None
        self.container_groups: ContainerGroups | None = None
        self.identity: Issuer | None = None  # the tenant's token issuer (and its principals)
        self.config: dict[str, Any] = {}

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _pki(self) -> tuple[pki.KeyPair, Path, Path, Path]:
        d = self.home / "pki"
        ca_crt, ca_key = d / "ca.crt", d / "ca.key"
        if not ca_crt.exists():
            ca = pki.create_ca("lks-ca")
            _write_private(ca_key, ca.key_pem)
            ca_crt.write_bytes(ca.cert_pem)
        ca = pki.KeyPair(ca_crt.read_bytes(), ca_key.read_bytes())
        crt, key = d / "apiserver.crt", d / "apiserver.key"
        hosts = sorted({"127.0.0.1", "localhost", "::1", self.host})
        stamp = d / "apiserver.hosts"
        if not crt.exists() or not stamp.exists() or stamp.read_text() != ",".join(hosts):
            serving = pki.create_serving_cert(ca, hosts)
            _write_private(key, serving.key_pem)
            crt.write_bytes(serving.cert_pem)
            stamp.write_text(",".join(hosts))
        return ca, ca_crt, crt, key

    def _issuer_key(self) -> SigningKey:
        """The token issuer's signing key, `pki/issuer.key`, made on first start."""
        path = self.home / "pki" / "issuer.key"
        if not path.exists():
            _write_private(path, SigningKey.generate().pem)
        return SigningKey(path.read_bytes())

    def _may_write_directory(self, caller: Caller | None) -> bool:
        """Who may change the directory (Graph's principals): who may grant any role in the
        subscription anyway (Owner, User Access Administrator at its scope)."""
        assert self.plane is not None
        return self.plane.rbac.access(caller).allows("Microsoft.Authorization/roleAssignments/write",
                                                     f"/subscriptions/{self.config['subscription_id']}")

    def _assertion_keys(self, issuer: str) -> list[Any] | None:
        """The public keys of `issuer` if it is the OIDC issuer of a cluster this service runs
        (a federated credential's assertion, verified offline as Entra would after fetching the
        cluster's JWKS); None for any other issuer."""
        if self.planes is None or issuer == DEFAULT_ISSUER:
            return None
        for cluster in self.planes.clusters.values():
            if cluster.token_issuer.public and issuer in cluster.token_issuer.issuers:
                return [cluster.token_issuer.key.public]
        return None

    async def _cluster_exists(self, id: str) -> bool:
        return self.planes is not None and await self.planes.record(id) is not None

    def _write_config(self, ca_file: Path) -> None:
        path = self.home / "config.json"
        old = orjson.loads(path.read_bytes()) if path.exists() else {}
        self.config = {
            "endpoint": self.endpoint,
            "ca_file": str(ca_file),
            "token": old.get("token") or secrets.token_urlsafe(32),
            "subscription_id": old.get("subscription_id") or str(uuid.uuid4()),
            "tenant_id": old.get("tenant_id") or str(uuid.uuid4()),
        }
        _write_private(path, orjson.dumps(self.config, option=orjson.OPT_INDENT_2))

    async def start(self) -> None:
        homedir.make_private(self.home)  # before any file of the home is opened
        _ca, ca_file, crt, key = self._pki()
        self._write_config(ca_file)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(crt, key)
        tls.verify_mode = ssl.CERT_OPTIONAL  # client certificates or bearer tokens
        tls.load_verify_locations(cafile=ca_file)
        self.meta = store.open_store(f"sqlite://{(self.home / 'lks.db').resolve()}")
        await self.meta.start()
        self.planes = ControlPlanes(meta=self.meta, data_dir=self.home / "clusters", tls=tls,
                                    store_url=self.store_url, history=self.history,
                                    api_endpoint=(self.host, self.port), serving_ca_pem=ca_file.read_bytes())
        self.planes.load_balancers = loadbalancer.LoadBalancers(
            meta=self.meta, public_range=self.load_balancer_range, alive=self._cluster_exists,
            network_of=_pod_network)
        await self.planes.load_balancers.start()
        await self.planes.start_all()
        self.plane = ManagementPlane(meta=self.meta, planes=self.planes, endpoint=self.endpoint, ca_file=ca_file,
                                     clock=self.clock, tenant_id=self.config["tenant_id"])
        self.plane.fleet.provisioning_time = self.node_provisioning_time
        reads = subscriptions.routes(subscription_id=self.config["subscription_id"],
                                     tenant_id=self.config["tenant_id"])
        self.identity = Issuer(tenant_id=self.config["tenant_id"], endpoint=self.endpoint,
                               principals=Principals(self.meta),
                               tokens=Tokens(key=self._issuer_key(), tenant_id=self.config["tenant_id"]),
                               assertion_keys=self._assertion_keys)
        # Azure RBAC: the assignments, and the bootstrap token's Owner one, before anything is served
        await self.plane.rbac.start(self.config["subscription_id"], now=iso8601(self.clock.now()))
        await self.planes.set_directory(Directory(issuer=self.identity, assignments=self.plane.rbac))
        plane = self.plane
        self.container_groups = ContainerGroups(docs=plane.docs, operations=plane.operations, data_dir=self.home / "aci",
                                                subnets=lambda *a: plane.vnets.find_subnet(*a))
        plane.group_contents.append(self.container_groups.delete_group)
        aci = containergroups.ContainerGroupsAPI(self.container_groups, require_group=plane.groups.require,
                                                 url=plane.url, endpoint=lambda: plane.endpoint)
        management = ManagementAPI(token=self.config["token"], subscription_id=self.config["subscription_id"],
                                   issuer=self.identity, authorizer=self.plane.rbac,
                                   routes=[*reads, *self.plane.routes(), *aci.routes()])
        # ARM's errors where aiohttp's router would answer a path or method itself
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[management.middleware])
        app.router.add_routes([web.get(f"/{p}", _ok) for p in ("healthz", "readyz", "livez")])
        kube = KubeAPI(self.planes.get, audit_home=self.home)
        app.router.add_routes(kube.routes())
        app.on_shutdown.append(lambda _app: kube.close_streams())  # watches and pod streams end at once
        app.on_response_prepare.append(kube.on_response_prepare)  # Audit-Id and ResponseStarted of streams
        app.router.add_routes(management.aiohttp_routes())
        app.router.add_routes(aci.aiohttp_routes())  # container groups' exec and attach WebSockets
        identity = self.identity
        graph = GraphAPI(principals=identity.principals, tenant_id=self.config["tenant_id"],
                         authenticate=lambda r: management.authenticate(r, identity.graph_audiences),
                         may_write=self._may_write_directory)
        app.router.add_routes(graph.routes())  # Microsoft Graph's subset, under /graph/
        app.router.add_routes(IdentityAPI(self.identity).aiohttp_routes())  # after the others: /{tenant}/…
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=tls, backlog=1024)
        await site.start()
        if self.port == 0:  # tests ask for any free port
            server = site._server  # noqa: SLF001
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._write_config(ca_file)
            self.plane.endpoint = self.endpoint
            self.identity.endpoint = self.endpoint
            self.planes.api_endpoint = (self.host, self.port)
            for cluster in self.planes.clusters.values():
                cluster.api_endpoint = self.planes.api_endpoint
        await self.container_groups.start()  # before the plane resumes their operations
        await self.plane.start()
        self.auto_upgrades = AutoUpgrader(plane=self.plane)
        await self.auto_upgrades.start()
        self.autoscaler = ClusterAutoscaler(plane=self.plane)
        await self.autoscaler.start()
        log.info("lks serving on %s", self.endpoint)

    async def stop(self) -> None:
        if self.autoscaler is not None:
            await self.autoscaler.stop()
        if self.auto_upgrades is not None:
            await self.auto_upgrades.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.plane is not None:
            await self.plane.stop()
        if self.container_groups is not None:
            await self.container_groups.stop()
        if self.planes is not None:
            await self.planes.stop_all()
            if self.planes.load_balancers is not None:
                await self.planes.load_balancers.stop()
        if self.meta is not None:
            await self.meta.close()

    async def ensure_demo(self) -> None:
        """On first start, resource group `demo` and cluster `demo` (System pool `nodepool1`,
        3 x Standard_DS2_v2), created through the management API like any client would; then
        the admin kubeconfig in `$LKS_HOME/kubeconfig`."""
        ctx = ssl.create_default_context(cafile=self.config["ca_file"])
        headers = {"Authorization": f"Bearer {self.config['token']}"}
        base = f"{self.endpoint}/subscriptions/{self.config['subscription_id']}/resourcegroups/{DEMO_CLUSTER}"
        cluster_url = f"{base}/providers/Microsoft.ContainerService/managedClusters/{DEMO_CLUSTER}"
        version = f"api-version={API_VERSION}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as http:
            async with http.get(f"{cluster_url}?{version}") as r:
                exists = r.status == 200
            if not exists:
                async with http.put(f"{base}?api-version=2025-04-01", json={"location": DEMO_LOCATION}) as r:
                    r.raise_for_status()
                body = {"location": DEMO_LOCATION, "properties": {"dnsPrefix": DEMO_CLUSTER, "agentPoolProfiles": [
                    {"name": "nodepool1", "count": 3, "vmSize": "Standard_DS2_v2", "mode": "System",
                     "osType": "Linux"}]}}
                async with http.put(f"{cluster_url}?{version}", json=body) as r:
                    if r.status not in (200, 201):
                        raise RuntimeError(f"creating the demo cluster failed: {await r.text()}")
                    poll = r.headers.get("Azure-AsyncOperation")  # none: a synchronous answer, done
                    status = "Succeeded"
                while poll:
                    async with http.get(poll) as r:
                        status = (await r.json())["status"]
                    if status != "InProgress":
                        break
                    await asyncio.sleep(0.05)
                if status != "Succeeded":
                    raise RuntimeError(f"creating the demo cluster ended {status}")
            async with http.post(f"{cluster_url}/listClusterAdminCredential?{version}") as r:
                r.raise_for_status()
                config = base64.b64decode((await r.json())["kubeconfigs"][0]["value"])
        _write_private(self.home / "kubeconfig", config)

    def admin_kubeconfig(self, cluster: Cluster) -> str:
        """A kubeconfig with admin credentials (`system:masters`), as `az aks get-credentials --admin`."""
        return kubeconfig.build(
            name=cluster.name, server=f"{self.endpoint}/clusters/{cluster.id}",
            ca_pem=(self.home / "pki" / "ca.crt").read_bytes(), user=f"clusterAdmin_{cluster.name}",
            credential=kubeconfig.client_certificate(cluster.ca, "masterclient", ("system:masters",)),
        )


def _pod_network(cluster: Cluster) -> podnet.PodNetwork | None:
    """The network namespace of the cluster's Process pods, if they have them."""
    process = PodWorkers.process_of(cluster)
    return process.net if process is not None and process.network else None


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


async def serve(*, host: str, port: int, demo: bool, store_url: str | None = None, history: float = 300.0,
                time_scale: float = 1.0, node_provisioning_time: float = 0.0,
                load_balancer_range: str = frontends.DEFAULT_RANGE) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly. `time_scale` runs the management plane's
    timers that many times faster than the wall; new nodes register `node_provisioning_time`
    seconds (of that clock) after a change asks for them."""
    service = Service(home=lks_home(), host=host, port=port, store_url=store_url, history=history,
                      clock=ScaledClock(time_scale) if time_scale != 1.0 else None,
                      node_provisioning_time=node_provisioning_time, load_balancer_range=load_balancer_range)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        print(f"lks is serving on {service.endpoint} (home {service.home})", flush=True)
        if demo:
            await service.ensure_demo()
            print("demo cluster ready; use it with:", flush=True)
            print(f"export KUBECONFIG={service.home / 'kubeconfig'}", flush=True)
        gc.collect()
        gc.freeze()  # what start-up built (schemas, catalogs) lives on: out of every collection
        await stop.wait()
    finally:
        await service.stop()
