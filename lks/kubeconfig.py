"""Kubeconfig files for hosted clusters, as `az aks get-credentials` writes them: a cluster
entry with the server URL and the CA that signs the service's serving certificate, a user
with the credential, and a context tying them together; plus merging into an existing file.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from lks import pki, safeyaml


def build(*, name: str, server: str, ca_pem: bytes, user: str, credential: dict[str, str]) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": credential}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def client_certificate(ca: pki.KeyPair, user: str, groups: tuple[str, ...]) -> dict[str, str]:
    cert = pki.create_client_cert(ca, user, groups)
    return {"client-certificate-data": base64.b64encode(cert.cert_pem).decode(),
            "client-key-data": base64.b64encode(cert.key_pem).decode()}


def merge(existing: str | None, new: str, *, overwrite: bool) -> tuple[str, list[str]]:
    """`new` merged into `existing` by entry name (clusters, users, contexts), current context set
    to the new one. Without `overwrite`, an entry of the same name but different content is a
    conflict: returned in the second element and left unchanged, as `az aks get-credentials`.
    Both are read with `lks.safeyaml` (a YAMLError for a malformed or alias-bomb file)."""
    base: dict[str, Any] = safeyaml.load(existing) if existing and existing.strip() else {}
    if not isinstance(base, dict):
        base = {}
    add = safeyaml.load(new)
    conflicts: list[str] = []
    for section in ("clusters", "users", "contexts"):
        entries = list(base.get(section) or [])
        for entry in add.get(section) or []:
            same = next((i for i, e in enumerate(entries) if e.get("name") == entry["name"]), None)
            if same is None:
                entries.append(entry)
            elif entries[same] != entry:
                if overwrite:
                    entries[same] = entry
                else:
                    conflicts.append(f"{section[:-1]} {entry['name']}")
        base[section] = entries
    base.setdefault("apiVersion", "v1")
    base.setdefault("kind", "Config")
    base.setdefault("preferences", {})
    base["current-context"] = add["current-context"]
    return yaml.safe_dump(base, sort_keys=False), conflicts
