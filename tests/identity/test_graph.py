"""The Microsoft Graph subset in process: the calls `az ad sp create-for-rbac|list|show|delete|
credential reset` and `az ad app federated-credential` make, in the order az makes them, with
Graph's shapes, filters, paging and errors."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiohttp import test_utils
from yarl import URL

from lks.identity import odata
from lks.identity.principals import Principals

from .conftest import READER, TENANT

G = "/graph/v1.0"


def _filter(expr: str) -> str:
    return "?$filter=" + quote(expr, safe="")  # as az's _filter_to_query encodes it


async def test_create_for_rbac_sequence(client: test_utils.TestClient, principals: Principals) -> None:
    # az: look for an existing service principal by display name, then applications by prefix
    resp = await client.get(f"{G}/servicePrincipals" + _filter("displayName eq 'ci'"))
    assert resp.status == 200
    listing = await resp.json()
    assert listing["value"] == [] and listing["@odata.context"] == str(client.make_url(
        "/graph/v1.0/$metadata#servicePrincipals"))
    assert (await (await client.get(f"{G}/applications" + _filter("startswith(displayName,'ci')"))).json())["value"] == []

    resp = await client.post(f"{G}/applications", json={"displayName": "ci", "keyCredentials": []})
    assert resp.status == 201
    app = await resp.json()
    assert app["@odata.context"].endswith("/graph/v1.0/$metadata#applications/$entity")
    assert app["displayName"] == "ci" and app["passwordCredentials"] == [] and app["identifierUris"] == []
    assert resp.headers["Location"].endswith(f"/graph/v1.0/applications/{app['id']}")
    assert resp.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")

    resp = await client.post(f"{G}/applications/{app['id']}/addPassword", json={"passwordCredential": {
        "displayName": "rbac", "endDateTime": "2299-01-01T00:00:00Z", "startDateTime": "2026-01-01T00:00:00Z"}})
    assert resp.status == 200
    cred = await resp.json()
    assert cred["@odata.context"].endswith("$metadata#microsoft.graph.passwordCredential")
    assert cred["displayName"] == "rbac" and cred["endDateTime"] == "2299-01-01T00:00:00Z"
    assert cred["hint"] == cred["secretText"][:3] and len(cred["secretText"]) == 40
    sp_record, ok = await principals.verify_secret(app["appId"], cred["secretText"])
    assert ok and sp_record is not None

    resp = await client.post(f"{G}/servicePrincipals", json={"appId": app["appId"], "accountEnabled": True})
    assert resp.status == 201
    sp = await resp.json()
    assert sp["appId"] == app["appId"] and sp["id"] != app["id"]
    assert sp["servicePrincipalNames"] == [app["appId"]] and sp["appOwnerOrganizationId"] == TENANT
    assert sp["servicePrincipalType"] == "Application" and sp["accountEnabled"] is True

    # the secret is listed (without its text) on the application and its service principal
    listed = (await (await client.get(f"{G}/applications/{app['id']}")).json())["passwordCredentials"]
    assert listed == [{k: v for k, v in cred.items() if k != "@odata.context"} | {"secretText": None}]
    by_spn = await (await client.get(f"{G}/servicePrincipals"
                                     + _filter(f"servicePrincipalNames/any(c:c eq '{app['appId']}')"))).json()
    assert [s["id"] for s in by_spn["value"]] == [sp["id"]]
    by_app_id = await (await client.get(f"{G}/applications" + _filter(f"appId eq '{app['appId']}'"))).json()
    assert [a["id"] for a in by_app_id["value"]] == [app["id"]]


async def test_credential_reset_removes_and_adds(client: test_utils.TestClient, principals: Principals) -> None:
    record = await principals.create("ci")
    _sp, old, old_secret = await principals.add_password(record.app_id)
    resp = await client.post(f"{G}/servicePrincipals/{record.object_id}/removePassword", json={"keyId": old.key_id})
    assert resp.status == 204
    assert (await principals.verify_secret(record.app_id, old_secret))[1] is False
    resp = await client.post(f"{G}/servicePrincipals/{record.object_id}/addPassword",
                             json={"passwordCredential": {"displayName": None}})
    new = await resp.json()
    assert (await principals.verify_secret(record.app_id, new["secretText"]))[1] is True
    resp = await client.post(f"{G}/servicePrincipals/{record.object_id}/removePassword", json={"keyId": old.key_id})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == f"No password credential found with keyId '{old.key_id}'."


async def test_show_update_delete(client: test_utils.TestClient, principals: Principals) -> None:
    record = await principals.create("ci")
    sp = await (await client.get(f"{G}/servicePrincipals/{record.object_id}")).json()
    assert sp["displayName"] == "ci" and sp["@odata.context"].endswith("$metadata#servicePrincipals/$entity")
    resp = await client.patch(f"{G}/applications/{record.application_object_id}", json={"displayName": "ci2"})
    assert resp.status == 204
    assert (await principals.get(record.app_id)).display_name == "ci2"  # type: ignore[union-attr]
    # an application's id is not a service principal's
    resp = await client.get(f"{G}/servicePrincipals/{record.application_object_id}")
    assert resp.status == 404
    resp = await client.delete(f"{G}/servicePrincipals/{record.object_id}")
    # the service principal is gone, its application stays (as in Entra)
    assert resp.status == 204 and not (await principals.get(record.app_id)).service_principal  # type: ignore[union-attr]
    resp = await client.delete(f"{G}/servicePrincipals/{record.object_id}")
    error = (await resp.json())["error"]
    assert resp.status == 404 and error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (f"Resource '{record.object_id}' does not exist or one of its queried "
                                "reference-property objects are not present.")
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["request-id"] == resp.headers["request-id"]


async def test_federated_credentials(client: test_utils.TestClient, principals: Principals) -> None:
    record = await principals.create("ci")
    base = f"{G}/applications/{record.application_object_id}/federatedIdentityCredentials"
    body = {"name": "gh", "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:o/r:ref:refs/heads/main", "audiences": ["api://AzureADTokenExchange"]}
    resp = await client.post(base, json=body)
    assert resp.status == 201
    made = await resp.json()
    assert {k: made[k] for k in body} == body and made["description"] is None
    resp = await client.post(base, json=body)
    assert resp.status == 409
    listed = await (await client.get(base)).json()
    assert [c["id"] for c in listed["value"]] == [made["id"]]
    assert (await (await client.get(f"{base}/gh")).json())["id"] == made["id"]  # by name too
    resp = await client.post(base, json={"name": "x", "issuer": "https://i"})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == ("A value is required for property 'subject' of resource "
                                                       "'FederatedIdentityCredential'.")
    assert (await client.delete(f"{base}/{made['id']}")).status == 204
    assert (await client.delete(f"{base}/{made['id']}")).status == 404


async def test_paging_follows_next_link(client: test_utils.TestClient, principals: Principals) -> None:
    for i in range(5):
        await principals.create(f"p{i}")
    seen: list[str] = []
    url: str | None = f"{G}/servicePrincipals?$top=2"
    while url:
        page = await (await client.get(url)).json()
        seen += [s["displayName"] for s in page["value"]]
        url = page.get("@odata.nextLink") and URL(page["@odata.nextLink"]).path_qs
        assert url is None or len(page["value"]) == 2
    assert sorted(seen) == [f"p{i}" for i in range(5)]


@pytest.mark.parametrize(("path", "status", "code", "message"), [
    pytest.param("/servicePrincipals?$filter=" + quote("displayName eq", safe=""), 400, "BadRequest",
                 "Invalid filter clause: Syntax error at position 14 in 'displayName eq'.", id="filter-syntax"),
    pytest.param("/servicePrincipals?$filter=" + quote("secret eq 'x'", safe=""), 400, "Request_UnsupportedQuery",
                 "Unsupported or invalid query filter clause specified for property 'secret' of resource "
                 "'ServicePrincipal'.", id="filter-property"),
    pytest.param("/servicePrincipals?$filter=" + quote("(" * 1500, safe=""), 400, "BadRequest",
                 "Invalid filter clause: The recursion limit has been exceeded.", id="filter-depth"),
    pytest.param("/servicePrincipals?$filter=" + quote("not " * 200 + "appId eq 'x'", safe=""), 400, "BadRequest",
                 "Invalid filter clause: The recursion limit has been exceeded.", id="filter-not-depth"),
    pytest.param("/servicePrincipals/not-a-guid", 400, "Request_BadRequest", "Invalid object identifier 'not-a-guid'.",
                 id="bad-id"),
    pytest.param("/me/ownedObjects", 400, "BadRequest", "/me request is only valid with delegated authentication "
                 "flow.", id="me"),
    pytest.param("/widgets", 400, "BadRequest", "Resource not found for the segment 'widgets'.", id="segment"),
    pytest.param("/servicePrincipals?$top=0", 400, "Request_BadRequest",
                 "Invalid page size specified: '0'. Must be between 1 and 999 inclusive.", id="top"),
])
async def test_errors(client: test_utils.TestClient, path: str, status: int, code: str, message: str) -> None:
    resp = await client.get(G + path)
    error = (await resp.json())["error"]
    assert (resp.status, error["code"], error["message"]) == (status, code, message)


async def test_authentication_and_write_permission(client: test_utils.TestClient) -> None:
    resp = await client.get(f"{G}/servicePrincipals", headers={"Authorization": ""})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "InvalidAuthenticationToken"
    assert (await resp.json())["error"]["message"] == "Access token is empty."
    resp = await client.get(f"{G}/servicePrincipals", headers={"Authorization": "Bearer forged"})
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "Access token validation failure."
    reader = {"Authorization": f"Bearer {READER}"}
    assert (await client.get(f"{G}/servicePrincipals", headers=reader)).status == 200
    resp = await client.post(f"{G}/directoryObjects/getByIds", json={"ids": []}, headers=reader)
    assert resp.status == 200  # a read, though a POST
    resp = await client.post(f"{G}/applications", json={"displayName": "x"}, headers=reader)
    assert resp.status == 403
    assert (await resp.json())["error"] == {**(await resp.json())["error"], "code": "Authorization_RequestDenied",
                                            "message": "Insufficient privileges to complete the operation."}


async def test_bad_bodies(client: test_utils.TestClient) -> None:
    resp = await client.post(f"{G}/applications", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "BadRequest"
    resp = await client.post(f"{G}/applications", json=[1])
    assert resp.status == 400
    resp = await client.post(f"{G}/applications", json={})
    assert (await resp.json())["error"]["message"] == ("A value is required for property 'displayName' of resource "
                                                       "'Application'.")
    resp = await client.post(f"{G}/servicePrincipals", json={"appId": "00000000-0000-0000-0000-000000000001"})
    assert (await resp.json())["error"]["message"] == ("The appId '00000000-0000-0000-0000-000000000001' of the "
                                                       "service principal does not reference a valid application "
                                                       "object.")


async def test_get_by_ids_types_service_principals(client: test_utils.TestClient, principals: Principals) -> None:
    record = await principals.create("ci")
    resp = await client.post(f"{G}/directoryObjects/getByIds", json={
        "ids": [record.object_id, "00000000-0000-0000-0000-000000000001"],
        "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]})
    value = (await resp.json())["value"]
    assert [(o["@odata.type"], o["id"]) for o in value] == [("#microsoft.graph.servicePrincipal", record.object_id)]
    obj = await (await client.get(f"{G}/directoryObjects/{record.object_id}")).json()
    assert (obj["@odata.type"], obj["appId"]) == ("#microsoft.graph.servicePrincipal", record.app_id)
    assert (await client.get(f"{G}/directoryObjects/{record.application_object_id}")).status == 404
    org = (await (await client.get(f"{G}/organization")).json())["value"][0]
    assert org["id"] == TENANT


@pytest.mark.parametrize(("expr", "expected"), [
    pytest.param("displayName eq 'CI'", True, id="eq-ignores-case"),
    pytest.param("displayname ne 'ci'", False, id="ne"),
    pytest.param("startswith(displayName,'c')", True, id="startswith"),
    pytest.param("servicePrincipalNames/any(c:c eq 'A1')", True, id="any"),
    pytest.param("servicePrincipalNames/any(x:x eq 'b')", False, id="any-miss"),
    pytest.param("displayName eq 'ci' and (appId eq 'zz' or not accountEnabled eq false)", True, id="and-or-not"),
    pytest.param("displayName eq 'it''s'", False, id="quote-escape"),
])
def test_filter(expr: str, expected: bool) -> None:
    match = odata.parse(expr, properties=frozenset({"displayname", "appid", "serviceprincipalnames",
                                                    "accountenabled"}), resource="ServicePrincipal")
    assert match({"displayName": "ci", "appId": "a1", "servicePrincipalNames": ["a1"], "accountEnabled": True}) \
        is expected
