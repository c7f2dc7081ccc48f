"""Informers for in-process controllers: a resource's watch cache is the lister, and every
change to it is handed to an event handler as the cache applies it (synchronously: handlers
only note what changed and queue work). Controllers read `objects` and never change what
they read; they write through the registries, like any API client.

An informer with an `identity` reads as that user (kube-controller-manager's shared informers
are `system:kube-controller-manager`'s, the scheduler's `system:kube-scheduler`'s): each time it
(re)subscribes, as a reflector lists and watches, the identity must be allowed to list and watch
the resource at the cluster scope. When it is not, the informer logs the reflector's words and
tries again with the reflector's backoff; it has synced (`synced`) once it is allowed.
`may_read` is that check, shared with the garbage collector's per-resource monitors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lks import tasks
from lks.kube import authz, watchcache
from lks.kube.authn import User
from lks.kube.catalog import ResourceType
from lks.kube.cluster import Cluster
from lks.kube.registry import Registry

Obj = dict[str, Any]
Handler = Callable[[str, Obj, Obj | None], None]  # (event type, object, previous)
log = logging.getLogger(__name__)

_BACKOFF = (0.8, 30.0)  # seconds: the reflector's first and longest wait after a failed list


class Informer(watchcache.Handler):
    def __init__(self, registry: Registry, handler: Handler, *, identity: User | None = None):
        self.registry = registry
        self.handler = handler
        self.identity = identity  # who lists and watches (None: the API server itself)
        self.cache: watchcache.WatchCache | None = None
        self.synced = asyncio.Event()  # set once the first subscription is made
        self._task: asyncio.Task[None] | None = None  # taking a new cache after a re-list
        self._stopped = False

    async def start(self) -> None:
        """Subscribe to the cache, or (not allowed) go on trying in the background."""
        self._stopped = False
        if await self._allowed():
            self._subscribe(await self.registry.cache())
        else:
            self._task = asyncio.get_running_loop().create_task(self._resubscribe(denied=True))

    def _subscribe(self, cache: watchcache.WatchCache) -> None:
        self.cache = cache
        cache.add_handler(self)
        self.synced.set()

    async def _allowed(self) -> bool:
        return await may_read(self.registry.cluster, self.identity, self.registry.rt)

    async def stop(self) -> None:
        self._stopped = True
        if self.cache is not None:
            self.cache.remove_handler(self)
        if self._task:
            await tasks.cancel(self._task)
            self._task = None

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self.handler(kind, obj, prev)

    def cache_closed(self) -> None:
        if not self._stopped:  # start over from the new cache's state
            self._task = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self, *, denied: bool = False) -> None:
        """A re-list: authorized again, retried with backoff until allowed (the informer keeps
        what it had meanwhile, as a reflector's store does). `denied`: the first try was."""
        delay = _BACKOFF[0]
        while denied or not await self._allowed():
            denied = False
            await self.registry.cluster.clock.sleep(delay)
            delay = min(delay * 2, _BACKOFF[1])
        cache = await self.registry.cache()
        if not self._stopped:
            self._subscribe(cache)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        assert self.cache is not None
        return self.cache.objects.get(self.registry.key(namespace, name))

    def list(self) -> list[Obj]:
        assert self.cache is not None
        return list(self.cache.objects.values())


async def may_read(cluster: Cluster, identity: User | None, rt: ResourceType, *, what: str = "") -> bool:
    """Whether `identity` may list and watch `rt` at the cluster scope, as a reflector's list and
    watch need; if not, the reflector's log line. `what`: the type it names (`*v1.Pod` unless
    told: a metadata informer's is `*v1.PartialObjectMetadata`)."""
    if identity is None:
        return True
    for verb in ("list", "watch"):
        attrs = authz.Attributes(identity, verb, True, "", rt.group, rt.version, rt.resource)
        decision, reason = await cluster.authorizer.authorize(attrs)
        if decision != authz.ALLOW:
            log.warning("failed to %s %s: %s", verb, what or f"*{rt.version}.{rt.kind}",
                        authz.forbidden(attrs, reason).message)
            return False
    return True
