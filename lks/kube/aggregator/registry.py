"""A cluster's aggregation state: the local APIs registered in process (by group/version) and
the APIServices of its store, kept in step by a feed listener (so routing a request costs a
dict lookup), with the resource lists fetched from extension servers by the availability check.
`lks.kube.http` asks `target` whether a group-version is aggregated and `discovery` merges them;
`availability` writes their `Available` condition, `proxy` serves their requests.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from lks import store
from lks.kube.aggregator import frontproxy, proxy
from lks.kube.aggregator.local import LocalAPI

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
PREFIX = "/registry/apiregistration.k8s.io/apiservices/"


class Aggregator:
    def __init__(self) -> None:
        self.local: dict[tuple[str, str], LocalAPI] = {}
        self.services: dict[str, Obj] = {}  # APIService name -> object, from the store
        self.backed: set[str] = set()  # the names of those with a Service (not the cluster's own)
        self.remote: dict[tuple[str, str], list[Obj]] = {}  # resource lists extension servers gave
        self.generation = 0  # bumped on every change discovery depends on
        self.memo: dict[str, Any] = {}  # discovery documents built for one generation
        # told (group, version) when a local API comes or goes: the availability controller
        self.listeners: list[Callable[[str, str], None]] = []
        self.front_proxy: frontproxy.FrontProxy | None = None  # set by start
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    def register_local(self, group: str, version: str, api: LocalAPI) -> None:
        """Serve `/apis/<group>/<version>` in process by `api` (whether or not the add-on's
        APIService names a Service: lks's add-ons run here, not in their pods)."""
        self.local[(group, version)] = api
        self.generation += 1
        self._tell(group, version)

    def unregister_local(self, group: str, version: str) -> None:
        if self.local.pop((group, version), None) is not None:
            self.generation += 1
            self._tell(group, version)

    def _tell(self, group: str, version: str) -> None:
        for listener in self.listeners:
            listener(group, version)

    async def start(self, cluster: Cluster) -> None:
        self.front_proxy = await frontproxy.load(cluster.store)
        cluster.feed.listeners.append(self._on_event)
        listed = await cluster.store.list(PREFIX)
        self.services = {kv.key[len(PREFIX):]: orjson.loads(kv.value) for kv in listed.items}
        self.backed = {name for name, svc in self.services.items() if (svc.get("spec") or {}).get("service")}
        self.generation += 1

    def _on_event(self, ev: store.Event, _obj: Obj | None = None) -> None:
        if not ev.kv.key.startswith(PREFIX):
            return
        name = ev.kv.key[len(PREFIX):]
        svc = None if ev.type == "DELETE" else orjson.loads(ev.kv.value)
        if svc is None:
            self.services.pop(name, None)
        else:
            self.services[name] = svc
        if svc is not None and (svc.get("spec") or {}).get("service"):
            self.backed.add(name)
        else:
            self.backed.discard(name)
        self.generation += 1

    @property
    def active(self) -> bool:
        """Whether anything is aggregated (else discovery and routing take their fast paths)."""
        return bool(self.backed or self.local)

    def context(self, spec: Obj, *, verify: bool = True) -> ssl.SSLContext:
        """The TLS client context for an APIService's `spec` (its trust, the front-proxy client
        certificate), built once per trust; `verify=False` for the availability check."""
        key = (spec.get("caBundle") or "", bool(spec.get("insecureSkipTLSVerify")) or not verify)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = proxy.tls_context({"caBundle": key[0], "insecureSkipTLSVerify": key[1]})
            if self.front_proxy is not None:
                self.front_proxy.present(ctx)
            if len(self._contexts) > 64:  # APIServices come and go: keep it bounded
                self._contexts.clear()
            self._contexts[key] = ctx
        return ctx

    def set_remote(self, group: str, version: str, resources: list[Obj] | None) -> None:
        """What the availability check read from the extension server (None: forget it)."""
        if resources is None:
            if self.remote.pop((group, version), None) is not None:
                self.generation += 1
        elif self.remote.get((group, version)) != resources:
            self.remote[(group, version)] = resources
            self.generation += 1

    def target(self, served: Any, group: str, version: str) -> tuple[Obj | None, LocalAPI | None] | None:
        """Whether requests under `/apis/<group>/<version>` leave the cluster's registries:
        (its APIService, its local API), or None. `served(group, version)` says whether the
        catalog serves it (built-in and CRD types keep their own routes)."""
        local = self.local.get((group, version))
        svc = self.services.get(f"{version}.{group}")
        if local is None and (svc is None or not (svc.get("spec") or {}).get("service")):
            return None
        if served(group, version):
            return None
        return svc, local

    def aggregated(self, served: Any) -> list[tuple[str, str, Obj | None, LocalAPI | None]]:
        """Every aggregated group-version: (group, version, APIService, local API)."""
        out: dict[tuple[str, str], tuple[str, str, Obj | None, LocalAPI | None]] = {}
        for svc in self.services.values():
            spec = svc.get("spec") or {}
            g, v = spec.get("group") or "", spec.get("version") or ""
            if g and v and spec.get("service") and not served(g, v):
                out[(g, v)] = (g, v, svc, self.local.get((g, v)))
        for (g, v), api in self.local.items():
            if (g, v) not in out and not served(g, v):
                out[(g, v)] = (g, v, self.services.get(f"{v}.{g}"), api)
        return list(out.values())
