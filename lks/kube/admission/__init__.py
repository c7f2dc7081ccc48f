"""Admission: plugins that see every create, update and delete after validation and before the
store, as kube-apiserver's admission chain (mutating, then validating). A plugin may change the
object or refuse the request with an APIError; `released` tells it an object is gone (to free
what it allocated, such as a Service's cluster IP).

Each module here defines a plugin class and registers it with `@plugin`; every cluster gets an
instance of each (`for_cluster`), in registration order.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]


class Plugin(Protocol):
    def __init__(self, cluster: Cluster) -> None: ...

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        """CREATE or UPDATE: may mutate `obj` (stored version) or raise an APIError."""

    async def released(self, reg: Registry, obj: Obj) -> None:
        """The object was removed from the store."""


_PLUGINS: list[type] = []


def plugin(cls: type) -> type:
    _PLUGINS.append(cls)
    return cls


def for_cluster(cluster: Cluster) -> list[Plugin]:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return [cls(cluster) for cls in _PLUGINS]


async def admit(cluster: Cluster, operation: str, reg: Registry, obj: Obj, old: Obj | None,
                opts: WriteOptions) -> None:
    for p in cluster.admission:
        await p.admit(operation, reg, obj, old, opts)


async def released(cluster: Cluster, reg: Registry, obj: Obj) -> None:
    for p in cluster.admission:
        await p.released(reg, obj)
