"""The in-process ingress (`lks.net.ingress`) on a cluster of the memory store: the add-on's
objects applied, the external IP allocated and written, HTTP and HTTPS (SNI) proxied to two
backends on loopback with ingress-nginx's headers, round-robin, 404 / 503 / 308, status on the
Ingress. Ports 80 and 443 need root."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from lks import pki
from lks.controllers.addons import approuting
from lks.controllers.crd import CRDController
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.net import ingress as appingress
from lks.net import netns

pytestmark = pytest.mark.skipif(not netns.supported(), reason="ports 80 and 443 need root")


async def _backend(name: str) -> tuple[web.AppRunner, int]:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"name": name, "path": request.path_qs, "host": request.host,
                                  "headers": {k: v for k, v in request.headers.items() if k.startswith("X-")}})
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _until(check, what: str, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.02)


def _service(name: str, port: int) -> tuple[dict, dict]:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
           "spec": {"ports": [{"name": "web", "port": 80, "targetPort": port}]}}
    slc = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": f"{name}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
           "addressType": "IPv4", "ports": [{"name": "web", "port": port, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
    return svc, slc


@pytest.fixture
async def served(cluster: Cluster) -> AsyncIterator[tuple[appingress.Ingress, dict[str, int]]]:
    crds = CRDController(cluster)  # serves the NginxIngressController type
    await crds.start()
    ing = appingress.Ingress(cluster, namespace=lambda: None)  # backends on the host's loopback
    runners = {}
    ports = {}
    for name in ("alpha", "beta"):
        runners[name], ports[name] = await _backend(name)
    try:
        await ing.start()
        yield ing, ports
    finally:
        await ing.stop()
        await crds.stop()
        for runner in runners.values():
            await runner.cleanup()


async def _create(cluster: Cluster, obj: dict) -> dict:
    group, _, version = obj["apiVersion"].rpartition("/")
    rt = cluster.catalog.by_kind(group, version, obj["kind"])
    return await cluster.registry(group, version, rt.resource).create(obj["metadata"].get("namespace"), obj,
                                                                        WriteOptions())


async def test_routes_http_and_https_to_services(cluster: Cluster, served) -> None:
    ing, ports = served
    services = cluster.registry("", "v1", "services")

    async def external_ip():
        svc = await services.get(approuting.NAMESPACE, approuting.NAME)
        return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    [entry] = await _until(external_ip, "external IP")
    ip = entry["ip"]
    assert ip.startswith("127.224.")
    ic = await cluster.registry("networking.k8s.io", "v1", "ingressclasses").get(None, approuting.INGRESS_CLASS)
    assert ic["spec"]["controller"] == "webapprouting.kubernetes.azure.com/nginx"

    for name, port in ports.items():
        for obj in _service(name, port):
            await _create(cluster, obj)
    ca = pki.create_ca("test-ca")
    cert = pki.create_serving_cert(ca, ["secure.test"])
    await _create(cluster, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                            "metadata": {"name": "secure-tls", "namespace": "default"},
                            "data": {"tls.crt": base64.b64encode(cert.cert_pem).decode(),
                                     "tls.key": base64.b64encode(cert.key_pem).decode()}})
    paths = [{"path": "/a", "pathType": "Prefix", "backend": {"service": {"name": "alpha", "port": {"number": 80}}}},
             {"path": "/b", "pathType": "Prefix", "backend": {"service": {"name": "beta", "port": {"name": "web"}}}},
             {"path": "/gone", "pathType": "Exact", "backend": {"service": {"name": "none", "port": {"number": 80}}}}]
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "web", "namespace": "default"},
                            "spec": {"ingressClassName": approuting.INGRESS_CLASS, "rules": [
                                {"host": "shop.test", "http": {"paths": paths}},
                                {"host": "secure.test", "http": {"paths": paths[:1]}}],
                                "tls": [{"hosts": ["secure.test"], "secretName": "secure-tls"}]}})
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "not-ours", "namespace": "default"},
                            "spec": {"ingressClassName": "other", "rules": [{"host": "x.test", "http": {"paths": paths}}]}})
    ingresses = cluster.registry("networking.k8s.io", "v1", "ingresses")

    async def status():
        obj = await ingresses.get("default", "web")
        return ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    assert await _until(status, "Ingress status") == [{"ip": ip}]
    assert not ((await ingresses.get("default", "not-ours")).get("status") or {}).get("loadBalancer")

    client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{ip}/a/x?q=1", headers={"Host": "shop.test",
                                                             "X-Forwarded-For": "1.2.3.4"}) as r:
            body = await r.json()
            assert r.status == 200 and r.headers["Server"] == "nginx"
        assert body["name"] == "alpha" and body["path"] == "/a/x?q=1" and body["host"] == "shop.test"
        h = body["headers"]
        assert h["X-Real-IP"] == "127.0.0.1" and h["X-Forwarded-For"] == "127.0.0.1"
        assert h["X-Original-Forwarded-For"] == "1.2.3.4"
        assert h["X-Forwarded-Host"] == "shop.test" and h["X-Forwarded-Proto"] == "http"
        assert h["X-Forwarded-Port"] == "80" and len(h["X-Request-ID"]) == 32
        async with http.get(f"http://{ip}/b", headers={"Host": "shop.test", "X-Request-ID": "abc"}) as r:
            body = await r.json()
            assert body["name"] == "beta" and body["headers"]["X-Request-ID"] == "abc"
        async with http.get(f"http://{ip}/a/len", headers={"Host": "shop.test"}) as r:
            length = len(await r.read())
        async with http.head(f"http://{ip}/a/len", headers={"Host": "shop.test"}) as r:
            assert r.status == 200 and r.headers["Content-Length"] == str(length) and await r.read() == b""
        async with http.post(f"http://{ip}/a", data=b"x" * (1024 * 1024 + 1), headers={"Host": "shop.test"}) as r:
            assert r.status == 413 and "<center><h1>413 Request Entity Too Large</h1></center>" in await r.text()
        async with http.get(f"http://{ip}/c", headers={"Host": "shop.test"}) as r:
            assert r.status == 404 and "<center><h1>404 Not Found</h1></center>" in await r.text()
        async with http.get(f"http://{ip}/a", headers={"Host": "x.test"}) as r:
            assert r.status == 404  # another class's Ingress
        async with http.get(f"http://{ip}/gone", headers={"Host": "shop.test"}) as r:
            assert r.status == 503
        async with http.get(f"http://{ip}/a?z", headers={"Host": "secure.test"}, allow_redirects=False) as r:
            assert r.status == 308 and r.headers["Location"] == "https://secure.test/a?z"
        conn = aiohttp.TCPConnector(ssl=client_ctx, resolver=_Fixed(ip))
        async with aiohttp.ClientSession(connector=conn) as tls:
            async with tls.get("https://secure.test/a/tls") as r:
                body = await r.json()
        assert body["name"] == "alpha" and body["headers"]["X-Forwarded-Proto"] == "https"
        assert body["headers"]["X-Forwarded-Port"] == "443"


async def test_round_robin_over_ready_endpoints(cluster: Cluster, served) -> None:
    ing, ports = served
    svc, slc = _service("both", ports["alpha"])
    await _create(cluster, svc)
    for name, port in ports.items():  # one slice per endpoint port, as for a Service of two pods' ports
        await _create(cluster, {**slc, "metadata": {**slc["metadata"], "name": f"both-{name}"},
                                "ports": [{"name": "web", "port": port, "protocol": "TCP"}]})
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "rr", "namespace": "default"},
                            "spec": {"ingressClassName": approuting.INGRESS_CLASS, "defaultBackend": {
                                "service": {"name": "both", "port": {"number": 80}}}}})
    ip = await _until(lambda: _ip(ing), "address")

    async def answers():
        async with aiohttp.ClientSession() as http:
            names = []
            for _ in range(4):
                async with http.get(f"http://{ip}/", headers={"Host": "anything.test"}) as r:
                    if r.status != 200:
                        return None
                    names.append((await r.json())["name"])
            return names
    names = await _until(answers, "answers")
    assert sorted(names) == ["alpha", "alpha", "beta", "beta"]


async def test_an_endpoint_that_refuses_passes_the_request_on(cluster: Cluster, served) -> None:
    ing, ports = served
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    svc, slc = _service("flaky", ports["alpha"])
    await _create(cluster, svc)
    for name, port in (("dead", dead), ("alive", ports["alpha"])):
        await _create(cluster, {**slc, "metadata": {**slc["metadata"], "name": f"flaky-{name}"},
                                "ports": [{"name": "web", "port": port, "protocol": "TCP"}]})
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "flaky", "namespace": "default"},
                            "spec": {"ingressClassName": approuting.INGRESS_CLASS, "defaultBackend": {
                                "service": {"name": "flaky", "port": {"number": 80}}}}})
    ip = await _until(lambda: _ip(ing), "address")
    await _until(lambda: _is(_get_status(ip, "GET"), 200), "served")
    assert [await _get_status(ip, method) for method in ("GET", "GET", "POST", "POST")] == [200] * 4


async def _get_status(ip: str, method: str) -> int:
    async with aiohttp.ClientSession() as http, http.request(method, f"http://{ip}/", data=b"x",
                                                             headers={"Host": "any.test"}) as r:
        return r.status


async def test_without_a_pod_network_a_pod_ip_is_reached_on_the_hosts_loopback(cluster: Cluster, served) -> None:
    """Pods without network namespaces listen on the host's addresses: the endpoint's port on
    127.0.0.1 (a pod IP is never dialled from the host's namespace, whose routes leave the
    machine; here one of 127/8 where nothing listens stands for it)."""
    ing, ports = served
    svc, slc = _service("podip", ports["beta"])
    slc["endpoints"] = [{"addresses": ["127.5.6.7"], "conditions": {"ready": True}}]
    await _create(cluster, svc)
    await _create(cluster, slc)
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "podip", "namespace": "default"},
                            "spec": {"ingressClassName": approuting.INGRESS_CLASS, "defaultBackend": {
                                "service": {"name": "podip", "port": {"number": 80}}}}})
    ip = await _until(lambda: _ip(ing), "address")
    assert await _until(lambda: _is(_get_status(ip, "GET"), 200), "beta on the host's loopback")


async def test_websocket_through_the_ingress(cluster: Cluster, served) -> None:
    ing, _ = served

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"{request.headers['X-Forwarded-Host']}:{msg.data}")
        return ws
    app = web.Application()
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for obj in _service("sockets", port):
            await _create(cluster, obj)
        await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                "metadata": {"name": "ws", "namespace": "default"},
                                "spec": {"ingressClassName": approuting.INGRESS_CLASS, "rules": [
                                    {"host": "ws.test", "http": {"paths": [{"path": "/ws", "pathType": "Exact", "backend": {
                                        "service": {"name": "sockets", "port": {"number": 80}}}}]}}]}})
        ip = await _until(lambda: _ip(ing), "address")

        async def talk() -> tuple[str | None, str, int | None] | None:
            async with aiohttp.ClientSession() as http:
                try:
                    ws = await http.ws_connect(f"http://{ip}/ws", headers={"Host": "ws.test"}, protocols=("x", "chat"))
                except aiohttp.WSServerHandshakeError:
                    return None
                async with ws:
                    await ws.send_str("hello")
                    reply = (await ws.receive()).data
                    await ws.close()
                    return ws.protocol, reply, ws.close_code
        assert await _until(talk, "a WebSocket through the ingress") == ("chat", "ws.test:hello", 1000)
    finally:
        await runner.cleanup()


async def test_default_class_and_the_legacy_annotation(cluster: Cluster, served) -> None:
    ing, ports = served
    for obj in _service("alpha", ports["alpha"]):
        await _create(cluster, obj)
    backend = {"service": {"name": "alpha", "port": {"number": 80}}}
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "classless", "namespace": "default"},
                            "spec": {"rules": [{"host": "classless.test", "http": {"paths": [
                                {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}})
    await _create(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": "legacy", "namespace": "default", "annotations": {
                                "kubernetes.io/ingress.class": approuting.INGRESS_CLASS}},
                            "spec": {"rules": [{"host": "legacy.test", "http": {"paths": [
                                {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}})
    ip = await _until(lambda: _ip(ing), "address")

    async def status(host: str) -> int:
        async with aiohttp.ClientSession() as http, http.get(f"http://{ip}/", headers={"Host": host}) as r:
            return r.status
    assert await _until(lambda: _is(status("legacy.test"), 200), "the legacy annotation served")
    assert await status("classless.test") == 404  # no class, and ours is not the default
    classes = cluster.registry("networking.k8s.io", "v1", "ingressclasses")
    await classes.patch(None, approuting.INGRESS_CLASS, lambda cur: {**cur, "metadata": {
        **cur["metadata"], "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}})
    assert await _until(lambda: _is(status("classless.test"), 200), "the default class served")


async def _is(value, wanted) -> bool:
    return await value == wanted


async def test_the_default_nginx_ingress_controller_and_its_status(cluster: Cluster, served) -> None:
    nics = cluster.registry(approuting.NIC_GROUP, approuting.NIC_VERSION, approuting.NIC_PLURAL)

    async def conditions():
        nic = await nics.get(None, "default")
        return {c["type"]: (c["status"], c["reason"]) for c in (nic.get("status") or {}).get("conditions") or []}
    assert await _until(conditions, "the default controller's status") == {
        "IngressClassReady": ("True", "IngressClassIsReady"),  # no deployment controller here: no conditions
        "Available": ("False", "ControllerIsNotAvailable")}
    nic = await nics.get(None, "default")
    assert nic["spec"] == {"ingressClassName": approuting.INGRESS_CLASS, "controllerNamePrefix": "nginx"}
    deployments = cluster.registry("apps", "v1", "deployments")
    await deployments.patch(approuting.NAMESPACE, approuting.NAME, lambda cur: {**cur, "status": {
        "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"}]}},
        subresource="status")

    async def available():
        found = await conditions()
        return found if found.get("Available", ("",))[0] == "True" else None
    found = await _until(available, "Available")
    assert found["ControllerAvailable"] == ("True", "ControllerDeploymentAvailable")
    nic = await nics.get(None, "default")
    assert nic["status"]["controllerReadyReplicas"] == 2
    assert {"kind": "Deployment", "name": "nginx", "namespace": "app-routing-system", "apiGroup": "apps"} in \
        nic["status"]["managedResourceRefs"]


async def test_no_default_controller_with_type_none(cluster: Cluster) -> None:
    crds = CRDController(cluster)
    await crds.start()
    ing = appingress.Ingress(cluster, namespace=lambda: None, nginx="None")
    try:
        await ing.start()
        assert await cluster.registry("", "v1", "namespaces").get_or_none(None, approuting.NAMESPACE) is not None
        nics = cluster.registry(approuting.NIC_GROUP, approuting.NIC_VERSION, approuting.NIC_PLURAL)
        assert await nics.get_or_none(None, "default") is None
        assert await cluster.registry("networking.k8s.io", "v1", "ingressclasses").get_or_none(
            None, approuting.INGRESS_CLASS) is None
        assert await cluster.registry("", "v1", "services").get_or_none(approuting.NAMESPACE, approuting.NAME) is None
    finally:
        await ing.stop()
        await crds.stop()


async def _ip(ing: appingress.Ingress) -> str | None:
    return ing.proxy.address


class _Fixed(aiohttp.abc.AbstractResolver):
    """Every name at one address (SNI with the name, the connection to the ingress's IP)."""

    def __init__(self, ip: str):
        self.ip = ip

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict]:
        return [{"hostname": host, "host": self.ip, "port": port, "family": 2, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass
