"""Informers for in-process controllers: a resource's watch cache is the lister, and every
change to it is handed to an event handler as the cache applies it (synchronously: handlers
only note what changed and queue work). Controllers read `objects` and never change what
they read; they write through the registries, like any API client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from lks.kube import watchcache
from lks.kube.registry import Registry

Obj = dict[str, Any]
Handler = Callable[[str, Obj, Obj | None], None]  # (event type, object, previous)


class Informer(watchcache.Handler):
    def __init__(self, registry: Registry, handler: Handler):
        self.registry = registry
        self.handler = handler
        self.cache: watchcache.WatchCache | None = None
        self._task: asyncio.Task[None] | None = None  # taking a new cache after a re-list
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False
        self.cache = await self.registry.cache()
        self.cache.add_handler(self)

    async def stop(self) -> None:
        self._stopped = True
        if self.cache is not None:
            self.cache.remove_handler(self)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self.handler(kind, obj, prev)

    def cache_closed(self) -> None:
        if not self._stopped:  # start over from the new cache's state
            self._task = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self) -> None:
        cache = await self.registry.cache()
        if not self._stopped:
            self.cache = cache
            cache.add_handler(self)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        assert self.cache is not None
        return self.cache.objects.get(self.registry.key(namespace, name))

    def list(self) -> list[Obj]:
        assert self.cache is not None
        return list(self.cache.objects.values())
