"""Subresources with behaviour of their own (beyond `status`, `scale` and `finalize`, which
the HTTP layer serves generically): each module here registers a handler for its
(group, resource, subresource) in `HANDLERS`, and the HTTP layer dispatches to it.

A handler gets the parent's registry, the namespace and name, the HTTP verb, the decoded body
(or None) and the write options, and returns (status code, response object).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Handler = Callable[["Registry", "str | None", str, str, Any, "WriteOptions"], Awaitable[tuple[int, dict[str, Any]]]]

HANDLERS: dict[tuple[str, str, str], Handler] = {}

# Virtual resources (not stored, create-only, such as `bindings`): (group, resource) -> handler
# getting the cluster, the namespace, the decoded body and the write options.
VirtualHandler = Callable[["Cluster", "str | None", Any, "WriteOptions"], Awaitable[tuple[int, dict[str, Any]]]]
VIRTUAL: dict[tuple[str, str], VirtualHandler] = {}


def handler(group: str, resource: str, subresource: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[(group, resource, subresource)] = fn
        return fn

    return register


def virtual(group: str, resource: str) -> Callable[[VirtualHandler], VirtualHandler]:
    def register(fn: VirtualHandler) -> VirtualHandler:
        VIRTUAL[(group, resource)] = fn
        return fn

    return register


def load() -> None:
    """Import the handler modules (they register themselves)."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
