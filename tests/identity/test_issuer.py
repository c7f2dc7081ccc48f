"""The token endpoint as Entra answers az/msal: client secrets and federated assertions, scopes
to audiences, and Entra's OAuth errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest

from lks import store
from lks.clock import ManualClock
from lks.identity import issuer as issuer_
from lks.identity import tokens
from lks.identity.issuer import Issuer, OAuthError
from lks.identity.principals import Principals
from lks.kube.serviceaccounts import SigningKey

KEY = SigningKey.generate()
CLUSTER_KEY = SigningKey.generate()
TENANT = "0b6c3b5c-6c0c-4a3e-9d61-6f1f0b1f7a11"
ENDPOINT = "https://127.0.0.1:8443"
CLUSTER_ISSUER = f"{ENDPOINT}/clusters/abc/"
SUBJECT = "system:serviceaccount:default:wi"
ARM = "https://management.lks//.default"


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    backend = store.open_store("memory://")
    await backend.start()
    clock = ManualClock(1_800_000_000.0)
    yield Issuer(tenant_id=TENANT, endpoint=ENDPOINT, principals=Principals(backend, clock=clock),
                 tokens=tokens.Tokens(key=KEY, tenant_id=TENANT, clock=clock), clock=clock,
                 assertion_keys=lambda iss: [CLUSTER_KEY.public] if iss == CLUSTER_ISSUER else None)
    await backend.close()


async def _principal(issuer: Issuer) -> tuple[str, str, str]:
    sp = await issuer.principals.create("ci")
    _, _, secret = await issuer.principals.add_password(sp.app_id)
    return sp.app_id, sp.object_id, secret


def _form(app_id: str, secret: str, scope: str = ARM) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret, "scope": scope,
            "client_info": "1", "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}'}


async def _error(issuer: Issuer, form: dict[str, str], tenant: str = TENANT, **kw) -> OAuthError:
    with pytest.raises(OAuthError) as err:
        await issuer.token(tenant, form, **kw)
    return err.value


async def test_client_secret(issuer: Issuer) -> None:
    app_id, oid, secret = await _principal(issuer)
    for tenant in (TENANT, TENANT.upper(), "organizations"):
        answer = await issuer.token(tenant, _form(app_id, secret))
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == answer["ext_expires_in"] == 3599
        claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
        # az asks `<audience>/.default` and the audience ends in a slash: the token keeps it
        assert claims["aud"] == "https://management.lks/"
        assert (claims["oid"], claims["appid"], claims["tid"], claims["appidacr"]) == (oid, app_id, TENANT, "1")
        assert claims["iss"] == issuer.issuer_url == f"{ENDPOINT}/{TENANT}/v2.0"
        caller = issuer.tokens.verify(answer["access_token"], issuer=issuer.issuer_url,
                                      audiences=issuer.arm_audiences)
        assert caller["oid"] == oid


@pytest.mark.parametrize(("scope", "aud"), [
    ("https://management.lks/.default", "https://management.lks"),
    (f"{ENDPOINT}//.default", f"{ENDPOINT}/"),
    (f"{ENDPOINT}/graph//.default", f"{ENDPOINT}/graph/"),
    (f"{issuer_.AKS_SERVER_APP}/.default offline_access openid profile", issuer_.AKS_SERVER_APP),
])
async def test_scopes_to_audiences(issuer: Issuer, scope: str, aud: str) -> None:
    app_id, _, secret = await _principal(issuer)
    answer = await issuer.token(TENANT, _form(app_id, secret, scope))
    assert jwt.decode(answer["access_token"], options={"verify_signature": False})["aud"] == aud


async def test_v1_endpoint_takes_a_resource(issuer: Issuer) -> None:
    app_id, _, secret = await _principal(issuer)
    form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
            "resource": "https://management.lks/"}
    answer = await issuer.token(TENANT, form, v1=True)
    assert answer["resource"] == "https://management.lks/" and answer["expires_in"] == "3599"
    assert int(answer["expires_on"]) == 1_800_000_000 + 3599


@pytest.mark.parametrize(("change", "status", "error", "code", "text"), [
    ({"client_secret": "Xyz8Q~wrong"}, 401, "invalid_client", 7000215,
     "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not "
     "the client secret ID, for a secret added to app '{app}'."),
    ({"client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client", 700016,
     "Application with identifier '11111111-2222-3333-4444-555555555555' was not found in the directory 'lks'."),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003,
     "The app requested an unsupported grant type 'password'."),
    ({"grant_type": None}, 400, "invalid_request", 900144,
     "The request body must contain the following parameter: 'grant_type'."),
    ({"scope": None}, 400, "invalid_request", 900144,
     "The request body must contain the following parameter: 'scope'."),
    ({"scope": "https://management.lks/user_impersonation"}, 400, "invalid_scope", 1002012,
     "The provided value for scope https://management.lks/user_impersonation is not valid. Client credential flows "
     "must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
    ({"scope": "https://vault.azure.net/.default"}, 400, "invalid_resource", 500011,
     "The resource principal named https://vault.azure.net was not found in the tenant named lks."),
    ({"client_secret": None}, 401, "invalid_client", 7000216,
     "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."),
])
async def test_errors_are_entras(issuer: Issuer, change, status, error, code, text) -> None:
    app_id, _, secret = await _principal(issuer)
    form = _form(app_id, secret)
    for k, v in change.items():
        if v is None:
            form.pop(k)
        else:
            form[k] = v
    err = await _error(issuer, form)
    assert (err.status, err.error, err.code) == (status, error, code)
    assert err.message.startswith(text.format(app=app_id))
    body = err.body(1_800_000_000)
    assert body["error_description"].startswith(f"AADSTS{code}: {text.format(app=app_id)}")
    assert "Trace ID: " in body["error_description"] and body["timestamp"] == "2027-01-15 08:00:00Z"
    assert body["error_codes"] == [code]


async def test_expired_secret(issuer: Issuer) -> None:
    app_id, _, secret = await _principal(issuer)
    await issuer.clock.advance(366 * 86400)
    err = await _error(issuer, _form(app_id, secret))
    assert (err.status, err.error, err.code) == (401, "invalid_client", 7000222)
    assert err.message.startswith(f"The provided client secret keys for app '{app_id}' are expired.")
    err = await _error(issuer, _form(app_id, "abc" + secret[3:]))  # a wrong one is still just wrong
    assert err.code == 7000215


async def test_unknown_tenant(issuer: Issuer) -> None:
    app_id, _, secret = await _principal(issuer)
    err = await _error(issuer, _form(app_id, secret), tenant="contoso.onmicrosoft.com")
    assert (err.status, err.error, err.code) == (400, "invalid_tenant", 90002)
    assert err.message.startswith("Tenant 'contoso.onmicrosoft.com' not found. Check to make sure you have the "
                                  "correct tenant ID and are signing into the correct cloud.")


# -- federated assertions -------------------------------------------------------------------------

def _assertion(*, iss: str = CLUSTER_ISSUER, sub: str = SUBJECT, aud: str = "api://AzureADTokenExchange",
               key: SigningKey = CLUSTER_KEY, exp: int = 1_800_000_000 + 3600, nbf: int = 1_800_000_000 - 10) -> str:
    return jwt.encode({"iss": iss, "sub": sub, "aud": [aud], "exp": exp, "nbf": nbf, "iat": nbf}, key.private,
                      algorithm="RS256", headers={"kid": key.kid})


async def _federated(issuer: Issuer) -> tuple[str, str]:
    sp = await issuer.principals.create("wi")
    await issuer.principals.add_federated(sp.app_id, name="kube", issuer=CLUSTER_ISSUER, subject=SUBJECT)
    return sp.app_id, sp.object_id


def _assertion_form(app_id: str, assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": app_id, "scope": ARM, "client_assertion": assertion,
            "client_assertion_type": issuer_.JWT_BEARER}


async def test_federated_assertion(issuer: Issuer) -> None:
    app_id, oid = await _federated(issuer)
    answer = await issuer.token(TENANT, _assertion_form(app_id, _assertion()))
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert (claims["oid"], claims["appid"], claims["appidacr"]) == (oid, app_id, "2")


@pytest.mark.parametrize(("kw", "code", "text"), [
    ({"sub": "system:serviceaccount:default:other"}, 700213,
     "No matching federated identity record found for presented assertion subject "
     "'system:serviceaccount:default:other'."),
    ({"sub": SUBJECT.upper()}, 700213, "No matching federated identity record found"),  # case-sensitive
    ({"aud": "api://other"}, 700212,
     "No matching federated identity record found for presented assertion audience 'api://other'."),
    ({"key": SigningKey.generate()}, 50013, "Assertion failed signature validation."),
    ({"exp": 1_800_000_000 - 1}, 700024, "Client assertion is not within its valid time range. Current time: "
     "2027-01-15T08:00:00.0000000Z"),
])
async def test_federated_errors(issuer: Issuer, kw, code: int, text: str) -> None:
    app_id, _ = await _federated(issuer)
    err = await _error(issuer, _assertion_form(app_id, _assertion(**kw)))
    assert (err.error, err.code, err.status) == ("invalid_client", code, 401)
    assert err.message.startswith(text)


async def test_federated_issuer_not_trusted(issuer: Issuer) -> None:
    app_id, _ = await _federated(issuer)
    err = await _error(issuer, _assertion_form(app_id, _assertion(iss="https://elsewhere/")))
    assert (err.error, err.code, err.status) == ("invalid_client", 700211, 401)
    assert err.message.startswith("No matching federated identity record found for presented assertion issuer "
                                  "'https://elsewhere/'.")


async def test_federated_issuer_lks_cannot_verify(issuer: Issuer) -> None:
    """A credential trusting an issuer outside lks (GitHub's): lks cannot fetch its keys offline."""
    app_id, _ = await _federated(issuer)
    gh = "https://token.actions.githubusercontent.com"
    await issuer.principals.add_federated(app_id, name="gh", issuer=gh, subject=SUBJECT)
    err = await _error(issuer, _assertion_form(app_id, _assertion(iss=gh)))
    assert (err.error, err.code, err.status) == ("invalid_client", 50166, 401)


async def test_malformed_assertion(issuer: Issuer) -> None:
    app_id, _ = await _federated(issuer)
    err = await _error(issuer, _assertion_form(app_id, "not.a.jwt"))
    assert (err.error, err.code, err.status) == ("invalid_request", 50027, 400)
