"""Warnings raised deep inside a request's handling, where no request object reaches (upstream's
`warning.AddWarning(ctx, agent, text)`): a validator that ratchets a CRD rule failure into a
warning calls `add`; the registry collects them (`collecting`) into the write's options, which
the HTTP layer sends as `Warning: 299` headers, each text once.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_SINK: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("warnings", default=None)


@contextlib.contextmanager
def collecting(into: list[str]) -> Iterator[None]:
    """Warnings added meanwhile go to `into`."""
    token = _SINK.set(into)
    try:
        yield
    finally:
        _SINK.reset(token)


def add(text: str) -> None:
    """Warn the current request (nobody to tell outside one: dropped)."""
    sink = _SINK.get()
    if sink is not None and text not in sink:  # upstream's recorder keeps each text once
        sink.append(text)
