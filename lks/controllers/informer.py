"""Informers for in-process controllers: a resource's watch cache is the lister, and every
change to it is handed to an event handler. Controllers read `objects` and never change what
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


class Informer:
    def __init__(self, registry: Registry, handler: Handler):
        self.registry = registry
        self.handler = handler
        self.cache: watchcache.WatchCache | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.cache = await self.registry.cache()
        watcher = self.cache.subscribe(lambda _obj: True, after=None, initial=True)
        self._task = asyncio.create_task(self._run(watcher), name=f"informer {self.registry.rt.resource}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, watcher: watchcache.Watcher) -> None:
        cache = self.cache
        assert cache is not None
        try:
            while True:
                async for kind, ev in watchcache.drain(watcher):
                    self.handler(kind, ev.obj, ev.prev)
                # ended (the feed re-listed or we lagged): start over from the current state
                cache = self.cache = await self.registry.cache()
                watcher = cache.subscribe(lambda _obj: True, after=None, initial=True)
        finally:
            cache.unsubscribe(watcher)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        assert self.cache is not None
        return self.cache.objects.get(self.registry.key(namespace, name))

    def list(self) -> list[Obj]:
        assert self.cache is not None
        return list(self.cache.objects.values())
