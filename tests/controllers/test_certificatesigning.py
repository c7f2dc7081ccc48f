"""The csrsigning signers' rules and policy (`lks.controllers.certificatesigning.check`, `ttl`,
`sign`) in upstream's words, case by case; the end-to-end flow is tests/e2e/test_csr_signing.py."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lks import pki
from lks.controllers import certificatesigning as cs

NODES = ("system:nodes",)
DNS = [x509.DNSName("n1.example")]
IP = [x509.IPAddress(ipaddress.ip_address("10.0.0.4"))]
EMAIL = [x509.RFC822Name("n1@example.com")]
URI = [x509.UniformResourceIdentifier("spiffe://n1")]
CLIENT = ["digital signature", "key encipherment", "client auth"]
SERVING = ["digital signature", "key encipherment", "server auth"]


def _request(cn: str, orgs: tuple[str, ...] = (), sans: list | None = None) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs), x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(("signer", "cn", "orgs", "sans", "usages", "message"), [
    pytest.param(cs.KUBE_APISERVER_CLIENT, "jane", (), None, ["client auth", "code signing"],
                 "invalid usage for client certificate: code signing", id="client-bad-usage"),
    pytest.param(cs.KUBE_APISERVER_CLIENT, "jane", (), None, ["digital signature"],
                 "missing required usage for client certificate: client auth", id="client-no-client-auth"),
    pytest.param(cs.KUBE_APISERVER_CLIENT, "jane", ("devs",), DNS + EMAIL, CLIENT, None, id="client-anything-else"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", ("system:nodes", "x"), None, CLIENT,
                 "subject organization is not system:nodes", id="kubelet-two-orgs"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, DNS, CLIENT, "DNS subjectAltNames are not allowed",
                 id="kubelet-dns"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, EMAIL, CLIENT, "Email subjectAltNames are not allowed",
                 id="kubelet-email"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, IP, CLIENT, "IP subjectAltNames are not allowed",
                 id="kubelet-ip"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, URI, CLIENT, "URI subjectAltNames are not allowed",
                 id="kubelet-uri"),
    pytest.param(cs.KUBELET_CLIENT, "n1", NODES, None, CLIENT, "subject common name does not begin with system:node:",
                 id="kubelet-cn"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, None, ["client auth"],
                 "usages did not match [client auth digital signature key encipherment]", id="kubelet-usages"),
    pytest.param(cs.KUBELET_CLIENT, "system:node:n1", NODES, None, ["digital signature", "client auth"], None,
                 id="kubelet-no-rsa"),
    pytest.param(cs.KUBELET_SERVING, "system:node:n1", NODES, None, SERVING, "DNS or IP subjectAltName is required",
                 id="serving-no-names"),
    pytest.param(cs.KUBELET_SERVING, "system:node:n1", NODES, IP + EMAIL, SERVING,
                 "Email subjectAltNames are not allowed", id="serving-email"),
    pytest.param(cs.KUBELET_SERVING, "system:node:n1", NODES, DNS + URI, SERVING, "URI subjectAltNames are not allowed",
                 id="serving-uri"),
    pytest.param(cs.KUBELET_SERVING, "system:node:n1", NODES, DNS, ["server auth"],
                 "usages did not match [digital signature key encipherment server auth]", id="serving-usages"),
    pytest.param(cs.KUBELET_SERVING, "node", NODES, IP, SERVING, "subject common name does not begin with system:node:",
                 id="serving-cn"),
    pytest.param(cs.KUBELET_SERVING, "system:node:n1", NODES, DNS + IP, ["digital signature", "server auth"], None,
                 id="serving-ok"),
])
def test_signer_rules(signer, cn, orgs, sans, usages, message):
    request = _request(cn, orgs, sans)
    if message is None:
        cs.check(signer, request, usages)
        return
    with pytest.raises(cs.SignerRefused) as err:
        cs.check(signer, request, usages)
    assert str(err.value) == message


@pytest.mark.parametrize(("asked", "given"), [
    (None, datetime.timedelta(days=365)), (600, datetime.timedelta(minutes=10)), (3600, datetime.timedelta(hours=1)),
    (10 ** 9, datetime.timedelta(days=365)), ("3600", datetime.timedelta(days=365)),
])
def test_ttl_within_ten_minutes_and_a_year(asked, given):
    assert cs.ttl(asked) == given


def test_sign_follows_the_permissive_policy():
    ca = pki.create_ca("test-ca")
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    pem = cs.sign(ca.cert, ca.key, _request("jane", ("devs",), DNS), ["digital signature", "s/mime", "client auth",
                                                                       "any"], 7200, now=now)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.not_valid_before_utc == now - datetime.timedelta(minutes=5)
    assert cert.not_valid_after_utc == now + datetime.timedelta(hours=2)  # shorter than 8 h: not backdated
    ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [u.dotted_string for u in ext] == ["2.5.29.37.0", "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4"]  # Go's order
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == x509.SubjectAlternativeName(DNS)
    cert.verify_directly_issued_by(ca.cert)
    # never past the CA's own end
    late = ca.cert.not_valid_after_utc - datetime.timedelta(days=30)
    cert = x509.load_pem_x509_certificate(cs.sign(ca.cert, ca.key, _request("jane"), ["client auth"], None, now=late))
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc
