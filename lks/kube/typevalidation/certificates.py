"""CertificateSigningRequest rules of upstream's `pkg/apis/certificates/validation`: a signed
PKCS#10 request in a PEM block, a qualified signer name, known key usages listed once, at least
ten minutes of requested validity, well-formed conditions and an issued certificate of PEM
CERTIFICATE blocks.

What an update may change (only the status subresource sets the certificate, only approval
adds an Approved or Denied condition) is `lks.kube.strategies.certificates`' side.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import get, items, mapping

# certificates.KeyUsage constants, sorted as sets.List shows them
USAGES = sorted([
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth",
    "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
    "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"])
LEGACY_SIGNER = "kubernetes.io/legacy-unknown"
_TRUE_ONLY = ("Approved", "Denied", "Failed")  # condition types whose status may only be True
_STATUSES = ["False", "True", "Unknown"]
_MIN_EXPIRATION = 600
_DOMAIN_MAX = 253
_PATH_MAX = 253 + 63 + 1  # a namespace label, '.', a resource name
_SIGNER_MAX = _DOMAIN_MAX + _PATH_MAX + 1


def _line(data: bytes) -> tuple[bytes, bytes]:
    """Go's pem getLine: a line without its trailing whitespace, and the rest."""
    i = data.find(b"\n")
    line, rest = (data, b"") if i < 0 else (data[:i], data[i + 1:])
    return line.rstrip(b" \t\r"), rest


def pem_decode(data: bytes) -> tuple[str, dict, bytes, bytes] | None:
    """`pem.Decode`: the first well-formed block (type, headers, bytes) and what follows it."""
    rest = data
    while True:
        if rest.startswith(b"-----BEGIN "):
            rest = rest[len(b"-----BEGIN "):]
        elif (i := rest.find(b"\n-----BEGIN ")) >= 0:
            rest = rest[i + len(b"\n-----BEGIN "):]
        else:
            return None
        type_line, rest = _line(rest)
        if not type_line.endswith(b"-----"):
            continue
        type_line = type_line[:-5]
        headers: dict[str, str] = {}
        while True:
            if not rest:
                return None
            line, after = _line(rest)
            key, colon, value = line.partition(b":")
            if not colon:
                break
            headers[key.strip().decode(errors="replace")] = value.strip().decode(errors="replace")
            rest = after
        if not headers and rest.startswith(b"-----END "):
            end, trailer_at = 0, len(b"-----END ")
        else:
            end = rest.find(b"\n-----END ")
            trailer_at = end + len(b"\n-----END ")
        if end < 0:
            continue
        trailer = rest[trailer_at:]
        if len(trailer) < len(type_line) + 5 or trailer[:len(type_line) + 5] != type_line + b"-----" \
                or _line(trailer[len(type_line) + 5:])[0]:
            continue
        try:
            body = base64.b64decode(rest[:end].translate(None, b" \t\r\n"), validate=True)
        except (binascii.Error, ValueError):
            continue
        return type_line.decode(errors="replace"), headers, body, _line(trailer[len(type_line) + 5:])[1]


@functools.lru_cache(maxsize=256)  # a CSR's request never changes: updates and the signer see it again
def _request_error(request: bytes) -> str | None:
    """`ParseCSR` and `CheckSignature`'s error, worded as Go's crypto/x509 words it."""
    block = pem_decode(request)
    if block is None or block[0] != "CERTIFICATE REQUEST":
        return "PEM block type must be CERTIFICATE REQUEST"
    try:
        csr = x509.load_der_x509_csr(block[2])
    except ValueError:
        # encoding/asn1's errors name Go struct internals; the common ones are these
        return "asn1: syntax error: sequence truncated" if not block[2] else "x509: malformed certificate request"
    try:
        key = csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        return "x509: cannot verify signature: algorithm unimplemented"
    if valid:
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return "crypto/rsa: verification error"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "x509: Ed25519 verification failure"
    return "x509: cannot verify signature: algorithm unimplemented"


def certificate_error(data: bytes) -> str | None:
    """`validateCertificate`: status.certificate holds CERTIFICATE blocks only (or nothing)."""
    if not data:
        return None
    blocks = 0
    while (block := pem_decode(data)) is not None:
        kind, headers, der, data = block
        if kind != "CERTIFICATE":
            return f"only CERTIFICATE PEM blocks are allowed, found {field.go_json(kind)}"
        if headers:
            return "no PEM block headers are permitted"
        blocks += 1
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return "x509: malformed certificate"
    return None if blocks else "must contain at least one CERTIFICATE PEM block"


