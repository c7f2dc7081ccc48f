"""The shape of a printer: upstream's column definitions plus the function that fills a row.

A `Printer` mirrors one `h.TableHandler(columns, printX)` registration in kube-apiserver's
`pkg/printers/internalversion/printers.go`. The server always prints "wide" (its
TableConvertor passes `Wide: true`), so `cells` returns every column; kubectl hides the
priority-1 ones unless asked for `-o wide`.

Upstream's column descriptions are Go `SwaggerDoc()` strings, the same text as the OpenAPI
field descriptions, so a `Doc` names a schema field and is looked up in the catalog's schemas
the first time the columns are wanted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lks.kube import catalog


@dataclass(frozen=True, slots=True)
class Doc:
    """A schema field's description: `Doc("core.PodStatus", "podIP")`; "meta" is ObjectMeta's package.

    Without a version the first served version that defines the kind is used.
    """

    ref: str
    field: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str = "string"
    description: str | Doc = ""
    priority: int = 0
    format: str = ""


Cells = list[Any]


@dataclass(frozen=True, slots=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Callable[[Mapping, float], Cells]
    # per-row conditions (only pods have them: "Completed" rows kubectl may dim)
    conditions: Callable[[Mapping], list[dict] | None] | None = None
    # list order upstream imposes (FlowSchemas by precedence); None keeps the store's order
    sort_key: Callable[[Mapping], Any] | None = None
    # kube-aggregator's APIService convertor sends columns even when asked for none
    headers_always: bool = False


NAME = Column("Name", description=Doc("meta.ObjectMeta", "name"), format="name")
AGE = Column("Age", description=Doc("meta.ObjectMeta", "creationTimestamp"))
CREATED_AT = Column("Created At", "date", Doc("meta.ObjectMeta", "creationTimestamp"))
CONTAINERS = Column("Containers", description="Names of each container in the template.", priority=1)
IMAGES = Column("Images", description="Images referenced by each container in the template.", priority=1)

# Upstream quotes some descriptions from old API versions (extensions/v1beta1, ...); the schemas
# we ship carry the served versions, whose text is the same or close.
_VERSIONS = ("v1", "v2", "v1beta2", "v1beta1", "v1alpha3", "v1alpha2", "v1alpha1")


@functools.cache
def describe(doc: Doc) -> str:
    """The description of `Doc("package.Kind", field)`, or of `Doc("package.version.Kind", field)`."""
    package, *version, kind = doc.ref.split(".")
    if package == "meta":
        names = [f"io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"]
    else:
        names = [f"io.k8s.api.{package}.{v}.{kind}" for v in version or _VERSIONS]
    schemas = catalog.load().schemas
    for definition in names:
        if definition in schemas:
            prop = schemas[definition].get("properties", {}).get(doc.field, {})
            return prop.get("description", "")
    return ""  # upstream quotes a few fields that do not exist (RuntimeClass "handler" of ObjectMeta)


def column_definition(column: Column) -> dict[str, Any]:
    """The `meta.k8s.io/v1 TableColumnDefinition` (every field is always present)."""
    description = column.description
    if isinstance(description, Doc):
        description = describe(description)
    return {"name": column.name, "type": column.type, "format": column.format,
            "description": description, "priority": column.priority}
