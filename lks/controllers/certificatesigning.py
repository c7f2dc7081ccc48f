"""kube-controller-manager's `csrapproving` and `csrsigning` controllers (upstream's
`pkg/controller/certificates/{approver,signer}`), in one queue of CertificateSigningRequests.

Approving: a pending request for a kubelet's client certificate
(`kubernetes.io/kube-apiserver-client-kubelet`, `CN=system:node:<name>`, `O=system:nodes`) is
approved (`AutoApproved`) when its requester may create `certificatesigningrequests/selfnodeclient`
(its own node's) or `/nodeclient`, as a SubjectAccessReview of the requester would say.

Signing: an approved request to one of the cluster's signers (`kube-apiserver-client`,
`kube-apiserver-client-kubelet`, `kubelet-serving`) that the signer's rules accept gets a
certificate from the cluster CA with the requested usages, valid `expirationSeconds` (at least
ten minutes, at most the one-year default, never past the CA); one they refuse gets a `Failed`
condition (`SignerValidationFailure`). Requests to other signers are left to their own signers.
The admission side (who may approve or sign) is `lks.kube.admission.certificates`.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from lks.clock import rfc3339
from lks.controllers.controller import Controller
from lks.kube import authz, errors
from lks.kube.admission.certificates import GROUP, KUBE_APISERVER_CLIENT, parse_request
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
SIGNERS = (KUBE_APISERVER_CLIENT, KUBELET_CLIENT, KUBELET_SERVING)

CERT_TTL = datetime.timedelta(days=365)  # --cluster-signing-duration's default (8760h)
_MIN_TTL = datetime.timedelta(minutes=10)
_BACKDATE = datetime.timedelta(minutes=5)
_SHORT = datetime.timedelta(hours=8)

_WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")

_KEY_USAGES = {
    "signing": "digital_signature", "digital signature": "digital_signature",
    "content commitment": "content_commitment", "key encipherment": "key_encipherment",
    "key agreement": "key_agreement", "data encipherment": "data_encipherment", "cert sign": "key_cert_sign",
    "crl sign": "crl_sign", "encipher only": "encipher_only", "decipher only": "decipher_only",
}
# extended key usages in Go's x509.ExtKeyUsage order, the order upstream writes them in
_EXT_USAGES: list[tuple[tuple[str, ...], ObjectIdentifier]] = [
    (("any",), ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE),
    (("server auth",), ExtendedKeyUsageOID.SERVER_AUTH),
    (("client auth",), ExtendedKeyUsageOID.CLIENT_AUTH),
    (("code signing",), ExtendedKeyUsageOID.CODE_SIGNING),
    (("email protection", "s/mime"), ExtendedKeyUsageOID.EMAIL_PROTECTION),
    (("ipsec end system",), ObjectIdentifier("1.3.6.1.5.5.7.3.5")),
    (("ipsec tunnel",), ObjectIdentifier("1.3.6.1.5.5.7.3.6")),
    (("ipsec user",), ObjectIdentifier("1.3.6.1.5.5.7.3.7")),
    (("timestamping",), ExtendedKeyUsageOID.TIME_STAMPING),
    (("ocsp signing",), ExtendedKeyUsageOID.OCSP_SIGNING),
    (("microsoft sgc",), ObjectIdentifier("1.3.6.1.4.1.311.10.3.3")),
    (("netscape sgc",), ObjectIdentifier("2.16.840.1.113730.4.1")),
]

_KUBELET_CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"}, {"digital signature", "client auth"})
_KUBELET_SERVING_USAGES = ({"digital signature", "key encipherment", "server auth"}, {"digital signature", "server auth"})


class SignerRefused(Exception):
    """The signer's rules refuse the request (a Failed condition's message)."""


def condition(status: Obj, kind: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


class CertificateSigningController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="certificate-signing", workers=2)
        self.csrs = cluster.registry(GROUP, "v1", "certificatesigningrequests")
        self.informer = self.watch(self.csrs, self._on_csr)

    def _on_csr(self, kind: str, csr: Obj, _prev: Obj | None) -> None:
        status = csr.get("status") or {}
        if kind != "DELETED" and not status.get("certificate") and not condition(status, "Failed") \
                and not condition(status, "Denied"):
            self.queue.add(csr["metadata"]["name"])

    def prime(self) -> None:
        for csr in self.informer.list():
            self._on_csr("ADDED", csr, None)

    async def sync(self, name: str) -> None:
        csr = self.informer.get(None, name)
        if csr is None:
            return
        status = csr.get("status") or {}
        if status.get("certificate") or condition(status, "Failed") or condition(status, "Denied"):
            return
        if not condition(status, "Approved"):
            await self._approve(csr)
            return
        spec = csr.get("spec") or {}
        if spec.get("signerName") not in SIGNERS:
            return  # another signer's request
        try:
            request = parse_request(csr)
        except ValueError as err:
            log.warning("unable to parse csr %r: %s", name, err)
            return
        try:
            check(spec["signerName"], request, list(spec.get("usages") or []))
        except SignerRefused as refused:
            await self._write_status(csr, failed=str(refused))
            return
        pem = sign(self.cluster.ca.cert, self.cluster.ca.key, request, list(spec.get("usages") or []),
                   spec.get("expirationSeconds"), now=datetime.datetime.now(datetime.UTC))  # TLS checks wall time
        await self._write_status(csr, certificate=pem)

    async def _approve(self, csr: Obj) -> None:
        """csrapproving's sarApprover: a kubelet's own or any node client certificate."""
        spec = csr.get("spec") or {}
        if spec.get("signerName") != KUBELET_CLIENT:
            return
        try:
            request = parse_request(csr)
            check(KUBELET_CLIENT, request, list(spec.get("usages") or []))
        except (ValueError, SignerRefused):
            return
        cn = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        requester = User(spec.get("username") or "", tuple(spec.get("groups") or ()), spec.get("uid") or "",
                         {k: tuple(v) for k, v in (spec.get("extra") or {}).items()})
        tries = []
        if cn and spec.get("username") == cn[0].value:
            tries.append(("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview."))
        tries.append(("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."))
        for subresource, message in tries:
            attrs = authz.Attributes(requester, "create", True, api_group=GROUP, api_version="*",
                                     resource="certificatesigningrequests", subresource=subresource)
            if await self.cluster.authorizer.allowed(attrs):
                approved = {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message}
                await self._write(csr, "approval", lambda s, c=approved: s.setdefault("conditions", []).append(c))
                return

    async def _write_status(self, csr: Obj, *, certificate: bytes | None = None, failed: str = "") -> None:
        def change(status: Obj) -> None:
            if certificate is not None:
                status["certificate"] = base64.b64encode(certificate).decode()
            if failed:
                status.setdefault("conditions", []).append({
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": failed,
                    "lastUpdateTime": rfc3339(self.clock.now())})
        await self._write(csr, "status", change)

    async def _write(self, csr: Obj, subresource: str, change: Any) -> None:
        uid = csr["metadata"].get("uid")

        def mutate(current: Obj) -> Obj:
            status = current.setdefault("status", {})
            if current["metadata"].get("uid") != uid:
                raise errors.conflict("certificatesigningrequests", GROUP, current["metadata"]["name"],
                                      "the object was replaced")
            if status.get("certificate") or condition(status, "Failed") or condition(status, "Denied") \
                    or (subresource == "approval" and condition(status, "Approved")):
                return current  # decided meanwhile
            change(status)
            return current

        try:
            await self.csrs.patch(None, csr["metadata"]["name"], mutate, _WRITE, subresource=subresource)
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise


def check(signer: str, request: x509.CertificateSigningRequest, usages: list[str]) -> None:
    """The signer's rules for a request (upstream's isKubeAPIServerClient, isKubeletClient,
    isKubeletServing); SignerRefused with upstream's words when they refuse it."""
    if signer == KUBE_APISERVER_CLIENT:
        for usage in usages:
            if usage not in ("digital signature", "key encipherment", "client auth"):
                raise SignerRefused(f"invalid usage for client certificate: {usage}")
        if "client auth" not in usages:
            raise SignerRefused("missing required usage for client certificate: client auth")
        return
    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    cn = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    node_cn = bool(cn) and str(cn[0].value).startswith("system:node:")
    sans = _sans(request)
    if orgs != ["system:nodes"]:
        raise SignerRefused("subject organization is not system:nodes")
    if signer == KUBELET_CLIENT:
        for kind, words in ((x509.DNSName, "DNS"), (x509.RFC822Name, "Email"), (x509.IPAddress, "IP"),
                            (x509.UniformResourceIdentifier, "URI")):
            if any(isinstance(n, kind) for n in sans):
                raise SignerRefused(f"{words} subjectAltNames are not allowed")
        if not node_cn:
            raise SignerRefused("subject common name does not begin with system:node:")
        if set(usages) not in _KUBELET_CLIENT_USAGES:
            raise SignerRefused(f"usages did not match {_go_list(_KUBELET_CLIENT_USAGES[0])}")
        return
    if not any(isinstance(n, (x509.DNSName, x509.IPAddress)) for n in sans):
        raise SignerRefused("DNS or IP subjectAltName is required")
    if any(isinstance(n, x509.RFC822Name) for n in sans):
        raise SignerRefused("Email subjectAltNames are not allowed")
    if any(isinstance(n, x509.UniformResourceIdentifier) for n in sans):
        raise SignerRefused("URI subjectAltNames are not allowed")
    if set(usages) not in _KUBELET_SERVING_USAGES:
        raise SignerRefused(f"usages did not match {_go_list(_KUBELET_SERVING_USAGES[0])}")
    if not node_cn:
        raise SignerRefused("subject common name does not begin with system:node:")


