"""The service-account token authenticator (upstream's `pkg/serviceaccount/jwt.go` with the
validators of `claims.go` and `legacy.go`): a JWT this cluster's issuer signed stands for
`system:serviceaccount:<ns>:<name>` while what it names still exists.

A token is ours when its `iss` is one of the issuer's URLs (or the legacy issuer); anything
else is left to the other authenticators (None, no error). Ours, it must be signed by the
cluster's key, carry one of the API server's audiences, be within its lifetime (a minute of
leeway, as go-jose's), and its service account (same uid), bound pod or Secret must exist and
not be deleting (a token bound to a node alone: the node); a legacy token must still be its
Secret's `token`. The result is the user with upstream's extra values
(`authentication.kubernetes.io/pod-name`, `pod-uid`, `node-name`, `node-uid`, `credential-id`).

Speed: the signature check (the only costly step) is remembered per token until it expires;
the lookups read the watch caches, and are skipped while nothing at all was written in the
cluster since they last held, so a deleted pod's token still stops working at once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from lks.kube import errors
from lks.kube.authn import User, service_account_user, split_service_account
from lks.kube.printers import formats
from lks.kube.serviceaccounts.issuer import LEGACY_ISSUER, Issuer
from lks.kube.serviceaccounts.keys import ALGORITHM

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]

LEEWAY = 60.0  # go-jose's DefaultLeeway
_CACHE_SIZE = 4096
_LEGACY = "kubernetes.io/serviceaccount/"
EXTRA = "authentication.kubernetes.io/"


class Invalid(Exception):
    """A token of ours that does not authenticate; the message is upstream's."""


@dataclass(slots=True)
class _Verified:
    """A token whose signature held, with what each use of it needs read out once."""

    claims: Obj
    legacy: bool
    audiences: tuple[str, ...] = ()  # its `aud` (empty: the API server's)
    user: User | None = None  # a bound token's user (its claims say all of it)
    # a bound token's lifetime and what must still exist: (exp, nbf, namespace, account name and
    # uid, [(kind, resource, name, uid) of the secret and pod it is bound to])
    binding: tuple[Any, Any, str, str, str, list[tuple[str, str, str, str]]] | None = None
    checked_at: int = -1  # the cluster's revision when the objects it names were last found in order
    api_ok: tuple[tuple[str, ...], bool] = ((), False)  # (the issuers then, whether it was for the API server)


