"""Access tokens of the service's token issuer: RS256 JWTs shaped as Entra ID's app-only (v1)
access tokens, signed with one RSA key the service keeps in `$LKS_HOME/pki/issuer.key`, and
their verification as ARM does it (signature, issuer, tenant, audience, lifetime with ARM's
five minutes of clock skew).

`lks.identity.issuer` decides what a token says (who, for which audience); this module only
signs and checks. `lks.arm.app` authenticates management requests with `Tokens.verify`.

Speed: the signature check (the only costly step) is remembered per token until it expires,
so a client that sends the same bearer token on every request pays it once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from lks.clock import Clock
from lks.kube.serviceaccounts.keys import ALGORITHM, SigningKey

Claims = dict[str, Any]

LIFETIME = 3599  # what Entra answers as expires_in for client credentials
BACKDATE = 300  # Entra's iat and nbf lie five minutes in the past
SKEW = 300  # ARM tolerates five minutes of clock skew on exp and nbf
_CACHE_SIZE = 4096


class Invalid(Exception):
    """Not a token of this issuer: malformed, badly signed, another issuer."""


class Expired(Exception):
    def __init__(self, expiry: float, now: float):
        super().__init__("expired")
        self.expiry = expiry
        self.now = now


class NotYetValid(Exception):
    pass


class WrongAudience(Exception):
    def __init__(self, audience: str):
        super().__init__(audience)
        self.audience = audience


class WrongTenant(Exception):
    def __init__(self, tenant: str):
        super().__init__(tenant)
        self.tenant = tenant


class Tokens:
    def __init__(self, *, key: SigningKey, tenant_id: str, clock: Clock | None = None):
        self.key = key
        self.tenant_id = tenant_id
        self.clock = clock or Clock()
        self._verified: dict[str, Claims] = {}  # token -> its claims, once its signature held

    def issue(self, *, issuer: str, audience: str, object_id: str, app_id: str, credential_type: str,
              groups: list[str] | None = None) -> tuple[str, int]:
        """(an access token for `audience` standing for the service principal `object_id` /
        `app_id`, its lifetime in seconds). `credential_type`: Entra's `appidacr`, "1" for a
        client secret, "2" for a certificate or a federated assertion; `groups`: the `groups`
        claim (left out when empty, as Entra does)."""
        now = int(self.clock.now())
        claims = {
            "aud": audience, "iss": issuer, "iat": now - BACKDATE, "nbf": now - BACKDATE, "exp": now + LIFETIME,
            "appid": app_id, "appidacr": credential_type, "idp": issuer, "idtyp": "app", "oid": object_id,
            "sub": object_id, "tid": self.tenant_id, "uti": uuid.uuid4().hex[:22], "ver": "1.0",
        }
        if groups:
            claims["groups"] = list(groups)
        key = self.key
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid}), LIFETIME

    def verify(self, token: str, *, issuer: str, audiences: tuple[str, ...]) -> Claims:
        """The claims of `token` if this issuer signed it for one of `audiences` and it is within
        its lifetime (ARM's skew); else `Invalid`, `WrongTenant`, `WrongAudience`, `Expired` or
        `NotYetValid`, checked in ARM's order."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._signature(token)
            if claims.get("iss") != issuer:
                raise Invalid("issuer")
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if claims.get("tid") != self.tenant_id:
            raise WrongTenant(str(claims.get("tid")))
        aud = claims.get("aud")
        if aud not in audiences:
            raise WrongAudience(str(aud))
        now = self.clock.now()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float):
            raise Invalid("exp")
        if now > exp + SKEW:
            self._verified.pop(token, None)
            raise Expired(exp, now)
        if isinstance(nbf, int | float) and now + SKEW < nbf:
            raise NotYetValid()
        return claims

    def _signature(self, token: str) -> Claims:
        if token.count(".") != 2:
            raise Invalid("format")
        try:  # the times and the audience are checked on each use
            return jwt.decode(token, self.key.public, algorithms=[ALGORITHM],
                              options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                       "verify_iat": False, "verify_iss": False})
        except jwt.InvalidTokenError as err:
            raise Invalid(str(err)) from None


def arm_time(ts: float) -> str:
    """A time as ARM's messages print it (.NET's invariant culture): `12/7/2026 9:40:05 PM`."""
    t = datetime.fromtimestamp(int(ts), UTC)
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02}:{t.second:02} {'AM' if t.hour < 12 else 'PM'}"