def _go_list(values: set[str]) -> str:
    return "[" + " ".join(sorted(values)) + "]"


def _sans(request: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        ext = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n for n in ext.value if isinstance(n, (x509.DNSName, x509.IPAddress, x509.RFC822Name,
                                                   x509.UniformResourceIdentifier))]


def ttl(expiration_seconds: Any) -> datetime.timedelta:
    """The certificate's lifetime: the request's `expirationSeconds` within [10 min, CERT_TTL]."""
    if not isinstance(expiration_seconds, int):
        return CERT_TTL
    return max(_MIN_TTL, min(CERT_TTL, datetime.timedelta(seconds=expiration_seconds)))


def sign(ca_cert: x509.Certificate, ca_key: Any, request: x509.CertificateSigningRequest, usages: list[str],
         expiration_seconds: Any, *, now: datetime.datetime) -> bytes:
    """A PEM certificate for `request` (upstream's CertificateAuthority.Sign with the permissive
    policy): the request's subject, key and names, the usages asked for, backdated 5 minutes."""
    life = ttl(expiration_seconds)
    not_before = now - _BACKDATE
    not_after = now + life if life < _SHORT else now + life - _BACKDATE
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") or 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    flags = {v: False for v in _KEY_USAGES.values()}
    for usage in usages:
        if usage in _KEY_USAGES:
            flags[_KEY_USAGES[usage]] = True
    if any(flags.values()):
        if not flags["key_agreement"]:
            flags["encipher_only"] = flags["decipher_only"] = False  # meaningless without it (RFC 5280)
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    ext = [oid for names, oid in _EXT_USAGES if any(n in usages for n in names)]
    if ext:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ext), critical=False)
    if sans := _sans(request):
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)
