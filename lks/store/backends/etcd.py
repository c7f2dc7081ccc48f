"""The etcd backend: `Backend` over an etcd v3 server through the asyncio client `etcd3aio`.

Every key lives under the URL's path as a prefix, so several clusters share one etcd; lists,
counts and watches stay inside it and keys come back without it. Writes are single
transactions guarded the way kube-apiserver guards them (create: `create_revision == 0`;
update and delete: `mod_revision == N`, reading the current value when that fails).

Revisions and compaction are etcd's own, hence global to the etcd server, with one shift: etcd
forgets a deletion made at exactly its compact revision, so a watch from there would miss it.
So `compact(rev)` compacts etcd to `rev - 1` and watches start one revision early, which keeps
`compact_revision()` readable and watchable as the protocol promises. etcd reports a watch on a
compacted revision as a cancelled response that etcd3aio would quietly resume; here it raises
`Compacted`. etcd3aio is imported lazily (it edits `sys.path` for its generated protobuf
modules), so importing `lks.store` does not need it.

An etcd that cannot be reached raises `Unavailable` (after etcd3aio's few quick retries), one
that does not answer within the request timeout (60 s, kube-apiserver's `--request-timeout`)
`Timeout`: `lks.kube.errors` answers them as kube-apiserver answers a storage outage.

URL: `etcd://host:port[,host:port...]/prefix[?request-timeout=seconds]`. Registers the `etcd` scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from lks import store
from lks.store.types import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyValue,
    ListResult,
    NotFound,
    RevisionConflict,
    StoreError,
    Timeout,
    Unavailable,
)

if TYPE_CHECKING:
    from etcd3aio import Etcd3Client
    from etcd3aio.kv import KVService


def _etcd() -> Any:
    """The etcd3aio modules, imported on first use."""
    import etcd3aio
    from etcd3aio import kv
    from etcd3aio._protobuf import rpc_pb2

    return etcd3aio, kv, rpc_pb2


REQUEST_TIMEOUT = 60.0  # seconds, as kube-apiserver's --request-timeout


class EtcdBackend:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.endpoints = [e for e in parts.netloc.split(",") if e] or ["127.0.0.1:2379"]
        self.timeout = float(parse_qs(parts.query).get("request-timeout", [REQUEST_TIMEOUT])[0])
        path = unquote(parts.path).rstrip("/")
        # The trailing "/" keeps prefix "/a" from seeing the keys of prefix "/ab".
        self.prefix = f"{path}/".encode() if path else b""
        self._client: Etcd3Client | None = None
        self._closing = False
        self._etcd_compact = 0  # etcd's compact revision as far as we know (ours is one more)

    async def start(self) -> None:
        etcd3aio, _, _ = _etcd()
        self._client = etcd3aio.Etcd3Client(self.endpoints)
        await self._client.connect()

    async def close(self) -> None:
        self._closing = True
        if self._client is not None:
            await self._client.close()

    @property
    def _kv(self) -> KVService:
        if self._client is None or self._client.kv is None:
            raise StoreError("store is not started")
        return self._client.kv

    # -- keys and values

    def _key(self, key: str) -> bytes:
        return self.prefix + key.encode()

    def _range(self, prefix: str) -> tuple[bytes, bytes]:
        """etcd's [key, range_end) for every key under `prefix`."""
        _, kv, _ = _etcd()
        full = self._key(prefix)
        return (full, kv.prefix_range_end(full)) if full else (b"\0", b"\0")

    def _kv_of(self, kv: Any) -> KeyValue:
        return KeyValue(kv.key[len(self.prefix) :].decode(), kv.value, kv.create_revision, kv.mod_revision)

    async def _rpc(self, method: Any, *args: Any, at: int = 0, **kwargs: Any) -> Any:
        """Call an etcd3aio method, turning etcd's errors into `StoreError`s (`at`: the revision
        asked for, for the message)."""
        import grpc

        try:
            with _outage():
                return await method(*args, timeout=self.timeout, **kwargs)
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if "required revision has been compacted" in details:
                raise Compacted(at, await self.compact_revision()) from exc
            if "required revision is a future revision" in details:
                raise FutureRevision(at, await self.current_revision()) from exc
            raise StoreError(f"etcd: {exc.code().name}: {details}") from exc

    async def _get(self, key: bytes, range_end: bytes | None = None, *, revision: int = 0, **kwargs: Any) -> Any:
        if 0 < revision <= self._etcd_compact:
            # etcd itself still serves its compact revision, one below ours (see above).
            raise Compacted(revision, self._etcd_compact + 1)
        return await self._rpc(self._kv.get, key, range_end, revision=revision, at=revision, **kwargs)

    # -- reads

    async def current_revision(self) -> int:
        return (await self._get(self.prefix or b"\0", count_only=True)).header.revision

    async def compact_revision(self) -> int:
        """etcd does not tell its compact revision: search for the oldest revision it serves."""
        import grpc

        lo, hi = max(self._etcd_compact, 1), await self.current_revision()
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                with _outage():
                    await self._kv.get(self.prefix or b"\0", revision=mid, count_only=True, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if "compacted" not in (exc.details() or ""):
                    raise StoreError(f"etcd: {exc.details()}") from exc
                lo = mid + 1
            else:
                hi = mid
        if lo <= 1:  # 1 is etcd's first revision: nothing was compacted
            return 0
        self._etcd_compact = lo
        return lo + 1

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        resp = await self._get(self._key(key), revision=revision or 0)
        return self._kv_of(resp.kvs[0]) if resp.kvs else None

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        start: str | None = None,
        limit: int | None = None,
    ) -> ListResult:
        key, range_end = self._range(prefix)
        if start is not None and self._key(start) > key:
            key = self._key(start)
        resp = await self._get(key, range_end, revision=revision or 0, limit=limit or 0)
        return ListResult(
            items=[self._kv_of(kv) for kv in resp.kvs],
            revision=revision or resp.header.revision,
            more=bool(resp.more),
        )

    async def count(self, prefix: str) -> int:
        key, range_end = self._range(prefix)
        return (await self._get(key, range_end, count_only=True)).count

    # -- writes

    def _compare_mod(self, key: bytes, mod_revision: int) -> list[Any]:
        """The key exists and was last modified at `mod_revision`."""
        _, kv, rpc_pb2 = _etcd()
        compare = rpc_pb2.Compare
        exists = kv.KVService.txn_compare_create_revision(key, 0, result=compare.GREATER)
        return [exists, compare(result=compare.EQUAL, target=compare.MOD, key=key, mod_revision=mod_revision)]

    def _failed(self, key: str, resp: Any) -> StoreError:
        kvs = resp.responses[0].response_range.kvs
        return RevisionConflict(key, self._kv_of(kvs[0])) if kvs else NotFound(key)

    async def create(self, key: str, value: bytes) -> int:
        _, kv, _ = _etcd()
        k = self._key(key)
        resp = await self._rpc(
            self._kv.txn, [kv.KVService.txn_compare_create_revision(k, 0)], [kv.KVService.txn_op_put(k, bytes(value))]
        )
        if not resp.succeeded:
            raise KeyExists(key)
        return resp.header.revision

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        _, kv, _ = _etcd()
        k = self._key(key)
        resp = await self._rpc(
            self._kv.txn,
            self._compare_mod(k, mod_revision),
            [kv.KVService.txn_op_put(k, bytes(value))],
            [kv.KVService.txn_op_get(k)],
        )
        if not resp.succeeded:
            raise self._failed(key, resp)
        return resp.header.revision

    async def delete(self, key: str, *, mod_revision: int | None = None) -> tuple[int, KeyValue]:
        _, kv, _ = _etcd()
        k = self._key(key)
        if mod_revision is None:
            deleted = await self._rpc(self._kv.delete, k, prev_kv=True)
            if not deleted.deleted:
                raise NotFound(key)
            return deleted.header.revision, self._kv_of(deleted.prev_kvs[0])
        resp = await self._rpc(
            self._kv.txn,
            self._compare_mod(k, mod_revision),
            [kv.KVService.txn_op_delete(k, prev_kv=True)],
            [kv.KVService.txn_op_get(k)],
        )
        if not resp.succeeded:
            raise self._failed(key, resp)
        return resp.header.revision, self._kv_of(resp.responses[0].response_delete_range.prev_kvs[0])

    async def drop(self) -> None:
        if not self.prefix:  # a whole etcd is never one cluster's to wipe
            raise StoreError("refusing to drop an etcd store without a key prefix")
        key, range_end = self._range("")
        await self._rpc(self._kv.delete, key, range_end)
        await self.close()

    # -- watch and compaction

    def _event(self, ev: Any) -> Event:
        prev = self._kv_of(ev.prev_kv) if ev.HasField("prev_kv") else None
        if ev.type == ev.DELETE:
            # etcd's delete event carries only key and revision; report the value deleted.
            value, create_rev = (prev.value, prev.create_revision) if prev else (b"", 0)
            kv = KeyValue(self._kv_of(ev.kv).key, value, create_rev, ev.kv.mod_revision)
            return Event("DELETE", kv, prev)
        return Event("PUT", self._kv_of(ev.kv), prev)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        import grpc

        if self._client is None or self._client.watch is None:
            raise StoreError("store is not started")
        key, range_end = self._range(prefix)
        # One revision early, so etcd refuses a start below our compact revision (see above).
        responses = self._client.watch.watch(key, range_end, start_revision=max(start_revision - 1, 1), prev_kv=True)
        async with contextlib.aclosing(responses):
            try:
                async for resp in responses:
                    if resp.compact_revision:
                        self._etcd_compact = max(self._etcd_compact, resp.compact_revision)
                        raise Compacted(start_revision, resp.compact_revision + 1)
                    if resp.canceled:
                        raise StoreError(f"etcd cancelled the watch: {resp.cancel_reason}")
                    for ev in resp.events:
                        if ev.kv.mod_revision >= start_revision:
                            yield self._event(ev)
            except asyncio.CancelledError:
                # grpc reports its channel closing under a pending read as a cancellation; when
                # close() did that and nobody cancelled us, the watch just ends.
                task = asyncio.current_task()
                if self._closing and task is not None and not task.cancelling():
                    return
                raise
            except grpc.aio.AioRpcError as exc:
                if self._closing and exc.code() == grpc.StatusCode.CANCELLED:
                    return
                raise StoreError(f"etcd watch failed: {exc.details()}") from exc

    async def compact(self, revision: int) -> None:
        current = await self.current_revision()
        if revision > current:
            raise FutureRevision(revision, current)
        if revision - 1 <= max(self._etcd_compact, 1):
            return
        try:
            await self._rpc(self._kv.compact, revision - 1, at=revision)
        except Compacted:
            return  # someone compacted etcd at least this far
        self._etcd_compact = revision - 1


@contextlib.contextmanager
def _outage() -> Iterator[None]:
    """etcd's unavailability and timeouts as the store's; other gRPC errors pass through."""
    import grpc
    from etcd3aio import EtcdConnectionError, EtcdError, EtcdTransientError

    try:
        yield
    except TimeoutError as exc:  # etcd3aio's deadline over its retries
        raise Timeout("etcd: request timed out") from exc
    except EtcdConnectionError as exc:  # UNAVAILABLE on every attempt; etcd's own timeout says so
        raise (Timeout if "request timed out" in str(exc) else Unavailable)(f"etcd: {exc}") from exc
    except EtcdTransientError as exc:  # DEADLINE_EXCEEDED on every attempt
        raise Timeout(f"etcd: {exc}") from exc
    except EtcdError as exc:
        raise StoreError(f"etcd: {exc}") from exc
    except grpc.aio.AioRpcError as exc:
        details = exc.details() or ""
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED or "request timed out" in details:
            raise Timeout(f"etcd: {details}") from exc
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            raise Unavailable(f"etcd: {details}") from exc
        raise


store.register("etcd", EtcdBackend)
