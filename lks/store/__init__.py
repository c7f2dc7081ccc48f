"""The revisioned key-value store with watch: lks's one persistence interface.

`open_store(url)` picks a backend by URL scheme:

- `sqlite:///path/to/file.db` (the default; kine-like, one table, every write a new revision),
- `memory://` (unit tests),
- `etcd://host:port/prefix` (an etcd v3 server; the prefix keeps clusters apart).

The vocabulary (`KeyValue`, `Event`, errors, the `Backend` protocol) lives in `types`;
`compactor` keeps history bounded in time for any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from lks.store.types import (
    Backend,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyValue,
    ListResult,
    NotFound,
    RevisionConflict,
    StoreError,
    Timeout,
    Unavailable,
)

__all__ = [
    "Backend", "Compacted", "Event", "FutureRevision", "KeyExists", "KeyValue", "ListResult",
    "NotFound", "RevisionConflict", "StoreError", "Timeout", "Unavailable", "open_store", "register",
]

_factories: dict[str, Callable[[str], Backend]] = {}


def register(scheme: str, factory: Callable[[str], Backend]) -> None:
    _factories[scheme] = factory


def open_store(url: str) -> Backend:
    """A backend for `url`, not started yet (call `await backend.start()`)."""
    import lks.store.backends  # noqa: F401  (registers the built-in backends)

    scheme = urlsplit(url).scheme
    try:
        factory = _factories[scheme]
    except KeyError:
        raise ValueError(f"unknown store scheme {scheme!r} in {url!r}; known: {sorted(_factories)}") from None
    return factory(url)
