"""The service's principals: Entra applications and their service principals (one record per
application, whose `service_principal` says whether the application has its service principal
in the tenant: an application may exist without one, and only one with a service principal gets
tokens), their client secrets and federated identity credentials, kept in the service's own
store under `/identity/servicePrincipals/<appId>` so they survive a restart. Deleting the
application deletes its service principal; deleting the service principal keeps the application
(`remove_service_principal`), and a new one gets a new object id.

A secret is shown once, when it is made (`add_password`, `create`), and kept only as a salted
scrypt hash with Graph's `hint` (its first three characters), so a copy of `lks.db` does not give
it away. `verify_secret` is what the token endpoint (`lks.identity.tokens`) calls; a secret that
verified once is remembered in memory (by a digest, never in clear) so a client that logs in
often does not pay scrypt each time. The Graph subset and `lks ad sp` read and write through
this module only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

import orjson

from lks import store
from lks.clock import Clock

PREFIX = "/identity/servicePrincipals/"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # Entra's default audience of federated credentials
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_MEMO_SIZE = 1024


class PrincipalNotFound(KeyError):
    """No service principal with that appId or object id."""


class ServicePrincipalExists(ValueError):
    """The application has its service principal already."""


class CredentialNotFound(KeyError):
    """The principal has no credential with that keyId / id."""


@dataclass(frozen=True, slots=True)
class PasswordCredential:
    """A client secret as Graph lists it (`passwordCredential`), with its hash instead of it."""

    key_id: str
    display_name: str | None
    start: str  # ISO 8601 UTC, Graph's startDateTime
    end: str  # Graph's endDateTime
    hint: str  # the secret's first three characters
    salt: str  # base64
    hash: str  # base64 scrypt(secret, salt)


@dataclass(frozen=True, slots=True)
class FederatedCredential:
    """A federated identity credential (Graph's `federatedIdentityCredential`): a token from
    `issuer` whose `sub` is `subject` and `aud` one of `audiences` stands for the principal."""

    id: str
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = (EXCHANGE_AUDIENCE,)
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """An application and, when `service_principal` is set, its service principal."""

    app_id: str  # the client id a login names
    object_id: str  # the service principal's object id: tokens' `oid`, role assignments' principalId
    application_object_id: str  # the application object's id (Graph's /applications/{id})
    display_name: str
    created: str  # ISO 8601 UTC
    passwords: tuple[PasswordCredential, ...] = ()
    federated: tuple[FederatedCredential, ...] = ()
    service_principal: bool = True  # whether the application has its service principal in the tenant

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> ServicePrincipal:
        d = orjson.loads(raw)
        d["passwords"] = tuple(PasswordCredential(**p) for p in d.get("passwords", ()))
        d["federated"] = tuple(FederatedCredential(**{**f, "audiences": tuple(f["audiences"])})
                               for f in d.get("federated", ()))
        return cls(**d)


def iso(ts: float) -> str:
    """Graph's date-time form: `2026-12-07T21:40:05Z`."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def new_secret() -> str:
    """A client secret shaped as Entra's (40 characters of `[A-Za-z0-9~._-]`, `8Q~` in the
    fourth to sixth place), with 200 random bits."""
    body = secrets.token_urlsafe(26)[:34]
    head = secrets.token_urlsafe(3)[:3]
    return f"{head}8Q~{body}"


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


async def _matches(cred: PasswordCredential, secret: str) -> bool:
    if not hmac.compare_digest(cred.hint, secret[:3]):
        return False
    digest = await asyncio.to_thread(_hash, secret, base64.b64decode(cred.salt))  # scrypt releases the GIL
    return hmac.compare_digest(digest, base64.b64decode(cred.hash))


def _memo_key(app_id: str, secret: str) -> bytes:
    return hashlib.blake2b(f"{app_id.lower()}\0{secret}".encode(), digest_size=32).digest()


class Principals:
    """Async CRUD of service principals on a `lks.store` backend (the service's `lks.db`)."""

    def __init__(self, backend: store.Backend, *, clock: Clock | None = None):
        self.store = backend
        self.clock = clock or Clock()
        # memo of verify_secret: digest of (appId, secret) -> keyId; only used while that
        # credential is still current, so a removed or expired secret stops working at once
        self._verified: dict[bytes, str] = {}

    # -- principals -----------------------------------------------------------------------------

    async def create(self, display_name: str, *, app_id: str | None = None,
                     service_principal: bool = True) -> ServicePrincipal:
        """A new application, with its service principal unless `service_principal` is false,
        and no credential yet."""
        sp = ServicePrincipal(app_id=app_id or str(uuid.uuid4()), object_id=str(uuid.uuid4()),
                              application_object_id=str(uuid.uuid4()), display_name=display_name,
                              created=iso(self.clock.now()), service_principal=service_principal)
        try:
            await self.store.create(_key(sp.app_id), sp.to_json())
        except store.KeyExists:
            raise ValueError(f"a service principal with appId {sp.app_id} exists") from None
        return sp

    async def get(self, id: str) -> ServicePrincipal | None:
        """The record whose appId, (service principal) object id or application object id is
        `id`, or None; an application without service principal is found by its object id too."""
        kv = await self.store.get(_key(id))
        if kv is not None:
            return ServicePrincipal.from_json(kv.value)
        wanted = id.lower()
        return next((sp for sp in await self.list()
                     if wanted in (sp.object_id.lower(), sp.application_object_id.lower())), None)

    async def list(self) -> list[ServicePrincipal]:
        res = await self.store.list(PREFIX)
        return [ServicePrincipal.from_json(kv.value) for kv in res.items]

    async def add_service_principal(self, app_id: str) -> ServicePrincipal:
        """The application's service principal (a new object id if it had one before); raises
        `PrincipalNotFound`, `ServicePrincipalExists`."""
        def change(sp: ServicePrincipal) -> ServicePrincipal:
            if sp.service_principal:
                raise ServicePrincipalExists(app_id)
            return replace(sp, service_principal=True, object_id=str(uuid.uuid4()))
        return await self._change(app_id, change)

    async def remove_service_principal(self, app_id: str) -> ServicePrincipal:
        """Delete the application's service principal, keeping the application (and its
        credentials); answers the record as it was. Raises `PrincipalNotFound`."""
        old: list[ServicePrincipal] = []

        def change(sp: ServicePrincipal) -> ServicePrincipal:
            if not sp.service_principal:
                raise PrincipalNotFound(app_id)
            old[:] = [sp]
            return replace(sp, service_principal=False)
        await self._change(app_id, change)
        return old[0]

    async def delete(self, id: str) -> ServicePrincipal:
        """Delete the application and its service principal (appId or object id); raises
        `PrincipalNotFound`."""
        sp = await self.get(id)
        if sp is None:
            raise PrincipalNotFound(id)
        try:
            await self.store.delete(_key(sp.app_id))
        except store.NotFound:
            raise PrincipalNotFound(id) from None
        return sp

    async def rename(self, id: str, display_name: str) -> ServicePrincipal:
        return await self._change(id, lambda sp: replace(sp, display_name=display_name))

    # -- client secrets -----------------------------------------------------------------------------

    async def add_password(self, id: str, *, display_name: str | None = None, years: float = 1.0,
                           end: float | None = None) -> tuple[ServicePrincipal, PasswordCredential, str]:
        """A new client secret valid from now until `end` (a timestamp) or for `years`:
        (the principal, the credential, the secret itself, which nothing keeps)."""
        secret = new_secret()
        salt = secrets.token_bytes(16)
        digest = await asyncio.to_thread(_hash, secret, salt)  # scrypt releases the GIL
        now = self.clock.now()
        cred = PasswordCredential(
            key_id=str(uuid.uuid4()), display_name=display_name, start=iso(now),
            end=iso(end if end is not None else now + timedelta(days=365.25 * years).total_seconds()),
            hint=secret[:3], salt=base64.b64encode(salt).decode(), hash=base64.b64encode(digest).decode())
        sp = await self._change(id, lambda sp: replace(sp, passwords=(*sp.passwords, cred)))
        return sp, cred, secret

    async def remove_password(self, id: str, key_id: str) -> ServicePrincipal:
        """Remove the secret `key_id`; raises `CredentialNotFound`."""
        def change(sp: ServicePrincipal) -> ServicePrincipal:
            kept = tuple(p for p in sp.passwords if p.key_id.lower() != key_id.lower())
            if len(kept) == len(sp.passwords):
                raise CredentialNotFound(key_id)
            return replace(sp, passwords=kept)
        return await self._change(id, change)

    async def verify_secret(self, app_id: str, secret: str) -> tuple[ServicePrincipal | None, bool]:
        """(the principal of `app_id` or None, whether `secret` is one of its current secrets:
        known, within its start and end dates)."""
        kv = await self.store.get(_key(app_id))
        if kv is None:
            return None, False
        sp = ServicePrincipal.from_json(kv.value)
        now = self.clock.now()
        live = {p.key_id: p for p in sp.passwords if parse_iso(p.start) <= now + 300 and now < parse_iso(p.end)}
        memo = _memo_key(app_id, secret)
        if self._verified.get(memo) in live:
            return sp, True
        for cred in live.values():
            if await _matches(cred, secret):
                if len(self._verified) >= _MEMO_SIZE:
                    self._verified.clear()
                self._verified[memo] = cred.key_id
                return sp, True
        return sp, False

    async def expired_secret(self, app_id: str, secret: str) -> bool:
        """Whether `secret` is one of `app_id`'s secrets whose end date has passed (what the
        token endpoint tells apart from a wrong secret, as Entra does)."""
        sp = await self.get(app_id)
        now = self.clock.now()
        for cred in sp.passwords if sp is not None else ():
            if now >= parse_iso(cred.end) and await _matches(cred, secret):
                return True
        return False

    # -- federated identity credentials ---------------------------------------------------------

    async def add_federated(self, id: str, *, name: str, issuer: str, subject: str,
                            audiences: tuple[str, ...] | list[str] = (EXCHANGE_AUDIENCE,),
                            description: str | None = None) -> tuple[ServicePrincipal, FederatedCredential]:
        """Trust tokens of `issuer` about `subject`; a name is unique per principal (ValueError)."""
        cred = FederatedCredential(id=str(uuid.uuid4()), name=name, issuer=issuer, subject=subject,
                                   audiences=tuple(audiences), description=description)

        def change(sp: ServicePrincipal) -> ServicePrincipal:
            if any(f.name.lower() == name.lower() for f in sp.federated):
                raise ValueError(f"a federated identity credential named {name!r} exists")
            return replace(sp, federated=(*sp.federated, cred))
        return await self._change(id, change), cred

    async def remove_federated(self, id: str, cred_id: str) -> ServicePrincipal:
        """Remove the federated credential whose id or name is `cred_id`; raises `CredentialNotFound`."""
        def change(sp: ServicePrincipal) -> ServicePrincipal:
            kept = tuple(f for f in sp.federated if cred_id.lower() not in (f.id.lower(), f.name.lower()))
            if len(kept) == len(sp.federated):
                raise CredentialNotFound(cred_id)
            return replace(sp, federated=kept)
        return await self._change(id, change)

    # -- helpers ------------------------------------------------------------------------------------

    async def _change(self, id: str, change: Callable[[ServicePrincipal], ServicePrincipal]) -> ServicePrincipal:
        """Apply `change` (ServicePrincipal -> ServicePrincipal) to the stored principal,
        retrying over concurrent writes."""
        for _ in range(16):
            sp = await self.get(id)
            if sp is None:
                raise PrincipalNotFound(id)
            kv = await self.store.get(_key(sp.app_id))
            if kv is None:
                continue
            new = change(ServicePrincipal.from_json(kv.value))
            try:
                await self.store.update(_key(sp.app_id), new.to_json(), mod_revision=kv.mod_revision)
                return new
            except (store.RevisionConflict, store.NotFound):
                continue
        raise store.StoreError(f"service principal {id} keeps changing")


def _key(app_id: str) -> str:
    return PREFIX + app_id.lower()
