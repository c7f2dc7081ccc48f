"""Fixtures for the network tests: a hosted cluster on the memory store with a manual clock."""

from __future__ import annotations

from support import backend, clock, cluster  # noqa: F401 (fixtures)
