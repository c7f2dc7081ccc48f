"""The generic registry: one code path that stores, reads, lists and watches every resource type,
whatever its kind (the shape of upstream's `registry/generic/registry.Store`).

A `Registry` is built per cluster and resource type from the catalog entry and the resource's
strategy; it never checks a kind. Objects are stored as JSON without `resourceVersion`, which is
the store's `mod_revision` and is set on the way out. The HTTP layer (`lks.kube.http`) parses a
request, calls one method here and encodes what comes back.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from lks import store
from lks.clock import rfc3339
from lks.kube import (
    admission,
    authn,
    authz,
    conversion,
    defaulting,
    deletion,
    errors,
    fieldmanager,
    fieldpath,
    fields,
    selectors,
    structural,
    typevalidation,
    warning,
    watchcache,
)
from lks.kube.catalog import ResourceType
from lks.kube.schema import Schema
from lks.kube.strategies import Strategy

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]

_UNSET = object()
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # upstream's generateName alphabet
_GENERATE_ATTEMPTS = 8
_UPDATE_ATTEMPTS = 16
_FRESH_WAIT = 3.0  # how long a read "not older than" a revision waits for the cache
_CONSISTENT_WAIT = 0.05  # how long a consistent read waits for the cache before using the store


@dataclass(slots=True)
class ListOptions:
    label_selector: selectors.LabelSelector
    field_selector: selectors.FieldSelector
    resource_version: str | None = None
    resource_version_match: str | None = None
    limit: int = 0
    continue_token: str | None = None


@dataclass(slots=True)
class WriteOptions:
    """What a write request asks besides its body (upstream's Create/Update/PatchOptions)."""

    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    force: bool = False
    user_agent: str | None = None  # names the field manager when the request does not
    user: User | None = None  # who asks (None: the service itself)
    subresource: str = ""  # the subresource written ("status", "scale" ...), for admission
    applied: bool = False  # a server-side apply: managedFields come from the apply itself
    # in-process writers (controllers, node agents) build objects from stored ones: their
    # bodies need no decoding checks (unknown fields, JSON types), only defaults and validation
    trusted: bool = False
    duplicates: list[str] = field(default_factory=list)  # duplicate-field errors found parsing the body
    warnings: list[str] = field(default_factory=list)  # filled in; sent as Warning headers
    # the options the client sent (dryRun, fieldManager, fieldValidation; a DELETE's whole
    # DeleteOptions), for admission's `request.options`; None: an in-process write
    sent: Obj | None = None


_DEFAULT_WRITE = WriteOptions(field_validation="Ignore", trusted=True)


@dataclass(slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR
    obj: Obj
    cached: watchcache.CacheEvent | None = None  # lets the encoder memoize shared events


class Registry:
    def __init__(self, cluster: Cluster, rt: ResourceType, strategy: Strategy):
        self.cluster = cluster
        self.rt = rt
        self.strategy = strategy
        self.prefix = rt.storage_prefix
        self.store = cluster.store
        self._fields_supported = fields.supported(rt.group, rt.resource)
        self._ftype: Any = None
        self._zero: Any = _UNSET

    # -- keys and encoding -------------------------------------------------------------

    def key(self, namespace: str | None, name: str) -> str:
        return f"{self.prefix}{namespace}/{name}" if self.rt.namespaced else f"{self.prefix}{name}"

    def _range(self, namespace: str | None) -> str:
        return f"{self.prefix}{namespace}/" if namespace and self.rt.namespaced else self.prefix

    def decode(self, kv: store.KeyValue) -> Obj:
        obj = orjson.loads(kv.value)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj

    def encode(self, obj: Obj) -> bytes:
        meta = obj["metadata"]
        rv = meta.pop("resourceVersion", None)
        try:
            return orjson.dumps(obj)
        finally:
            if rv is not None:
                meta["resourceVersion"] = rv

    def served(self, obj: Obj) -> Obj:
        """`obj` as the requested version shows it (versions of a resource share storage)."""
        if obj.get("apiVersion") != self.rt.gv:
            obj = conversion.convert(obj, self.rt.gv)
        return obj

    # -- reads ---------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str, *, resource_version: str | None = None) -> Obj:
        rv = _parse_rv(resource_version) if resource_version else None
        if rv == 0 or await (self._cache_consistent() if rv is None else self._cache_fresh(rv)):
            cache = await self.cache()
            obj = cache.objects.get(self.key(namespace, name))
            if obj is None:
                raise errors.not_found(self.rt.resource, self.rt.group, name)
            return self.served(obj)
        kv = await self._store_get(namespace, name)
        return self.served(self.decode(kv))

    async def get_or_none(self, namespace: str | None, name: str) -> Obj | None:
        """GET, with None for an object that is not there (in-process callers that poll)."""
        try:
            return await self.get(namespace, name)
        except errors.APIError as err:
            if err.code == 404:
                return None
            raise

    async def _store_get(self, namespace: str | None, name: str) -> store.KeyValue:
        kv = await self.store.get(self.key(namespace, name))
        if kv is None:
            raise errors.not_found(self.rt.resource, self.rt.group, name)
        return kv

    async def cache(self) -> watchcache.WatchCache:
        return await self.cluster.feed.cache(self.prefix, self.decode)

    async def _cache_fresh(self, rv: int, wait: float = _FRESH_WAIT) -> bool:
        """Whether the cache has reached `rv` (waiting a little for it)."""
        cache = await self.cache()
        if cache.revision >= rv:
            return True
        return await self.cluster.feed.wait_for(rv, wait) and cache.revision >= rv

    async def _cache_consistent(self) -> bool:
        """Whether the cache holds the store's latest state, so that a read from it is as
        consistent as a read from the store (upstream's consistent reads from cache). The feed
        follows an in-process store within a loop iteration; when it does not catch up at
        once (a store shared with other writers), the caller reads the store instead."""
        return await self._cache_fresh(await self.store.current_revision(), _CONSISTENT_WAIT)

    def matcher(self, opts: ListOptions, namespace: str | None) -> Callable[[Obj], bool]:
        labels, flds = opts.label_selector, opts.field_selector
        ns = namespace if self.rt.namespaced else None

        def matches(obj: Obj) -> bool:
            meta = obj["metadata"]
            if ns and meta.get("namespace") != ns:
                return False
            if labels and not labels.matches(meta.get("labels")):
                return False
            return not flds or flds.matches(fields.reader(obj))

        return matches

    def parse_field_selector(self, text: str | None) -> selectors.FieldSelector:
        return selectors.parse_fields(text, self._fields_supported)

    async def list(self, namespace: str | None, opts: ListOptions) -> Obj:
        rv_text, match = opts.resource_version, opts.resource_version_match
        _check_list_rv(rv_text, match)
        matches = self.matcher(opts, namespace)
        if opts.continue_token:
            revision, start = _decode_continue(opts.continue_token, self._range(namespace))
            return await self._list_store(namespace, matches, opts.limit, revision=revision, start=start)
        rv = _parse_rv(rv_text) if rv_text else None
        if rv is None:  # most recent: a consistent read
            if not opts.limit and await self._cache_consistent():
                cache = await self.cache()
                items = [self._item(o) for o in self._cached_range(cache, namespace) if matches(o)]
                return self._list_body(items, cache.revision)
            return await self._list_store(namespace, matches, opts.limit)
        if match == "Exact" or (match is None and rv and opts.limit):
            return await self._list_store(namespace, matches, opts.limit, revision=rv)
        # "0" (any) or not older than rv: the cache, once it has caught up
        if rv == 0 or await self._cache_fresh(rv):
            cache = await self.cache()
            items = [self._item(o) for o in self._cached_range(cache, namespace) if matches(o)]
            return self._list_body(items, cache.revision)
        return await self._list_store(namespace, matches, opts.limit)

    def _cached_range(self, cache: watchcache.WatchCache, namespace: str | None) -> list[Obj]:
        prefix = self._range(namespace)
        objs = cache.objects
        keys = sorted(k for k in objs if k.startswith(prefix))
        return [objs[k] for k in keys]

    async def _list_store(
        self, namespace: str | None, matches: Callable[[Obj], bool], limit: int,
        *, revision: int | None = None, start: str | None = None,
    ) -> Obj:
        prefix = self._range(namespace)
        items: list[Obj] = []
        next_key: str | None = None
        try:
            while True:
                want = (limit - len(items)) if limit else None
                batch_size = max(want * 2, 64) if want else None
                res = await self.store.list(prefix, revision=revision, start=start, limit=batch_size)
                revision = res.revision
                for i, kv in enumerate(res.items):
                    obj = self.decode(kv)
                    if not matches(obj):
                        continue
                    items.append(self._item(obj))
                    if limit and len(items) >= limit:
                        rest = res.items[i + 1:]
                        if rest or res.more:
                            next_key = kv.key + "\x00"
                        break
                if next_key or not res.more or (limit and len(items) >= limit):
                    break
                start = res.items[-1].key + "\x00"
        except store.Compacted as err:
            raise errors.continue_expired() if start else errors.too_old(err.revision, err.compact_revision) from err
        except store.FutureRevision as err:
            raise errors.from_store_error(err, self.rt.resource, self.rt.group, "") from err
        body = self._list_body(items, revision or 0)
        if next_key:
            body["metadata"]["continue"] = _encode_continue(revision or 0, next_key[len(self._range(namespace)):])
        return body

    def _item(self, obj: Obj) -> Obj:
        """A list item: built-in types drop their apiVersion/kind inside lists, as upstream."""
        return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}

    def _list_body(self, items: list[Obj], revision: int) -> Obj:
        return {
            "kind": self.rt.list_kind,
            "apiVersion": self.rt.gv,
            "metadata": {"resourceVersion": str(revision)},
            "items": items,
        }

    # -- watch ---------------------------------------------------------------------------

    async def watch(
        self, namespace: str | None, opts: ListOptions, *,
        send_initial_events: bool | None = None, bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events as upstream's watch defines them; raises APIError before the first event
        when the request cannot be served (410 Expired is delivered as an ERROR event)."""
        matches = self.matcher(opts, namespace)
        rv_text, match = opts.resource_version, opts.resource_version_match
        if send_initial_events is not None:
            if match != "NotOlderThan":
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
                    "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")])
            if not bookmarks and send_initial_events:
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
                    "allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true")])
        elif match:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")])
        rv = _parse_rv(rv_text) if rv_text else None
        initial = (rv in (None, 0)) if send_initial_events is None else send_initial_events
        if initial or rv is None or rv == 0:
            if rv:  # sendInitialEvents from a given revision: the state not older than it
                await self._cache_fresh(rv)
            elif rv is None:
                await self._cache_fresh(await self.store.current_revision())
            cache = await self.cache()
            w = cache.subscribe(matches, after=None if initial else cache.revision, initial=initial)
            return self._from_cache(cache, w, initial_end=bool(send_initial_events) and bookmarks)
        compacted = await self.store.compact_revision()
        if rv < compacted:  # history is gone: the client must re-list
            return _single(WatchEvent("ERROR", errors.too_old(rv, compacted).status()))
        cache = await self.cache()
        if not cache.covers(rv) and rv > cache.revision:
            await self._cache_fresh(rv)
        if cache.covers(rv):
            w = cache.subscribe(matches, after=rv, initial=False)
            return self._from_cache(cache, w, initial_end=False)
        return self._from_store(rv, matches, namespace)

    async def _from_cache(
        self, cache: watchcache.WatchCache, w: watchcache.Watcher, *, initial_end: bool,
    ) -> AsyncIterator[WatchEvent]:
        try:
            if initial_end:
                # everything queued so far is the initial state; then the end-of-initial bookmark
                for _ in range(w.queue.qsize()):
                    item = w.queue.get_nowait()
                    if item is None:
                        return
                    kind, ev = item
                    w.taken(ev)
                    yield WatchEvent(kind, self.served(ev.obj), ev if kind == ev.type else None)
                yield WatchEvent("BOOKMARK", self.bookmark(cache.revision, initial_end=True))
            async for kind, ev in watchcache.drain(w):
                yield WatchEvent(kind, self.served(ev.obj), ev if kind == ev.type else None)
        finally:
            cache.unsubscribe(w)

    async def _from_store(self, rv: int, matches: Callable[[Obj], bool], namespace: str | None) -> AsyncIterator[WatchEvent]:
        try:
            async for ev in self.store.watch(self._range(namespace), start_revision=rv + 1):
                obj = self.decode(ev.kv)
                prev = self.decode(ev.prev) if ev.prev is not None else None
                now = ev.type == "PUT" and matches(obj)
                was = prev is not None and matches(prev)
                if ev.type == "DELETE":
                    kind = "DELETED" if matches(obj) else None
                else:
                    kind = "MODIFIED" if now and was else "ADDED" if now else "DELETED" if was else None
                if kind:
                    yield WatchEvent(kind, self.served(obj))
        except store.Compacted as err:
            yield WatchEvent("ERROR", errors.too_old(rv, err.compact_revision).status())

    def bookmark(self, revision: int, *, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": self.rt.kind, "apiVersion": self.rt.gv, "metadata": meta}

    # -- writes --------------------------------------------------------------------------

    def _decode(self, obj: Any, opts: WriteOptions, *, patch: bool = False, default: bool = True) -> Obj:
        """An incoming object (a body, or a patch's result) as decoding it does upstream: type
        and version checks, unknown and duplicate fields refused or warned about as
        `fieldValidation` asks (and always dropped), defaults (unless `default` is false: a
        status write keeps only the status, defaulted once the strategy has taken the rest
        from the stored object); returned in the stored version."""
        if not isinstance(obj, dict):
            raise errors.bad_request("the object provided is not a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != self.rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({self.rt.kind})")
        if api_version and api_version != self.rt.gv:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({self.rt.gv})")
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        obj["apiVersion"] = self.rt.gv
        obj["kind"] = self.rt.kind
        if opts.trusted:
            unknown: list[str] = []
        elif self.rt.schema_name and self.rt.schema_name.startswith("io.k8s."):
            schema = Schema.of(self.cluster.catalog.schemas, self.rt.schema_name)
            unknown, type_errors = structural.check(obj, schema)
            if type_errors:
                raise structural.decode_error(self.rt.kind, self.rt.version, type_errors[0])
            structural.prune(obj, schema)
        else:
            unknown = self.strategy.normalize(obj)
        messages = (opts.duplicates if not patch else []) + structural.unknown_field_errors(unknown)
        if messages and opts.field_validation == "Strict":
            if patch:
                raise structural.patch_strict_error(orjson.dumps(obj).decode(), messages)
            raise structural.decode_error(self.rt.kind, self.rt.version, structural.strict_error(messages))
        if messages and opts.field_validation == "Warn":
            opts.warnings.extend(structural.warnings(messages))
        if self.rt.gv != self.rt.storage_gv:
            obj = conversion.convert(obj, self.rt.storage_gv)
        if default:
            self._default(obj)
        return obj

    def decode_admitted(self, obj: Any) -> Obj:
        """An object a mutating webhook answered (in this registry's version), decoded as a
        body is (types checked, unknown fields dropped, defaults) into the stored version."""
        return self._decode(obj, WriteOptions(field_validation="Ignore"), patch=True)

    def validate_admitted(self, obj: Obj, old: Obj | None, subresource: str = "") -> None:
        """Validate again, as on create (`old` None) or update, an object admission changed
        (the stored version): a webhook cannot store what the strategy or the type rules
        refuse. Raises the same 422."""
        strategy = (self.strategy.for_subresource(subresource) if subresource else None) or self.strategy
        if old is None:
            causes = strategy.validate(obj) + typevalidation.validate(self.rt.storage_group, self.rt.kind, obj)
        else:
            causes = strategy.validate_update(obj, old) + deletion.check_finalizer_update(obj, old)
            if not subresource:
                causes += typevalidation.validate_update(self.rt.storage_group, self.rt.kind, obj, old)
        if causes:
            raise self._invalid(obj, causes)
        strategy.canonicalize(obj)

    def _field_type(self) -> Any:
        """The schema the field manager walks (compiled once per registry)."""
        if self._ftype is None:
            custom = getattr(self.strategy, "schema", None)
            schema = custom if custom is not None else Schema.of(self.cluster.catalog.schemas, self.rt.schema_name)
            self._ftype = fieldpath.type_of(schema)
        return self._ftype

    def _zero_status(self) -> Any:
        """The status a new built-in object starts with (None for custom resources: none)."""
        if self._zero is _UNSET:
            self._zero = fieldpath.zero_object(self._field_type()).get("status")
        return self._zero

    def _track(self, old: Obj | None, new: Obj, opts: WriteOptions, subresource: str = "") -> None:
        """managedFields after an ordinary write: the writer owns what it changed."""
        if opts.applied:
            return
        fieldmanager.update(old, new, manager=fieldmanager.manager_name(opts.field_manager, opts.user_agent),
                            operation_subresource=subresource, now=rfc3339(self.cluster.clock.now()),
                            schema=self._field_type(), api_version=self.rt.gv,
                            reset_fields=self._reset_fields(subresource))
        if not opts.trusted and (causes := fieldmanager.entry_causes(new["metadata"].get("managedFields"))):
            raise self._invalid(new, causes)

    @staticmethod
    def _sets_managed_fields(obj: Obj, current: Obj, opts: WriteOptions, subresource: str | None) -> bool:
        """Whether a write that changes nothing else changes managedFields: an apply that
        changes ownership (a second manager applying the same values shares them), or
        managedFields a client wrote itself."""
        mine, live = obj["metadata"].get("managedFields"), current["metadata"].get("managedFields")
        if opts.applied:
            return mine != live
        return fieldmanager.takes_sent(live, mine, subresource=subresource or "")

    def _reset_fields(self, subresource: str | None) -> list[tuple[str, ...]]:
        """The fields a write through this endpoint cannot set (the strategy's reset fields)."""
        if subresource == "status":
            return [("spec",)]
        return [("status",)] if self.strategy.has_status and not subresource else []

    async def apply(self, namespace: str | None, name: str, applied: Obj, opts: WriteOptions, *,
                    subresource: str | None = None) -> tuple[Obj, bool]:
        """Server-side apply (`application/apply-patch+yaml`) to the object or through a
        subresource, which never creates: `status`, or `scale` (its Scale already turned into
        the object's replicas; a view written with the object's own strategy). Returns
        (object, created)."""
        manager = opts.field_manager or ""
        opts.applied = True

        def merged(current: Obj | None) -> Obj:
            new = fieldmanager.apply(current, applied,
                                     manager=manager, force=opts.force, now=rfc3339(self.cluster.clock.now()),
                                     schema=self._field_type(), api_version=self.rt.gv, kind=self.rt.kind,
                                     subresource=subresource or "", reset_fields=self._reset_fields(subresource))
            fieldmanager.check_name(new, name, namespace or "")
            return new

        if subresource:
            through = None if subresource == "scale" else subresource
            if subresource == "scale":
                opts = dataclasses.replace(opts, subresource="scale")
            return await self.patch(namespace, name, merged, opts, subresource=through), False
        for _ in range(_UPDATE_ATTEMPTS):
            if await self.store.get(self.key(namespace, name)) is None:
                try:
                    return await self.create(namespace, merged(None), opts), True
                except errors.APIError as err:
                    if err.code != 409 or err.reason != "AlreadyExists":
                        raise
                    continue  # created meanwhile: apply to it
            try:
                obj = await self.patch(namespace, name, merged, opts)
                return obj, False
            except errors.APIError as err:
                if err.code != 404:
                    raise
        raise errors.conflict(self.rt.resource, self.rt.group, name, errors.MODIFIED)

    def _default(self, obj: Obj) -> None:
        """Upstream's defaulting, in the stored version. It runs on the incoming object and
        again once the strategy has prepared it, as upstream defaults both on decoding the
        request and on reading back what it stored (a Pod's status, a Job's selector)."""
        defaulting.apply(self.rt.storage_group, self.rt.storage_version, self.rt.kind, obj)

    def _check_namespace(self, obj: Obj, namespace: str | None) -> None:
        meta = obj["metadata"]
        if not self.rt.namespaced:
            meta.pop("namespace", None)
            return
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace or body_ns

    def _invalid(self, obj: Obj, causes: list[errors.Cause]) -> errors.APIError:
        return errors.invalid(self.rt.kind, self.rt.group, obj["metadata"].get("name") or "", causes)

    async def authorize(self, verb: str, namespace: str | None, name: str, subresource: str | None = None,
                        user: User | None = None, *, or_verb: str = "") -> None:
        """A write of an in-process component acting as someone (`authn.ACTING`) is authorized
        as that user's request would be (`verb`, or else `or_verb`); requests (`user` set) were
        authorized as they came in."""
        acting = authn.ACTING.get() if user is None else None
        if acting is None:
            return
        attrs = authz.Attributes(acting, verb, True, namespace or "", self.rt.group, self.rt.version,
                                 self.rt.resource, subresource or "", name)
        decision, reason = await self.cluster.authorizer.authorize(attrs)
        if decision == authz.ALLOW:
            return
        if or_verb and await self.cluster.authorizer.allowed(dataclasses.replace(attrs, verb=or_verb)):
            return
        raise authz.forbidden(attrs, reason)

    async def create(self, namespace: str | None, obj: Any, opts: WriteOptions = _DEFAULT_WRITE) -> Obj:
        obj = self._decode(obj, opts)
        await self.authorize("create", namespace, obj["metadata"].get("name") or "", user=opts.user)
        if why := self.strategy.refuses_create:
            raise errors.forbidden(self.rt.resource, self.rt.group, obj["metadata"].get("name") or "", why)
        self._check_namespace(obj, namespace)
        meta = obj["metadata"]
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = _new_uid()
        meta["creationTimestamp"] = rfc3339(self.cluster.clock.now())
        self.strategy.prepare_for_create(obj)
        self.strategy.record_requester(obj, opts.user)
        if self.strategy.has_status and "status" not in obj and (zero := self._zero_status()) is not None:
            obj["status"] = copy.deepcopy(zero)  # the Go zero struct, as upstream stores it: {"replicas": 0}
        generate = not meta.get("name") and meta.get("generateName")
        if generate:
            meta["name"] = _generated(meta["generateName"])
        self._default(obj)
        causes = self.strategy.validate(obj) + typevalidation.validate(self.rt.storage_group, self.rt.kind, obj)
        if causes:
            raise self._invalid(obj, causes)
        if not opts.trusted:
            opts.warnings.extend(typevalidation.warnings(self.rt.storage_group, self.rt.kind, obj))
        if self.rt.namespaced:
            await self.cluster.require_namespace(meta["namespace"], resource=self.rt.resource, group=self.rt.group,
                                                 name=meta["name"])
        self.strategy.canonicalize(obj)
        # the writer owns what it sent, not what admission adds (a protection finalizer, a
        # ClusterIP): upstream's field manager runs before mutating admission
        self._track(None, obj, opts)
        if opts.subresource:  # a create writes the object itself, whatever the options say
            opts = dataclasses.replace(opts, subresource="")
        await admission.admit(self.cluster, "CREATE", self, obj, None, opts)
        await admission.validate(self.cluster, "CREATE", self, obj, None, opts)
        meta = obj["metadata"]  # the field manager replaced it
        if opts.dry_run:
            return self.served(obj)
        for attempt in range(_GENERATE_ATTEMPTS):
            try:
                rev = await self.store.create(self.key(meta.get("namespace"), meta["name"]), self.encode(obj))
                break
            except store.KeyExists as err:
                if not generate or attempt == _GENERATE_ATTEMPTS - 1:
                    raise errors.from_store_error(err, self.rt.resource, self.rt.group, meta["name"]) from err
                meta["name"] = _generated(meta["generateName"])
        meta["resourceVersion"] = str(rev)
        return self.served(obj)

    async def update(
        self, namespace: str | None, name: str, obj: Any, opts: WriteOptions = _DEFAULT_WRITE, *,
        subresource: str | None = None,
    ) -> tuple[Obj, bool]:
        """PUT: replace the object. Returns (object, created)."""
        await self.authorize("update", namespace, name, subresource or opts.subresource, opts.user)
        obj = self._decode(obj, opts)
        self._check_namespace(obj, namespace)
        body_name = obj["metadata"].get("name")
        if body_name != name:
            if not body_name:
                obj["metadata"]["name"] = name
            else:
                raise errors.bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        wanted_rv = obj["metadata"].get("resourceVersion") or None

        def mutate(_current: Obj) -> Obj:
            return copy.deepcopy(obj)

        return await self._guaranteed_update(
            namespace, name, mutate, subresource=subresource, precondition_rv=wanted_rv,
            create_missing=self.strategy.allow_create_on_update and not subresource, opts=opts,
        )

    async def patch(
        self, namespace: str | None, name: str, apply_patch: Callable[[Obj], Any],
        opts: WriteOptions = _DEFAULT_WRITE, *, subresource: str | None = None,
    ) -> Obj:
        """PATCH: `apply_patch` maps the current object to the patched one (it may raise APIError)."""
        # in process a patch is a function of the current object: what an API client (upstream's
        # controllers) sends as a patch or, read-modify-write, as an update; either verb will do
        await self.authorize("patch", namespace, name, subresource or opts.subresource, opts.user, or_verb="update")

        def mutate(current: Obj) -> Obj:
            patched = apply_patch(self.served(current))
            if not isinstance(patched, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            patched = self._decode(patched, opts, patch=True, default=subresource != "status")
            if patched["metadata"].get("name") != name:
                raise self._invalid(patched, [errors.Cause.invalid("metadata.name", patched["metadata"].get("name"),
                                                                   "field is immutable")])
            self._check_namespace(patched, namespace)
            return patched

        obj, _ = await self._guaranteed_update(namespace, name, mutate, subresource=subresource,
                                               precondition_rv=None, create_missing=False, opts=opts,
                                               patch=True)
        return obj

    async def _guaranteed_update(
        self, namespace: str | None, name: str, mutate: Callable[[Obj], Obj], *,
        subresource: str | None, precondition_rv: str | None, create_missing: bool, opts: WriteOptions,
        patch: bool = False,
    ) -> tuple[Obj, bool]:
        key = self.key(namespace, name)
        strategy = self.strategy.for_subresource(subresource) if subresource else self.strategy
        if strategy is None:
            raise errors.method_not_allowed()
        for _ in range(_UPDATE_ATTEMPTS):
            kv = await self.store.get(key)
            if kv is None:
                if create_missing:
                    created = await self.create(namespace, mutate({}), opts)
                    return created, True
                raise errors.not_found(self.rt.resource, self.rt.group, name)
            current = self.decode(kv)
            obj = mutate(self.decode(kv))  # a second decode is cheaper than a deep copy
            meta = obj["metadata"]
            # a patch may carry a resourceVersion precondition too: only when it changes the one
            # it was applied to (a patch that leaves it alone retries over concurrent writes)
            patched_rv = meta.get("resourceVersion") if patch else None
            wanted = precondition_rv or (patched_rv if patched_rv != str(kv.mod_revision) else None)
            if wanted and wanted != str(kv.mod_revision):
                raise errors.conflict(self.rt.resource, self.rt.group, name, errors.MODIFIED)
            if not wanted and not self.strategy.allow_unconditional_update and not patch:
                raise self._invalid(obj, [errors.Cause.required("metadata.resourceVersion",
                                                                "must be specified for an update")])
            old_meta = current["metadata"]
            for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old_meta:
                    meta[k] = old_meta[k]
                else:
                    meta.pop(k, None)
            if meta.get("generateName") is None and "generateName" in old_meta:
                meta["generateName"] = old_meta["generateName"]
            applied_fields = meta.get("managedFields") if opts.applied else None
            strategy.prepare_for_update(obj, current)
            if opts.applied:  # an apply's own managedFields, whatever the (status) strategy kept
                obj["metadata"].pop("managedFields", None)
                if applied_fields is not None:
                    obj["metadata"]["managedFields"] = applied_fields
            self._default(obj)
            # a ratcheted CRD rule's warnings (lks.kube.crdrules); in-process writers hear none
            with warning.collecting(opts.warnings if not opts.trusted else []):
                causes = strategy.validate_update(obj, current) + deletion.check_finalizer_update(obj, current)
            if not subresource:  # a status write cannot change what the type rules check
                causes += typevalidation.validate_update(self.rt.storage_group, self.rt.kind, obj, current)
            if causes:
                raise self._invalid(obj, causes)
            if not opts.trusted and not subresource:
                opts.warnings.extend(w for w in typevalidation.warnings(self.rt.storage_group, self.rt.kind, obj)
                                     if w not in opts.warnings)  # once, however many attempts
            strategy.canonicalize(obj)
            meta = obj["metadata"]
            meta.pop("resourceVersion", None)
            noop = _same(obj, current) and not self._sets_managed_fields(obj, current, opts, subresource)
            if noop:  # what tracking a write that changes nothing leaves, without its cost
                if "managedFields" in current["metadata"]:
                    meta["managedFields"] = current["metadata"]["managedFields"]
                else:
                    meta.pop("managedFields", None)
            else:
                self._track(current, obj, opts, subresource or "")  # before admission, as on create
            # admission learns the subresource from a copy: callers share write options (a
            # controller's one WriteOptions for all its writes), which must not keep it
            # (a scale write reaches here as a write of the object, its options naming "scale")
            if subresource and subresource != opts.subresource:
                opts = dataclasses.replace(opts, subresource=subresource)
            # a no-op too, as upstream: a webhook may refuse it or (mutating) make it a change
            await admission.admit(self.cluster, "UPDATE", self, obj, current, opts)
            await admission.validate(self.cluster, "UPDATE", self, obj, current, opts)
            if noop and _same(obj, current):  # still one: it keeps the resourceVersion, as upstream
                return self.served(current), False
            meta = obj["metadata"]  # the field manager replaced it
            if opts.dry_run:
                meta["resourceVersion"] = str(kv.mod_revision)
                return self.served(obj), False
            try:
                rev = await self.store.update(key, self.encode(obj), mod_revision=kv.mod_revision)
            except store.RevisionConflict:
                if wanted:
                    raise errors.conflict(self.rt.resource, self.rt.group, name, errors.MODIFIED) from None
                continue  # someone else wrote first: re-read and re-apply
            except store.NotFound:
                continue
            meta["resourceVersion"] = str(rev)
            if self.strategy.ready_to_remove(obj):
                # the last finalizer is gone: the deletion that was waiting completes
                try:
                    rev, _ = await self.store.delete(key, mod_revision=rev)
                    meta["resourceVersion"] = str(rev)
                    await admission.released(self.cluster, self, obj)
                except (store.RevisionConflict, store.NotFound):
                    pass
            return self.served(obj), False
        raise errors.conflict(self.rt.resource, self.rt.group, name, errors.MODIFIED)

    async def delete(self, namespace: str | None, name: str, opts: deletion.DeleteOptions) -> tuple[Obj, bool]:
        """DELETE: remove the object or start its graceful deletion; returns (answer, removed)."""
        await self.authorize("delete", namespace, name, user=opts.user)
        return await deletion.delete(self, namespace, name, opts)

    def deleted_answer(self, obj: Obj) -> Obj:
        """What DELETE answers once the object is gone: the object or a Success Status."""
        if self.strategy.return_deleted_object:
            return self.served(obj)
        details: Obj = {"name": obj["metadata"]["name"]}
        if self.rt.group:
            details["group"] = self.rt.group
        details["kind"] = self.rt.resource
        details["uid"] = obj["metadata"].get("uid")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def delete_collection(self, namespace: str | None, opts: ListOptions, delete_opts: deletion.DeleteOptions) -> Obj:
        listed = await self.list(namespace, ListOptions(opts.label_selector, opts.field_selector))
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                await self.delete(meta.get("namespace"), meta["name"], delete_opts)
            except errors.APIError as err:
                if err.code != 404:
                    raise
        return listed


async def _single(ev: WatchEvent) -> AsyncIterator[WatchEvent]:
    yield ev


def _same(obj: Obj, current: Obj) -> bool:
    """Whether a write changes nothing (managedFields aside: they follow changes)."""
    skip = ("resourceVersion", "managedFields")
    cur_meta = {k: v for k, v in current["metadata"].items() if k not in skip}
    new_meta = {k: v for k, v in obj["metadata"].items() if k not in skip}
    return new_meta == cur_meta and {k: v for k, v in obj.items() if k != "metadata"} == {
        k: v for k, v in current.items() if k != "metadata"}


def _generated(prefix: str) -> str:
    base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
    return base + "".join(random.choices(_NAME_CHARS, k=5))  # upstream's math/rand, not a secret


class _RandomPool:
    """os.urandom read 4 KiB at a time: one system call per 256 UIDs, not one per create."""

    def __init__(self) -> None:
        self._bytes = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._bytes):
            self._bytes, self._at = os.urandom(4096), 0
        self._at += n
        return self._bytes[self._at - n:self._at]


_random_pool = _RandomPool()


def _new_uid() -> str:
    """A random (version 4) UUID, formatted without building a `uuid.UUID`: every create pays it."""
    b = bytearray(_random_pool.take(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _parse_rv(text: str) -> int:
    try:
        rv = int(text)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{text}"') from None


def _check_list_rv(rv: str | None, match: str | None) -> None:
    if match is None:
        return
    if match not in ("Exact", "NotOlderThan"):
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.not_supported(
            "resourceVersionMatch", match, ["Exact", "NotOlderThan", ""])])
    if not rv:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
            "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")])
    if match == "Exact" and rv == "0":
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
            "resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')])


def _encode_continue(revision: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError
        rev, start = int(data["rv"]), str(data["start"])
        if rev <= 0 or start.startswith("/") or ".." in start.split("/"):
            raise ValueError
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None
    return rev, prefix + start
