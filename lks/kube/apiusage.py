"""Usage of API versions that a later Kubernetes minor removes, per cluster: for each such
(group, version, resource), the user agents that wrote through it and when each was last seen.

AKS keeps this to stop a control-plane upgrade that would break a client still using a removed
API (`stop-cluster-upgrade-api-breaking-changes.md`): read-only verbs (get, list, watch) do not
count, and a use counts for 12 hours. The HTTP layer (`lks.kube.http.app`) calls `record` for
each write; `lks.upgrade.apis` reads `seen` before an upgrade. The table lives in memory and in
the cluster's own store (one key beside `/registry/`, written at most once a minute per client),
so a restart of the service keeps what the last hours saw.
"""

from __future__ import annotations

import asyncio

import orjson

from lks import store
from lks.clock import Clock
from lks.kube import lifecycle

KEY = "/lks/deprecatedapiusage"
READ_ONLY = frozenset(("get", "list", "watch"))
RETENTION = 12 * 3600.0  # seconds a use counts (AKS's window); older entries are dropped
_PERSIST_EVERY = 60.0  # a client's newer sighting is written when the stored one is this old

Table = dict[str, dict[str, float]]  # "group/version/resource" -> user agent -> last seen (epoch s)


def api_key(group: str, version: str, resource: str) -> str:
    return f"{group}/{version}/{resource}"


class Usage:
    def __init__(self, backend: store.Backend, clock: Clock):
        self._store = backend
        self._clock = clock
        self._table: Table = {}
        self._persisted: Table = {}
        self._revision: int | None = None  # mod_revision of the stored key; None: not there
        self._loaded = False
        self._lock = asyncio.Lock()

    async def record(self, group: str, version: str, resource: str, verb: str, user_agent: str | None) -> None:
        """Note a request; only writes to a version in the lifecycle table count."""
        if verb in READ_ONLY or lifecycle.lookup(group, version, resource) is None:
            return
        await self._load()
        now = self._clock.now()
        key, agent = api_key(group, version, resource), user_agent or ""
        self._table.setdefault(key, {})[agent] = now
        if now - self._persisted.get(key, {}).get(agent, 0.0) >= _PERSIST_EVERY:
            await self._save()

    async def seen(self) -> Table:
        """Every use within the last 12 hours: key -> user agent -> last seen."""
        await self._load()
        horizon = self._clock.now() - RETENTION
        return {key: {agent: at for agent, at in agents.items() if at > horizon}
                for key, agents in self._table.items() if any(at > horizon for at in agents.values())}

    async def _load(self) -> None:
        if self._loaded:
            return
        async with self._lock:
            if self._loaded:
                return
            kv = await self._store.get(KEY)
            if kv is not None:
                self._revision = kv.mod_revision
                stored = orjson.loads(kv.value)
                for key, agents in stored.items():
                    mine = self._table.setdefault(key, {})
                    for agent, at in agents.items():
                        mine[agent] = max(mine.get(agent, 0.0), at)
                self._persisted = {k: dict(v) for k, v in stored.items()}
            self._loaded = True

    async def _save(self) -> None:
        async with self._lock:
            horizon = self._clock.now() - RETENTION
            table = {key: kept for key, agents in self._table.items()
                     if (kept := {a: at for a, at in agents.items() if at > horizon})}
            value = orjson.dumps(table)
            for _ in range(3):  # another writer of this cluster's store moved the key: read, retry
                try:
                    if self._revision is None:
                        self._revision = await self._store.create(KEY, value)
                    else:
                        self._revision = await self._store.update(KEY, value, mod_revision=self._revision)
                    self._persisted = {k: dict(v) for k, v in table.items()}
                    return
                except (store.KeyExists, store.RevisionConflict, store.NotFound):
                    kv = await self._store.get(KEY)
                    self._revision = kv.mod_revision if kv is not None else None
