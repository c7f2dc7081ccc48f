"""Names outside the cluster's zones, as CoreDNS's `forward . /etc/resolv.conf` answers them:
relayed to the host's resolvers, or SERVFAIL when none answers (or none is configured, as a
Corefile without `forward` answers: no next plugin).

`LKS_DNS_UPSTREAM` overrides the resolvers (`ip[:port],...`; `none` turns forwarding off): tests
point it at a stub on loopback, so they never send a query off the machine.
"""

from __future__ import annotations

import logging
import os

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.resolver

log = logging.getLogger(__name__)

TIMEOUT = 2.0  # seconds per upstream


def upstreams_from_env(value: str | None = None) -> list[tuple[str, int]]:
    """The upstream resolvers: `LKS_DNS_UPSTREAM`, else the nameservers of /etc/resolv.conf."""
    value = os.environ.get("LKS_DNS_UPSTREAM") if value is None else value
    if value is not None:
        if value.strip().lower() in ("", "none"):
            return []
        return [_address(part.strip()) for part in value.split(",") if part.strip()]
    try:
        return [(ns, 53) for ns in dns.resolver.Resolver(configure=True).nameservers]
    except dns.resolver.NoResolverConfiguration:
        return []


def _address(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [v6]:port
        host, _, port = text[1:].partition("]:")
        return host, int(port or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], *, timeout: float = TIMEOUT):
        self.upstreams = upstreams
        self.timeout = timeout

    async def resolve(self, request: dns.message.Message, *, tcp: bool) -> dns.message.Message:
        """The first upstream's answer (over the client's transport, TCP after a truncated UDP
        answer to a TCP client), else SERVFAIL."""
        for host, port in self.upstreams:
            try:
                if tcp:
                    response, _ = await dns.asyncquery.udp_with_fallback(request, host, timeout=self.timeout, port=port)
                else:
                    response = await dns.asyncquery.udp(request, host, timeout=self.timeout, port=port)
                return response
            except (OSError, dns.exception.DNSException) as e:
                log.debug("upstream %s:%s: %s", host, port, e)
        response = dns.message.make_response(request)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
