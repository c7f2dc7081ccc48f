"""Kubeconfigs for ordinary users of the demo cluster of a running `lks up`, for tests of
authorization that need someone other than the admin, obtained as a real cluster's users get
one: a CertificateSigningRequest to `kubernetes.io/kube-apiserver-client` for the user (CN) and
its groups (O), `kubectl certificate approve` by the admin, and the certificate the cluster's
CA signs (the csrsigning controller)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import LKS, wait_until


def user_kubeconfig(lks: LKS, user: str, groups: tuple[str, ...] = ()) -> Path:
    """A kubeconfig beside the admin's, for `user` in `groups` (certificates carry the groups)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                         x509.NameAttribute(NameOID.COMMON_NAME, user)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    name = f"{user}-{os.urandom(3).hex()}"
    lks.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
        "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                 "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}}))
    lks.kubectl("certificate", "approve", name)
    cert = wait_until(lambda: json.loads(lks.kubectl("get", "csr", name, "-o", "json").stdout)
                      .get("status", {}).get("certificate"), what=f"{name}'s certificate")
    config = yaml.safe_load(lks.kubeconfig.read_text())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    config["users"] = [{"name": user, "user": {"client-certificate-data": cert,
                                               "client-key-data": base64.b64encode(key_pem).decode()}}]
    for context in config["contexts"]:
        context["context"]["user"] = user
    path = lks.home / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
