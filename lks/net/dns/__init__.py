"""Cluster DNS, answered as CoreDNS's kubernetes plugin answers (`zone.py`), from the cluster's
watch caches (`records.py`), over UDP and TCP (`server.py`), other names forwarded (`forward.py`);
`service.py` runs one per cluster."""

from lks.net.dns.service import ClusterDNS, get, serve, start, stop

__all__ = ["ClusterDNS", "get", "serve", "start", "stop"]
