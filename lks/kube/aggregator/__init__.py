"""The aggregation layer (upstream's kube-aggregator): APIService objects name a group-version
served by someone else than the cluster's own registries - an in-process add-on (`local`, e.g.
lks's metrics-server) or an extension API server behind a Service (`proxy`). `registry` holds a
cluster's APIServices and local APIs, `availability` sets their `Available` condition, and
`lks.kube.http` merges them into discovery and routes their requests here.
"""

from lks.kube.aggregator.local import LocalAPI
from lks.kube.aggregator.registry import Aggregator

__all__ = ["Aggregator", "LocalAPI"]