class Authenticator:
    def __init__(self, cluster: Cluster, issuer: Issuer):
        self.cluster = cluster
        self.issuer = issuer
        self._verified: dict[str, _Verified] = {}

    async def __call__(self, token: str) -> User | None:
        """The token authenticator of `Cluster.authenticate`: the user, or None."""
        try:
            return await self.authenticate(token)
        except Invalid:
            return None

    async def authenticate(self, token: str, audiences: list[str] | None = None) -> User | None:
        """The user of a token of ours; None when it is not ours; `Invalid` when it is ours but
        does not hold. `audiences`: those the caller asks for (a TokenReview's), else the API
        server's own."""
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return None
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = verified
        self._check_audiences(verified, audiences)
        if verified.legacy:
            return await self._legacy(token, verified.claims)
        return await self._bound(verified)

    def audiences_of(self, token: str) -> list[str]:
        """The audiences of a token this authenticator accepted (the implicit ones if it names none)."""
        verified = self._verified.get(token)
        return list(verified.audiences if verified is not None and verified.audiences else self.issuer.audiences)

    def _check_audiences(self, verified: _Verified, audiences: list[str] | None) -> None:
        issuers = tuple(self.issuer.issuers)
        if audiences is None and verified.api_ok[0] == issuers:  # the common case, answered once
            ok = verified.api_ok[1]
        else:
            implicit = self.issuer.audiences
            ok = bool(set(verified.audiences or implicit) & set(audiences or implicit))
            if audiences is None:
                verified.api_ok = (issuers, ok)
        if not ok:
            token_auds = list(verified.audiences or self.issuer.audiences)
            wanted = audiences or self.issuer.audiences
            raise Invalid(f"token audiences {_quoted(token_auds)} is invalid for the target audiences {_quoted(wanted)}")

    # -- the token itself -------------------------------------------------------------------

    def _verify(self, token: str) -> _Verified | None:
        if token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return None
        iss = claims.get("iss")
        legacy = iss == LEGACY_ISSUER
        if not legacy and iss not in self.issuer.issuers:
            return None
        try:  # the times are checked on each use, against the cluster's clock
            jwt.decode(token, self.issuer.key.public, algorithms=[ALGORITHM],
                       options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                "verify_iat": False, "verify_iss": False})
        except jwt.InvalidTokenError:
            raise Invalid("go-jose/go-jose: error in cryptographic primitive") from None
        aud = claims.get("aud")
        auds = (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
        if legacy:
            return _Verified(claims, legacy, auds)
        private = claims.get("kubernetes.io") or {}
        sa_ref = private.get("serviceaccount") or {}
        refs = [(kind, resource, ref.get("name") or "", ref.get("uid") or "")
                for kind, resource in (("secret", "secrets"), ("pod", "pods")) if (ref := private.get(kind))]
        if private.get("node") and not private.get("pod"):  # bound to the node itself: it must exist
            refs.append(("node", "nodes", private["node"].get("name") or "", private["node"].get("uid") or ""))
        binding = (claims.get("exp"), claims.get("nbf"), private.get("namespace") or "", sa_ref.get("name") or "",
                   sa_ref.get("uid") or "", refs)
        return _Verified(claims, legacy, auds, _bound_user(claims), binding)

    # -- bound tokens ---------------------------------------------------------------------

    async def _bound(self, verified: _Verified) -> User:
        assert verified.binding is not None and verified.user is not None
        exp, nbf, ns, name, uid, refs = verified.binding
        now = self.cluster.clock.now()
        if isinstance(exp, int | float) and now > exp + LEEWAY:
            raise Invalid("service account token has expired")
        if isinstance(nbf, int | float) and now < nbf - LEEWAY:
            raise Invalid("service account token is not valid yet")
        revision = self.cluster.feed.revision
        if verified.checked_at == revision:  # nothing was written since its objects were found in order
            return verified.user
        account = await self._get("serviceaccounts", ns, name)
        if account is None:
            raise Invalid(f'serviceaccount "{name}" not found')
        meta = account["metadata"]
        if "deletionTimestamp" in meta and _deleted(account, now):
            raise Invalid(f"service account {ns}/{name} has been deleted")
        if meta.get("uid") != uid:
            raise Invalid(f"service account UID ({meta.get('uid')}) does not match claim ({uid})")
        deleting = False
        for kind, resource, ref_name, ref_uid in refs:
            obj = await self._get(resource, None if resource == "nodes" else ns, ref_name)
            deleting = deleting or (obj is not None and "deletionTimestamp" in obj["metadata"])
            if obj is None or ("deletionTimestamp" in obj["metadata"] and _deleted(obj, now)):
                raise Invalid("service account token has been invalidated")
            if obj["metadata"].get("uid") != ref_uid:
                raise Invalid(f"{kind} UID ({obj['metadata'].get('uid')}) does not match service account "
                              f"{kind} ref claim ({ref_uid})")
        if "deletionTimestamp" not in meta and not deleting:  # a deleting one is invalid after the leeway
            verified.checked_at = revision
        return verified.user

    # -- legacy tokens --------------------------------------------------------------------

    async def _legacy(self, token: str, claims: Obj) -> User:
        ns = claims.get(_LEGACY + "namespace") or ""
        secret_name = claims.get(_LEGACY + "secret.name") or ""
        name = claims.get(_LEGACY + "service-account.name") or ""
        uid = claims.get(_LEGACY + "service-account.uid") or ""
        for what, value in (("sub", claims.get("sub")), ("namespace", ns), ("secretName", secret_name),
                            ("serviceAccountName", name), ("serviceAccountUID", uid)):
            if not value:
                raise Invalid(f"{what} claim is missing")
        if split_service_account(claims["sub"]) != (ns, name):
            raise Invalid("sub claim is invalid")
        now = self.cluster.clock.now()
        secret = await self._get("secrets", ns, secret_name)
        if secret is None or "deletionTimestamp" in secret["metadata"]:
            raise Invalid("token has been invalidated")
        if _secret_token(secret) != token:
            raise Invalid("token does not match server's copy")
        account = await self._get("serviceaccounts", ns, name)
        if account is None:
            raise Invalid(f'serviceaccount "{name}" not found')
        if _deleted(account, now):
            raise Invalid(f"service account {ns}/{name} has been deleted")
        if account["metadata"].get("uid") != uid:
            raise Invalid(f"service account UID ({account['metadata'].get('uid')}) does not match claim ({uid})")
        return service_account_user(ns, name, uid)

    async def _get(self, resource: str, ns: str | None, name: str) -> Obj | None:
        """From the watch cache; from the store when the cache does not have it (yet); `ns`
        None for a cluster-scoped resource."""
        if ns == "" or not name:
            return None
        reg = self.cluster.registry("", "v1", resource)
        obj = (await reg.cache()).objects.get(reg.key(ns, name))
        if obj is not None:
            return obj
        try:
            return await reg.get(ns, name)
        except errors.APIError as err:
            if err.code == 404:
                return None
            raise


def _bound_user(claims: Obj) -> User:
    """The user a bound token stands for, with upstream's extra values."""
    private = claims.get("kubernetes.io") or {}
    sa_ref = private.get("serviceaccount") or {}
    extra: dict[str, tuple[str, ...]] = {}
    pod = private.get("pod")
    if pod and pod.get("name") and pod.get("uid"):
        extra[EXTRA + "pod-name"] = (pod["name"],)
        extra[EXTRA + "pod-uid"] = (pod["uid"],)
    if claims.get("jti"):
        extra[EXTRA + "credential-id"] = (f"JTI={claims['jti']}",)
    node = private.get("node")
    if node and node.get("name"):
        extra[EXTRA + "node-name"] = (node["name"],)
        if node.get("uid"):
            extra[EXTRA + "node-uid"] = (node["uid"],)
    return service_account_user(private.get("namespace") or "", sa_ref.get("name") or "", sa_ref.get("uid") or "", extra)


def _deleted(obj: Obj, now: float) -> bool:
    """Deleting since before the leeway (upstream's invalidIfDeletedBefore)."""
    stamp = formats.parse_time(obj["metadata"].get("deletionTimestamp"))
    return stamp is not None and stamp < now - LEEWAY


def _secret_token(secret: Obj) -> str:
    raw = (secret.get("data") or {}).get("token")
    try:
        return base64.b64decode(raw).decode() if raw else ""
    except (ValueError, UnicodeDecodeError):
        return ""


def _quoted(values: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"
