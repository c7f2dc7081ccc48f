"""The aggregation layer (upstream's kube-aggregator): APIService objects name a group-version
served by someone else than the cluster's own registries - an in-process add-on (`local`, e.g.
lks's metrics API) or an extension API server behind a Service (`proxy`). `registry` holds a
cluster's APIServices and local APIs, `availability` decides their `Available` condition
(`lks.controllers.apiservice` writes it), `discovery` merges them into discovery and `handler`
is where `lks.kube.http` routes their requests.
"""

from lks.kube.aggregator import discovery, handler
from lks.kube.aggregator.local import LocalAPI
from lks.kube.aggregator.registry import Aggregator

__all__ = ["Aggregator", "LocalAPI", "discovery", "handler"]
