"""Service virtual IPs for the Process pools' pod network, as kube-proxy's nftables mode: one
table, `inet lks-proxy`, in each cluster's network namespace (`lks.net.podnet`).

- `model`: Service ports, endpoints, nodes and hostPorts, read from API objects.
- `rules`: the nftables table and its incremental updates (pure).
- `nft`: running `nft -f -` inside a namespace.
- `proxier`: the feed (watch caches) and the sync loop; `lks.nodes.process` starts one.
"""

from lks.net.proxy.proxier import Proxier

__all__ = ["Proxier"]
