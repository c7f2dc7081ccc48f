"""Kubeconfigs for ordinary users of the demo cluster of a running `lks up`, for tests of
authorization that need someone other than the admin: a client certificate for the user (CN)
and its groups (O), signed by the cluster's CA as `kubectl` users of a real cluster get one
from its administrator. The CA is read from the service's own store (`lks.db`), read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import yaml

from lks import pki


def cluster_ca(home: Path, cluster_id: str) -> pki.KeyPair:
    db = sqlite3.connect(f"file:{home / 'lks.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT g.value FROM latest l JOIN log g ON g.id = l.id WHERE l.name = ?",
                         (f"/lks/controlplanes/{cluster_id}",)).fetchone()
    finally:
        db.close()
    record = orjson.loads(row[0])
    return pki.KeyPair(record["caCert"].encode(), record["caKey"].encode())


def user_kubeconfig(home: Path, admin_kubeconfig: Path, user: str, groups: tuple[str, ...] = ()) -> Path:
    """A kubeconfig beside the admin's, for `user` in `groups` (certificates carry the groups)."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    cluster_id = server.rstrip("/").rsplit("/clusters/", 1)[1].split("/")[0]
    cert = pki.create_client_cert(cluster_ca(home, cluster_id), user, groups)
    cert_file, key_file = home / f"{user}.crt", home / f"{user}.key"
    cert_file.write_bytes(cert.cert_pem)
    key_file.write_bytes(cert.key_pem)
    key_file.chmod(0o600)
    config["users"] = [{"name": user, "user": {"client-certificate": str(cert_file), "client-key": str(key_file)}}]
    for context in config["contexts"]:
        context["context"]["user"] = user
    path = home / f"kubeconfig-{user}"
    path.write_text(yaml.safe_dump(config))
    return path
