"""`/openapi/v3` and `/openapi/v2` of a hosted cluster, served as kube-apiserver's kube-openapi
handlers do, so that `kubectl explain`, kubectl's field-validation check (`kubectl apply` and
`create` with the default `--validate=strict`), client-side apply's patch computation and
client libraries read the same documents they read from a real cluster.

`GET /openapi/v3` is an index: `{"paths": {"apis/apps/v1": {"serverRelativeURL":
"/clusters/<id>/openapi/v3/apis/apps/v1?hash=<HASH>"}}}`, where the hash is the uppercase hex
SHA-512 of that document (also its ETag). A document fetched with its current hash is immutable
for caches; a stale hash is redirected to the current one. The URL carries the cluster prefix:
client-go strips its own prefix off a `serverRelativeURL` and puts it back, while older clients
use the URL as it stands. `/openapi/v2` is the Swagger 2.0 document of everything, in JSON or,
for client-go's `OpenAPISchema()` (which accepts nothing else), in gnostic's protobuf encoding
(`lks.kube.openapi_pb`). Large documents are gzipped for clients that ask.

Documents are built from the catalog (`lks.kube.openapi_paths` for operations,
`lks.kube.openapi_defs` for schemas), lazily, once per catalog: they live on `Catalog.memo`, and a
catalog extended with CRDs borrows the built-in documents of the catalog it extends. `serve` is
the pure entry point the HTTP layer (`lks.kube.http.app`) calls.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from collections.abc import Mapping
from email.utils import formatdate
from time import time
from typing import Any

import orjson

from lks.kube import catalog, errors, openapi_defs, openapi_paths, openapi_pb
from lks.kube.openapi_paths import Operation

Response = tuple[int, dict[str, str], bytes]

JSON = "application/json"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_V2_OFFERS = (JSON, V2_PROTOBUF, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")  # the last deprecated
_NO_CACHE = "no-cache, private"
_GZIP_MIN = 1024
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."


@dataclasses.dataclass(frozen=True)
class Document:
    body: bytes
    hash: str  # uppercase hex SHA-512 of the body, as kube-openapi computes it
    gzipped: bytes | None = None

    @property
    def etag(self) -> str:
        return f'"{self.hash}"'


def _document(obj: Any, compress: bool = False) -> Document:
    body = orjson.dumps(obj)
    return Document(body, hashlib.sha512(body).hexdigest().upper(), gzip.compress(body, 6) if compress else None)


class Documents:
    """The OpenAPI documents of one catalog, each built on its first request and then kept."""

    def __init__(self, cat: catalog.Catalog):
        self.catalog = cat
        base_cat = _builtin_catalog(cat)
        self._base = documents(base_cat) if base_cat is not None and base_cat is not cat else None
        custom: list[tuple[catalog.ResourceType, dict]] = []  # (as published, its schema)
        internal: set[str] = set()
        self._types: dict[tuple[str, str], list[tuple[catalog.ResourceType, bool]]] = {}
        for rt in cat.all():
            is_custom = base_cat is not None and base_cat.lookup(rt.group, rt.version, rt.resource) is None
            if is_custom and rt.schema_name:
                # CRD schemas are published under upstream's names (`com.example.stable.v1.CronTab`):
                # kubectl resolves `$ref`s by splitting on "/", so internal names with one would break
                internal.add(rt.schema_name)
                schema = cat.schemas.get(rt.schema_name) or {}
                rt = dataclasses.replace(
                    rt, schema_name=openapi_defs.custom_schema_name(rt.group, rt.version, rt.kind))
                custom.append((rt, schema))
            self._types.setdefault((rt.group, rt.version), []).append((rt, is_custom))
        schemas = {k: v for k, v in cat.schemas.items() if k not in internal} if internal else cat.schemas
        self.defs = openapi_defs.Definitions(schemas, custom, self._base.defs if self._base else None)
        self._builder = openapi_paths.Builder(self.defs.by_gvk(), self.defs.raw.get(openapi_paths.DELETE_OPTIONS))
        self.keys = ["api", *(f"api/{v}" for g, vs in cat.groups() if not g for v in vs), "apis"]
        for g, vs in cat.groups():
            if g:
                self.keys += [f"apis/{g}", *(f"apis/{g}/{v}" for v in vs)]
        self.keys.append("version")
        self._v3: dict[str, Document] = {}
        self._roots: dict[str, Document] = {}
        self._v2: Document | None = None
        self._v2_pb: Document | None = None

    def v3(self, key: str) -> Document | None:
        """The document of `api/v1`, `apis/apps/v1`, `apis/apps`, `api`, `apis` or `version`."""
        doc = self._v3.get(key)
        if doc is None and key in self.keys:
            if self._base is not None and self._same_as_base(key):
                doc = self._base.v3(key)
            else:
                doc = _document(self._build_v3(key))
            self._v3[key] = doc
        return doc

    def root(self, prefix: str) -> Document:
        """The `/openapi/v3` index, its URLs under `prefix` (`/clusters/<id>`)."""
        doc = self._roots.get(prefix)
        if doc is None:
            paths = {}
            for key in self.keys:
                hashed = self.v3(key)
                assert hashed is not None
                paths[key] = {"serverRelativeURL": f"{prefix}/openapi/v3/{key}?hash={hashed.hash}"}
            doc = self._roots[prefix] = _document({"paths": paths})
        return doc

    def v2(self) -> Document:
        """The Swagger 2.0 document of every group-version (several MB: built only when asked)."""
        if self._v2 is None:
            self._v2 = _document(self._build_v2(), compress=True)
        return self._v2

    def v2_protobuf(self) -> Document:
        """The same in gnostic's protobuf encoding; upstream gives it the JSON document's ETag."""
        if self._v2_pb is None:
            body = openapi_pb.encode(self._build_v2())
            self._v2_pb = Document(body, self.v2().hash, gzip.compress(body, 6))
        return self._v2_pb

    def _build_v2(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        roots: set[str] = set()
        for key in self.keys:
            ops, infix, tag = self._operations(key)
            paths.update(openapi_paths.render(ops, infix, tag, v3=False))
            roots |= openapi_paths.schema_names(ops)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": f"v{self.catalog.kubernetes_version}.0"},
            "paths": dict(sorted(paths.items())),
            "definitions": {n: self.defs.get(n, v3=False) for n in self.defs.closure(roots)},
            "securityDefinitions": {"BearerToken": {
                "description": "Bearer Token authentication", "type": "apiKey", "name": "authorization",
                "in": "header"}},
            "security": [{"BearerToken": []}],
        }

    def _same_as_base(self, key: str) -> bool:
        """Whether a built-in document serves unchanged in this extended catalog."""
        assert self._base is not None
        parts = key.split("/")
        base_cat, cat = self._base.catalog, self.catalog
        if key not in self._base.keys:
            return False
        if len(parts) == 3 or key.startswith("api/"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            return cat.resources(group, version) == base_cat.resources(group, version)
        return True

    def _build_v3(self, key: str) -> dict[str, Any]:
        ops, infix, tag = self._operations(key)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": openapi_paths.render(ops, infix, tag, v3=True),
            "components": {"schemas": {n: self.defs.get(n) for n in self.defs.closure(openapi_paths.schema_names(ops))}},
        }

    def _operations(self, key: str) -> tuple[dict[str, list[Operation]], str, str]:
        """The operations of one document, with its operationId infix and tag."""
        parts = key.split("/")
        if key == "api":
            return {"/api/": [openapi_paths.discovery("APIVersions", "get available API versions",
                                                      _META + "APIVersions")]}, "Core", "core"
        if key == "apis":
            return {"/apis/": [openapi_paths.discovery("APIVersions", "get available API versions",
                                                       _META + "APIGroupList")]}, "", "apis"
        if key == "version":
            return {"/version/": [openapi_paths.discovery("CodeVersion", "get the code version",
                                                          "io.k8s.apimachinery.pkg.version.Info")]}, "", "version"
        if len(parts) == 2 and parts[0] == "apis":
            infix, tag = openapi_paths.operation_prefix(parts[1], "")
            return {f"/{key}/": [openapi_paths.discovery("APIGroup", "get information of a group",
                                                         _META + "APIGroup")]}, infix, tag.rstrip("_")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        infix, tag = openapi_paths.operation_prefix(group, version)
        ops: dict[str, list[Operation]] = {f"/{key}/": [openapi_paths.discovery(
            "APIResources", "get available resources", openapi_paths.RESOURCE_LIST)]}
        for rt, custom in self._types.get((group, version), ()):
            for path, path_ops in self._builder.resource(rt, custom).items():
                ops.setdefault(path, []).extend(path_ops)
        return ops, infix, tag


def documents(cat: catalog.Catalog) -> Documents:
    """The OpenAPI documents of a catalog, created on first use and kept on `cat.memo`."""
    docs = cat.memo.get("openapi")
    if docs is None:
        docs = cat.memo["openapi"] = Documents(cat)
    return docs  # type: ignore[return-value]


def _builtin_catalog(cat: catalog.Catalog) -> catalog.Catalog | None:
    """The catalog of built-in types `cat` extends (itself when it has no CRDs)."""
    try:
        return catalog.load(cat.kubernetes_version)
    except ValueError:
        return None


# -- serving ---------------------------------------------------------------------------------


def serve(cat: catalog.Catalog, path_prefix: str, subpath: str, query: Mapping[str, str], accept: str | None, *,
          if_none_match: str | None = None, accept_encoding: str | None = None) -> Response:
    """Answer `GET <path_prefix>/openapi/<subpath>`: `subpath` is `v2`, `v3` or `v3/<group path>`
    (`v3/api/v1`, `v3/apis/apps/v1`). Returns (status, headers, body)."""
    parts = [p for p in subpath.split("/") if p]
    docs = documents(cat)
    if parts == ["v2"]:
        chosen = _negotiate(accept, _V2_OFFERS)
        if chosen is None:
            return _not_acceptable(", ".join(_V2_OFFERS[:2]))
        doc, ctype = (docs.v2(), JSON) if chosen == JSON else (docs.v2_protobuf(), V2_PROTOBUF)
        return _send(doc, {"Content-Type": ctype, "Cache-Control": _NO_CACHE, "Vary": "Accept"}, if_none_match,
                     accept_encoding)
    if parts == ["v3"]:
        return _send(docs.root(path_prefix), {"Content-Type": JSON, "Cache-Control": _NO_CACHE}, if_none_match)
    if parts[:1] == ["v3"]:
        key = "/".join(parts[1:])
        doc = docs.v3(key)
        if doc is None:
            return _status(errors.path_not_found(f"{path_prefix}/openapi/{subpath}"))
        if _negotiate(accept, (JSON,)) is None:  # the v3 protobuf encoding is not offered
            return _not_acceptable(JSON)
        headers = {"Content-Type": JSON, "Vary": "Accept"}
        wanted = query.get("hash")
        if wanted:
            if wanted != doc.hash:
                return 301, {"Location": f"{path_prefix}/openapi/v3/{key}?hash={doc.hash}",
                             "Cache-Control": _NO_CACHE}, b""
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = formatdate(time() + 365 * 86400, usegmt=True)
        else:
            headers["Cache-Control"] = _NO_CACHE
        return _send(doc, headers, if_none_match, accept_encoding)
    return _status(errors.path_not_found(f"{path_prefix}/openapi/{subpath}"))


def _send(doc: Document, headers: dict[str, str], if_none_match: str | None,
          accept_encoding: str | None = None) -> Response:
    headers = {**headers, "ETag": doc.etag}
    if if_none_match and (if_none_match.strip() == "*" or doc.etag in [t.strip() for t in if_none_match.split(",")]):
        return 304, headers, b""
    if accept_encoding and "gzip" in accept_encoding and len(doc.body) >= _GZIP_MIN:
        body = doc.gzipped if doc.gzipped is not None else gzip.compress(doc.body, 6)
        return 200, {**headers, "Content-Encoding": "gzip"}, body
    return 200, headers, doc.body


def _status(err: errors.APIError) -> Response:
    return err.code, {"Content-Type": JSON, "Cache-Control": _NO_CACHE}, orjson.dumps(err.status())


def _not_acceptable(offered: str) -> Response:
    # Upstream answers 406 with an empty body; a Status tells a human (and client-go) why
    return _status(errors.not_acceptable(offered))


def _negotiate(accept: str | None, offers: tuple[str, ...]) -> str | None:
    """The offer the Accept header prefers (goautoneg's rules: by q, then by specificity, then
    in header order); None when it admits none."""
    clauses = []
    for i, clause in enumerate((accept or "*/*").split(",")):
        media, *params = [p.strip() for p in clause.split(";")]
        if not media:
            continue
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        kind, _, sub = media.lower().partition("/")
        clauses.append((-q, (kind == "*") + (sub == "*"), i, kind, sub))
    for neg_q, _, _, kind, sub in sorted(clauses or [(-1.0, 2, 0, "*", "*")]):
        if neg_q >= 0:
            break
        for offer in offers:
            o_kind, _, o_sub = offer.partition("/")
            if kind in ("*", o_kind) and sub in ("*", o_sub):
                return offer
    return None
