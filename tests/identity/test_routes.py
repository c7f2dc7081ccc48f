"""The issuer's HTTP face with hostile input: every answer is an OAuth error body, never a 500
or aiohttp's plain text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web

from lks import store
from lks.identity.issuer import Issuer
from lks.identity.principals import Principals
from lks.identity.routes import MAX_FORM, IdentityAPI
from lks.identity.tokens import Tokens
from lks.kube.serviceaccounts import SigningKey

TENANT = "0b6c3b5c-6c0c-4a3e-9d61-6f1f0b1f7a11"
TOKEN = f"/{TENANT}/oauth2/v2.0/token"


@pytest.fixture
async def client() -> AsyncIterator[test_utils.TestClient]:
    backend = store.open_store("memory://")
    await backend.start()
    issuer = Issuer(tenant_id=TENANT, endpoint="https://127.0.0.1:8443", principals=Principals(backend),
                    tokens=Tokens(key=SigningKey.generate(), tenant_id=TENANT))
    app = web.Application()
    app.router.add_routes(IdentityAPI(issuer).aiohttp_routes())
    async with test_utils.TestClient(test_utils.TestServer(app)) as c:
        c.issuer = issuer
        yield c
    await backend.close()


@pytest.mark.parametrize(("body", "headers", "status", "error", "code"), [
    pytest.param(b"", {}, 400, "invalid_request", 900144, id="empty"),
    pytest.param(b'{"grant_type": "client_credentials"}', {"Content-Type": "application/json"}, 400,
                 "invalid_request", 900144, id="json"),
    pytest.param(b"grant_type=client_credentials&client_id=\xff\xfe", {}, 400, "invalid_request", 90014,
                 id="not-utf8"),
    pytest.param(b"a=" + b"x" * MAX_FORM, {}, 400, "invalid_request", 90020, id="too-large"),
    pytest.param(b"grant_type=client_credentials&client_id=%00%01&client_secret=x&scope=a%2F.default", {}, 400,
                 "unauthorized_client", 700016, id="control-characters"),
    pytest.param(b"grant_type=client_credentials&client_id=x&client_assertion=a.b.c&scope=https%3A%2F%2Fmanagement."
                 b"lks%2F%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-"
                 b"bearer", {}, 400, "unauthorized_client", 700016, id="assertion-unknown-app"),
    pytest.param(b"grant_type=refresh_token&refresh_token=x", {}, 400, "unsupported_grant_type", 70003,
                 id="refresh-token"),
])
async def test_hostile_token_requests(client: test_utils.TestClient, body: bytes, headers: dict, status: int,
                                      error: str, code: int) -> None:
    async with client.post(TOKEN, data=body, headers=headers) as r:
        answer = await r.json()
        assert (r.status, answer["error"], answer["error_codes"]) == (status, error, [code])
        assert r.headers["Cache-Control"] == "no-store"


async def test_assertion_garbage_for_a_known_app(client: test_utils.TestClient) -> None:
    sp = await client.issuer.principals.create("wi")
    for assertion in ("a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."):
        form = {"grant_type": "client_credentials", "client_id": sp.app_id, "client_assertion": assertion,
                "scope": "https://management.lks//.default",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
        async with client.post(TOKEN, data=form) as r:
            answer = await r.json()
            assert r.status in (400, 401) and answer["error"] in ("invalid_request", "invalid_client"), answer


async def test_discovery_and_keys(client: test_utils.TestClient) -> None:
    async with client.get("/metadata/endpoints?api-version=2022-09-01") as r:
        assert r.status == 200 and (await r.json())["name"] == "lks"
    async with client.get("/adfs/.well-known/openid-configuration") as r:
        assert (await r.json())["token_endpoint"] == f"https://127.0.0.1:8443/{TENANT}/oauth2/v2.0/token"
    async with client.get("/organizations/v2.0/.well-known/openid-configuration") as r:
        doc = await r.json()
        assert doc["token_endpoint"] == "https://127.0.0.1:8443/organizations/oauth2/v2.0/token"
        assert doc["issuer"] == f"https://127.0.0.1:8443/{TENANT}/v2.0"
    async with client.get(f"/{TENANT}/discovery/v2.0/keys") as r:
        assert [k["kid"] for k in (await r.json())["keys"]] == [client.issuer.tokens.key.kid]
    async with client.get("/nope/discovery/v2.0/keys") as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_tenant"
