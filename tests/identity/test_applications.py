"""Applications and service principals kept apart as Entra keeps them, in process: an application
without service principal (Graph's listings, the token endpoint's AADSTS7000229), one service
principal per application (Graph's 409), deleting the service principal keeps the application
(and a new one gets a new object id), deleting the application takes its service principal."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiohttp import test_utils

from lks.identity.issuer import Issuer, OAuthError
from lks.identity.principals import Principals
from lks.identity.tokens import Tokens
from lks.kube.serviceaccounts.keys import SigningKey

from .conftest import TENANT

G = "/graph/v1.0"


@pytest.fixture
def issuer(principals: Principals) -> Issuer:
    key = SigningKey(SigningKey.generate().pem)
    return Issuer(tenant_id=TENANT, endpoint="https://lks.test", principals=principals,
                  tokens=Tokens(key=key, tenant_id=TENANT))


async def _token(issuer: Issuer, app_id: str, secret: str) -> dict:
    return await issuer.token(TENANT, {"grant_type": "client_credentials", "client_id": app_id,
                                       "client_secret": secret, "scope": "https://management.lks//.default"})


async def _sps(client: test_utils.TestClient, app_id: str) -> list[dict]:
    flt = quote(f"appId eq '{app_id}'", safe="")
    return (await (await client.get(f"{G}/servicePrincipals?$filter={flt}")).json())["value"]


async def test_application_without_service_principal(client: test_utils.TestClient, issuer: Issuer) -> None:
    app = await (await client.post(f"{G}/applications", json={"displayName": "lonely"})).json()
    secret = (await (await client.post(f"{G}/applications/{app['id']}/addPassword", json={})).json())["secretText"]
    assert await _sps(client, app["appId"]) == []
    with pytest.raises(OAuthError) as err:
        await _token(issuer, app["appId"], secret)
    assert (err.value.error, err.value.code, err.value.status) == ("invalid_client", 7000229, 401)
    assert err.value.message == (f"The client application {app['appId']} is missing service principal in the tenant "
                                 f"{TENANT}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119")

    resp = await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})
    assert resp.status == 201
    sp = await resp.json()
    assert [s["id"] for s in await _sps(client, app["appId"])] == [sp["id"]]
    assert (await _token(issuer, app["appId"], secret))["access_token"]
    resp = await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})
    assert resp.status == 409
    assert (await resp.json())["error"] == {**(await resp.json())["error"],
                                            "code": "Request_MultipleObjectsWithSameKeyValue"}


async def test_deleting_the_service_principal_keeps_the_application(client: test_utils.TestClient,
                                                                    issuer: Issuer) -> None:
    app = await (await client.post(f"{G}/applications", json={"displayName": "kept"})).json()
    secret = (await (await client.post(f"{G}/applications/{app['id']}/addPassword", json={})).json())["secretText"]
    sp = await (await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})).json()
    assert (await client.delete(f"{G}/servicePrincipals/{sp['id']}")).status == 204
    assert (await client.get(f"{G}/servicePrincipals/{sp['id']}")).status == 404
    assert (await client.get(f"{G}/applications/{app['id']}")).status == 200
    assert await _sps(client, app["appId"]) == []
    resp = await client.post(f"{G}/directoryObjects/getByIds", json={"ids": [sp["id"]]})
    assert (await resp.json())["value"] == []
    with pytest.raises(OAuthError) as err:
        await _token(issuer, app["appId"], secret)
    assert err.value.code == 7000229
    # a new service principal: a new object id, the application's secret works again
    again = await (await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})).json()
    assert again["id"] != sp["id"]
    assert (await _token(issuer, app["appId"], secret))["access_token"]


async def test_deleting_the_application_deletes_its_service_principal(client: test_utils.TestClient) -> None:
    app = await (await client.post(f"{G}/applications", json={"displayName": "gone"})).json()
    sp = await (await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})).json()
    assert (await client.delete(f"{G}/applications/{app['id']}")).status == 204
    assert (await client.get(f"{G}/servicePrincipals/{sp['id']}")).status == 404
    assert (await client.get(f"{G}/applications/{app['id']}")).status == 404
    # the other order, as `az ad sp delete` then `az ad app delete` do it
    app = await (await client.post(f"{G}/applications", json={"displayName": "both"})).json()
    sp = await (await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"]})).json()
    assert (await client.delete(f"{G}/servicePrincipals/{sp['id']}")).status == 204
    assert (await client.delete(f"{G}/applications/{app['id']}")).status == 204
    assert (await client.get(f"{G}/applications/{app['id']}")).status == 404
