"""Fixtures for the `lks` command's tests: a real `lks up` (the e2e suite's `LKS`) and a runner
for `.venv/bin/lks` as a subprocess against it, with its own HOME so nothing touches the
user's ~/.kube/config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.conftest import LKS  # tests/ is on sys.path: tests/e2e and tests/cli are packages

LKS_BIN = Path(sys.executable).parent / "lks"


class Run:
    """`lks ...` against one server; returns the CompletedProcess (text)."""

    def __init__(self, server: LKS, home: Path):
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
        self.env.update(LKS_HOME=str(server.home), HOME=str(home))

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(LKS_BIN), *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=timeout)

    def json(self, *args: str) -> object:
        res = self(*args)
        assert res.returncode == 0, f"lks {' '.join(args)} failed ({res.returncode}): {res.stderr}"
        return json.loads(res.stdout)

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        res = self(*args)
        assert res.returncode == 0, f"lks {' '.join(args)} failed ({res.returncode}): {res.stderr}"
        return res


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-cli-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def cli(server: LKS, tmp_path: Path) -> Run:
    return Run(server, tmp_path)
