"""The certificates admission plugins of kube-apiserver (upstream's
`plugin/pkg/admission/certificates/{approval,signing,subjectrestriction}`): approving a
CertificateSigningRequest (`/approval`) needs the `approve` verb on its signer, writing its
certificate or conditions through `/status` the `sign` verb, both on the `signers` resource of
`certificates.k8s.io` named by the signerName or its `<domain>/*`; and no request to the
`kube-apiserver-client` signer may ask for `system:masters`. The service's own writes (the
signing controller, `lks.controllers.certificatesigning`) are not checked.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from lks.kube import admission, authz, errors
from lks.kube.authn import MASTERS, User
from lks.kube.typevalidation.certificates import pem_decode

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

GROUP = "certificates.k8s.io"
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"


def parse_request(obj: Obj) -> x509.CertificateSigningRequest:
    """The PKCS#10 request of a CSR (`ParseCSR`); ValueError when it is not one."""
    raw = (obj.get("spec") or {}).get("request") or ""
    try:
        block = pem_decode(base64.b64decode(raw)) if isinstance(raw, str) else None
    except binascii.Error:
        block = None
    if block is None or block[0] != "CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    return x509.load_der_x509_csr(block[2])


async def authorized_for_signer(cluster: Cluster, user: User, verb: str, signer: str) -> bool:
    """`IsAuthorizedForSignerName`: `verb` on the signer, else on its domain's wildcard."""
    for name in (signer, signer.split("/")[0] + "/*"):
        attrs = authz.Attributes(user, verb, True, api_group=GROUP, api_version="*", resource="signers", name=name)
        if await cluster.authorizer.allowed(attrs):
            return True
    return False


def _is_csr(reg: Registry) -> bool:
    return reg.rt.group == GROUP and reg.rt.resource == "certificatesigningrequests"


def _forbidden(obj: Obj, why: str) -> errors.APIError:
    return errors.forbidden("certificatesigningrequests", GROUP, obj["metadata"].get("name") or "Unknown", why)


@admission.plugin
class CertificateAdmission:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if obj is None or not _is_csr(reg):
            return
        signer = (obj.get("spec") or {}).get("signerName") or ""
        if operation == "CREATE" and not opts.subresource and signer == KUBE_APISERVER_CLIENT:
            self._restrict_subject(obj, signer)
        if operation != "UPDATE" or opts.user is None:
            return
        if opts.subresource == "approval":
            if not await authorized_for_signer(self.cluster, opts.user, "approve", signer):
                raise _forbidden(obj, f'user not permitted to approve requests with signerName "{signer}"')
        elif opts.subresource == "status" and old is not None:
            new_status, old_status = obj.get("status") or {}, old.get("status") or {}
            if new_status.get("certificate") == old_status.get("certificate") and \
                    new_status.get("conditions") == old_status.get("conditions"):
                return
            old_signer = (old.get("spec") or {}).get("signerName") or ""
            if not await authorized_for_signer(self.cluster, opts.user, "sign", old_signer):
                raise _forbidden(obj, f'user not permitted to sign requests with signerName "{old_signer}"')

    @staticmethod
    def _restrict_subject(obj: Obj, signer: str) -> None:
        """CertificateSubjectRestriction: no client certificate for system:masters."""
        try:
            request = parse_request(obj)
        except ValueError as err:
            raise _forbidden(obj, f"failed to parse CSR: {err}") from None
        if any(a.value == MASTERS for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)):
            raise _forbidden(obj, f"use of {signer} signer with system:masters group is not allowed")
