"""What every queue-driven controller wires the same way (sample-controller's `NewController`
and `Run`): informers whose handlers only note changes and queue keys, one `WorkQueue` whose
workers call `sync(key)`, started once the informers' caches are there and stopped before
them.

A controller subclasses `Controller`, makes its informers with `watch` (they start in that
order and stop in reverse), may `prime` indexes or queue first keys from the started caches
before the first sync, and writes its decisions in `sync`. Controllers that own more than
this (the job controller's second queue, the garbage collector's feed listener) extend
`start`/`stop` around the base's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

from lks import tasks
from lks.controllers import identities
from lks.controllers.informer import Handler, Informer
from lks.controllers.workqueue import WorkQueue
from lks.kube.authn import acting_as
from lks.kube.cluster import Cluster
from lks.kube.registry import Registry

K = TypeVar("K", bound=Hashable)


class Controller(Generic[K]):
    def __init__(self, cluster: Cluster, *, name: str, workers: int = 4):
        self.cluster = cluster
        self.clock = cluster.clock
        self.queue: WorkQueue[K] = WorkQueue(self.sync, name=name, workers=workers, clock=cluster.clock)
        self.identity = identities.of(name)  # who its writes are authorized as (None: the API server)
        self._reader = identities.informers_of(name)  # who its informers list and watch as
        self._informers: list[Informer] = []
        self._syncing: asyncio.Task[None] | None = None  # waiting for informers not yet allowed

    def watch(self, registry: Registry, handler: Handler) -> Informer:
        """An informer on `registry` feeding `handler`, started and stopped with the controller."""
        informer = Informer(registry, handler, identity=self._reader)
        self._informers.append(informer)
        return informer

    async def start(self) -> None:
        with acting_as(self.identity):  # its workers, started here, act as it
            for informer in self._informers:
                await informer.start()
            if all(informer.synced.is_set() for informer in self._informers):
                self._run()
            else:  # as WaitForCacheSync: no sync before every informer lists (the others start meanwhile)
                self._syncing = asyncio.create_task(self._run_when_synced(), name=f"{self.queue.name} sync")

    async def _run_when_synced(self) -> None:
        for informer in self._informers:
            await informer.synced.wait()
        self._run()

    def _run(self) -> None:
        self.prime()
        self.queue.start()

    def prime(self) -> None:
        """Runs once, after the informers started and before the first sync: index what their
        caches hold (their events arrive later), queue the keys that need a first look."""

    async def stop(self) -> None:
        if self._syncing is not None:
            await tasks.cancel(self._syncing)
            self._syncing = None
        await self.queue.stop()
        for informer in reversed(self._informers):
            await informer.stop()

    async def sync(self, key: K) -> None:
        """Compare what is wanted with what is, write the difference; safe to run again."""
        raise NotImplementedError
