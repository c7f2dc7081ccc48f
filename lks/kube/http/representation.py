"""Alternate representations of objects in responses, chosen by the `Accept` header as
upstream's content negotiation does: the object itself (JSON or YAML), a `meta.k8s.io`
`Table` (what `kubectl get` asks for), or `PartialObjectMetadata` / `PartialObjectMetadataList`
(what metadata-only informers ask for).

Only reads (get, list, watch) may be transformed; a write that accepts nothing but a Table is
refused with 406, as upstream does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lks.kube import errors, tables
from lks.kube.http.negotiation import JSON, YAML, MediaType, parse_accept

if TYPE_CHECKING:
    from lks.kube.registry import Registry, WatchEvent

Obj = dict[str, Any]

_AS_KINDS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
_JSONISH = (JSON, "*/*", "application/*", "application/json-patch+json", "application/merge-patch+json")


@dataclass(frozen=True, slots=True)
class Representation:
    format: str  # json | yaml
    as_kind: str | None = None  # Table | PartialObjectMetadata(List) | None (the object)
    api_version: str = "meta.k8s.io/v1"
    include_object: str = "Metadata"

    @property
    def transforms(self) -> bool:
        return self.as_kind is not None


_chosen: dict[tuple, Representation] = {}


def choose_for(accept_header: str | None, *, read: bool, include_object: str | None = None) -> Representation:
    """`choose` for an Accept header, remembered: clients send the same few headers."""
    key = (accept_header, read, include_object)
    rep = _chosen.get(key)
    if rep is None:
        rep = choose(parse_accept(accept_header), read=read, include_object=include_object)
        if len(_chosen) > 256:
            _chosen.clear()
        _chosen[key] = rep
    return rep


def choose(accept: list[MediaType], *, read: bool, include_object: str | None = None) -> Representation:
    """The first acceptable representation; 406 when none is."""
    for mt in accept:
        if mt.as_:
            if not read or mt.as_ not in _AS_KINDS or mt.params.get("g") != "meta.k8s.io":
                continue
            version = mt.params.get("v", "v1")
            if version not in ("v1", "v1beta1") or mt.type not in (JSON, "application/*", "*/*"):
                continue
            return Representation("json", mt.as_, f"meta.k8s.io/{version}", include_object or "Metadata")
        if mt.type in _JSONISH:
            return Representation("json")
        if mt.type == YAML:
            return Representation("yaml")
    raise errors.not_acceptable("application/json, application/yaml")


def _now(reg: Registry) -> float:
    return reg.cluster.clock.now()


def _table(reg: Registry, objs: list[Obj], rep: Representation, list_meta: Obj | None, *,
           no_headers: bool = False) -> Obj:
    custom = reg.cluster.custom_types.get((reg.rt.group, reg.rt.version, reg.rt.resource))
    if custom is not None:
        return tables.custom_resource_table(list(custom.printer_columns), objs, now=_now(reg), list_meta=list_meta,
                                            include_object=rep.include_object, no_headers=no_headers,
                                            api_version=rep.api_version, object_type=(reg.rt.gv, reg.rt.kind))
    return tables.to_table(reg.rt.group, reg.rt.resource, objs, now=_now(reg), list_meta=list_meta,
                           include_object=rep.include_object, no_headers=no_headers, api_version=rep.api_version,
                           object_type=(reg.rt.gv, reg.rt.kind))


def one(reg: Registry, obj: Obj, rep: Representation) -> Obj:
    """A single object (GET) in the chosen representation."""
    if rep.as_kind == "Table":
        return _table(reg, [obj], rep, None)
    if rep.as_kind == "PartialObjectMetadata":
        return tables.partial_object_metadata(obj, rep.api_version)
    if rep.as_kind == "PartialObjectMetadataList":
        raise errors.not_acceptable("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
    return obj


def listing(reg: Registry, body: Obj, rep: Representation) -> Obj:
    """A list (LIST) in the chosen representation."""
    if rep.as_kind == "Table":
        return _table(reg, body["items"], rep, body["metadata"])
    if rep.as_kind == "PartialObjectMetadataList":
        return tables.partial_object_metadata_list(body["items"], body["metadata"], rep.api_version)
    if rep.as_kind == "PartialObjectMetadata":
        raise errors.not_acceptable("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    return body


def event(reg: Registry, ev: WatchEvent, rep: Representation, *, first: bool) -> Obj:
    """A watch event's object in the chosen representation (errors stay Status objects)."""
    if ev.type == "ERROR" or not rep.transforms:
        return ev.obj
    if rep.as_kind == "Table":
        if ev.type == "BOOKMARK":
            rv = ev.obj["metadata"].get("resourceVersion")
            return {"kind": "Table", "apiVersion": rep.api_version, "metadata": {"resourceVersion": rv},
                    "columnDefinitions": [], "rows": []}
        return _table(reg, [ev.obj], rep, None, no_headers=not first)
    return tables.partial_object_metadata(ev.obj, rep.api_version)
