"""Connections from the ingress controller to pods: an aiohttp client whose TCP connections are
made inside the cluster's network namespace (`lks.net.podnet`'s `lks-<key>`, where every pod IP
routes), so the proxy on the host reaches pod IPs as ingress-nginx does from its pod. The socket
is made on the namespace thread (`lks.net.netns.socket_in`) and connected from the event loop;
connections are kept alive and reused (nginx's upstream `keepalive`), so the hop to the
namespace thread is paid once per connection, not per request. Without a pod network (no root,
or no Process nodes yet) a pod's processes listen on the host's own addresses, so a connection
goes to the host's loopback at the endpoint's port (as the LoadBalancer's forwarder does):
never to a pod IP from the host's namespace, whose routes lead off the machine.

`proxy.py` forwards requests through `Upstreams.session`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.client_exceptions import ClientConnectorError

from lks.net import netns

KEEPALIVE = 60.0  # seconds an idle upstream connection is kept (ingress-nginx: upstream-keepalive-timeout)


class _NamespacedConnector(aiohttp.TCPConnector):
    """aiohttp's connector with its sockets made in the namespace `namespace()` names (None:
    the host's)."""

    def __init__(self, namespace: Callable[[], str | None], **kwargs: Any):
        super().__init__(**kwargs)
        self._namespace = namespace

    async def _wrap_create_connection(self, *args: Any, addr_infos: list[Any], req: Any, timeout: Any,
                                      client_error: type[Exception] = ClientConnectorError, **kwargs: Any) -> Any:
        name = self._namespace()
        family, _type, _proto, _canon, address = addr_infos[0]
        try:
            if name is None:
                address = ("::1" if family == socket.AF_INET6 else "127.0.0.1", *address[1:])
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
            else:
                sock = await netns.run(lambda: netns.socket_in(name, family))
        except OSError as exc:
            raise client_error(req.connection_key, exc) from exc
        try:
            async with asyncio.timeout(timeout.sock_connect):
                await asyncio.get_running_loop().sock_connect(sock, address)
        except (OSError, TimeoutError) as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return await asyncio.get_running_loop().create_connection(*args, **kwargs, sock=sock)


class Upstreams:
    """The client side of one cluster's ingress: one pool of kept-alive connections."""

    def __init__(self, *, namespace: Callable[[], str | None]):
        self._namespace = namespace
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = _NamespacedConnector(self._namespace, limit=0, keepalive_timeout=KEEPALIVE,
                                         use_dns_cache=False, enable_cleanup_closed=False)
        # no client defaults: what reaches the pod is the request as the client sent it
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
