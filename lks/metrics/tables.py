"""`kubectl get podmetrics|nodemetrics` output: the `meta.k8s.io/v1 Table` metrics-server's
table convertor renders (`Name`, then each resource's total usage as a quantity, then `Window`),
when the request asks for one (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
`lks.metrics.api` calls it with the objects it would list.
"""

from __future__ import annotations

from typing import Any

from lks.kube import tables
from lks.kube.http import negotiation

Obj = dict[str, Any]


def wanted(accept: str | None) -> bool:
    """Whether the first acceptable representation is a v1 Table."""
    for mt in negotiation.parse_accept(accept):
        if mt.as_ == "Table":
            if mt.params.get("g") == "meta.k8s.io" and mt.params.get("v") == "v1":
                return True
            continue  # a Table of another version: the next choice
        return False
    return False


def _total(usages: list[Obj], key: str, fmt: Any) -> str:
    return fmt(sum(u.get(key, 0) for u in usages))


def table(objs: list[Obj], usages: list[dict[str, float]], *, cpu: Any, memory: Any, include_object: str) -> Obj:
    """A Table of metrics objects; `usages` their total usage (`cpu` cores, `memory` bytes),
    `cpu`/`memory` the quantity formatters."""
    columns: list[Obj] = []
    if objs:  # as metrics-server: no columns without rows
        columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the resource",
                    "priority": 0},
                   {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
                   {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
                   {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0}]
    rows = []
    for obj, usage in zip(objs, usages, strict=True):
        row: Obj = {"cells": [obj["metadata"]["name"], cpu(usage["cpu"]), memory(usage["memory"]), obj["window"]]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = tables.partial_object_metadata(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": tables.API_VERSION, "metadata": {}, "columnDefinitions": columns,
            "rows": rows}
