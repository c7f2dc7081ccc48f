"""RuntimeClass and CertificateSigningRequest rules (`lks.kube.typevalidation.node`,
`.certificates`) where the e2e tests cannot reach: what a stored object already breaks stays
tolerated on update, PEM parsing, and the update rules of each subresource. Expected strings are
upstream's (`pkg/apis/certificates/validation`, `pkg/apis/core/validation` `ValidateSignerName`)."""

from __future__ import annotations

import base64

from lks.kube import typevalidation
from lks.kube.typevalidation import certificates


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _csr(**spec) -> dict:
    return {"metadata": {"name": "c"}, "spec": {"request": _b64(b"junk"), "signerName": "example.com/s",
                                               "usages": ["client auth"], **spec}}


def texts(causes) -> list[str]:
    return [c.text() for c in causes]


def test_stored_problems_are_tolerated_on_update():
    old = _csr(usages=["flying", "flying"], signerName="kubernetes.io/legacy-unknown")
    causes = texts(typevalidation.validate_update("certificates.k8s.io", "CertificateSigningRequest", old, old))
    assert causes == ['spec.request: Invalid value: "anVuaw==": PEM block type must be CERTIFICATE REQUEST']
    created = texts(typevalidation.validate("certificates.k8s.io", "CertificateSigningRequest", old))
    assert 'spec.usages[1]: Duplicate value: "flying"' in created
    assert any(t.startswith("spec.signerName: Invalid value") for t in created)


def test_signer_name_lengths():
    long_domain = ".".join(["a" * 63] * 4) + "/s"
    assert texts(certificates.signer_name(long_domain, "spec.signerName")) == [
        "spec.signerName: Too long: may not be more than 253 bytes"]


def test_certificate_blocks():
    assert certificates.certificate_error(b"") is None
    assert certificates.certificate_error(b"junk") == "must contain at least one CERTIFICATE PEM block"
    key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert certificates.certificate_error(key) == 'only CERTIFICATE PEM blocks are allowed, found "PRIVATE KEY"'
    headers = b"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n"
    assert certificates.certificate_error(headers) == "no PEM block headers are permitted"


def test_pem_decode_skips_malformed_blocks():
    data = b"text\n-----BEGIN BROKEN\n-----BEGIN A-----\nAAEC\n-----END A-----\nrest"
    assert certificates.pem_decode(data) == ("A", {}, b"\x00\x01\x02", b"rest")
    assert certificates.pem_decode(b"-----BEGIN A-----\nAAEC\n-----END B-----\n") is None


def test_subresource_update_rules():
    old = {**_csr(), "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": _b64(b"x")}}
    removed = {**old, "status": {"certificate": _b64(b"x")}}
    assert 'status.conditions: Forbidden: updates may not remove a condition of type "Approved"' in \
        texts(certificates.validate_csr_update(removed, old, subresource="approval"))
    reissued = {**old, "status": {**old["status"], "certificate": _b64(b"y")}}
    assert "status.certificate: Forbidden: updates may not set certificate content" in \
        texts(certificates.validate_csr_update(reissued, old))
    assert "status.certificate: Forbidden: updates may not modify existing certificate content" in \
        texts(certificates.validate_csr_update(reissued, old, subresource="status"))
