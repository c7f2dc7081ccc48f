"""A cluster's service-account token issuer: JWTs shaped as kube-apiserver signs them
(`pkg/serviceaccount/claims.go` and `legacy.go`), for TokenRequest
(`lks.kube.subresources.tokenrequest`), the node agents' projected tokens and the legacy token
Secrets (`lks.controllers.tokens`); `lks.kube.serviceaccounts.authenticator` verifies them.

Bound tokens carry `aud`, `exp`, `iat`, `iss`, `jti`, `nbf`, `sub` and the private
`kubernetes.io` claim (namespace, service account, the pod / secret / node they are bound to,
`warnafter` for the extended tokens of pods); go-jose writes the claims as a sorted JSON map,
so do we. Legacy tokens (`iss` `kubernetes/serviceaccount`) never expire: they live as long as
their Secret. The issuer URL is `https://kubernetes.default.svc.cluster.local` unless the
managed cluster has an OIDC issuer (`lks.controlplanes` sets it); the previous issuers stay
accepted, as kube-apiserver accepts every `--service-account-issuer` but signs with the first.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import jwt

from lks.kube.authn import SERVICE_ACCOUNT_PREFIX
from lks.kube.serviceaccounts.keys import ALGORITHM, SigningKey

if TYPE_CHECKING:
    from lks.clock import Clock

Obj = dict[str, Any]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
# kubelet asks 3607 s for the tokens of pods; the server then signs a year and warns after 3607 s
# (upstream's WarnOnlyBoundTokenExpirationSeconds / ExpirationExtensionSeconds)
WARN_ONLY_SECONDS = 60 * 60 + 7
EXTENDED_SECONDS = 24 * 365 * 60 * 60


def _ref(obj: Obj) -> dict[str, str]:
    meta = obj["metadata"]
    return {"name": meta["name"], "uid": meta.get("uid", "")}


class Issuer:
    def __init__(self, *, clock: Clock, key_pem: bytes | None = None, issuer: str | None = None):
        """`key_pem` None: a key is made on first use (unit-test clusters that never sign)."""
        self.clock = clock
        self._key_pem = key_pem
        self._key: SigningKey | None = None
        self.issuers: list[str] = []
        self.set_issuer(issuer or DEFAULT_ISSUER)

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = SigningKey(self._key_pem) if self._key_pem else SigningKey.generate()
        return self._key

    @property
    def issuer(self) -> str:
        """The URL new tokens carry as `iss`."""
        return self.issuers[0]

    @property
    def public(self) -> bool:
        """Whether the issuer is the managed cluster's OIDC issuer (served to anyone)."""
        return self.issuer != DEFAULT_ISSUER

    @property
    def audiences(self) -> list[str]:
        """The API server's own audiences (upstream's `--api-audiences` default: the issuers)."""
        return list(self.issuers)

    def set_issuer(self, url: str) -> None:
        """Sign with `url` from now on; tokens of the earlier issuers still verify."""
        self.issuers = [url, *(i for i in self.issuers if i != url)]
        if DEFAULT_ISSUER not in self.issuers:
            self.issuers.append(DEFAULT_ISSUER)

    def issue(self, account: Obj, *, audiences: list[str], seconds: int, warn_after: int = 0,
              pod: Obj | None = None, secret: Obj | None = None, node: Obj | None = None) -> str:
        """A token of `account` valid `seconds` from now, bound to `pod` or `secret` (and
        `node`) when given."""
        now = int(self.clock.now())
        meta = account["metadata"]
        private: Obj = {"namespace": meta["namespace"]}
        if node is not None:
            private["node"] = _ref(node)
        if pod is not None:
            private["pod"] = _ref(pod)
        elif secret is not None:
            private["secret"] = _ref(secret)
        private["serviceaccount"] = _ref(account)
        if warn_after:
            private["warnafter"] = now + warn_after
        claims = {"aud": list(audiences), "exp": now + seconds, "iat": now, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": now,
                  "sub": f"{SERVICE_ACCOUNT_PREFIX}{meta['namespace']}:{meta['name']}"}
        return self._sign(claims)

    def legacy(self, account: Obj, secret_name: str) -> str:
        """A non-expiring token for a `kubernetes.io/service-account-token` Secret."""
        meta = account["metadata"]
        ns, name = meta["namespace"], meta["name"]
        return self._sign({
            "iss": LEGACY_ISSUER, "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": meta.get("uid", ""),
            "sub": f"{SERVICE_ACCOUNT_PREFIX}{ns}:{name}"})

    def _sign(self, claims: Obj) -> str:
        key = self.key
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": None})
