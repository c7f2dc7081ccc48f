"""CustomResourceDefinitions: turning a cluster's CRDs into served resource types, and the
strategies of CRDs themselves and of the custom resources they define.

`resource_types(crds)` gives the catalog entries and schemas for every served version of every
established CRD; `lks.kube.cluster.Cluster` extends its catalog with them whenever a CRD
changes, so discovery, OpenAPI and the registries see custom resources like built-ins.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lks.kube import crdrules, crdschema, crdvalidation, scale
from lks.kube.catalog import ResourceType, Subresource
from lks.kube.errors import Cause
from lks.kube.schema import Schema
from lks.kube.strategies.base import Obj, StatusStrategy, Strategy

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
_TERMINATING_VERBS = ("delete", "deletecollection", "get", "list", "watch")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def schema_name(crd_name: str, version: str) -> str:
    return f"crd/{crd_name}/{version}"


@dataclass(frozen=True)
class CustomType:
    """What the registry needs to know about one served version of a CRD."""

    rt: ResourceType
    schema: dict[str, Any]  # the version's openAPIV3Schema, as written
    scale: scale.ScalePaths | None
    printer_columns: tuple[dict[str, Any], ...]
    terminating: bool = False  # the CRD is being deleted: its objects go, none may be created


def _version_schema(crd: Obj, version: Obj) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    return (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema") or {}


def _with_type_meta(schema: dict[str, Any], group: str, version: str, kind: str) -> dict[str, Any]:
    """The schema as OpenAPI shows it: with apiVersion, kind and metadata, and the GVK."""
    doc = copy.deepcopy(schema)
    doc.setdefault("type", "object")
    props = doc.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string", "description": (
        "APIVersion defines the versioned schema of this representation of an object.")})
    props.setdefault("kind", {"type": "string", "description": (
        "Kind is a string value representing the REST resource this object represents.")})
    props["metadata"] = {"$ref": f"#/$defs/{_OBJECT_META}", "description": "Standard object's metadata."}
    doc["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
    return doc


def established(crd: Obj) -> bool:
    return crdvalidation.condition_true(crd, "Established")


def terminating(crd: Obj) -> bool:
    """Being deleted: its objects go, and discovery offers only the verbs that finish that."""
    return crdvalidation.condition_true(crd, "Terminating")


def resource_types(crds: list[Obj]) -> tuple[list[CustomType], dict[str, Any], list[tuple[str, list[str]]]]:
    """Served types, their schemas (for the catalog), and their groups in preference order.

    Several CRDs may share a group (every operator's do): the group is listed once, with the
    union of their served versions, as apiextensions' discovery controller merges them. Types
    come per group by plural, so each group-version lists its resources in one stable order."""
    types: list[CustomType] = []
    schemas: dict[str, Any] = {}
    groups: dict[str, set[str]] = {}
    for crd in sorted(crds, key=lambda c: ((c.get("spec") or {}).get("group") or "",
                                          ((c.get("spec") or {}).get("names") or {}).get("plural") or "")):
        if not established(crd):
            continue
        spec = crd["spec"]
        names = spec["names"]
        group = spec["group"]
        versions = [v for v in spec.get("versions") or [] if v.get("served")]
        storage = _storage_version(crd)
        if not versions or storage is None:
            continue
        # a CRD being deleted serves only what its finalizer needs (upstream's discovery controller)
        ending = terminating(crd)
        verbs = _TERMINATING_VERBS if ending else _VERBS
        for v in sorted(versions, key=lambda v: version_priority(v["name"])):
            subs: dict[str, Subresource] = {}
            v_subs = v.get("subresources") or {}
            if "status" in v_subs:
                subs["status"] = Subresource("status", names["kind"], group, v["name"], ("get", "patch", "update"))
            scale_paths = None
            if "scale" in v_subs:
                sc = v_subs["scale"] or {}
                subs["scale"] = Subresource("scale", "Scale", "autoscaling", "v1", ("get", "patch", "update"))
                scale_paths = scale.ScalePaths(sc.get("specReplicasPath", ".spec.replicas"),
                                               sc.get("statusReplicasPath", ".status.replicas"),
                                               sc.get("labelSelectorPath"))
            name = schema_name(crd["metadata"]["name"], v["name"])
            rt = ResourceType(
                group=group, version=v["name"], resource=names["plural"],
                singular=names.get("singular") or names["kind"].lower(), kind=names["kind"],
                list_kind=names.get("listKind") or names["kind"] + "List",
                namespaced=spec.get("scope", "Namespaced") == "Namespaced", verbs=verbs,
                short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
                subresources=MappingProxyType(subs), schema_name=name,
                storage_prefix=f"/registry/{group}/{names['plural']}/", storage_version=storage, virtual=False,
            )
            raw = _version_schema(crd, v)
            schemas[name] = _with_type_meta(raw, group, v["name"], names["kind"])
            types.append(CustomType(rt, raw, scale_paths, tuple(v.get("additionalPrinterColumns") or ()), ending))
            groups.setdefault(group, set()).add(v["name"])
    return types, schemas, _group_order(groups)


def _group_order(groups: dict[str, set[str]]) -> list[tuple[str, list[str]]]:
    """Groups as kube-aggregator lists CRD groups in `/apis`: each version is an APIService
    `<version>.<group>` of equal priority, sorted by that name, and a group comes where its
    first APIService does; its versions by Kubernetes version priority."""
    first = {g: min(f"{v}.{g}" for v in vs) for g, vs in groups.items()}
    return [(g, sorted(groups[g], key=version_priority)) for g in sorted(groups, key=first.__getitem__)]


_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


def version_priority(name: str) -> tuple:
    """Sort key of Kubernetes version priority (`CompareKubeAwareVersionStrings`): GA before
    beta before alpha, higher numbers first; other names after them, alphabetically."""
    m = _KUBE_VERSION.fullmatch(name)
    if not m:
        return (3, 0, 0, name)
    stage = {None: 0, "beta": 1, "alpha": 2}[m[2]]
    return (stage, -int(m[1]), -int(m[3] or 0), "")


class CustomResourceStrategy(Strategy):
    """Custom resources: generation always tracked; structural schema pruning, defaulting and
    validation; a status subresource when the CRD declares one."""

    tracks_generation = True
    return_deleted_object = True

    def __init__(self, ct: CustomType):
        super().__init__(namespaced=ct.rt.namespaced, has_status="status" in ct.rt.subresources)
        self.ct = ct
        self.schema = Schema({}, ct.schema)
        self.rules = crdrules.build(ct.schema)  # None without x-kubernetes-validations: no cost
        if ct.terminating:  # updates still go through: they remove finalizers
            self.refuses_create = "create not allowed while custom resource definition is terminating"

    def normalize(self, obj: Obj) -> list[str]:
        """Prune unknown fields and apply defaults; the pruned paths."""
        dropped = crdschema.prune(obj, self.schema)
        crdschema.default(obj, self.schema)
        return dropped

    def validate(self, obj: Obj) -> list[Cause]:
        return super().validate(obj) + self.schema_causes(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return super().validate_update(obj, old) + self.schema_causes(obj, old)

    def for_subresource(self, name: str) -> Any:
        return CustomResourceStatusStrategy(self) if name == "status" else super().for_subresource(name)

    def schema_causes(self, obj: Obj, old: Obj | None) -> list[Cause]:
        """The schema's violations, then its CEL rules (`x-kubernetes-validations`) unless a
        violation makes them moot, as upstream's `hasBlockingErr`."""
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        old_body = {k: v for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")} if old else None
        # on update, what was accepted before is not refused again (ratcheting)
        causes = crdschema.validate(body, self.schema, old=crdschema.UNCORRELATED if old_body is None else old_body)
        if self.rules is None:
            return causes
        if any(_blocking(c) for c in causes):
            return causes + [Cause.invalid("<nil>", "null", "some validation rules were not checked because the "
                                           "object was invalid; correct the existing errors to complete validation")]
        return causes + self.rules.validate(obj, old, "")


class CustomResourceStatusStrategy(StatusStrategy):
    """Updates through `/status` of a custom resource: validated against the schema and its
    rules like any update (upstream's status strategy runs both)."""

    parent: CustomResourceStrategy

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return self.parent.schema_causes(obj, old)


_BLOCKING = {"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
             "FieldValueTypeInvalid"}


def _blocking(cause: Cause) -> bool:
    """A violation after which CEL rules are not run (wrong type, missing, too long ...)."""
    return cause.get("reason") in _BLOCKING or " in body must be of type " in cause.get("message", "")


class CRDStrategy(Strategy):
    """CustomResourceDefinitions: named `<plural>.<group>`, born with the cleanup finalizer, and
    validated as apiextensions does (`lks.kube.crdvalidation`)."""

    return_deleted_object = True

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        # born with its storage version stored and no names accepted yet (upstream's PrepareForCreate)
        storage = _storage_version(obj)
        obj["status"] = {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": [storage] if storage else []}

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        # a new storage version is stored from now on (upstream's PrepareForUpdate)
        storage = _storage_version(obj)
        status = obj.setdefault("status", {})
        stored = status.setdefault("storedVersions", [])
        if storage and storage not in stored:
            stored.append(storage)

    def validate(self, obj: Obj) -> list[Cause]:
        return super().validate(obj) + crdvalidation.validate(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return super().validate_update(obj, old) + crdvalidation.validate(obj, old)


def _storage_version(crd: Obj) -> str | None:
    """The first version marked as the storage version."""
    return next((v.get("name") for v in (crd.get("spec") or {}).get("versions") or []
                 if isinstance(v, dict) and v.get("storage") is True), None)


def initial_status(crd: Obj) -> Obj:
    """The status the apiextensions controllers give a CRD whose names are free."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", (names.get("kind") or "").lower())
    names.setdefault("listKind", (names.get("kind") or "") + "List")
    storage = _storage_version(crd)
    return {"acceptedNames": names, "storedVersions": [storage] if storage else []}
