"""The HTTP face of the hosted API servers: every request under `/clusters/<id>/` is
authenticated against that cluster, parsed into a `RequestInfo`, handed to the cluster's
registry for its resource, and encoded back. Errors of any kind leave here as `Status` objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from lks import nesting, store
from lks.kube import (
    admission,
    aggregator,
    audit,
    authz,
    deletion,
    errors,
    fieldmanager,
    impersonation,
    openapi,
    patch,
    queryparams,
    scale,
    selectors,
    serviceaccounts,
    strategicpatch,
    streaming,
    subresources,
)
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.http import deprecation, discovery, negotiation, offload, representation, requestinfo
from lks.kube.registry import ListOptions, Registry, WatchEvent, WriteOptions
from lks.kube.schema import Schema
from lks.observability import apiserver as request_metrics
from lks.observability import exposition, logs

log = logging.getLogger(__name__)

_HEALTH = ("healthz", "livez", "readyz")
_CONNECT = ("exec", "attach", "portforward")
_DEFAULT_WATCH_TIMEOUT = 1800
_BOOKMARK_EVERY = 60.0
# A watch response buffers at most this many events (or stored bytes of them) that its client
# has not taken yet; when it stays full this many seconds the client is not reading: the watch
# is ended and the connection closed (upstream's cacher terminates such a watcher the same way).
_PUMP_EVENTS = 1_000
_PUMP_BYTES = 4 * 1024 * 1024
_STALL_SECONDS = 15.0
USER = web.RequestKey("user", User)


def _status_response(err: errors.APIError) -> web.Response:
    body, ctype = negotiation.encode(err.status(), "json")
    return web.Response(body=body, status=err.code, content_type=ctype, headers=err.headers)


def _json(obj: Any, status: int = 200, fmt: str = "json",
          opts: WriteOptions | deletion.DeleteOptions | None = None) -> web.Response:
    body, ctype = negotiation.encode(obj, fmt)
    resp = web.Response(body=body, status=status, content_type=ctype)
    if opts is not None:
        for text in opts.warnings:  # upstream's 299 warnings, one header each
            quoted = text.replace("\\", "\\\\").replace('"', '\\"')
            resp.headers.add("Warning", f'299 - "{quoted}"')
    return resp


class KubeAPI:
    """Routes `/clusters/{cluster}/...` to hosted clusters; `lookup` finds a running one."""

    def __init__(self, lookup: Callable[[str], Cluster | None], *, audit_home: Path | None = None):
        """`audit_home` ($LKS_HOME) holds each cluster's audit log and policy, and its control-plane
        logs (None: neither)."""
        self.lookup = lookup
        self.audit = audit.Auditor(audit_home)
        self.logs = logs.Logs(audit_home)  # control-plane logs, beside the audit log
        self._streaming: set[asyncio.Task] = set()  # handlers of watches and pod streams
        subresources.load()

    async def close_streams(self) -> None:
        """End every long-lived response (watches, logs, exec, attach, port-forward). The server
        calls this as it shuts down; aiohttp would otherwise wait for them before stopping."""
        tasks = [t for t in self._streaming if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.audit.close()
        await self.logs.close()

    @contextlib.contextmanager
    def _long_lived(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._streaming.add(task)
        try:
            yield
        finally:
            self._streaming.discard(task)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """For aiohttp's signal of the same name: the audit of streams handlers prepare themselves."""
        deprecation.add_warning(request, response)
        self.audit.prepared(request, response)

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/clusters/{cluster}{tail:(/.*)?}", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        negotiation.PRETTY.set(negotiation.wants_pretty(request.query, request.headers.get("User-Agent")))
        self.audit.start(request)
        resp = None
        try:
            resp = await self._handle(request)
        except errors.APIError as err:
            resp = _status_response(err)
        except web.HTTPException as err:  # a plain-text answer aiohttp sends: audited as such
            resp = err
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as err:  # a bug: answer like upstream, never with a traceback
            log.exception("internal error serving %s %s", request.method, request.path)
            resp = _status_response(errors.internal(type(err).__name__))
        finally:  # the client may have gone away: resp None
            deprecation.add_warning(request, resp)
            self.audit.finish(request, resp)
            if (done := request_metrics.finish(request, resp)) is not None:
                self.logs.request(done[0], request, resp, done[1], done[2])  # kube-apiserver's httplog
        return resp

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cluster = self.lookup(request.match_info["cluster"])
        tail = request.match_info["tail"] or "/"
        if cluster is None:
            raise errors.path_not_found(request.path)
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        cluster.access.check_source(request.remote, sock[0] if sock else None)  # AKS's authorized IP ranges
        first = tail.strip("/").split("/")[0]
        if first in _HEALTH:
            return web.Response(text="ok", content_type="text/plain")
        if tail in serviceaccounts.discovery.PATHS and cluster.token_issuer.public and request.method in ("GET", "HEAD"):
            return _discovery(request, cluster, tail)  # a managed cluster's OIDC issuer is public, as AKS's
        user = await cluster.authenticate(bearer=_bearer(request), peer_cert_der=_peer_cert(request))
        info = requestinfo.parse(request.method, tail, request.query)
        request_metrics.begin(cluster, info, request)
        if user is None or cluster.access.refuses(user):
            self.audit.unauthenticated(cluster.id, info, request)
            raise errors.unauthorized()
        self.audit.begin(cluster.id, user, info)
        if impersonation.requested(request.headers):
            user = await impersonation.impersonate(cluster, user, request.headers, request.path_qs)
            audit.impersonated(user)
        request[USER] = user
        attrs = authz.attributes(user, info, request.query)
        await authz.check(cluster, attrs)
        if info.subresource in _CONNECT and info.verb == "get" and info.resource == "pods":
            # a websocket upgrade (a GET) needs `create` too, as upstream checks it since 1.31
            await authz.check(cluster, dataclasses.replace(attrs, verb="create"))
        if aggregator.discovery.has_any(cluster):  # an APIService's group-version (lks.kube.aggregator)
            with self._long_lived():  # a proxied watch lasts: ended with the others at shutdown
                aggregated = await aggregator.handler.serve(request, cluster, user, info.parts)
            if aggregated is not None:
                return aggregated
        if not info.is_resource:
            return self._non_resource(request, cluster, info)
        try:
            return await self._resource(request, cluster, info)
        except store.StoreError as err:  # one no registry path expects: the store itself failed
            raise errors.from_store_error(err, info.resource, info.group, info.name, verb=info.verb) from err

    # -- discovery and friends ---------------------------------------------------------

    def _non_resource(self, request: web.Request, cluster: Cluster, info: requestinfo.RequestInfo) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        parts = info.parts
        if (path := "/" + "/".join(parts)) in serviceaccounts.discovery.PATHS:
            return _discovery(request, cluster, path)
        if parts == ("metrics",):  # authorized above as the nonResourceURL /metrics (system:monitoring)
            body, ctype = exposition.render(cluster, request.headers.get("Accept"))
            return web.Response(body=body, headers={"Content-Type": ctype})
        if parts == ("version",):  # upstream writes it indented, with no newline (WriteRawJSON)
            body, ctype = negotiation.encode(_version(cluster), "json", pretty=True)
            return web.Response(body=body, content_type=ctype)
        if parts[:1] == ("openapi",):
            status, headers, body = openapi.serve(
                cluster.catalog, f"/clusters/{cluster.id}", "/".join(parts[1:]), request.query,
                request.headers.get("Accept"), if_none_match=request.headers.get("If-None-Match"),
                accept_encoding=request.headers.get("Accept-Encoding"))
            return web.Response(status=status, headers=headers, body=body)
        docs = discovery.documents(cluster.catalog)
        accept = negotiation.parse_accept(request.headers.get("Accept"))
        extended = parts[:1] == ("apis",) and aggregator.discovery.has_any(cluster)  # APIServices' groups too
        if parts in (("api",), ("apis",)):
            if negotiation.wants_aggregated_discovery(accept):
                core = parts == ("api",)
                body, etag = (docs.aggregated_core, docs.etag_core) if core else (
                    aggregator.discovery.aggregated_groups(cluster, docs) if extended
                    else (docs.aggregated_groups, docs.etag_groups))
                return web.Response(body=body, headers={"Content-Type": negotiation.AGGREGATED_DISCOVERY,
                                                        "ETag": etag, "Vary": "Accept"})
            if parts == ("api",):
                host = request.host
                return _json({**docs.api_versions, "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
            return _json(aggregator.discovery.group_list(cluster, docs) if extended else docs.group_list)
        if len(parts) == 2 and parts[0] == "api" and (g := ("", parts[1])) in docs.resource_lists:
            return _json(docs.resource_lists[g])
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in docs.group:
            return _json(docs.group[parts[1]])
        if len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in docs.resource_lists:
            return _json(docs.resource_lists[(parts[1], parts[2])])
        if len(parts) == 2 and extended and (group := aggregator.discovery.group(cluster, parts[1])) is not None:
            return _json(group)
        raise errors.path_not_found(request.path)

    # -- resources -----------------------------------------------------------------------

    async def _resource(self, request: web.Request, cluster: Cluster, info: requestinfo.RequestInfo) -> web.StreamResponse:
        rt = await cluster.lookup(info.group, info.version, info.resource)
        if rt is None or (info.namespace is not None and not rt.namespaced):
            raise errors.path_not_found(request.path)
        await deprecation.note(request, cluster, rt, info.verb)
        if rt.virtual:
            handler = subresources.VIRTUAL.get((rt.group, rt.resource))
            if handler is None or info.verb != "create" or info.subresource:
                raise errors.APIError(405, "MethodNotAllowed", f"{info.resource} is not supported by this server yet")
            opts = _write_options(request, "create")
            body = await negotiation.decode(await _read_body(request), request.headers.get("Content-Type"), rt.kind)
            status, obj = await handler(cluster, info.namespace if rt.namespaced else None, body, opts)
            return _json(obj, status, opts=opts)
        reg = cluster.registry(info.group, info.version, info.resource)
        if (rt.group, rt.resource) == ("", "pods") and info.subresource in streaming.SUBRESOURCES and info.name:
            if info.subresource in _CONNECT:
                opts = WriteOptions(user=request.get(USER), subresource=info.subresource, trusted=True)
                await admission.connect(cluster, reg, info.namespace or "", info.name,
                                        _connect_options(info.subresource, request.query), opts)
            with self._long_lived():
                return await streaming.serve(request, reg, info.namespace or "", info.name, info.subresource)
        q = request.query
        verb = info.verb
        rep = representation.choose_for(request.headers.get("Accept"), read=verb in ("get", "list", "watch"),
                                        include_object=q.get("includeObject"))
        fmt = rep.format
        ns = info.namespace if rt.namespaced else None
        if not info.subresource:  # reads first: they need no write options
            if verb == "get":
                obj = await reg.get(ns, info.name, resource_version=q.get("resourceVersion"))
                return _json(representation.one(reg, obj, rep), fmt=fmt)
            if verb == "list":
                return _json(representation.listing(reg, await reg.list(ns, self._list_options(reg, q)), rep), fmt=fmt)
            if verb == "watch":
                with self._long_lived():
                    return await self._watch(request, reg, ns, info, rep)
        if verb in ("delete", "deletecollection") and not info.subresource:
            # DeleteOptions come from the body, or the query when there is none: never both
            options = await _delete_options(request, reg)
            if verb == "deletecollection":
                return _json(await reg.delete_collection(ns, self._list_options(reg, q), options), fmt=fmt,
                             opts=options)
            result, removed = await reg.delete(ns, info.name, options)
            # upstream's 202: not gone yet, and the client asked for dependents to go too
            return _json(result, 202 if not removed and options.orphan_dependents is False else 200, fmt=fmt,
                         opts=options)
        opts = _write_options(request, verb)
        if info.subresource:
            return await self._subresource(request, reg, info, ns, fmt, opts)
        if verb == "create":
            if info.name:
                raise errors.method_not_allowed()
            if why := reg.strategy.refuses_create:  # upstream's CR handler refuses POST before decoding
                raise errors.APIError(405, "MethodNotAllowed", why,
                                      details={"group": reg.rt.group, "kind": reg.rt.resource})
            body = await negotiation.decode(await _read_body(request), request.headers.get("Content-Type"), reg.rt.kind)
            return _json(await reg.create(ns, body, opts), 201, fmt, opts)
        if verb == "update":
            body = await negotiation.decode(await _read_body(request), request.headers.get("Content-Type"), reg.rt.kind)
            obj, created = await reg.update(ns, info.name, body, opts)
            return _json(obj, 201 if created else 200, fmt, opts)
        if verb == "patch":
            return await self._patch(request, reg, ns, info.name, fmt, opts)
        raise errors.method_not_allowed()

    async def _patch(self, request: web.Request, reg: Registry, ns: str | None, name: str, fmt: str,
                     opts: WriteOptions, subresource: str | None = None) -> web.StreamResponse:
        """PATCH of an object or of its status (the one path for every patch type): server-side
        apply for `application/apply-patch+yaml`, else the function the patch describes."""
        apply = _content_type(request) == patch.APPLY_PATCH
        if apply:
            applied, strict = await _apply_body(request)
            if nesting.too_deep(applied):
                raise errors.bad_request("error decoding patch: exceeded max depth")
            opts.duplicates = strict
            obj, created = await reg.apply(ns, name, applied, opts, subresource=subresource)
            return _json(obj, 201 if created else 200, fmt, opts)
        fn = await _patch_function(request, reg.rt.schema_name, reg.cluster.catalog.schemas)
        return _json(await reg.patch(ns, name, fn, opts, subresource=subresource), fmt=fmt, opts=opts)

    async def _subresource(
        self, request: web.Request, reg: Registry, info: requestinfo.RequestInfo, ns: str | None,
        fmt: str, opts: WriteOptions,
    ) -> web.StreamResponse:
        sub = reg.rt.subresources.get(info.subresource)
        if sub is None:
            raise errors.path_not_found(request.path)
        if info.subresource in ("status", "finalize", "approval"):  # updated as the strategy says
            if info.verb == "get":
                rep = representation.choose(negotiation.parse_accept(request.headers.get("Accept")), read=True,
                                            include_object=request.query.get("includeObject"))
                return _json(representation.one(reg, await reg.get(ns, info.name), rep), fmt=fmt)
            if info.verb == "update":
                body = await negotiation.decode(await _read_body(request), request.headers.get("Content-Type"), sub.kind)
                obj, _ = await reg.update(ns, info.name, body, opts, subresource=info.subresource)
                return _json(obj, fmt=fmt, opts=opts)
            if info.verb == "patch":
                return await self._patch(request, reg, ns, info.name, fmt, opts, info.subresource)
            raise errors.method_not_allowed()
        if info.subresource == "scale":
            return await self._scale(request, reg, info, ns, fmt, opts)
        special = subresources.HANDLERS.get((reg.rt.group, reg.rt.resource, info.subresource))
        if special is not None:
            raw = await _read_body(request)
            body = await negotiation.decode(raw, request.headers.get("Content-Type"), sub.kind) if raw.strip() else None
            status, obj = await special(reg, ns, info.name, info.verb, body, opts)
            return _json(obj, status, fmt, opts)
        if reg.rt.resource == "pods" and info.subresource == "proxy":
            pod = await reg.get(ns, info.name)
            if not (pod.get("spec") or {}).get("nodeName"):
                raise errors.bad_request(f"pod {info.name} does not have a host assigned")
        raise errors.APIError(
            405, "MethodNotAllowed",
            f"the {reg.rt.resource}/{info.subresource} subresource is not served by lks yet",
        )

    async def _scale(
        self, request: web.Request, reg: Registry, info: requestinfo.RequestInfo, ns: str | None,
        fmt: str, opts: WriteOptions,
    ) -> web.StreamResponse:
        paths = reg.cluster.scale_paths(reg.rt)
        if paths is None:
            raise errors.path_not_found(request.path)
        who = (reg.rt.resource, reg.rt.group, info.name)
        opts.subresource = "scale"  # admission sees a write through deployments/scale, not of deployments
        if info.verb == "get":
            return _json(scale.to_scale(await reg.get(ns, info.name), paths), fmt=fmt)
        if info.verb == "update":
            body = await negotiation.decode(await _read_body(request), request.headers.get("Content-Type"), "Scale")
            obj = await reg.patch(ns, info.name, lambda cur: scale.apply_scale(cur, body, paths, who), opts)
        elif info.verb == "patch" and _content_type(request) == patch.APPLY_PATCH:
            # server-side apply of a Scale: an apply of its replicas to the object, through "scale"
            applied, opts.duplicates = await _apply_body(request)
            fieldmanager.check_apply_object(applied, api_version="autoscaling/v1", kind="Scale")
            meta = {"name": info.name, **({"namespace": ns} if ns else {})}
            replicas = scale.apply_scale({"metadata": {}}, {**applied, "metadata": {}}, paths, who)
            obj, _ = await reg.apply(ns, info.name, {"apiVersion": reg.rt.gv, "kind": reg.rt.kind, "metadata": meta,
                                                     **{k: v for k, v in replicas.items() if k != "metadata"}},
                                     opts, subresource="scale")
        elif info.verb == "patch":
            patch_scale = await _patch_function(request, "io.k8s.api.autoscaling.v1.Scale", reg.cluster.catalog.schemas)
            obj = await reg.patch(
                ns, info.name, lambda cur: scale.apply_scale(cur, patch_scale(scale.to_scale(cur, paths)), paths, who),
                opts)
        else:
            raise errors.method_not_allowed()
        return _json(scale.to_scale(obj, paths), fmt=fmt)

    def _list_options(self, reg: Registry, q: Any, *, watch: bool = False) -> ListOptions:
        if not watch and "sendInitialEvents" in q:  # upstream's ValidateListOptions
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause.forbidden(
                "sendInitialEvents", "sendInitialEvents is forbidden for list")])
        limit = queryparams.int64(q, "limit") or 0
        return ListOptions(
            label_selector=selectors.parse_labels(q.get("labelSelector")),
            field_selector=reg.parse_field_selector(q.get("fieldSelector")),
            resource_version=q.get("resourceVersion") or None,
            resource_version_match=q.get("resourceVersionMatch") or None,
            limit=max(limit, 0),
            continue_token=q.get("continue") or None,
        )

    async def _watch(self, request: web.Request, reg: Registry, ns: str | None,
                     info: requestinfo.RequestInfo, rep: representation.Representation) -> web.StreamResponse:
        q = request.query
        opts = self._list_options(reg, q, watch=True)
        if info.name:  # /watch/.../name is a watch on one object
            opts.field_selector = selectors.FieldSelector(
                [*opts.field_selector.requirements, selectors.FieldRequirement("metadata.name", info.name, True)])
        send_initial = queryparams.boolean(q, "sendInitialEvents")
        bookmarks = bool(queryparams.boolean(q, "allowWatchBookmarks"))
        timeout = queryparams.int64(q, "timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT
        events = await reg.watch(ns, opts, send_initial_events=send_initial, bookmarks=bookmarks)
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private",
                                           **self.audit.headers()})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        self.audit.response_started(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        transport = request.transport
        stream = _Pump(events, on_stall=transport.abort if transport is not None else None)
        first = True  # a Table stream carries column headers on its first row only
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                batch = await stream.take(min(left, _BOOKMARK_EVERY))
                if not batch:
                    if bookmarks and loop.time() < deadline:
                        cache = await reg.cache()
                        mark = WatchEvent("BOOKMARK", reg.bookmark(cache.revision))
                        await resp.write(_event_line(mark, representation.event(reg, mark, rep, first=first)))
                    continue
                lines = []
                ended = False
                for ev in batch:
                    if ev is None:
                        ended = True
                        break
                    obj = representation.event(reg, ev, rep, first=first)
                    first = first and ev.type in ("BOOKMARK", "ERROR")
                    lines.append(_event_line(ev, obj))
                    if ev.type == "ERROR":
                        ended = True
                        break
                if lines:
                    await resp.write(b"".join(lines))
                if ended:
                    break
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            await stream.close()
        with contextlib.suppress(ConnectionResetError, ConnectionError):
            await resp.write_eof()
        return resp


class _Pump:
    """Moves a watch's events into a buffer from a task of its own, so the response writes
    whatever has gathered in one go (one loop turn for a burst, not one per event) and waiting
    with a timeout (for bookmarks) never cancels the event iterator. `None` marks the end.

    The buffer is bounded: once full, the pump stops taking events (they wait in the watch
    cache, whose own bound ends the watcher) until the response takes the buffer; if that does
    not happen within `_STALL_SECONDS`, the client is not reading and `on_stall` cuts it off."""

    def __init__(self, events: Any, *, on_stall: Callable[[], None] | None = None):
        self._events = events
        self._on_stall = on_stall
        self._buffer: list[WatchEvent | None] = []
        self._bytes = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for ev in self._events:
                self._buffer.append(ev)
                self._bytes += ev.cached.size if ev.cached is not None else 0
                self._ready.set()
                if len(self._buffer) >= _PUMP_EVENTS or self._bytes >= _PUMP_BYTES:
                    self._room.clear()
                    try:
                        async with asyncio.timeout(_STALL_SECONDS):
                            await self._room.wait()
                    except TimeoutError:
                        log.info("ending a watch whose client stopped reading (%d events waiting)", len(self._buffer))
                        self._buffer.clear()
                        await self._events.aclose()  # the watcher goes now, not when the client does
                        if self._on_stall is not None:
                            self._on_stall()
                        return
        except Exception:  # the stream ends; the client watches again
            log.exception("watch stream failed")
        finally:
            self._buffer.append(None)
            self._ready.set()

    async def take(self, timeout: float) -> list[WatchEvent | None]:
        """What has gathered, waiting up to `timeout` seconds for something (else [])."""
        if not self._buffer:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
        batch, self._buffer = self._buffer, []
        self._bytes = 0
        self._room.set()
        return batch

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._events.aclose()


def _event_line(ev: WatchEvent, obj: dict[str, Any]) -> bytes:
    """One line of a watch stream. Events shared by many watchers are encoded once."""
    cached = ev.cached
    if cached is not None and obj is ev.obj:
        key = f"{ev.type}/{obj.get('apiVersion')}"
        line = cached.encoded.get(key)
        if line is None:
            line = cached.encoded[key] = orjson.dumps({"type": ev.type, "object": obj}) + b"\n"
        return line
    return orjson.dumps({"type": ev.type, "object": obj}) + b"\n"


_CONNECT_KINDS = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}


