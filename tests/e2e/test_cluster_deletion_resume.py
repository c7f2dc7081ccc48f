"""Deleting a managed cluster is complete and resumable: a real `lks up` killed with -9 in the
middle of a delete finishes it after the restart (the operation journal resumes it), and then
nothing of the cluster is left: not its folder, not its store, not its CA key or tokens in the
service's own store, not its records. Driven through the Azure SDK."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient

from tests.e2e.conftest import LKS, StaticToken, wait_until
from tests.e2e.test_arm_sdk import _cluster


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-delete"))
    s.start()
    yield s
    s.stop()


def _aks(server: LKS) -> ContainerServiceClient:
    config = json.loads((server.home / "config.json").read_text())
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                  base_url=config["endpoint"], connection_verify=config["ca_file"])


def _log(home: Path) -> list[tuple[str, bytes, bytes | None]]:
    """Every row of the service's own store, history included: (key, value, old value)."""
    with contextlib.closing(sqlite3.connect(home / "lks.db")) as db:
        return db.execute("SELECT name, value, old_value FROM log").fetchall()


def _latest(home: Path, key: str) -> dict | None:
    values = _live(home, key)
    return values[0] if values else None


def _live(home: Path, prefix: str) -> list[dict]:
    """The current values of the keys under `prefix` in the service's own store."""
    with contextlib.closing(sqlite3.connect(home / "lks.db")) as db:
        rows = db.execute("SELECT latest.name, log.value FROM latest JOIN log ON log.id = latest.id").fetchall()
    return [json.loads(value) for name, value in rows if name.startswith(prefix)]


def test_a_delete_killed_mid_way_completes_after_the_restart(server: LKS):
    home = server.home
    aks = _aks(server)
    before = {p.name for p in (home / "clusters").iterdir()}
    aks.managed_clusters.begin_create_or_update("demo", "victim", _cluster(2)).result()
    (cp_id,) = {p.name for p in (home / "clusters").iterdir()} - before
    record = _latest(home, f"/lks/controlplanes/{cp_id}")
    secrets = [record["caKey"], record["token"], record["userToken"]]
    wal = home / "clusters" / cp_id / "state.db-wal"
    assert wal.exists()

    def delete() -> None:
        with contextlib.suppress(Exception):  # the service dies under it
            aks.managed_clusters.begin_delete("demo", "victim").result()

    deleting = threading.Thread(target=delete)
    deleting.start()
    deadline = time.monotonic() + 30
    while wal.exists():  # the cluster's store closing: the delete is under way
        assert time.monotonic() < deadline, "the delete never closed the cluster's store"
    server.proc.kill()
    server.proc.wait()
    server.log.close()
    deleting.join()
    doc_keys = [name for name, _, _ in _log(home) if name.endswith("/managedclusters/victim")]
    assert doc_keys and _latest(home, doc_keys[0]) is not None  # killed before the delete finished

    server.start()
    aks = _aks(server)

    def gone() -> bool:
        try:
            aks.managed_clusters.get("demo", "victim")
        except ResourceNotFoundError:
            return True
        return False

    wait_until(gone, timeout=60, what="the resumed delete finishing")
    assert "victim" not in {mc.name for mc in aks.managed_clusters.list_by_resource_group("demo")}
    assert not (home / "clusters" / cp_id).exists()
    assert _latest(home, f"/lks/controlplanes/{cp_id}") is None
    rows = _log(home)
    for secret in secrets:
        leaks = [name for name, value, old in rows if secret.encode() in value or (old and secret.encode() in old)]
        assert not leaks, f"the deleted cluster's secrets are still in lks.db: {leaks}"
    assert [op["status"] for op in _live(home, "/lks/operations/") if op["status"] == "InProgress"] == []
    # the service still serves its other cluster
    assert server.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"
