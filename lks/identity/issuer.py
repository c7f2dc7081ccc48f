"""The token endpoint of the service's tenant, as Microsoft Entra ID answers az 2.91 / msal 1.39:
OAuth 2.0 client credentials with a client secret (`az login --service-principal -p`) or a
client assertion (`--federated-token`: a JWT of an issuer the principal trusts through a
federated identity credential), for one resource (`scope=<resource>/.default`, or the v1
endpoint's `resource`), answered with an access token (`lks.identity.tokens`) or with
Entra's OAuth error (`error`, an `AADSTS…` description, `error_codes`), never a 500.

Assertions are verified offline: `assertion_keys(issuer)` gives the public keys of an issuer
lks hosts (a managed cluster's service-account issuer, `lks.server` wires it), or None.
`lks.identity.routes` serves this over HTTP; `lks.identity.discovery` the documents that
lead clients here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from lks.clock import Clock
from lks.identity import groups as groups_
from lks.identity import principals as principals_
from lks.identity.tokens import Tokens

DIRECTORY_NAME = "lks"  # the tenant's display name, as Entra's messages name the directory
ARM_AUDIENCE = "https://management.lks/"  # az asks `<audience>/.default`: the metadata's audiences[0]
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # AKS's Entra server app: kubelogin's audience
GRAPH_PATH = "/graph/"  # where the Microsoft Graph subset lives under the endpoint (its audience too)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ALIASES = ("common", "organizations", "adfs")  # authority paths that mean "the tenant"
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

Form = dict[str, str]


class OAuthError(Exception):
    """An OAuth error as Entra words it: `error`, `AADSTS<code>: <message>`, the HTTP status."""

    def __init__(self, error: str, code: int, message: str, status: int = 400):
        super().__init__(message)
        self.error = error
        self.code = code
        self.message = message
        self.status = status

    def body(self, now: float) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return {"error": self.error,
                "error_description": f"AADSTS{self.code}: {self.message} Trace ID: {trace} "
                                     f"Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [self.code], "timestamp": stamp, "trace_id": trace, "correlation_id": correlation,
                "error_uri": f"https://login.microsoftonline.com/error?code={self.code}"}


def unknown_tenant(tenant: str) -> OAuthError:
    return OAuthError("invalid_tenant", 90002,
                      f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                      "signing into the correct cloud. Check with your subscription administrator, this may "
                      "happen if there are no active subscriptions for the tenant.")


def _missing(name: str) -> OAuthError:
    return OAuthError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


class Issuer:
    """The tenant's token issuer. `endpoint` is the service's https URL (set again once the
    port is known); the token issuer URL and the Graph audience follow it."""

    def __init__(self, *, tenant_id: str, endpoint: str, principals: principals_.Principals, tokens: Tokens,
                 clock: Clock | None = None,
                 assertion_keys: Callable[[str], list[Any] | None] | None = None,
                 groups: groups_.Groups | None = None):
        self.tenant_id = tenant_id
        self.groups = groups or groups_.Groups(principals.store, clock=principals.clock)
        self.endpoint = endpoint
        self.principals = principals
        self.tokens = tokens
        self.clock = clock or Clock()
        self.assertion_keys = assertion_keys or (lambda _issuer: None)
        self.extra_resources: set[str] = set()  # more audiences others serve (add_resource)

    # -- names ------------------------------------------------------------------------------------

    @property
    def issuer_url(self) -> str:
        """What tokens carry as `iss` (and discovery as `issuer`)."""
        return f"{self.endpoint}/{self.tenant_id}/v2.0"

    @property
    def login_endpoint(self) -> str:
        """The cloud's `loginEndpoint`: ending in `/adfs`, MSAL skips its online instance discovery."""
        return f"{self.endpoint}/adfs"

    @property
    def graph_audience(self) -> str:
        return self.endpoint + GRAPH_PATH

    @property
    def graph_audiences(self) -> tuple[str, ...]:
        """What the Graph subset accepts as `aud` (for `ManagementAPI.authenticate`)."""
        return (self.graph_audience, self.graph_audience.rstrip("/"))

    @property
    def arm_audiences(self) -> tuple[str, ...]:
        """What ARM accepts as `aud` (in the order its messages list them): its audience and the
        endpoint's, each with and without the slash."""
        return (ARM_AUDIENCE, ARM_AUDIENCE.rstrip("/"), self.endpoint + "/", self.endpoint)

    def add_resource(self, audience: str) -> None:
        """Issue tokens for `audience` too (e.g. a cluster's Entra server app)."""
        self.extra_resources.add(audience.rstrip("/"))

    def known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), *_ALIASES)

    def _resource_known(self, resource: str) -> bool:
        wanted = resource.rstrip("/")
        return wanted in {a.rstrip("/") for a in self.arm_audiences} | {
            self.graph_audience.rstrip("/"), AKS_SERVER_APP, *self.extra_resources}

    # -- the token endpoint ---------------------------------------------------------------------

    async def token(self, tenant: str, form: Form, *, v1: bool = False) -> dict[str, Any]:
        """The token endpoint's answer to `form` (POSTed to `/<tenant>/oauth2/v2.0/token`, or the
        v1 endpoint with `v1`); raises `OAuthError`.

        The `groups` claim: Entra writes it when the token's resource application asks for it
        (its `groupMembershipClaims`), for app-only tokens too. AKS's server app and ARM ask for
        security groups, so their tokens (and those of the clusters' audiences) carry the object
        ids of the security groups the principal is in, nested ones included; Graph's do not.
        lks has no 200-group overage: every group is in the claim."""
        if not self.known_tenant(tenant):
            raise unknown_tenant(tenant)
        grant = form.get("grant_type")
        if not grant:
            raise _missing("grant_type")
        if grant != "client_credentials":
            raise OAuthError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id")
        if not client_id:
            raise _missing("client_id")
        audience = self._audience(form, v1=v1)
        if "client_secret" in form:
            sp, ok = await self.principals.verify_secret(client_id, form["client_secret"])
            if sp is None:
                raise self._unknown_app(client_id)
            self._require_service_principal(sp)
            if not ok and await self.principals.expired_secret(client_id, form["client_secret"]):
                raise OAuthError("invalid_client", 7000222,
                                 f"The provided client secret keys for app '{client_id}' are expired. Visit the "
                                 "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
                                 "consider using certificate credentials for added security: "
                                 "https://aka.ms/certCreds.", 401)
            if not ok:
                raise OAuthError("invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                 f"client secret value, not the client secret ID, for a secret added to app "
                                 f"'{client_id}'.", 401)
            acr = "1"
        elif "client_assertion" in form:
            sp = await self.principals.get(client_id)
            if sp is None or sp.app_id.lower() != client_id.lower():
                raise self._unknown_app(client_id)
            self._require_service_principal(sp)
            self._check_assertion(sp, form)
            acr = "2"
        else:
            raise OAuthError("invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                             "required for the 'client_credentials' grant type.", 401)
        if not self._resource_known(audience):
            raise OAuthError("invalid_resource", 500011,
                             f"The resource principal named {audience} was not found in the tenant named "
                             f"{DIRECTORY_NAME}. This can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the tenant. You might have "
                             "sent your authentication request to the wrong tenant.")
        groups = None
        if audience.rstrip("/") != self.graph_audience.rstrip("/"):
            groups = await self.groups.member_of(sp.object_id, security_only=True)
        token, lifetime = self.tokens.issue(issuer=self.issuer_url, audience=audience, object_id=sp.object_id,
                                            app_id=sp.app_id, credential_type=acr, groups=groups)
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                                  "access_token": token}
        if v1:
            now = int(self.clock.now())
            answer.update(expires_on=str(now + lifetime), not_before=str(now), resource=audience)
            answer["expires_in"] = answer["ext_expires_in"] = str(lifetime)
        return answer

    def _audience(self, form: Form, *, v1: bool) -> str:
        """The resource a request asks a token for: v2's `<resource>/.default` scope (az's
        `<audience>//.default` when the audience ends in a slash keeps that slash), v1's `resource`."""
        if v1:
            if not form.get("resource"):
                raise _missing("resource")
            return form["resource"]
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
        if len(scopes) != 1 or not scopes[0].endswith("/.default") or scopes[0] == "/.default":
            raise OAuthError("invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                             "scope value with /.default suffixed to the resource identifier (application ID URI).")
        return scopes[0][:-len("/.default")]

    def _unknown_app(self, client_id: str) -> OAuthError:
        return OAuthError("unauthorized_client", 700016,
                          f"Application with identifier '{client_id}' was not found in the directory "
                          f"'{DIRECTORY_NAME}'. This can happen if the application has not been installed by the "
                          "administrator of the tenant or consented to by any user in the tenant. You may have sent "
                          "your authentication request to the wrong tenant.")

    def _require_service_principal(self, sp: principals_.ServicePrincipal) -> None:
        """An application gets tokens only through its service principal in the tenant."""
        if not sp.service_principal:
            raise OAuthError("invalid_client", 7000229,
                             f"The client application {sp.app_id} is missing service principal in the tenant "
                             f"{self.tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
                             401)

    def _check_assertion(self, sp: principals_.ServicePrincipal, form: Form) -> None:
        """A federated client assertion: a JWT of an issuer one of `sp`'s federated credentials
        trusts, signed by that issuer, current, about the credential's subject, for one of its
        audiences (matched exactly, case included, as Entra does since 2025)."""
        if form.get("client_assertion_type") != JWT_BEARER:
            raise _missing("client_assertion_type") if not form.get("client_assertion_type") else OAuthError(
                "invalid_request", 50027, "JWT token is invalid or malformed.")
        assertion = form["client_assertion"]
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise OAuthError("invalid_request", 50027, "JWT token is invalid or malformed.") from None
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        creds = [f for f in sp.federated if f.issuer == iss]
        if not creds:
            raise OAuthError("invalid_client", 700211,
                             f"No matching federated identity record found for presented assertion issuer '{iss}'. "
                             "Please check your federated identity credential Subject, Audience and Issuer against "
                             f"the presented assertion. {_DOCS}", 401)
        keys = self.assertion_keys(str(iss))
        if not keys:
            raise OAuthError("invalid_client", 50166, f"Request to External OIDC endpoint failed. Issuer: '{iss}'.",
                             401)
        for key in keys:
            try:
                jwt.decode(assertion, key, algorithms=["RS256", "ES256"],
                           options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                    "verify_iat": False, "verify_iss": False})
                break
            except jwt.InvalidTokenError:
                continue
        else:
            raise OAuthError("invalid_client", 50013, "Assertion failed signature validation. "
                             "[Reason - The key was not found.]", 401)
        now = self.clock.now()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or now > exp or (isinstance(nbf, int | float) and now < nbf):
            raise OAuthError("invalid_client", 700024,
                             f"Client assertion is not within its valid time range. Current time: {_iso(now)}, "
                             f"assertion valid from {_iso(nbf) if isinstance(nbf, int | float) else 'unknown'}, "
                             f"expiry time of assertion {_iso(exp) if isinstance(exp, int | float) else 'unknown'}.",
                             401)
        creds = [f for f in creds if f.subject == sub]
        if not creds:
            raise OAuthError("invalid_client", 700213,
                             f"No matching federated identity record found for presented assertion subject '{sub}'. "
                             "Check your federated identity credential Subject, Audience and Issuer against the "
                             f"presented assertion. {_DOCS}", 401)
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if not any(a in f.audiences for f in creds for a in auds):
            raise OAuthError("invalid_client", 700212,
                             "No matching federated identity record found for presented assertion audience "
                             f"'{', '.join(map(str, auds))}'. Check your federated identity credential Subject, "
                             f"Audience and Issuer against the presented assertion. {_DOCS}", 401)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
