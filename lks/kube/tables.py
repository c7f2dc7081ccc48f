"""Server-side `meta.k8s.io/v1 Table` output, as kube-apiserver renders it for `kubectl get`.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the Table's
cells as they come, so the columns and cell text must be upstream's exactly. Three convertors
exist upstream and here: a built-in type's printer (`lks.kube.printers`), the default one for
types without a printer (Name plus the RFC 3339 creation time), and a custom resource's
`additionalPrinterColumns` (`custom_resource_table`, paths evaluated by `lks.kube.jsonpath`).

Each row carries the object as `includeObject` asks: a `PartialObjectMetadata` by default, the
whole object for `Object` (kubectl's `--sort-by`), nothing for `None`. Either way the embedded
object says its kind and apiVersion, as upstream's conversion to the served version sets them:
kubectl decodes each row's object by them, and an object without them sorts as nameless. Everything here is a
pure function of the objects and `now` (epoch seconds from the cluster's clock); the HTTP layer
negotiates the media type, converts objects to the requested version first, and wraps each
watch event's object in a one-row Table (`no_headers` after the first, as upstream does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lks.kube import errors, jsonpath, printers
from lks.kube.printers import formats
from lks.kube.printers.base import CREATED_AT, NAME, Column, Printer, column_definition, describe

API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT = ("Metadata", "None", "Object")

human_duration = formats.human_duration

_DEFAULT_COLUMNS = (NAME, CREATED_AT)


def column_definitions(group: str, resource: str, *, wide: bool = True) -> list[dict]:
    """The columns of a built-in resource; `wide=False` drops the `-o wide` (priority) ones."""
    printer = printers.lookup(group, resource)
    columns = printer.columns if printer else _DEFAULT_COLUMNS
    return [column_definition(c) for c in columns if wide or c.priority == 0]


def row(group: str, resource: str, obj: Mapping, now: float) -> list:
    """The cells kube-apiserver prints for one object (always the wide form, as the server does)."""
    printer = printers.lookup(group, resource)
    return printer.cells(obj, now) if printer else _default_cells(obj)


def to_table(group: str, resource: str, objs: Iterable[Mapping], *, now: float,
             list_meta: Mapping | None = None, include_object: str = "Metadata",
             no_headers: bool = False, api_version: str = API_VERSION,
             object_type: tuple[str, str] | None = None) -> dict:
    """A Table of built-in objects.

    `list_meta` is the list's metadata (resourceVersion, continue, remainingItemCount); leave it
    None when printing one object (a get, or a watch event), whose resourceVersion is then used.
    `object_type` is the (apiVersion, kind) the objects are served as: list items and stored
    objects do not carry them, but a row's embedded object must.
    """
    _check_include_object(include_object)
    objs = list(objs)
    printer = printers.lookup(group, resource)
    if printer is None:
        return _table(_DEFAULT_COLUMNS, [(o, {"cells": _default_cells(o)}) for o in objs],
                      objs, list_meta, include_object, no_headers, api_version, object_type)
    if printer.sort_key is not None and list_meta is not None:
        objs = sorted(objs, key=printer.sort_key)
    rows = [(o, _printer_row(printer, o, now)) for o in objs]
    return _table(printer.columns, rows, objs, list_meta, include_object,
                  no_headers and not printer.headers_always, api_version, object_type)


def custom_resource_table(printer_columns: list[Mapping] | None, objs: Iterable[Mapping], *, now: float,
                          list_meta: Mapping | None = None, include_object: str = "Metadata",
                          no_headers: bool = False, api_version: str = API_VERSION,
                          object_type: tuple[str, str] | None = None) -> dict:
    """A Table of custom resources from their CRD version's `additionalPrinterColumns`.

    With no printer columns the CRD gets upstream's default: Name and an Age column (a `date`
    column whose cells are ages, such as "5m").
    """
    _check_include_object(include_object)
    objs = list(objs)
    columns, paths = _crd_columns(printer_columns or _crd_default_columns())
    rows = [(o, {"cells": [formats.name(o), *(_crd_cell(c, p, o, now)
                                              for c, p in zip(columns[1:], paths, strict=True))]})
            for o in objs]
    return _table(columns, rows, objs, list_meta, include_object, no_headers, api_version, object_type)


def partial_object_metadata(obj: Mapping, api_version: str = API_VERSION) -> dict:
    """`meta.AsPartialObjectMetadata`: the object's whole metadata under a PartialObjectMetadata kind."""
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": dict(formats.meta(obj))}


def partial_object_metadata_list(objs: Iterable[Mapping], list_meta: Mapping,
                                 api_version: str = API_VERSION) -> dict:
    return {"kind": "PartialObjectMetadataList", "apiVersion": api_version, "metadata": _list_meta(list_meta),
            "items": [partial_object_metadata(o, api_version) for o in objs]}


# --- assembly ------------------------------------------------------------------------------

