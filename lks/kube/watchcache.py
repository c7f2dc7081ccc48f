"""The watch cache: every object of a resource in memory, a window of recent events, and the
fan-out of those events to watchers, so that `resourceVersion=0` lists and watches never touch
the store.

One store watch per cluster (`ClusterFeed`) follows every write to the cluster's keys and
dispatches each event to the cache of the resource whose key prefix it falls under. Caches
start lazily, on a resource's first cached read or watch, so an idle cluster costs memory
only. A watcher is a bounded queue; one that falls behind is ended, and its client re-watches,
as upstream's cacher does. `lks.kube.registry` decides when to read here and when to read the
store.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from lks import store, tasks

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Decode = Callable[[store.KeyValue], Obj]

# Recent events kept per resource: those younger than FRESH seconds (upstream's
# eventFreshDuration), at most WINDOW. Older resumptions are served from the store. Idle
# clusters so keep no history in memory: every object's past versions went with the window.
WINDOW = 1_000
FRESH = 75.0
# How far a watcher may fall behind (live events queued, or their stored bytes) before it is
# ended. Initial events are not counted: they are the cache's own objects, costing nothing more.
WATCHER_QUEUE = 10_000
WATCHER_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class CacheEvent:
    type: str  # ADDED | MODIFIED | DELETED
    revision: int
    key: str
    obj: Obj
    prev: Obj | None
    encoded: dict[str, bytes] = field(default_factory=dict)  # memo of serialized forms, by format
    at: float = 0.0  # monotonic time the cache applied it (0: an initial event, not a change)
    size: int = 0  # bytes of the stored value: what a queued version costs, roughly


class Watcher:
    """One client's view: a filter and a queue. `None` in the queue means the watch ended.

    The queue is bounded by `offer`, on the live events only (`backlog`): a watcher that falls
    `WATCHER_QUEUE` events or `WATCHER_BYTES` behind is terminated, as upstream's cacher
    terminates a watcher whose channel stays full; its client sees the stream end and watches
    again."""

    def __init__(self, matches: Callable[[Obj], bool]):
        self.matches = matches
        self.queue: asyncio.Queue[tuple[str, CacheEvent] | None] = asyncio.Queue()
        self.closed = False
        self.backlog = 0  # live events queued
        self.backlog_bytes = 0

    def offer(self, ev: CacheEvent) -> None:
        """Deliver `ev` as this watcher sees it: an object that stops matching is DELETED for
        it, one that starts matching is ADDED."""
        if self.closed:
            return
        now = self.matches(ev.obj) if ev.type != "DELETED" else False
        was = ev.prev is not None and self.matches(ev.prev)
        if ev.type == "DELETED":
            kind = "DELETED" if self.matches(ev.obj) else None
        elif now and was:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif was:
            kind = "DELETED"
        else:
            kind = None
        if kind is None:
            return
        if self.backlog >= WATCHER_QUEUE or self.backlog_bytes + ev.size > WATCHER_BYTES:
            self.terminate()
            return
        self.backlog += 1
        self.backlog_bytes += ev.size
        self.queue.put_nowait((kind, ev))

    def taken(self, ev: CacheEvent) -> None:
        """The consumer took `ev` off the queue."""
        if ev.at:
            self.backlog -= 1
            self.backlog_bytes -= ev.size

    def terminate(self) -> None:
        """End a watcher that fell behind; what it had queued is let go at once."""
        if self.closed:
            return
        log.info("terminating a watcher that fell %d events behind", self.backlog)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.backlog = self.backlog_bytes = 0
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class Handler:
    """An in-process consumer told of every change as the cache applies it (an informer)."""

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None: ...

    def cache_closed(self) -> None:
        """The cache was dropped (its feed re-listed): take the new one."""


class WatchCache:
    """All objects under one key prefix, kept current by the cluster feed."""

    def __init__(self, prefix: str, decode: Decode, feed: ClusterFeed | None = None):
        self.prefix = prefix
        self.decode = decode
        self.feed = feed
        self.objects: dict[str, Obj] = {}
        self.events: collections.deque[CacheEvent] = collections.deque(maxlen=WINDOW)
        self._revision = 0
        self.window_start = 0  # events after this revision are all in `events`
        self.watchers: set[Watcher] = set()
        self.handlers: list[Handler] = []
        self.ready = asyncio.Event()
        self._pending: list[store.Event] | None = []  # feed events that arrive while listing

    def load(self, listed: store.ListResult) -> None:
        self.objects = {kv.key: self.decode(kv) for kv in listed.items}
        self.revision = self.window_start = listed.revision
        pending, self._pending = self._pending or [], None
        for ev in pending:
            self.apply(ev)
        self.ready.set()

    def apply(self, ev: store.Event) -> None:
        if self._pending is not None:
            self._pending.append(ev)
            return
        if ev.revision <= self.revision:
            return  # already part of the initial list
        key = ev.kv.key
        prev = self.objects.get(key)
        if ev.type == "DELETE":
            obj = dict(prev) if prev is not None else self.decode(ev.kv)
            if prev is not None:
                obj["metadata"] = {**prev["metadata"], "resourceVersion": str(ev.revision)}
            self.objects.pop(key, None)
            cev = CacheEvent("DELETED", ev.revision, key, obj, prev)
        else:
            obj = self.decode(ev.kv)
            self.objects[key] = obj
            cev = CacheEvent("MODIFIED" if prev is not None else "ADDED", ev.revision, key, obj, prev)
        cev.size = len(ev.kv.value)
        events = self.events
        if len(events) == events.maxlen:
            self.window_start = events[0].revision
        cev.at = now = time.monotonic()
        events.append(cev)
        self.trim(now)
        self.revision = ev.revision
        for w in list(self.watchers):
            w.offer(cev)
        for h in self.handlers:
            try:
                h.deliver(cev.type, obj, prev)
            except Exception:  # a controller's bug must not stop the feed
                log.exception("handler of %s failed on %s", self.prefix, key)

    def trim(self, now: float) -> None:
        """Drop the events older than FRESH seconds."""
        events, horizon = self.events, now - FRESH
        while events and events[0].at < horizon:
            self.window_start = events.popleft().revision

    @property
    def revision(self) -> int:
        """Everything up to here is reflected. Once loaded, the cache is as current as its feed:
        the feed hands it every event under its prefix before it moves on."""
        if self._pending is None and self.feed is not None:
            return max(self._revision, self.feed.revision)
        return self._revision

    @revision.setter
    def revision(self, value: int) -> None:
        self._revision = value

    def covers(self, revision: int) -> bool:
        """Whether every event after `revision` is still in the window."""
        return self.window_start <= revision <= self.revision

    def subscribe(self, matches: Callable[[Obj], bool], *, after: int | None, initial: bool) -> Watcher:
        """A watcher that first gets the events after `after` (or, with `initial`, an ADDED
        event per current object), then every new one. Atomic: nothing can slip in between."""
        w = Watcher(matches)
        if initial:
            for key, obj in self.objects.items():
                if matches(obj):
                    w.queue.put_nowait(("ADDED", CacheEvent("ADDED", self.revision, key, obj, None)))
        elif after is not None:
            for ev in self.events:
                if ev.revision > after:
                    w.offer(ev)
        self.watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers.discard(w)
        w.close()

    def add_handler(self, handler: Handler) -> None:
        """Deliver every current object to `handler` (as ADDED), then every change, each as the
        cache applies it: no queue and no task between the cache and an in-process informer."""
        for obj in list(self.objects.values()):
            handler.deliver("ADDED", obj, None)
        self.handlers.append(handler)

    def remove_handler(self, handler: Handler) -> None:
        if handler in self.handlers:
            self.handlers.remove(handler)

    def close_all(self) -> None:
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()
        handlers, self.handlers = self.handlers, []
        for h in handlers:
            h.cache_closed()


class ClusterFeed:
    """The one store watch of a cluster, dispatching events to the resources' caches."""

    def __init__(self, backend: store.Backend, root: str):
        self.store = backend
        self.root = root
        self.caches: dict[str, WatchCache] = {}
        # in-process controllers: each event with its decoded object when a cache holds it
        # (read-only, shared), None otherwise
        self.listeners: list[Callable[[store.Event, Obj | None], None]] = []
        self.revision = 0
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Condition()
        self._starting: dict[str, asyncio.Task[WatchCache]] = {}
        self._next_trim = 0.0  # caches that see no events of their own are trimmed from here

    async def start(self) -> None:
        self.revision = await self.store.current_revision()
        self._task = asyncio.create_task(self._run(), name=f"feed {self.root}")

    async def stop(self) -> None:
        if self._task:
            await tasks.cancel(self._task)
        for cache in self.caches.values():
            cache.close_all()

    async def _run(self) -> None:
        while True:
            try:
                async for ev in self.store.watch(self.root, start_revision=self.revision + 1):
                    self._dispatch(ev)
            except store.Compacted:
                # fell behind the store's history: every cache re-lists from scratch
                log.warning("cluster feed %s fell behind; re-listing caches", self.root)
                self.revision = await self.store.current_revision()
                for prefix, cache in list(self.caches.items()):
                    cache.close_all()
                    del self.caches[prefix]

    def _dispatch(self, ev: store.Event) -> None:
        key, caches = ev.kv.key, self.caches
        obj = None
        # the caches whose prefix the key has: one lookup per directory level, not a scan
        cut = key.find("/", 1)
        while cut != -1:
            cache = caches.get(key[: cut + 1])
            if cache is not None:
                cache.apply(ev)
                if ev.type != "DELETE":
                    obj = cache.objects.get(key, obj)
            cut = key.find("/", cut + 1)
        self.revision = ev.revision
        for listener in self.listeners:
            listener(ev, obj)
        now = time.monotonic()
        if now >= self._next_trim:
            self._next_trim = now + FRESH
            for cache in caches.values():
                cache.trim(now)
        if self._moved._waiters:  # type: ignore[attr-defined]
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._moved:
            self._moved.notify_all()

    async def wait_for(self, revision: int, timeout: float) -> bool:
        """Wait until the feed has seen `revision`; False on timeout."""
        if self.revision >= revision:
            return True
        async with self._moved:
            try:
                await asyncio.wait_for(self._moved.wait_for(lambda: self.revision >= revision), timeout)
            except TimeoutError:
                return False
        return True

    async def cache(self, prefix: str, decode: Decode) -> WatchCache:
        """The cache for `prefix`, started (listed) on first use."""
        cache = self.caches.get(prefix)
        if cache is not None and cache.ready.is_set():
            return cache
        task = self._starting.get(prefix)
        if task is None:
            task = asyncio.ensure_future(self._start_cache(prefix, decode))
            self._starting[prefix] = task
            task.add_done_callback(lambda _t: self._starting.pop(prefix, None))
        return await asyncio.shield(task)

    async def _start_cache(self, prefix: str, decode: Decode) -> WatchCache:
        cache = WatchCache(prefix, decode, self)
        self.caches[prefix] = cache  # buffer feed events from now on
        try:
            cache.load(await self.store.list(prefix))
        except BaseException:
            self.caches.pop(prefix, None)
            raise
        return cache


async def drain(w: Watcher) -> AsyncIterator[tuple[str, CacheEvent]]:
    """The events of watcher `w` until it ends."""
    while True:
        item = await w.queue.get()
        if item is None:
            return
        w.taken(item[1])
        yield item
