"""Cluster DNS for each hosted cluster: its records (fed by the watch caches), its zone, and a
server listening wherever it is asked to.

The control planes (`lks/controlplanes.py`) call `start(cluster)` and `stop(id)`. Where the DNS
service IP is reachable (inside the pod networks), the network code calls
`serve(cluster, address, port)` to answer there: one server per cluster, any number of
listeners. `LKS_DNS_LISTEN=host:port` (port 0: a free one) also serves every cluster on the host,
and writes where to `<cluster dir>/dns.json` (`{"listen": [[address, port]]}`) for tools and tests.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import orjson

from lks.kube.cluster import Cluster
from lks.net.dns import forward, records, server, zone

log = logging.getLogger(__name__)

_running: dict[str, ClusterDNS] = {}


class ClusterDNS:
    def __init__(self, cluster: Cluster, *, upstreams: list[tuple[str, int]] | None = None, ttl: int = zone.TTL):
        self.cluster = cluster
        self.records = records.Records(cluster)
        self.zone = zone.Zone(self.records, ttl=ttl, dns_ips=(cluster.dns_service_ip,))
        upstreams = forward.upstreams_from_env() if upstreams is None else upstreams
        self.server = server.Server(self.zone, forward.Forwarder(upstreams))

    async def start(self) -> None:
        await self.records.start()

    async def serve(self, address: str, port: int = 53, *,
                    sockets: tuple[socket.socket, socket.socket] | None = None) -> server.Listener:
        listener = await self.server.listen(address, port, sockets=sockets)
        log.info("cluster DNS of %s on %s:%d", self.cluster.name, address, listener.port)
        return listener

    async def stop(self) -> None:
        await self.server.close()
        await self.records.stop()


async def start(cluster: Cluster, *, state_dir: Path | None = None) -> ClusterDNS:
    """Cluster DNS for `cluster` (and, with LKS_DNS_LISTEN, its listener on the host)."""
    await stop(cluster.id)
    dns = ClusterDNS(cluster)
    await dns.start()
    _running[cluster.id] = dns
    listen = os.environ.get("LKS_DNS_LISTEN")
    if listen:
        host, port = forward._address(listen)
        listener = await dns.serve(host, port)
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            (state_dir / "dns.json").write_bytes(orjson.dumps({"listen": [[listener.address, listener.port]]}))
    return dns


async def serve(cluster: Cluster, address: str, port: int = 53, *,
                sockets: tuple[socket.socket, socket.socket] | None = None) -> server.Listener:
    """Answer `cluster`'s DNS on `address`:`port` (UDP and TCP) until the cluster stops; the
    hook the pod-network code calls for the DNS service IP inside the cluster's network.
    `sockets`: a (UDP, TCP) pair made in that network's namespace (`lks.net.netns.entered`),
    bound here to `address`:`port` unless already bound."""
    dns = _running.get(cluster.id) or await start(cluster)
    return await dns.serve(address, port, sockets=sockets)


def get(cluster_id: str) -> ClusterDNS | None:
    return _running.get(cluster_id)


async def stop(cluster_id: str) -> None:
    dns = _running.pop(cluster_id, None)
    if dns is not None:
        await dns.stop()
