"""ARM authentication by the tenant issuer's tokens: `call.caller` for a good token or the static
token, ARM's 401s (code, message, WWW-Authenticate) for a bad one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web

from lks import store
from lks.arm.app import Call, ManagementAPI, json_response, route
from lks.clock import ManualClock
from lks.identity import tokens
from lks.identity.issuer import Issuer
from lks.identity.principals import Principals
from lks.kube.serviceaccounts import SigningKey

KEY = SigningKey.generate()
TENANT = "0b6c3b5c-6c0c-4a3e-9d61-6f1f0b1f7a11"
SUB = "8d2e6a1c-1111-2222-3333-444455556666"
ENDPOINT = "https://127.0.0.1:8443"
STATIC = "static-token"
PATH = f"/subscriptions/{SUB}/resourcegroups?api-version=2024-11-01"


async def _whoami(call: Call) -> web.Response:
    c = call.caller
    return json_response({"oid": c.object_id, "tid": c.tenant_id, "kind": c.kind, "name": c.name,
                          "appId": c.app_id, "bootstrap": c.bootstrap})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
async def issuer(clock: ManualClock) -> AsyncIterator[Issuer]:
    backend = store.open_store("memory://")
    await backend.start()
    yield Issuer(tenant_id=TENANT, endpoint=ENDPOINT, principals=Principals(backend, clock=clock),
                 tokens=tokens.Tokens(key=KEY, tenant_id=TENANT, clock=clock), clock=clock)
    await backend.close()


@pytest.fixture
async def client(issuer: Issuer) -> AsyncIterator[test_utils.TestClient]:
    api = ManagementAPI(token=STATIC, subscription_id=SUB, issuer=issuer, routes=[
        route("/subscriptions/{subscription}/resourcegroups", {"GET": _whoami}, api_versions=None,
              type_name="resourceGroups", namespace="Microsoft.Resources")])
    app = web.Application(middlewares=[api.middleware])
    app.router.add_routes(api.aiohttp_routes())
    async with test_utils.TestClient(test_utils.TestServer(app)) as c:
        yield c


async def _token(issuer: Issuer, scope: str = "https://management.lks//.default") -> tuple[str, str, str]:
    sp = await issuer.principals.create("ci")
    _, _, secret = await issuer.principals.add_password(sp.app_id)
    answer = await issuer.token(TENANT, {"grant_type": "client_credentials", "client_id": sp.app_id,
                                         "client_secret": secret, "scope": scope})
    return answer["access_token"], sp.object_id, sp.app_id


async def _get(client: test_utils.TestClient, token: str | None) -> tuple[int, dict, str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with client.get(PATH, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("WWW-Authenticate")


async def test_static_token_is_the_bootstrap_owner(client: test_utils.TestClient) -> None:
    status, body, _ = await _get(client, STATIC)
    assert status == 200 and body["bootstrap"] is True and body["tid"] == TENANT


async def test_access_token_names_the_principal(client: test_utils.TestClient, issuer: Issuer) -> None:
    token, oid, app_id = await _token(issuer)
    status, body, _ = await _get(client, token)
    assert status == 200
    assert body == {"oid": oid, "tid": TENANT, "kind": "ServicePrincipal", "name": app_id, "appId": app_id,
                    "bootstrap": False}
    token, _, _ = await _token(issuer, f"{ENDPOINT}/.default")  # the endpoint is an ARM audience too
    assert (await _get(client, token))[0] == 200


@pytest.mark.parametrize("bad", ["nope", "a.b.c", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0."])
async def test_invalid_tokens(client: test_utils.TestClient, bad: str) -> None:
    status, body, challenge = await _get(client, bad)
    assert status == 401
    assert body == {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}
    assert challenge == (f'Bearer authorization_uri="{ENDPOINT}/adfs", error="invalid_token", '
                         'error_description="The access token is invalid."')


async def test_tampered_token(client: test_utils.TestClient, issuer: Issuer) -> None:
    token, _, _ = await _token(issuer)
    head, payload, sig = token.split(".")
    forged = tokens.Tokens(key=SigningKey.generate(), tenant_id=TENANT).issue(
        issuer=issuer.issuer_url, audience="https://management.lks/", object_id="x", app_id="y",
        credential_type="1")[0]
    for bad in (f"{head}.{payload}.{sig[::-1]}", forged):
        status, body, _ = await _get(client, bad)
        assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")


async def test_missing_header(client: test_utils.TestClient) -> None:
    status, body, challenge = await _get(client, None)
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    assert "missing 'Authorization' header" in challenge


async def test_expired_token(client: test_utils.TestClient, issuer: Issuer, clock: ManualClock) -> None:
    token, _, _ = await _token(issuer)
    await clock.advance(3599 + 301)
    status, body, challenge = await _get(client, token)
    message = ("The access token expiry UTC time '1/15/2027 8:59:59 AM' is earlier than current UTC time "
               "'1/15/2027 9:05:00 AM'.")
    assert (status, body) == (401, {"error": {"code": "ExpiredAuthenticationToken", "message": message}})
    assert challenge.endswith(f'error_description="{message}"')


async def test_wrong_audience(client: test_utils.TestClient, issuer: Issuer) -> None:
    token, _, _ = await _token(issuer, f"{ENDPOINT}/graph//.default")
    status, body, _ = await _get(client, token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")
    assert body["error"]["message"] == (
        f"The access token has been obtained for wrong audience or resource '{ENDPOINT}/graph/'. It should exactly "
        f"match with one of the allowed audiences 'https://management.lks/','https://management.lks','{ENDPOINT}/',"
        f"'{ENDPOINT}'.")


async def test_wrong_tenant(client: test_utils.TestClient, issuer: Issuer, clock: ManualClock) -> None:
    other = tokens.Tokens(key=KEY, tenant_id="99999999-0000-0000-0000-000000000000", clock=clock)
    token = other.issue(issuer=issuer.issuer_url, audience="https://management.lks/", object_id="x", app_id="y",
                        credential_type="1")[0]
    status, body, _ = await _get(client, token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")
    assert body["error"]["message"].startswith(
        f"The access token is from the wrong issuer '{ENDPOINT}/99999999-0000-0000-0000-000000000000/v2.0'. It must "
        f"match the tenant '{ENDPOINT}/{TENANT}/v2.0' associated with this subscription.")