def _connect_options(subresource: str, q: Any) -> dict[str, Any]:
    """The options object of a CONNECT, as upstream decodes it from the query (what admission
    sees as the object): fields left empty are left out, as Go's encoder leaves them."""
    out: dict[str, Any] = {"kind": _CONNECT_KINDS[subresource], "apiVersion": "v1"}
    if subresource == "portforward":
        ports = [int(p) for v in q.getall("ports", []) for p in v.split(",") if p.strip().isdigit()]
        if ports:
            out["ports"] = ports
        return out
    for key in ("stdin", "stdout", "stderr", "tty"):
        if queryparams.boolean(q, key):
            out[key] = True
    if q.get("container"):
        out["container"] = q["container"]
    if subresource == "exec" and q.getall("command", []):
        out["command"] = q.getall("command")
    return out


def _version(cluster: Cluster) -> dict[str, str]:
    minor = cluster.kubernetes_version.split(".")[1]
    return {
        "major": "1", "minor": minor, "emulationMajor": "1", "emulationMinor": minor,
        "minCompatibilityMajor": "1", "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"v{cluster.patch_version}", "gitCommit": "lks", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
    }


def _discovery(request: web.Request, cluster: Cluster, path: str) -> web.Response:
    body, ctype = serviceaccounts.discovery.serve(cluster.token_issuer, path,
                                                  cluster_url=f"https://{request.host}/clusters/{cluster.id}")
    return web.Response(body=body, headers={"Content-Type": ctype,
                                            "Cache-Control": serviceaccounts.discovery.CACHE_CONTROL})


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _peer_cert(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_obj: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_obj is None:
        return None
    return ssl_obj.getpeercert(binary_form=True)


async def _read_body(request: web.Request) -> bytes:
    body = await negotiation.read_body(request)
    audit.request_body(body)
    return body


async def _apply_body(request: web.Request) -> tuple[dict, list[str]]:
    """An apply patch's object and strict-decoding complaints; large YAML decodes off the loop."""
    body = await _read_body(request)
    if len(body) > offload.OFF_LOOP_BYTES:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:  # YAML: PyYAML's cost is per node (lks.kube.http.offload)
            return await offload.run(fieldmanager.parse_apply_body, body)
    return fieldmanager.parse_apply_body(body)


def _content_type(request: web.Request) -> str:
    return negotiation.media_type(request.headers.get("Content-Type"))


async def _patch_function(request: web.Request, schema_name: str | None, defs: dict) -> Callable[[dict], Any]:
    """The function a PATCH body describes; strategic merge patch only for built-in types."""
    ctype = _content_type(request)
    body = await _read_body(request)
    builtin = bool(schema_name) and schema_name.startswith("io.k8s.")
    supported = patch.SUPPORTED + ([patch.STRATEGIC_MERGE_PATCH] if builtin else []) + [patch.APPLY_PATCH]
    if ctype not in supported:
        raise errors.unsupported_media_type(ctype, supported)
    if ctype == patch.APPLY_PATCH:  # the callers take apply patches to the field manager first
        raise errors.internal("an apply patch reached the JSON patch path")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise errors.bad_request(f"error decoding patch: {err}") from None
    if nesting.too_deep(doc, body):
        raise errors.bad_request("error decoding patch: exceeded max depth")
    if ctype == patch.MERGE_PATCH:
        if not isinstance(doc, dict):
            raise errors.bad_request("error decoding patch: a merge patch must be a JSON object")
        return lambda current: patch.merge_patch(current, doc)
    if ctype == patch.STRATEGIC_MERGE_PATCH:
        sch = Schema.of(defs, schema_name)
        return lambda current: strategicpatch.apply(current, doc, sch)
    return lambda current: patch.json_patch(current, doc)


async def _delete_options(request: web.Request, reg: Registry) -> deletion.DeleteOptions:
    body = await _read_body(request)
    decoded = await negotiation.decode(body, request.headers.get("Content-Type")) if body.strip() else None
    options = deletion.DeleteOptions.from_request(decoded, request.query, schemas=reg.cluster.catalog.schemas)
    options.user = request.get(USER)
    return options


_OPTIONS_KINDS = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def _write_options(request: web.Request, verb: str) -> WriteOptions:
    """The write options of the query, validated as upstream validates the options of `verb`
    (reads of a subresource ignore them)."""
    q = request.query
    kind = _OPTIONS_KINDS.get(verb)
    if kind is not None:
        queryparams.validate_write_options(kind, q, apply=verb == "patch" and _content_type(request) == patch.APPLY_PATCH)
    sent: dict[str, Any] = {"dryRun": q.getall("dryRun", []), "fieldManager": queryparams.first(q, "fieldManager"),
                            "fieldValidation": queryparams.first(q, "fieldValidation")}  # as admission sees them
    return WriteOptions(dry_run=bool(sent["dryRun"]), field_manager=sent["fieldManager"] or None,
                        field_validation=sent["fieldValidation"] or "Warn",  # upstream's default
                        force=bool(queryparams.boolean(q, "force")), user_agent=request.headers.get("User-Agent"),
                        user=request.get(USER), sent={k: v for k, v in sent.items() if v})
