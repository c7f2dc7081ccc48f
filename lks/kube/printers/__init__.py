"""Server-side printers: the columns and cells kube-apiserver puts in a `kubectl get` Table.

`lookup(group, resource)` returns the printer kube-apiserver registers for a resource, or None
when upstream serves it through the default convertor (Name, Created At): Roles, ClusterRoles,
LimitRanges, CustomResourceDefinitions, CSIStorageCapacities and anything without a handler.
The printers live by API area in `core` (with `pods`), `workloads` and `cluster`, on shared
cell formats in `formats`; `lks.kube.tables` assembles them into `meta.k8s.io/v1 Table` objects.
"""

from __future__ import annotations

from lks.kube.printers import cluster, core, workloads
from lks.kube.printers.base import Printer

_PRINTERS: dict[tuple[str, str], Printer] = {**core.PRINTERS, **workloads.PRINTERS, **cluster.PRINTERS}


def lookup(group: str, resource: str) -> Printer | None:
    return _PRINTERS.get((group, resource))
