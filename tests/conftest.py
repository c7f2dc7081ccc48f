"""Suite-wide set-up: lks's sources compiled to bytecode once, before any test runs.

Every `lks up` and `lks` CLI a test starts is a new interpreter. Where PYTHONDONTWRITEBYTECODE is
set (CI's image sets it) no interpreter leaves its compiled modules behind, so each `lks up`
would compile the whole package again: about 2 s of CPU per start, and the suite starts dozens.
`compileall` writes the caches regardless of that variable and skips what is up to date; the
interpreters then read them (the variable stops writing only)."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lks"


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker: the controller compiled
        return
    compileall.compile_dir(PACKAGE, quiet=1)
