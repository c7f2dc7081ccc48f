"""RuntimeClass and CertificateSigningRequest as kube-apiserver validates them (issue 12, item 16),
through the Python client and kubectl: upstream's `pkg/apis/node/validation` and
`pkg/apis/certificates/validation` field paths and messages, the valid objects still accepted,
and a CSR's spec fixed at creation with its status set only through `/status` and `/approval`."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s_client
from kubernetes import dynamic as k8s_dynamic
from kubernetes.client.exceptions import ApiException

_KEY = ec.generate_private_key(ec.SECP256R1())
_CSR = (x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")]))
        .sign(_KEY, hashes.SHA256()))
REQUEST = base64.b64encode(_CSR.public_bytes(serialization.Encoding.PEM)).decode()


def _tampered() -> str:
    """A well-formed request whose signature does not match."""
    der = bytearray(_CSR.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 1
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) + b"-----END CERTIFICATE REQUEST-----\n"
    return base64.b64encode(pem).decode()


def _csr_spec(**spec) -> dict:
    return {"spec": {"request": REQUEST, "signerName": "example.com/signer", "usages": ["client auth"], **spec}}


_USAGES = ('"any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment", '
           '"decipher only", "digital signature", "email protection", "encipher only", "ipsec end system", '
           '"ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc", '
           '"ocsp signing", "s/mime", "server auth", "signing", "timestamping"')
_RFC1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                  "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_CSR_KIND = ("certificates.k8s.io/v1", "CertificateSigningRequest")
_RC_KIND = ("node.k8s.io/v1", "RuntimeClass")

REFUSALS = [
    pytest.param(*_RC_KIND, {"handler": "Run_C"}, f'handler: Invalid value: "Run_C": {_RFC1123_LABEL}',
                 id="rc-handler"),
    pytest.param(*_RC_KIND, {}, f'handler: Invalid value: "": {_RFC1123_LABEL}', id="rc-no-handler"),
    pytest.param(*_CSR_KIND, {"spec": {"signerName": "example.com/s", "usages": ["client auth"]}},
                 "spec.request: Invalid value: null: PEM block type must be CERTIFICATE REQUEST", id="csr-no-request"),
    pytest.param(*_RC_KIND, {"handler": "runc", "overhead": {"podFixed": {"cpu": "-1"}}},
                 'overhead.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0',
                 id="rc-overhead-negative"),
    pytest.param(*_RC_KIND, {"handler": "runc", "overhead": {"podFixed": {"pods": "1"}}},
                 'overhead.limits[pods]: Invalid value: "pods": must be a standard resource for containers',
                 id="rc-overhead-resource"),
    pytest.param(*_RC_KIND, {"handler": "runc", "scheduling": {"nodeSelector": {"bad key": "v"}}},
                 'scheduling.nodeSelector: Invalid value: "bad key": name part must consist of alphanumeric',
                 id="rc-node-selector"),
    pytest.param(*_RC_KIND, {"handler": "runc", "scheduling": {"tolerations": [{"key": "k", "operator": "Sometimes"}]}},
                 'scheduling.tolerations[0].operator: Unsupported value: "Sometimes": supported values: "Equal", '
                 '"Exists"', id="rc-toleration-operator"),
    pytest.param(*_RC_KIND, {"handler": "runc", "scheduling": {"tolerations": [
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]}},
                 'scheduling.tolerations[1]: Duplicate value: {"Key":"k","Operator":"Equal","Value":"v",'
                 '"Effect":"NoSchedule","TolerationSeconds":null}', id="rc-toleration-duplicate"),
    pytest.param(*_CSR_KIND, _csr_spec(request=base64.b64encode(b"not pem").decode()),
                 'spec.request: Invalid value: "bm90IHBlbQ==": PEM block type must be CERTIFICATE REQUEST',
                 id="csr-not-pem"),
    pytest.param(*_CSR_KIND, _csr_spec(request=base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").decode()),
                 "PEM block type must be CERTIFICATE REQUEST", id="csr-wrong-block"),
    pytest.param(*_CSR_KIND, _csr_spec(request=_tampered()), ": x509: ECDSA verification failure", id="csr-signature"),
    pytest.param(*_CSR_KIND, _csr_spec(usages=[]), "spec.usages: Required value", id="csr-no-usages"),
    pytest.param(*_CSR_KIND, _csr_spec(usages=["client auth", "flying"]),
                 f'spec.usages[1]: Unsupported value: "flying": supported values: {_USAGES}', id="csr-usage"),
    pytest.param(*_CSR_KIND, _csr_spec(usages=["client auth", "client auth"]),
                 'spec.usages[1]: Duplicate value: "client auth"', id="csr-usage-duplicate"),
    pytest.param(*_CSR_KIND, _csr_spec(signerName=""), "spec.signerName: Required value", id="csr-signer-missing"),
    pytest.param(*_CSR_KIND, _csr_spec(signerName="signer"),
                 "spec.signerName: Invalid value: \"signer\": must be a fully qualified domain and path of the form "
                 "'example.com/signer-name'", id="csr-signer-no-path"),
    pytest.param(*_CSR_KIND, _csr_spec(signerName="example/signer"),
                 'spec.signerName: Invalid value: "example": should be a domain with at least two segments separated '
                 "by dots", id="csr-signer-domain"),
    pytest.param(*_CSR_KIND, _csr_spec(signerName="Example.com/signer"),
                 f'spec.signerName: Invalid value: "Example.com": validating label "Example": {_RFC1123_LABEL}',
                 id="csr-signer-label"),
    pytest.param(*_CSR_KIND, _csr_spec(signerName="kubernetes.io/legacy-unknown"),
                 'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not '
                 "allowed via this API version", id="csr-signer-legacy"),
    pytest.param(*_CSR_KIND, _csr_spec(expirationSeconds=599),
                 "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds "
                 "(10 minutes)", id="csr-expiration"),
]


@pytest.fixture(scope="module")
def dynamic(api):
    return k8s_dynamic.DynamicClient(api)


@pytest.fixture(scope="module")
def certificates(api):
    return k8s_client.CertificatesV1Api(api)


@pytest.mark.parametrize(("api_version", "kind", "body", "message"), REFUSALS)
def test_upstream_refuses(dynamic, api_version, kind, body, message):
    resource = dynamic.resources.get(api_version=api_version, kind=kind)
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "bad"}, **body}
    with pytest.raises(ApiException) as err:
        resource.create(body=obj, dry_run="All")
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert message in status["message"], status["message"]


def test_valid_runtime_class_is_accepted_and_its_handler_fixed(dynamic):
    classes = dynamic.resources.get(api_version="node.k8s.io/v1", kind="RuntimeClass")
    classes.create(body={
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor-ok"}, "handler": "runsc",
        "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi", "example.com/gpu": "1"}},
        "scheduling": {"nodeSelector": {"example.com/sandbox": "true"},
                       "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"},
                                       {"key": "sandbox", "operator": "Exists", "effect": "NoExecute",
                                        "tolerationSeconds": 30}]}})
    try:
        with pytest.raises(ApiException) as err:
            classes.patch(name="gvisor-ok", body={"handler": "kata"}, content_type="application/merge-patch+json")
        assert err.value.status == 422
        assert 'handler: Invalid value: "kata": field is immutable' in json.loads(err.value.body)["message"]
        # upstream's update checks only the handler: the rest may change
        classes.patch(name="gvisor-ok", body={"overhead": {"podFixed": {"cpu": "500m"}}},
                      content_type="application/merge-patch+json")
    finally:
        classes.delete(name="gvisor-ok")


def _create_csr(certificates, name: str, **spec) -> None:
    certificates.create_certificate_signing_request({"metadata": {"name": name}, **_csr_spec(**spec)})


def test_csr_spec_is_fixed_at_creation(certificates):
    _create_csr(certificates, "csr-fixed", expirationSeconds=600, usages=["digital signature", "client auth"])
    try:
        # upstream's strategy keeps the stored spec and status whatever an update sends
        out = certificates.patch_certificate_signing_request("csr-fixed", {
            "metadata": {"labels": {"a": "b"}}, "spec": {"signerName": "example.com/other"},
            "status": {"conditions": [{"type": "Approved", "status": "True"}]}})
        assert out.metadata.labels == {"a": "b"}
        assert out.spec.signer_name == "example.com/signer"
        assert not out.status.conditions
    finally:
        certificates.delete_certificate_signing_request("csr-fixed")


def test_csr_approval_and_status_subresources(certificates, kubectl):
    _create_csr(certificates, "csr-flow")
    try:
        # /status sets the certificate, not the conditions
        with pytest.raises(ApiException) as err:
            certificates.patch_certificate_signing_request_status(
                "csr-flow", {"status": {"certificate": base64.b64encode(b"junk").decode()}})
        assert err.value.status == 422
        assert ('status.certificate: Invalid value: "<certificate data>": must contain at least one CERTIFICATE PEM '
                "block") in json.loads(err.value.body)["message"]
        # /approval refuses an Approved condition that is not True, and both verdicts at once
        for conditions, message in (
                ([{"type": "Approved", "status": "False"}],
                 'status.conditions[0].status: Unsupported value: "False": supported values: "True"'),
                ([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}],
                 'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually '
                 "exclusive")):
            with pytest.raises(ApiException) as err:
                certificates.patch_certificate_signing_request_approval("csr-flow", {"status": {"conditions": conditions}})
            assert err.value.status == 422
            assert message in json.loads(err.value.body)["message"]
        # kubectl certificate approve goes through /approval
        kubectl("certificate", "approve", "csr-flow")
        csr = certificates.read_certificate_signing_request("csr-flow")
        assert [(c.type, c.status) for c in csr.status.conditions] == [("Approved", "True")]
        assert csr.status.conditions[0].last_update_time is not None
        # /status keeps the conditions it is sent without
        certificates.patch_certificate_signing_request_status("csr-flow", {"status": {"conditions": []}})
        assert [c.type for c in certificates.read_certificate_signing_request("csr-flow").status.conditions] == \
            ["Approved"]
        with pytest.raises(ApiException) as err:
            certificates.patch_certificate_signing_request_approval(
                "csr-flow", [{"op": "replace", "path": "/status/conditions", "value": []}])
        assert 'status.conditions: Forbidden: updates may not remove a condition of type "Approved"' in \
            json.loads(err.value.body)["message"]
    finally:
        certificates.delete_certificate_signing_request("csr-flow")


def test_csr_records_its_requester_not_what_the_body_claims(certificates):
    _create_csr(certificates, "csr-who", username="mallory", groups=["system:masters-of-nothing"], uid="x")
    try:
        csr = certificates.read_certificate_signing_request("csr-who")
        # the admin credential's identity, as upstream's strategy takes it from the request
        assert csr.spec.username == "masterclient"
        assert csr.spec.groups == ["system:masters", "system:authenticated"]
        assert csr.spec.uid is None
    finally:
        certificates.delete_certificate_signing_request("csr-who")
