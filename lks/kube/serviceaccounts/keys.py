"""A cluster's service-account signing key: RSA 2048 signing RS256 JWTs, as kube-apiserver's
`--service-account-signing-key-file` (upstream's default algorithm for RSA keys).

The key id (`kid` in each token's header and in the JWKS) is upstream's `keyIDFromPublicKey`:
the unpadded base64url SHA-256 of the public key's DER SubjectPublicKeyInfo, so a verifier that
fetched `/openid/v1/jwks` matches tokens to keys as it would against kube-apiserver.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    def __init__(self, pem: bytes):
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a service-account signing key must be an RSA key")
        self.pem = pem
        self.private = key
        self.public = key.public_key()
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))

    @cached_property
    def jwk(self) -> dict[str, Any]:
        """The public key as the JWKS of `/openid/v1/jwks` lists it (go-jose's field order)."""
        numbers = self.public.public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": ALGORITHM,
                "n": _int(numbers.n), "e": _int(numbers.e)}
