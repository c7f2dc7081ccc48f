"""Who may reach a hosted API server at all, before authentication decides who they are: AKS's
`apiServerAccessProfile.authorizedIPRanges` (the front door of the cluster endpoint) and
`disableLocalAccounts` (the cluster's static credentials stop working).

The management plane (`lks.arm`) records a cluster's policy with its control plane
(`lks.controlplanes`), which gives it to the cluster (`Cluster.access`) when it starts and
whenever the policy changes; `lks.kube.http.app` asks `check_source` of every request and
`refuses` of every authenticated user.

Like AKS, which always lets the cluster's own nodes and pods in, a connection from the
service's own address (the one the request arrived on: the service itself, its node agents
and the Process pools' pods share the host) or from the cluster's pod CIDR is always
allowed. AKS drops other packets (clients time out); lks serves every cluster on one
listener, so it answers at once with a 403.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lks.kube import errors
from lks.kube.authn import User

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policy:
    authorized_ranges: tuple[Network, ...] = ()  # empty: every address may connect
    local_users: frozenset[User] = frozenset()  # the static credentials' identities
    local_accounts: bool = True  # False: those identities are refused (401)
    pod_cidr: str = ""

    def admits(self, remote: str | None, local: str | None) -> bool:
        if not self.authorized_ranges:
            return True
        if remote is None:  # not an IP connection (a Unix socket of the service itself)
            return True
        try:
            address = ipaddress.ip_address(remote.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if remote == local:
            return True
        if self.pod_cidr and address in ipaddress.ip_network(self.pod_cidr, strict=False):
            return True
        return any(address in network for network in self.authorized_ranges)


    def check_source(self, remote: str | None, local: str | None) -> None:
        """Raise 403 for a connection from outside the cluster's authorized IP ranges."""
        if not self.admits(remote, local):
            raise errors.APIError(403, "Forbidden", f"forbidden: client IP address {remote} is not within the API "
                                                    "server's authorized IP ranges", details={})

    def refuses(self, user: User) -> bool:
        """Whether `user` is a static credential of a cluster whose local accounts are disabled."""
        return not self.local_accounts and user in self.local_users


OPEN = Policy()


def policy(*, authorized_ranges: list[str] | tuple[str, ...] = (), local_accounts: bool = True,
           local_users: frozenset[User] = frozenset(), pod_cidr: str = "") -> Policy:
    """A cluster's policy from the managed cluster's settings."""
    return Policy(tuple(ipaddress.ip_network(r, strict=False) for r in authorized_ranges), local_users,
                  local_accounts, pod_cidr)
