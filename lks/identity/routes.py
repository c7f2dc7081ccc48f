"""HTTP face of the token issuer: the cloud metadata, OpenID Connect discovery, the JWKS and the
token endpoint (`lks.identity.discovery`, `lks.identity.issuer`), all without authentication as
Entra's are, and every failure an OAuth error body (never aiohttp's plain text or a 500).

Paths, under the service's endpoint: `/metadata/endpoints`; `/{tenant}/v2.0/.well-known/
openid-configuration` (and v1's `/{tenant}/.well-known/…`, the ADFS form `/adfs/.well-known/…`);
`/{tenant}/discovery/v2.0/keys` (and `/discovery/keys`); `POST /{tenant}/oauth2/v2.0/token`
(and v1's `/{tenant}/oauth2/token`). `{tenant}` is the tenant id, `organizations`, `common` or
`adfs`. `lks.server` adds these routes after the hosted API servers' and the management API's.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from lks.identity import discovery
from lks.identity import issuer as issuer_
from lks.identity.issuer import Issuer, OAuthError

log = logging.getLogger(__name__)

MAX_FORM = 256 * 1024  # a token request is a few kilobytes (an assertion at most)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


class IdentityAPI:
    def __init__(self, issuer: Issuer):
        self.issuer = issuer

    def aiohttp_routes(self) -> list[web.RouteDef]:
        t = "/{tenant:[^/]+}"
        return [
            web.get("/metadata/endpoints", self.metadata),
            web.get(f"{t}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            web.get(f"{t}/.well-known/openid-configuration", self.openid_configuration),
            web.get(f"{t}/discovery/v2.0/keys", self.keys),
            web.get(f"{t}/discovery/keys", self.keys),
            web.post(f"{t}/oauth2/v2.0/token", self.token),
            web.post(f"{t}/oauth2/token", self.token_v1),
        ]

    async def metadata(self, request: web.Request) -> web.Response:
        version = request.query.get("api-version") or "2022-09-01"
        return _json(discovery.cloud_metadata(self.issuer, version))

    async def openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if tenant.lower() == "adfs":
            return _json(discovery.adfs_configuration(self.issuer))
        if not self.issuer.known_tenant(tenant):
            return self._error(issuer_.unknown_tenant(tenant))
        return _json(discovery.openid_configuration(self.issuer, tenant))

    async def keys(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self.issuer.known_tenant(tenant):
            return self._error(issuer_.unknown_tenant(tenant))
        return _json(discovery.jwks(self.issuer))

    async def token(self, request: web.Request) -> web.Response:
        return await self._token(request, v1=False)

    async def token_v1(self, request: web.Request) -> web.Response:
        return await self._token(request, v1=True)

    async def _token(self, request: web.Request, *, v1: bool) -> web.Response:
        try:
            form = await _read_form(request)
            answer = await self.issuer.token(request.match_info["tenant"], form, v1=v1)
        except OAuthError as err:
            return self._error(err)
        except Exception:  # a bug: Entra's server_error, never a traceback
            log.exception("token endpoint error")
            return self._error(OAuthError("server_error", 90100, "An unexpected error occurred.", 500))
        return _json(answer, headers=_NO_STORE)

    def _error(self, err: OAuthError) -> web.Response:
        return _json(err.body(self.issuer.clock.now()), err.status, _NO_STORE)


async def _read_form(request: web.Request) -> dict[str, str]:
    """The form-encoded body (first value of each name), at most `MAX_FORM` bytes."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise OAuthError("invalid_request", 90020, "The request body is too large.")
    raw = bytearray()
    while chunk := await request.content.read(MAX_FORM + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_FORM:
            raise OAuthError("invalid_request", 90020, "The request body is too large.")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", 90014, "The request body must be form-encoded UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form
