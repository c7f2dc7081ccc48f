"""ARM resources as revisioned documents in the service's store.

Resource ids are case-insensitive in ARM but keep the case they were created with, so a
document's key is its lowercased id under `/arm/` and the document keeps the id as written.
Fields lks keeps for itself live under `_lks` and never leave through the API (`public`).
Writes use the store's revisions for optimistic concurrency (and ARM's `eTag`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from lks import store

PREFIX = "/arm"
PRIVATE = "_lks"

Doc = dict[str, Any]


def key(resource_id: str) -> str:
    return PREFIX + resource_id.lower()


@dataclass(slots=True)
class Stored:
    doc: Doc
    revision: int


class Documents:
    def __init__(self, backend: store.Backend):
        self.store = backend

    async def get(self, resource_id: str) -> Stored | None:
        kv = await self.store.get(key(resource_id))
        return Stored(orjson.loads(kv.value), kv.mod_revision) if kv else None

    async def list(self, prefix_id: str) -> list[Doc]:
        """Documents whose id starts with `prefix_id/` (children of a collection)."""
        res = await self.store.list(key(prefix_id).rstrip("/") + "/")
        return [orjson.loads(kv.value) for kv in res.items]

    async def create(self, doc: Doc) -> int:
        return await self.store.create(key(doc["id"]), orjson.dumps(doc))

    async def update(self, doc: Doc, revision: int) -> int:
        return await self.store.update(key(doc["id"]), orjson.dumps(doc), mod_revision=revision)

    async def put(self, doc: Doc) -> int:
        """Create or overwrite, whatever is there (operation records, internal state)."""
        k = key(doc["id"])
        for _ in range(8):
            kv = await self.store.get(k)
            try:
                if kv is None:
                    return await self.store.create(k, orjson.dumps(doc))
                return await self.store.update(k, orjson.dumps(doc), mod_revision=kv.mod_revision)
            except (store.KeyExists, store.RevisionConflict, store.NotFound):
                continue
        raise store.StoreError(f"could not write {doc['id']}")

    async def delete(self, resource_id: str) -> None:
        try:
            await self.store.delete(key(resource_id))
        except store.NotFound:
            pass


def public(doc: Doc) -> Doc:
    """A document as the API shows it: without lks's private fields, at any depth we nest."""
    out = {k: v for k, v in doc.items() if k != PRIVATE}
    props = out.get("properties")
    if isinstance(props, dict) and PRIVATE in props:
        out["properties"] = {k: v for k, v in props.items() if k != PRIVATE}
    return out


def new_etag() -> str:
    return str(uuid.uuid4())