def _bytes(value: Any) -> bytes | None:
    """A []byte field (base64 in JSON); None when absent."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def signer_name(name: str, path: str) -> list[Cause]:
    """`ValidateSignerName`: `<domain>/<path>`, the domain of DNS labels, the path of subdomains."""
    if not name:
        return [field.required(path)]
    parts = name.split("/")
    if len(parts) != 2:
        return [field.invalid(path, name, "must be a fully qualified domain and path of the form "
                                          "'example.com/signer-name'")]
    domain, rest = parts
    causes = [field.too_long(path, _DOMAIN_MAX)] if len(domain) > _DOMAIN_MAX else []
    labels = domain.split(".")
    for label in labels:
        msgs = validation.dns_label(label)
        if msgs:
            causes += [field.invalid(path, domain, f"validating label {field.go_json(label)}: {m}") for m in msgs]
            break
    if len(labels) < 2:
        causes.append(field.invalid(path, domain, "should be a domain with at least two segments separated by dots"))
    for label in rest.split("."):
        msgs = validation.dns_subdomain(label)
        if msgs:
            causes += [field.invalid(path, rest, f"validating label {field.go_json(label)}: {m}") for m in msgs]
            break
    if len(name) > _SIGNER_MAX:
        causes.append(field.too_long(path, _SIGNER_MAX))
    return causes


def _conditions(conditions: list, old_conditions: list | None) -> list[Cause]:
    """`validateConditions`; what the stored object already breaks stays tolerated."""
    old_types = [get(c, "type", default="") for c in old_conditions or []]
    allow_empty = "" in old_types
    allow_duplicates = len(set(old_types)) < len(old_types)
    allow_both = "Approved" in old_types and "Denied" in old_types
    causes: list[Cause] = []
    seen: set[str] = set()
    approved = denied = False
    for i, c in enumerate(conditions):
        path = f"status.conditions[{i}]"
        kind, status = get(c, "type", default=""), get(c, "status", default="")
        if not kind and not allow_empty:
            causes.append(field.required(f"{path}.type"))
        allowed = ["True"] if kind in _TRUE_ONLY else _STATUSES
        if not status:
            causes.append(field.required(f"{path}.status"))
        elif status not in allowed:
            causes.append(field.not_supported(f"{path}.status", status, allowed))
        if not allow_both:
            approved, denied = approved or kind == "Approved", denied or kind == "Denied"
            if kind in ("Approved", "Denied") and approved and denied:
                causes.append(field.invalid(f"{path}.type", kind, "Approved and Denied conditions are mutually exclusive"))
        if kind in seen and not allow_duplicates:
            causes.append(field.duplicate(f"{path}.type", kind))
        seen.add(kind)
    return causes


def _validate(obj: dict, old: dict | None, *, certificate_set: bool) -> list[Cause]:
    """`validateCertificateSigningRequest` with the options upstream derives from the stored object."""
    spec, old_spec = mapping(obj, "spec"), mapping(old, "spec")
    request = _bytes(spec.get("request"))
    err = _request_error(request or b"")
    causes = [field.invalid("spec.request", spec.get("request"), err)] if err else []
    usages, old_usages = items(spec, "usages"), items(old_spec, "usages")
    if not usages:
        causes.append(field.required("spec.usages"))
    if old is None or all(u in USAGES for u in old_usages):
        causes += [field.not_supported(f"spec.usages[{i}]", u, USAGES) for i, u in enumerate(usages)
                   if u not in USAGES]
    if old is None or len(set(map(str, old_usages))) == len(old_usages):
        causes += [field.duplicate(f"spec.usages[{i}]", u) for i, u in enumerate(usages) if u in usages[:i]]
    signer = spec.get("signerName") or ""
    if signer == LEGACY_SIGNER and old_spec.get("signerName") != LEGACY_SIGNER:
        causes.append(field.invalid("spec.signerName", signer, "the legacy signerName is not allowed via this API "
                                                               "version"))
    elif signer != LEGACY_SIGNER:
        causes += signer_name(signer, "spec.signerName")
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds < _MIN_EXPIRATION:
        causes.append(field.invalid("spec.expirationSeconds", seconds,
                                    "may not specify a duration less than 600 seconds (10 minutes)"))
    causes += _conditions(items(obj, "status", "conditions"),
                          None if old is None else items(old, "status", "conditions"))
    cert = get(obj, "status", "certificate", default="")
    old_cert = get(old, "status", "certificate", default="")
    # an untouched certificate, or one already bad, is not checked again
    if old is None or (cert != old_cert and certificate_error(_bytes(old_cert) or b"") is None):
        if err := certificate_error(_bytes(cert) or b""):
            causes.append(field.invalid("status.certificate", "<certificate data>", err))
    if old is not None and cert != old_cert:
        if not certificate_set:
            causes.append(field.forbidden("status.certificate", "updates may not set certificate content"))
        elif old_cert:
            causes.append(field.forbidden("status.certificate", "updates may not modify existing certificate "
                                                                "content"))
    return causes


def _condition_updates(new: dict, old: dict, *, approval: bool) -> list[Cause]:
    """Approved, Denied and Failed conditions are never removed; only approval changes the first two."""
    def of_type(obj: dict, kind: str) -> list:
        return [c for c in items(obj, "status", "conditions") if get(c, "type") == kind]
    causes = [field.forbidden("status.conditions", f'updates may not remove a condition of type "{kind}"')
              for kind in ("Approved", "Denied", "Failed") if len(of_type(new, kind)) < len(of_type(old, kind))]
    if approval:
        return causes
    for kind in ("Approved", "Denied"):
        added, before = of_type(new, kind), of_type(old, kind)
        if len(added) > len(before):
            causes.append(field.forbidden("status.conditions", f'updates may not add a condition of type "{kind}"'))
        elif len(added) == len(before) and added != before:
            causes.append(field.forbidden("status.conditions", f'updates may not modify a condition of type "{kind}"'))
    return causes


def validate_csr(obj: dict) -> list[Cause]:
    return _validate(obj, None, certificate_set=False)


def validate_csr_update(new: dict, old: dict, *, subresource: str = "") -> list[Cause]:
    """`ValidateCertificateSigningRequest{,Status,Approval}Update` by `subresource`."""
    return (_validate(new, old, certificate_set=subresource == "status")
            + _condition_updates(new, old, approval=subresource == "approval"))
