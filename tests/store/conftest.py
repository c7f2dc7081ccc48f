"""Fixtures for the store tests: one `store` fixture that runs each test on every backend.

The etcd run needs a real etcd; a session fixture starts one on free loopback ports with a
throwaway data directory and each test gets its own key prefix inside it. A missing `etcd`
binary fails the run (CI installs it with `make etcd`) rather than quietly skipping a backend.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lks import store as stores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of an etcd server that lives for the test session."""
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("the etcd binary is missing: install etcd-server (make etcd)", pytrace=False)
    data = tmp_path_factory.mktemp("etcd")
    client, peer = _free_port(), _free_port()
    log = (data / "etcd.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--name=lks-test",
            f"--data-dir={data / 'data'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=lks-test=http://127.0.0.1:{peer}",
            "--logger=zap",
            "--log-level=error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"etcd exited with {proc.returncode}: {(data / 'etcd.log').read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=1) as resp:
                    if b'"true"' in resp.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("etcd did not become healthy within 20 s")
            time.sleep(0.05)
        yield f"127.0.0.1:{client}"
    finally:
        proc.kill()
        proc.wait()
        log.close()


def _url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'store' / 'lks.db'}"
    endpoint = request.getfixturevalue("etcd_endpoint")
    return f"etcd://{endpoint}/lks-test/{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "sqlite", "etcd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[stores.Backend]:
    """A started backend, fresh for each test (a new file, or a new etcd prefix)."""
    backend = stores.open_store(_url(request, request.param, tmp_path))
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()
