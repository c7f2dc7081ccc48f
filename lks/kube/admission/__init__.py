"""Admission: plugins that see every create, update and delete after validation and before the
store, as kube-apiserver's admission chain: first every plugin's `admit` (mutating: it may
change the object or refuse the request with an APIError), then every plugin's `validate`
(validating: it may only refuse; deletes come here too, with the object being deleted as `old`).
`released` tells a plugin an object is gone (to free what it allocated, such as a Service's
cluster IP). Writes of the service itself (controllers, node agents) have `opts.user` None.

Each module here defines a plugin class and registers it with `@plugin`; every cluster gets an
instance of each (`for_cluster`), in upstream's order where it matters: a class's `ORDER` (default
0) places it — the webhooks after the built-in plugins, ResourceQuota last of all, so that it
charges only what everything else let through.
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

    # optional: async def connect(self, reg, namespace, name, options: Obj, opts) -> None
    # CONNECT (pods/exec, attach, portforward) with its options object (PodExecOptions ...).
    # optional (each of admit, validate and released may be left out):
    # async def validate(self, operation, reg, obj: Obj | None, old: Obj | None, opts) -> None
    # CREATE, UPDATE or DELETE (obj None), after every `admit`: may raise an APIError, never change `obj`.

    async def released(self, reg: Registry, obj: Obj) -> None:
        """The object was removed from the store."""


_PLUGINS: list[type] = []


def plugin(cls: type) -> type:
    _PLUGINS.append(cls)
    return cls


class Chain(list):
    """A cluster's plugins in order, with each phase's hooks looked up once: every write (a
    controller's no-op status write too) walks the phases, most plugins having nothing to do."""

    def __init__(self, plugins: list[Plugin]):
        super().__init__(plugins)
        self.admits = [f for p in plugins if (f := getattr(p, "admit", None)) is not None]
        self.validates = [f for p in plugins if (f := getattr(p, "validate", None)) is not None]


def for_cluster(cluster: Cluster) -> Chain:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return Chain([cls(cluster) for cls in sorted(_PLUGINS, key=lambda c: getattr(c, "ORDER", 0))])


_OPTIONS_KINDS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


def operation_options(operation: str, opts: WriteOptions) -> Obj | None:
    """Upstream's `GetOperationOptions()`, as webhooks and policies see it in `request.options`:
    the meta.k8s.io/v1 options the client sent (a PATCH's as UpdateOptions without `force`, as
    upstream's patchToUpdateOptions); an in-process write's from its options. None for a CONNECT."""
    if operation == "CONNECT":
        return None
    out: Obj = {"kind": _OPTIONS_KINDS[operation], "apiVersion": "meta.k8s.io/v1"}
    if opts.sent is not None:
        out.update(opts.sent)
        return out
    if opts.dry_run:
        out["dryRun"] = ["All"]
    if opts.field_manager and operation != "DELETE":
        out["fieldManager"] = opts.field_manager
    return out


async def admit(cluster: Cluster, operation: str, reg: Registry, obj: Obj, old: Obj | None,
                opts: WriteOptions) -> None:
    for mutate in cluster.admission.admits:  # validating-only plugins have none
        await mutate(operation, reg, obj, old, opts)


async def validate(cluster: Cluster, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                   opts: WriteOptions) -> None:
    for check in cluster.admission.validates:
        await check(operation, reg, obj, old, opts)


async def connect(cluster: Cluster, reg: Registry, namespace: str, name: str, options: Obj,
                  opts: WriteOptions) -> None:
    """CONNECT, for the plugins that take it (upstream: the webhooks); `opts.subresource` names it."""
    for p in cluster.admission:
        check = getattr(p, "connect", None)
        if check is not None:
            await check(reg, namespace, name, options, opts)


async def released(cluster: Cluster, reg: Registry, obj: Obj) -> None:
    for p in cluster.admission:
        release = getattr(p, "released", None)
        if release is not None:
            await release(reg, obj)
