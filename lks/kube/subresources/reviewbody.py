"""The body of a review (a virtual, create-only resource such as SubjectAccessReview) decoded
as kube-apiserver's create handler decodes any built-in body before the review's REST sees it:
kind and apiVersion checked, JSON types checked against the schema, unknown fields warned
about or refused as `fieldValidation` asks and always dropped, and the namespace of the URL
written into a namespaced review's metadata (or a different one refused).

The review handlers (`accessreviews`, `rulesreview`) validate and answer what this returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import errors, structural
from lks.kube.schema import Schema
from lks.kube.typevalidation.field import GoStruct

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions

Obj = dict[str, Any]


def decode(cluster: Cluster, group: str, resource: str, namespace: str | None, body: Any,
           opts: WriteOptions) -> Obj:
    rt = cluster.catalog.lookup(group, "v1", resource)
    if rt is None:  # the catalog serves every review it has a handler for
        raise errors.internal(f"no type for {resource}.{group}")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.bad_request("the object provided is not a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != rt.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    if api_version and api_version != rt.gv:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.gv})")
    schema = Schema.of(cluster.catalog.schemas, rt.schema_name)
    unknown, type_errors = structural.check(body, schema)
    if type_errors:
        raise structural.decode_error(rt.kind, rt.version, type_errors[0])
    structural.prune(body, schema)
    messages = opts.duplicates + structural.unknown_field_errors(unknown)
    if messages and opts.field_validation == "Strict":
        raise structural.decode_error(rt.kind, rt.version, structural.strict_error(messages))
    if messages and opts.field_validation == "Warn":
        opts.warnings.extend(structural.warnings(messages))
    meta = dict(body.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)  # as Go encodes a zero ObjectMeta
    if rt.namespaced and namespace:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        meta["namespace"] = namespace
    return {"kind": rt.kind, "apiVersion": rt.gv, "metadata": meta, **{k: v for k, v in body.items()
                                                                     if k not in ("kind", "apiVersion", "metadata")}}


# ObjectMeta's fields in Go's order: how `field.Invalid(metadata, sar.ObjectMeta, ...)` shows it
_META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
               "ownerReferences", "finalizers", "managedFields")


def meta_is_empty(meta: Obj, *, allow: tuple[str, ...] = ()) -> bool:
    """Whether `meta` is the zero ObjectMeta (apart from `allow`ed fields and managedFields), as
    `apiequality.Semantic.DeepEqual` sees it: empty and missing collections are equal."""
    return not any(v not in (None, "", 0, [], {}) for k, v in meta.items() if k not in ("managedFields", *allow))


def shown_meta(meta: Obj) -> Any:
    """`meta` as a validation message shows an ObjectMeta (its JSON, in field order)."""
    shown = GoStruct()
    for key in _META_ORDER:
        if key == "creationTimestamp":
            shown[key] = meta.get(key)
        elif meta.get(key) not in (None, "", 0, [], {}):
            shown[key] = meta[key]
    return shown
