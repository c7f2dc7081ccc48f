"""Requests to an extension API server behind an APIService's Service, as kube-aggregator's
proxy handler sends them: over HTTPS to one ready endpoint of the Service (a Process pod is
reached through its node agent's port-forward, pods sharing the host's network; an address
with no pod behind it is dialed as it is), with the Service's DNS name as TLS server name,
the APIService's `caBundle` (or no verification with `insecureSkipTLSVerify`), and lks as the
front proxy: the `front-proxy-client` certificate (`frontproxy`), the caller's identity in
`X-Remote-User`, `X-Remote-Group`, `X-Remote-Uid`, `X-Remote-Extra-*`, and none of the caller's
credentials. The answer streams back as it comes (watches included).

An APIService that is not Available, or whose Service has no ready endpoint, answers 503
`service unavailable`; an endpoint that cannot be reached, the transport's error as a 500, as
upstream's proxy handler does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import os
import random
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from lks.kube.authn import User
from lks.kube.http import negotiation
from lks.kube.streaming import target as pod_target

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
DIAL_SECONDS = 5.0
# what a hop does not pass on (RFC 9110's connection-specific fields) and lks's own credentials
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "host", "authorization", "content-length"}
# headers the request chain consumed (upstream's authentication and impersonation filters delete
# them) or that only the front proxy may set
_CONSUMED = ("impersonate-", "x-remote-")


class Unavailable(Exception):
    """The Service cannot be reached: the text goes in the 503."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    pod: Obj | None  # the pod behind the address, when the slice names one


async def endpoint(cluster: Cluster, namespace: str, name: str, port: int) -> Endpoint:
    """A ready endpoint of Service `namespace/name` for its port `port` (upstream's endpoint
    service resolver). Raises Unavailable with the resolver's words."""
    services = cluster.registry("", "v1", "services")
    svc = (await services.cache()).objects.get(services.key(namespace, name))
    if svc is None:
        raise Unavailable(f'service "{name}" not found')
    svc_port = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
    if svc_port is None:
        raise Unavailable(f'no service port {port} found for service "{name}"')
    port_name = svc_port.get("name") or ""
    ready: list[tuple[str, int, Obj]] = []
    for sl in await slices(cluster, namespace, name):
        number = next((p.get("port") for p in sl.get("ports") or [] if (p.get("name") or "") == port_name), None)
        if number is None:
            continue
        ready += [(ep["addresses"][0], int(number), ep.get("targetRef") or {}) for ep in sl.get("endpoints") or []
                  if (ep.get("conditions") or {}).get("ready") is not False and ep.get("addresses")]
    if not ready:
        raise Unavailable(f'no endpoints available for service "{name}"')
    ip, number, ref = random.choice(ready)  # as upstream's resolver spreads requests
    pod = None
    if ref.get("kind") == "Pod":
        pods = cluster.registry("", "v1", "pods")
        pod = (await pods.cache()).objects.get(pods.key(ref.get("namespace") or namespace, ref.get("name") or ""))
    return Endpoint(ip, number, pod)


