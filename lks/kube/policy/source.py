"""A cluster's ValidatingAdmissionPolicies and their bindings, compiled and indexed (upstream's
`generic.PolicySource`): the watch caches of both resources tell it every change as they apply
it, each changed policy or binding is compiled then, and requests only look up the policies
whose rules can match their resource (`candidates`). A resource no bound policy names costs one
dictionary lookup.

It starts on the first admission request of the cluster (listing both caches once) and follows
a re-listed cache by starting again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lks.kube import watchcache
from lks.kube.policy.compiled import Binding, Policy

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry

Obj = dict[str, Any]
GROUP, VERSION = "admissionregistration.k8s.io", "v1"


class _Feed(watchcache.Handler):
    def __init__(self, source: PolicySource, on_change: Any):
        self.source = source
        self.on_change = on_change

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self.on_change(kind, obj)

    def cache_closed(self) -> None:
        self.source.started = False


class PolicySource:
    def __init__(self, cluster: Cluster, policies: str = "validatingadmissionpolicies",
                 bindings: str = "validatingadmissionpolicybindings"):
        self.cluster = cluster
        self._resources = (policies, bindings)
        self.policies: dict[str, Policy] = {}
        self.bindings: dict[str, Binding] = {}
        self.started = False
        self._lock = asyncio.Lock()
        self._index: dict[str, list[Policy]] | None = None  # resource name ("*" too) -> bound policies
        self._feeds: list[tuple[watchcache.WatchCache, _Feed]] = []

    def _registries(self) -> tuple[Registry, Registry]:
        p, b = self._resources
        return self.cluster.registry(GROUP, VERSION, p), self.cluster.registry(GROUP, VERSION, b)

    async def start(self) -> None:
        async with self._lock:
            if self.started:
                return
            for cache, feed in self._feeds:
                cache.remove_handler(feed)
            self._feeds = []
            self.policies, self.bindings, self._index = {}, {}, None
            policies, bindings = self._registries()
            for reg, on_change in ((policies, self._on_policy), (bindings, self._on_binding)):
                cache = await reg.cache()
                feed = _Feed(self, on_change)
                cache.add_handler(feed)
                self._feeds.append((cache, feed))
            self.started = True

    # -- events (synchronous, in the feed) ----------------------------------------------

    def _on_policy(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        self._index = None
        if kind == "DELETED":
            self.policies.pop(name, None)
            return
        old = self.policies.get(name)
        if old is not None and old.generation == obj["metadata"].get("generation") and old.uid == obj["metadata"].get("uid"):
            return  # a status write: the spec is what was compiled
        policy = Policy.compile(obj)
        policy.bindings = {n: b for n, b in self.bindings.items() if b.policy_name == name}
        self.policies[name] = policy

    def _on_binding(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        self._index = None
        old = self.bindings.pop(name, None)
        if old is not None and old.policy_name in self.policies:
            self.policies[old.policy_name].bindings.pop(name, None)
        if kind == "DELETED":
            return
        binding = self.bindings[name] = Binding.compile(obj)
        if binding.policy_name in self.policies:
            self.policies[binding.policy_name].bindings[name] = binding

    # -- lookups --------------------------------------------------------------------------

    def candidates(self, resource: str) -> list[Policy]:
        """The bound policies whose resource rules can match `resource` (in some group)."""
        index = self._index
        if index is None:
            index = self._index = self._build_index()
        if not index:
            return []
        named, anything = index.get(resource), index.get("*")
        if named and anything:
            return named + anything
        return named or anything or []

    def _build_index(self) -> dict[str, list[Policy]]:
        index: dict[str, list[Policy]] = {}
        for policy in sorted(self.policies.values(), key=lambda p: p.name):
            policy.ordered = tuple(sorted(policy.bindings.values(), key=lambda b: b.name))
            if not policy.bindings:
                continue
            names = policy.criteria.resource_names()
            for name in ("*",) if names is None or "*" in names else sorted(names):
                index.setdefault(name, []).append(policy)
        return index
