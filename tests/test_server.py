"""The service in-process: several clusters in one process, each refusing the others'
credentials; config.json and the demo kubeconfig contract."""

from __future__ import annotations

import base64
import json
import ssl

import aiohttp
import yaml

from lks.server import Service


def _client_ssl(kubeconfig: str) -> tuple[ssl.SSLContext, str]:
    cfg = yaml.safe_load(kubeconfig)
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    import tempfile

    with tempfile.NamedTemporaryFile() as crt, tempfile.NamedTemporaryFile() as key:
        crt.write(base64.b64decode(user["client-certificate-data"]))
        key.write(base64.b64decode(user["client-key-data"]))
        crt.flush()
        key.flush()
        ctx.load_cert_chain(crt.name, key.name)
    return ctx, cluster["server"]


async def test_clusters_refuse_each_others_credentials(tmp_path):
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    try:
        assert svc.planes is not None
        a = await svc.planes.create("a", "1.36")
        b = await svc.planes.create("b", "1.35")
        ctx_a, server_a = _client_ssl(svc.admin_kubeconfig(a))
        _ctx_b, server_b = _client_ssl(svc.admin_kubeconfig(b))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx_a)) as http:
            async with http.get(f"{server_a}/api/v1/namespaces") as r:
                assert r.status == 200
            async with http.get(f"{server_b}/api/v1/namespaces") as r:
                assert r.status == 401
                assert (await r.json())["reason"] == "Unauthorized"
            async with http.get(f"{server_b}/version") as r:
                assert r.status == 401
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx_a)) as http:
            async with http.get(f"{server_a}/version") as r:
                assert (await r.json())["minor"] == "36"
        config = json.loads((tmp_path / "config.json").read_text())
        assert set(config) == {"endpoint", "ca_file", "token", "subscription_id", "tenant_id"}
        assert config["endpoint"] == svc.endpoint
    finally:
        await svc.stop()


async def test_demo_kubeconfig_and_restart(tmp_path):
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    try:
        await svc.ensure_demo()
        cfg = yaml.safe_load((tmp_path / "kubeconfig").read_text())
        assert cfg["current-context"] == "demo"
        server = cfg["clusters"][0]["cluster"]["server"]
        assert server.startswith(f"{svc.endpoint}/clusters/")
        demo_id = server.rsplit("/", 1)[1]
        assert svc.planes is not None and svc.planes.get(demo_id) is not None
        token = json.loads((tmp_path / "config.json").read_text())["token"]
    finally:
        await svc.stop()
    again = Service(home=tmp_path, port=0)
    await again.start()
    try:
        assert again.planes is not None and again.planes.get(demo_id) is not None
        assert json.loads((tmp_path / "config.json").read_text())["token"] == token
        await again.ensure_demo()  # a second start keeps the same cluster
        cfg = yaml.safe_load((tmp_path / "kubeconfig").read_text())
        assert cfg["clusters"][0]["cluster"]["server"].endswith(f"/clusters/{demo_id}")
    finally:
        await again.stop()
