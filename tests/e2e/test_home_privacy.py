"""`$LKS_HOME` holds every cluster's CA key and tokens: a real `lks up` started under umask 022
keeps all of it private to the owner (folders 0700, files 0600, SQLite's WAL and SHM too), and
a home left with loose modes is fixed when the service starts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.e2e.conftest import LKS


def _loose(home: Path) -> list[str]:
    """Every path under `home` (and itself) that its group or the world may read or enter."""
    found = []
    for path in [home, *home.rglob("*")]:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            found.append(f"{oct(stat.S_IMODE(st.st_mode))} {path.relative_to(home)}")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    old = os.umask(0o022)  # the usual umask: what `lks up` creates must be private anyway
    try:
        home = tmp_path_factory.mktemp("private-home")
        home.chmod(0o755)
        s = LKS(home)
        s.start()
        yield s
        s.stop()
    finally:
        os.umask(old)


def test_everything_under_the_home_is_private(server: LKS):
    home = server.home
    server.kubectl("create", "configmap", "written", "--from-literal=a=b")  # the cluster's store writes
    stores = list(home.glob("clusters/*/state.db*")) + list(home.glob("lks.db*"))
    assert any(p.name.endswith("-wal") for p in stores), stores  # WAL files exist while serving
    assert (home / "pki" / "ca.key").exists()
    assert _loose(home) == []


def test_a_home_with_loose_modes_is_fixed_at_start(server: LKS):
    home = server.home
    server.stop()
    loosened = [home, home / "pki", home / "pki" / "ca.key", home / "pki" / "ca.crt", home / "lks.db",
                *home.glob("clusters/*"), *home.glob("clusters/*/state.db*")]
    for path in loosened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert len(_loose(home)) >= len(loosened)
    server.start()
    assert _loose(home) == []
    assert server.kubectl("get", "configmap", "written", "-o", "name").stdout.strip() == "configmap/written"
