"""`lks up`: one asyncio process serving HTTPS, hosting every control plane recorded in
`$LKS_HOME`, and (with `--demo`) a first cluster with a ready kubeconfig.

`$LKS_HOME` (default `~/.lks`) holds `pki/` (the service CA and serving certificate),
`config.json` (endpoint, CA file, the management API token, subscription id), `lks.db` (the
service's own store) and `clusters/<id>/state.db` (each cluster's objects).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import signal
import ssl
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from lks import pki, store
from lks.controlplanes import ControlPlanes
from lks.kube.cluster import Cluster
from lks.kube.http.app import KubeAPI

log = logging.getLogger(__name__)

DEMO_CLUSTER = "demo"
DEFAULT_KUBERNETES_VERSION = "1.36"


def lks_home() -> Path:
    return Path(os.environ.get("LKS_HOME") or Path.home() / ".lks")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class Service:
    """Everything `lks up` runs, with `start()`/`stop()` so tests can host it in-process."""

    def __init__(self, *, home: Path, host: str = "127.0.0.1", port: int = 8443, store_url: str | None = None,
                 history: float = 300.0):
        self.home = home
        self.history = history
        self.host = host
        self.port = port
        self.store_url = store_url
        self.runner: web.AppRunner | None = None
        self.meta: store.Backend | None = None
        self.planes: ControlPlanes | None = None
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

    def _write_config(self, ca_file: Path) -> None:
        path = self.home / "config.json"
        old = orjson.loads(path.read_bytes()) if path.exists() else {}
        self.config = {
            "endpoint": self.endpoint,
            "ca_file": str(ca_file),
            "token": old.get("token") or secrets.token_urlsafe(32),
            "subscription_id": old.get("subscription_id") or str(uuid.uuid4()),
        }
        _write_private(path, orjson.dumps(self.config, option=orjson.OPT_INDENT_2))

    async def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        _ca, ca_file, crt, key = self._pki()
        self._write_config(ca_file)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(crt, key)
        tls.verify_mode = ssl.CERT_OPTIONAL  # client certificates or bearer tokens
        tls.load_verify_locations(cafile=ca_file)
        self.meta = store.open_store(f"sqlite://{(self.home / 'lks.db').resolve()}")
        await self.meta.start()
        self.planes = ControlPlanes(meta=self.meta, data_dir=self.home / "clusters", tls=tls,
                                    store_url=self.store_url, history=self.history)
        await self.planes.start_all()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_routes([web.get(f"/{p}", _ok) for p in ("healthz", "readyz", "livez")])
        app.router.add_routes(KubeAPI(self.planes.get).routes())
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=tls, backlog=1024)
        await site.start()
        if self.port == 0:  # tests ask for any free port
            server = site._server  # noqa: SLF001
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._write_config(ca_file)
        log.info("lks serving on %s", self.endpoint)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.planes is not None:
            await self.planes.stop_all()
        if self.meta is not None:
            await self.meta.close()

    async def ensure_demo(self) -> Cluster:
        """The demo cluster, created on first start, and its kubeconfig."""
        assert self.planes is not None
        cluster = self.planes.by_name(DEMO_CLUSTER)
        if cluster is None:
            cluster = await self.planes.create(DEMO_CLUSTER, DEFAULT_KUBERNETES_VERSION)
        path = self.home / "kubeconfig"
        _write_private(path, self.admin_kubeconfig(cluster).encode())
        return cluster

    def admin_kubeconfig(self, cluster: Cluster) -> str:
        """A kubeconfig with admin credentials (`system:masters`), as `az aks get-credentials --admin`."""
        cert = pki.create_client_cert(cluster.ca, "masterclient", ("system:masters",))
        ca_pem = (self.home / "pki" / "ca.crt").read_bytes()
        user = f"clusterAdmin_{cluster.name}"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster.name, "cluster": {
                "server": f"{self.endpoint}/clusters/{cluster.id}",
                "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            }}],
            "users": [{"name": user, "user": {
                "client-certificate-data": base64.b64encode(cert.cert_pem).decode(),
                "client-key-data": base64.b64encode(cert.key_pem).decode(),
            }}],
            "contexts": [{"name": cluster.name, "context": {"cluster": cluster.name, "user": user}}],
            "current-context": cluster.name,
            "preferences": {},
        }
        return yaml.safe_dump(doc, sort_keys=False)


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


async def serve(*, host: str, port: int, demo: bool, store_url: str | None = None, history: float = 300.0) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    service = Service(home=lks_home(), host=host, port=port, store_url=store_url, history=history)
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
        await stop.wait()
    finally:
        await service.stop()