def _check_include_object(value: str) -> None:
    if value not in INCLUDE_OBJECT and value != "":
        supported = ", ".join(f'"{v}"' for v in INCLUDE_OBJECT)
        raise errors.bad_request(f'Unable to convert to Table as requested: includeObject: Unsupported value: '
                                 f'"{value}": supported values: {supported}')


def _list_meta(list_meta: Mapping) -> dict:
    """ListMeta as Go serializes it: every field omitted when empty."""
    meta: dict[str, Any] = {}
    for key in ("resourceVersion", "continue"):
        if list_meta.get(key):
            meta[key] = list_meta[key]
    if list_meta.get("remainingItemCount") is not None:
        meta["remainingItemCount"] = list_meta["remainingItemCount"]
    return meta


def _row_object(obj: Mapping, include_object: str, api_version: str, object_type: tuple[str, str] | None) -> Any:
    if include_object == "Object":
        if object_type is None:
            return obj
        # a new dict: `obj` may be the watch cache's own; kind and apiVersion first, as Go writes them
        return {"kind": object_type[1], "apiVersion": object_type[0], **obj}
    if include_object == "None":
        return None  # upstream's empty RawExtension marshals as null rather than being omitted
    return partial_object_metadata(obj, api_version)


def _table(columns: tuple[Column, ...] | list[dict], rows: list[tuple[Mapping, dict]], objs: list[Mapping],
           list_meta: Mapping | None, include_object: str, no_headers: bool, api_version: str,
           object_type: tuple[str, str] | None) -> dict:
    if list_meta is None:
        # one object: the Table carries its resourceVersion (upstream's CommonAccessor fallback)
        list_meta = {"resourceVersion": formats.text(objs[0], "metadata", "resourceVersion")} if objs else {}
    definitions = None if no_headers else [c if isinstance(c, dict) else column_definition(c) for c in columns]
    for obj, r in rows:
        r["object"] = _row_object(obj, include_object, api_version, object_type)
    return {"kind": "Table", "apiVersion": api_version, "metadata": _list_meta(list_meta),
            "columnDefinitions": definitions, "rows": [r for _, r in rows]}


def _printer_row(printer: Printer, obj: Mapping, now: float) -> dict:
    result: dict[str, Any] = {"cells": printer.cells(obj, now)}
    if printer.conditions is not None and (conditions := printer.conditions(obj)):
        result["conditions"] = [dict(c) for c in conditions]
    return result


def _default_cells(obj: Mapping) -> list:
    """`rest.defaultTableConvertor`: the name and the creation time in RFC 3339."""
    return [formats.name(obj), formats.rfc3339(formats.meta(obj).get("creationTimestamp"))]


# --- custom resources ----------------------------------------------------------------------

def _crd_default_columns() -> list[dict]:
    """apiextensions' `serveDefaultColumnsIfEmpty`: an Age column from the creation time."""
    return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
             "description": describe(CREATED_AT.description)}]


def _crd_columns(printer_columns: list[Mapping]) -> tuple[list[dict], list[tuple]]:
    """The header definitions and parsed paths of a CRD version's printer columns.

    Like upstream's `tableconvertor.New`, a column whose path does not parse ends the list:
    it and the columns after it are dropped (CRD validation normally rejects such paths).
    """
    headers, paths = [column_definition(NAME)], []
    for col in printer_columns:
        path = formats.text(col, "jsonPath")
        try:
            paths.append(jsonpath.parse(path))
        except jsonpath.JSONPathError:
            break
        headers.append({
            "name": formats.text(col, "name"), "type": formats.text(col, "type"),
            "format": formats.text(col, "format"),
            "description": formats.text(col, "description")
            or f"Custom resource definition column (in JSONPath format): {path}",
            "priority": formats.number(col, "priority"),
        })
    return headers, paths


def _crd_cell(column: Mapping, path: tuple, obj: Mapping, now: float) -> Any:
    """The first value the column's path selects, typed as the column says (None when absent)."""
    try:
        results = jsonpath.find(path, obj)
    except jsonpath.JSONPathError:
        return None
    if not results:
        return None
    value, kind = results[0], column["type"]
    if kind == "string":
        return jsonpath.print_value(value)
    if value is None or isinstance(value, bool) and kind != "boolean":
        return None
    if kind == "integer" and isinstance(value, int | float):
        return int(value)
    if kind == "number" and isinstance(value, int | float):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return _date_cell(value, now)
    return None


def _date_cell(value: str, now: float) -> str:
    """`metatable.ConvertToHumanReadableDateType` of a `date` column's RFC 3339 text."""
    if value in ("", "null"):
        return "<unknown>"  # metav1.Time reads these as the zero time
    stamp = formats.parse_time(value)
    if stamp is None:
        return "<unknown>" if value.startswith("0001-01-01T00:00:00") else "<invalid>"
    return formats.human_duration(now - stamp)