async def slices(cluster: Cluster, namespace: str, name: str) -> list[Obj]:
    """The EndpointSlices of Service `namespace/name` (by their `kubernetes.io/service-name`),
    found once per revision of the slices' cache (a scan of every slice otherwise)."""
    reg = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    cache = await reg.cache()
    memo = cluster.aggregator.memo.setdefault("slices", {})
    hit = memo.get((namespace, name))
    if hit is not None and hit[0] == cache.revision:
        return hit[1]
    found = [o for o in cache.objects.values()
             if o["metadata"].get("namespace") == namespace
             and (o["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name]
    if len(memo) > 256:
        memo.clear()
    memo[(namespace, name)] = (cache.revision, found)
    return found


def tls_context(spec: Obj) -> ssl.SSLContext:
    """The APIService's trust: its `caBundle`, none with `insecureSkipTLSVerify`, else the system roots."""
    if spec.get("insecureSkipTLSVerify"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if spec.get("caBundle"):
        try:
            pem = base64.b64decode(spec["caBundle"], validate=True).decode()
            return ssl.create_default_context(cadata=pem)
        except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as err:
            raise Unavailable(f"unable to load root certificates: {err}") from None
    return ssl.create_default_context()


async def dial(cluster: Cluster, ep: Endpoint, ctx: ssl.SSLContext, server_name: str) -> Streams:
    """TLS to `ep`: through the pod's node agent when a pod is behind it, else to the address."""
    address = f"{ep.ip}:{ep.port}"
    try:
        async with asyncio.timeout(DIAL_SECONDS):
            kubelet = pod_target.node_streams().lookup(cluster.id, (ep.pod.get("spec") or {}).get("nodeName") or "") \
                if ep.pod is not None else None
            if kubelet is not None:
                try:
                    reader, writer = await kubelet.port_forward(ep.pod, ep.port)
                except pod_target.node_streams().StreamError:
                    raise Unavailable(f"dial tcp {address}: connect: connection refused") from None
            else:
                if _link_local(ep.ip):  # the host's cloud metadata service is no tenant's endpoint
                    raise Unavailable(f"dial tcp {address}: connect: network is unreachable")
                reader, writer = await asyncio.open_connection(ep.ip, ep.port)
            await writer.start_tls(ctx, server_hostname=server_name)
    except TimeoutError:
        raise Unavailable(f"dial tcp {address}: i/o timeout") from None
    except ssl.SSLCertVerificationError as err:
        raise Unavailable(f"tls: failed to verify certificate: x509: {err.verify_message}") from None
    except ssl.SSLError as err:
        raise Unavailable(f"remote error: tls: {err.reason or err}") from None
    except OSError as err:
        raise Unavailable(f"dial tcp {address}: connect: {_errno_text(err)}") from None
    return reader, writer


def _link_local(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_link_local
    except ValueError:
        return True  # not an address: nothing to dial


def _errno_text(err: OSError) -> str:
    """Go's wording of a socket error (`connection refused`)."""
    if err.errno:
        text = os.strerror(err.errno)
        return text[:1].lower() + text[1:]
    return str(err) or type(err).__name__


def identity_headers(user: User) -> list[tuple[str, str]]:
    """The front proxy's request headers (upstream's `transport.SetAuthProxyHeaders`)."""
    out = [("X-Remote-User", user.name)]
    out += [("X-Remote-Group", g) for g in user.groups]
    if user.uid:
        out.append(("X-Remote-Uid", user.uid))
    for key, values in user.extra.items():
        out += [(f"X-Remote-Extra-{quote(key, safe='')}", v) for v in values]
    return out


async def send(conn: Streams, method: str, path: str, host: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[int, list[tuple[str, str]], asyncio.StreamReader]:
    """One HTTP/1.1 request (the connection closes after it); the answer's status and headers,
    its body left in the reader."""
    reader, writer = conn
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers if "\r" not in v and "\n" not in v]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise Unavailable("malformed HTTP response")
    out: list[tuple[str, str]] = []
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        out.append((k.strip(), v.strip()))
    return int(parts[1]), out, reader


async def body_chunks(reader: asyncio.StreamReader, headers: list[tuple[str, str]]):
    """The answer's body as it arrives, de-chunked."""
    lower = {k.lower(): v for k, v in headers}
    if "chunked" in lower.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            yield await reader.readexactly(size)
            await reader.readline()
    left = int(lower["content-length"]) if lower.get("content-length", "").isdigit() else None
    while left is None or left > 0:
        data = await reader.read(65536 if left is None else min(left, 65536))
        if not data:
            return
        if left is not None:
            left -= len(data)
        yield data


def unavailable(text: str = "service unavailable") -> web.Response:
    """kube-aggregator's plain-text 503 (Go's `http.Error`)."""
    return web.Response(status=503, text=text + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def failed(text: str) -> web.Response:
    """The proxy's answer when the extension server cannot be dialed or answers no HTTP:
    upstream's responder writes the transport's error as a plain-text 500."""
    return web.Response(status=500, text=text + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def forward(request: web.Request, cluster: Cluster, apiservice: Obj, user: User, path: str) -> web.StreamResponse:
    """Proxy `request` (its path under the cluster: `/apis/<group>/<version>/...`) to the
    APIService's Service and stream the answer back."""
    if not _available(apiservice):
        return unavailable()
    spec = apiservice.get("spec") or {}
    body = await negotiation.read_body(request)
    ref = spec.get("service") or {}
    namespace, name = ref.get("namespace") or "", ref.get("name") or ""
    try:
        ep = await endpoint(cluster, namespace, name, ref.get("port") or 443)
    except Unavailable:
        return unavailable()  # upstream's resolver failing: "service unavailable"
    base = f"https://{ep.ip}:{ep.port}"
    try:
        conn = await dial(cluster, ep, cluster.aggregator.context(spec), f"{name}.{namespace}.svc")
    except Unavailable as err:
        return failed(str(err))
    headers = [(k, v) for k, v in request.headers.items()
               if k.lower() not in _HOP and not k.lower().startswith(_CONSUMED)]
    headers += identity_headers(user)
    target = path + (f"?{request.query_string}" if request.query_string else "")
    try:
        status, answer, reader = await send(conn, request.method, target, base.removeprefix("https://"), headers, body)
        resp = web.StreamResponse(status=status)
        for k, v in answer:
            if k.lower() not in _HOP:
                resp.headers.add(k, v)
        await resp.prepare(request)
        async for chunk in body_chunks(reader, answer):
            await resp.write(chunk)
        await resp.write_eof()
        return resp
    except (OSError, asyncio.IncompleteReadError, ValueError, Unavailable) as err:
        if "resp" in locals() and resp.prepared:
            return resp  # the server went away mid-answer: the client sees the stream end
        return failed(str(err) or type(err).__name__)
    finally:
        with contextlib.suppress(Exception):
            conn[1].close()


def _available(apiservice: Obj) -> bool:
    conds = (apiservice.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)
