"""Authentication of management requests by the tenant issuer's access tokens, with ARM's
answers when it fails: 401 with ARM's code and message (`InvalidAuthenticationToken`,
`ExpiredAuthenticationToken`, `InvalidAuthenticationTokenAudience`,
`InvalidAuthenticationTokenTenant`) and the `WWW-Authenticate` challenge ARM sends, naming the
login authority and the reason.

`lks.arm.app.ManagementAPI.authenticate` reads the header and calls `caller`; the token checks
are `lks.identity.tokens`'; the result is a `Caller` for authorization and handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lks.arm.errors import ARMError
from lks.identity import tokens
from lks.identity.caller import Caller

if TYPE_CHECKING:
    from lks.identity.issuer import Issuer


def _error(code: str, message: str, login_uri: str, reason: str | None = None) -> ARMError:
    challenge = (f'Bearer authorization_uri="{login_uri}", error="invalid_token", '
                 f'error_description="{reason or message}"')
    return ARMError(code, message, 401, headers={"WWW-Authenticate": challenge})


def missing_header(login_uri: str) -> ARMError:
    return _error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", login_uri,
                  "The authentication failed because of missing 'Authorization' header.")


def bad_header(login_uri: str) -> ARMError:
    return _error("AuthenticationFailed",
                  "Authentication failed. The 'Authorization' header is provided in an invalid format.", login_uri,
                  "The authentication failed because of invalid 'Authorization' header format.")


def invalid(login_uri: str) -> ARMError:
    return _error("InvalidAuthenticationToken", "The access token is invalid.", login_uri)


def caller(issuer: Issuer, token: str, audiences: tuple[str, ...]) -> Caller:
    """The principal `token` stands for, if the tenant's issuer signed it for one of
    `audiences` and it is current (ARM's five minutes of skew); else ARM's 401."""
    login = issuer.login_endpoint
    try:
        claims = issuer.tokens.verify(token, issuer=issuer.issuer_url, audiences=audiences)
    except (tokens.Invalid, tokens.NotYetValid):
        raise invalid(login) from None
    except tokens.Expired as err:
        raise _error("ExpiredAuthenticationToken",
                     f"The access token expiry UTC time '{tokens.arm_time(err.expiry)}' is earlier than current UTC "
                     f"time '{tokens.arm_time(err.now)}'.", login) from None
    except tokens.WrongAudience as err:
        allowed = ",".join(f"'{a}'" for a in audiences)
        raise _error("InvalidAuthenticationTokenAudience",
                     f"The access token has been obtained for wrong audience or resource '{err.audience}'. It should "
                     f"exactly match with one of the allowed audiences {allowed}.", login) from None
    except tokens.WrongTenant as err:
        ours = issuer.issuer_url
        theirs = ours.replace(issuer.tenant_id, err.tenant)
        raise _error("InvalidAuthenticationTokenTenant",
                     f"The access token is from the wrong issuer '{theirs}'. It must match the tenant '{ours}' "
                     f"associated with this subscription. Please use the authority (URL) '{issuer.endpoint}/"
                     f"{issuer.tenant_id}' to get the token. Note, if the subscription is transferred to another "
                     "tenant there is no impact to the services, but information about new tenant could take time "
                     "to propagate (up to an hour). If you just transferred your subscription and see this error "
                     "message, please try back later.", login) from None
    return _caller(claims)


def _caller(claims: tokens.Claims) -> Caller:
    oid = str(claims.get("oid") or claims.get("sub") or "")
    if claims.get("idtyp") == "user":
        name = str(claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or oid)
        groups = tuple(str(g) for g in claims.get("groups") or ())
        return Caller(object_id=oid, tenant_id=str(claims.get("tid")), kind="User", name=name, groups=groups)
    app_id = str(claims.get("appid") or claims.get("azp") or "")
    groups = tuple(str(g) for g in claims.get("groups") or ())
    return Caller(object_id=oid, tenant_id=str(claims.get("tid")), kind="ServicePrincipal", name=app_id,
                  app_id=app_id, groups=groups)
