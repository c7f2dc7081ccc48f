"""Directory groups in process: the Graph calls `az ad group create|list|show|delete|member
add|remove|list|check|get-member-groups` make, with Graph's shapes and errors; nested membership;
a deleted principal leaving its groups; the `groups` claim of the issuer's tokens."""

from __future__ import annotations

from urllib.parse import quote

import jwt
import pytest
from aiohttp import test_utils

from lks.identity.groups import Groups
from lks.identity.issuer import AKS_SERVER_APP, Issuer
from lks.identity.principals import Principals
from lks.identity.tokens import Tokens
from lks.kube.serviceaccounts.keys import SigningKey

from .conftest import READER, TENANT

G = "/graph/v1.0"


async def _create(client: test_utils.TestClient, name: str) -> dict:
    resp = await client.post(f"{G}/groups", json={"displayName": name, "mailNickname": name,
                                                   "mailEnabled": False, "securityEnabled": True})
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _ref(client: test_utils.TestClient, object_id: str) -> dict:
    return {"@odata.id": f"{client.make_url('')}graph/v1.0/directoryObjects/{object_id}"}


async def test_group_crud_as_az(client: test_utils.TestClient) -> None:
    group = await _create(client, "devs")
    assert group["@odata.context"].endswith("/graph/v1.0/$metadata#groups/$entity")
    assert (group["displayName"], group["mailNickname"], group["securityEnabled"], group["mailEnabled"],
            group["groupTypes"]) == ("devs", "devs", True, False, [])
    assert group["securityIdentifier"].startswith("S-1-12-1-")
    await _create(client, "devops")
    # az ad group create looks for the same display name and nickname first
    flt = quote("displayName eq 'devs' and mailNickname eq 'devs'", safe="")
    found = (await (await client.get(f"{G}/groups?$filter={flt}")).json())["value"]
    assert [g["id"] for g in found] == [group["id"]]
    prefix = quote("startswith(displayName,'dev')", safe="")
    assert len((await (await client.get(f"{G}/groups?$filter={prefix}")).json())["value"]) == 2
    assert (await (await client.get(f"{G}/groups/{group['id']}")).json())["id"] == group["id"]
    obj = await (await client.get(f"{G}/directoryObjects/{group['id']}")).json()
    assert obj["@odata.type"] == "#microsoft.graph.group"
    assert (await client.delete(f"{G}/groups/{group['id']}")).status == 204
    resp = await client.get(f"{G}/groups/{group['id']}")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize(("body", "message"), [
    pytest.param({"mailNickname": "x", "mailEnabled": False, "securityEnabled": True},
                 "Invalid value specified for property 'displayName' of resource 'Group'.", id="no-name"),
    pytest.param({"displayName": "x", "mailEnabled": False, "securityEnabled": True},
                 "Invalid value specified for property 'mailNickname' of resource 'Group'.", id="no-nickname"),
    pytest.param({"displayName": "x", "mailNickname": "x", "securityEnabled": True},
                 "Invalid value specified for property 'mailEnabled' of resource 'Group'.", id="no-mail-enabled"),
    pytest.param({"displayName": "x", "mailNickname": "x", "mailEnabled": True, "securityEnabled": True},
                 "The service does not currently support writes of mail-enabled groups. Please ensure that the "
                 "mail-enablement property is unset or set to false.", id="mail-enabled"),
])
async def test_create_errors(client: test_utils.TestClient, body: dict, message: str) -> None:
    resp = await client.post(f"{G}/groups", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == {**(await resp.json())["error"], "code": "Request_BadRequest",
                                            "message": message}


async def test_members(client: test_utils.TestClient, principals: Principals) -> None:
    outer, inner = await _create(client, "outer"), await _create(client, "inner")
    sp = await principals.create("ci")
    members = f"{G}/groups/{inner['id']}/members"
    assert (await client.post(f"{members}/$ref", json=_ref(client, sp.object_id))).status == 204
    resp = await client.post(f"{members}/$ref", json=_ref(client, sp.object_id))
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == ("One or more added object references already exist for the "
                                                       "following modified properties: 'members'.")
    missing = "00000000-0000-0000-0000-000000000001"
    resp = await client.post(f"{members}/$ref", json=_ref(client, missing))
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "Request_ResourceNotFound"
    # a group in a group: membership is transitive
    assert (await client.post(f"{G}/groups/{outer['id']}/members/$ref", json=_ref(client, inner["id"]))).status == 204
    listed = (await (await client.get(members)).json())["value"]
    assert [(o["@odata.type"], o["id"]) for o in listed] == [("#microsoft.graph.servicePrincipal", sp.object_id)]
    nested = (await (await client.get(f"{G}/groups/{outer['id']}/members")).json())["value"]
    assert [(o["@odata.type"], o["id"]) for o in nested] == [("#microsoft.graph.group", inner["id"])]

    resp = await client.post(f"{G}/directoryObjects/{sp.object_id}/checkMemberGroups",
                             json={"groupIds": [outer["id"], missing]})
    assert (await resp.json())["value"] == [outer["id"]]
    resp = await client.post(f"{G}/groups/{inner['id']}/getMemberGroups", json={"securityEnabledOnly": False})
    assert (await resp.json())["value"] == [outer["id"]]
    resp = await client.post(f"{G}/servicePrincipals/{sp.object_id}/getMemberGroups", json={"securityEnabledOnly": True})
    assert sorted((await resp.json())["value"]) == sorted([inner["id"], outer["id"]])

    # reads are POSTs a principal without write rights may make; adding members is a write
    reader = {"Authorization": f"Bearer {READER}"}
    resp = await client.post(f"{G}/groups/{inner['id']}/getMemberGroups", json={}, headers=reader)
    assert resp.status == 200
    resp = await client.post(f"{members}/$ref", json=_ref(client, outer["id"]), headers=reader)
    assert resp.status == 403

    assert (await client.delete(f"{members}/{sp.object_id}/$ref")).status == 204
    resp = await client.delete(f"{members}/{sp.object_id}/$ref")
    assert resp.status == 404
    assert (await (await client.get(members)).json())["value"] == []


async def test_deleted_principal_leaves_its_groups(client: test_utils.TestClient, principals: Principals) -> None:
    group = await _create(client, "ops")
    sp = await principals.create("gone")
    await client.post(f"{G}/groups/{group['id']}/members/$ref", json=_ref(client, sp.object_id))
    assert (await client.delete(f"{G}/servicePrincipals/{sp.object_id}")).status == 204
    assert (await (await client.get(f"{G}/groups/{group['id']}/members")).json())["value"] == []


async def test_tokens_carry_security_groups(principals: Principals) -> None:
    groups = Groups(principals.store)
    sp = await principals.create("ci")
    _sp, _cred, secret = await principals.add_password(sp.app_id)
    outer = await groups.create("outer", "outer")
    inner = await groups.create("inner", "inner")
    await groups.add_member(inner.object_id, sp.object_id)
    await groups.add_member(outer.object_id, inner.object_id)
    key = SigningKey(SigningKey.generate().pem)
    issuer = Issuer(tenant_id=TENANT, endpoint="https://lks.test", principals=principals,
                    tokens=Tokens(key=key, tenant_id=TENANT), groups=groups)
    form = {"grant_type": "client_credentials", "client_id": sp.app_id, "client_secret": secret}

    async def claims(scope: str) -> dict:
        answer = await issuer.token(TENANT, {**form, "scope": scope})
        return jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert sorted((await claims(f"{AKS_SERVER_APP}/.default"))["groups"]) == sorted([inner.object_id,
                                                                                      outer.object_id])
    assert sorted((await claims("https://management.lks//.default"))["groups"]) == sorted([inner.object_id,
                                                                                             outer.object_id])
    assert "groups" not in await claims("https://lks.test/graph//.default")
    await groups.remove_member(inner.object_id, sp.object_id)
    assert "groups" not in await claims(f"{AKS_SERVER_APP}/.default")  # no groups: no claim, as Entra
