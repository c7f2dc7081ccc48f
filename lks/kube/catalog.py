"""The resource catalog: what a default kube-apiserver of a given minor version serves.

Names, scopes, verbs, short names, categories, subresources and storage keys come from our own
data file (``data/resources.json``, researched from upstream discovery documents); the object
schemas come from the ``kubernetes-validate`` package. A resource is served for a version only if
the data says so *and* that version's schemas define its kind.

Catalogs are immutable and cached per version, so every cluster of one version shares one copy
of the (large) schema definitions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

import orjson

SUPPORTED_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
DEFAULT_VERSION = "1.36"


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    group: str  # group/version of the request and response body, e.g. policy/v1 for pods/eviction
    version: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    resource: str
    singular: str
    kind: str
    list_kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    subresources: Mapping[str, Subresource] = field(hash=False)
    schema_name: str | None  # e.g. "io.k8s.api.core.v1.Pod"
    storage_prefix: str  # store key prefix shared by every served version, e.g. "/registry/pods/"; "" if virtual
    storage_version: str  # version (of storage_group) kept in the store
    virtual: bool  # not stored: create-only reviews, bindings, componentstatuses
    storage_group: str | None = None  # group kept in the store; None -> our own group (events.k8s.io -> "")

    def __post_init__(self):
        if self.storage_group is None:
            object.__setattr__(self, "storage_group", self.group)

    @property
    def gv(self) -> str:
        """The apiVersion string: "v1" or "apps/v1"."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_gv(self) -> str:
        """The apiVersion objects of this resource are stored in."""
        return f"{self.storage_group}/{self.storage_version}" if self.storage_group else self.storage_version


class Catalog:
    """The served resources of one Kubernetes minor version."""

    def __init__(self, kubernetes_version: str, schemas: dict, types: list[ResourceType],
                 group_order: list[tuple[str, list[str]]]):
        self.kubernetes_version = kubernetes_version
        self.schemas = schemas
        self._all = types
        self._by_gv: dict[tuple[str, str], list[ResourceType]] = {}
        for rt in types:
            self._by_gv.setdefault((rt.group, rt.version), []).append(rt)
        self._by_resource = {(rt.group, rt.version, rt.resource): rt for rt in types}
        self._by_kind = {(rt.group, rt.version, rt.kind): rt for rt in types}
        self._groups = [(g, [v for v in vs if (g, v) in self._by_gv]) for g, vs in group_order]
        self._groups = [(g, vs) for g, vs in self._groups if vs]
        self._group_order = group_order
        # documents derived from this catalog (discovery, OpenAPI), built once per instance
        self.memo: dict[str, object] = {}

    def extended(self, types: list[ResourceType], schemas: dict, groups: list[tuple[str, list[str]]]) -> Catalog:
        """A new catalog serving these extra types too (a cluster's CRDs), after the built-ins;
        `schemas` adds their definitions, `groups` their groups in preference order."""
        return Catalog(self.kubernetes_version, {**self.schemas, **schemas}, [*self._all, *types],
                       [*self._group_order, *groups])

    def __repr__(self) -> str:
        return f"<Catalog {self.kubernetes_version}: {len(self._all)} resources>"

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, served versions in preference order), core "" first, then the /apis order."""
        return [(g, list(vs)) for g, vs in self._groups]

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return list(self._by_gv.get((group, version), ()))

    def lookup(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self._by_resource.get((group, version, resource))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def all(self) -> list[ResourceType]:
        return list(self._all)


def minor_version(kubernetes_version: str) -> str:
    """The minor version of "1.36", "v1.36" or "1.36.2"; ValueError outside SUPPORTED_VERSIONS."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", kubernetes_version.strip())
    minor = f"{m[1]}.{m[2]}" if m else kubernetes_version
    if minor not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported Kubernetes version {kubernetes_version!r}; "
                         f"supported: {', '.join(SUPPORTED_VERSIONS)}")
    return minor


def load(kubernetes_version: str = DEFAULT_VERSION) -> Catalog:
    """The catalog of a supported version (cached: one shared instance per minor version)."""
    return _load(minor_version(kubernetes_version))


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def _served(entry: dict, minor: str) -> bool:
    since, until = entry.get("since"), entry.get("until")
    return (since is None or _key(since) <= _key(minor)) and (until is None or _key(minor) <= _key(until))


@functools.cache
def _data() -> dict:
    return orjson.loads((resources.files(__package__) / "data" / "resources.json").read_bytes())


def load_schemas(minor: str) -> dict:
    """The kubernetes-validate ``$defs`` of a minor version (not cached: use ``load(v).schemas``)."""
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{minor}.0-local" / "_definitions.json"
    return orjson.loads(path.read_bytes())["$defs"]


@functools.cache
def _load(minor: str) -> Catalog:
    schemas = load_schemas(minor)
    gvk_schema = {(g["group"], g["version"], g["kind"]): name
                  for name, s in schemas.items() for g in s.get("x-kubernetes-group-version-kind", ())}
    types = []
    for e in _data()["resources"]:
        group, version, kind = e["group"], e["version"], e["kind"]
        schema = gvk_schema.get((group, version, kind))
        if schema is None or not _served(e, minor):
            continue
        subs = {s["name"]: Subresource(s["name"], s["kind"], s.get("group", group), s.get("version", version),
                                       tuple(s["verbs"]))
                for s in e.get("subresources", ()) if _served(s, minor)}
        virtual = e.get("virtual", False)
        default_prefix = f"/registry/{e['resource']}/"
        types.append(ResourceType(
            group=group, version=version, resource=e["resource"], singular=e["singularName"], kind=kind,
            list_kind=kind + "List", namespaced=e["namespaced"], verbs=tuple(e["verbs"]),
            short_names=tuple(e.get("shortNames", ())), categories=tuple(e.get("categories", ())),
            subresources=MappingProxyType(subs), schema_name=schema,
            storage_prefix="" if virtual else e.get("storagePrefix", default_prefix),
            storage_version=e.get("storageVersion", version), virtual=virtual,
            storage_group=e.get("storageGroup")))
    order = [(g["group"], g["versions"]) for g in _data()["groups"]]
    return Catalog(minor, schemas, types, order)
