"""The tenant's token issuer end to end: a service principal gets an access token from `lks up`'s
token endpoint as msal asks for one (form-encoded client credentials), and the Azure SDK calls
ARM with it; bad secrets, unknown tenants, expired, tampered and wrong-audience tokens get
Entra's and ARM's exact errors."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.containerservice import ContainerServiceClient

from lks import store
from lks.identity.principals import Principals
from lks.kube.serviceaccounts import SigningKey

from .conftest import LKS

ARM_SCOPE = "https://management.lks//.default"  # what az asks: the metadata's audiences[0] + /.default
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


async def _seed(home: Path) -> dict[str, str]:
    """A service principal with a client secret, written into the service's store before it starts."""
    backend = store.open_store(f"sqlite://{home / 'lks.db'}")
    await backend.start()
    try:
        principals = Principals(backend)
        sp = await principals.create("e2e-tokens")
        _, _, secret = await principals.add_password(sp.app_id)
        return {"appId": sp.app_id, "objectId": sp.object_id, "password": secret}
    finally:
        await backend.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("lks-identity")
    home.chmod(0o700)
    sp = asyncio.run(_seed(home))
    server = LKS(home)
    server.start()
    server.sp = sp
    server.config = json.loads((home / "config.json").read_text())
    yield server
    server.stop()


def _request(server: LKS, method: str, path: str, *, form: dict[str, str] | None = None,
             body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None
    headers = {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.endpoint + path, data=data, method=method, headers=headers)
    ctx = ssl.create_default_context(cafile=server.config["ca_file"])
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _token_form(server: LKS, *, secret: str | None = None, scope: str = ARM_SCOPE) -> dict[str, str]:
    """The form msal 1.39 posts for `acquire_token_for_client` with a client secret."""
    return {"client_id": server.sp["appId"], "grant_type": "client_credentials", "client_info": "1",
            "client_secret": secret or server.sp["password"], "scope": scope,
            "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}'}


def _token(server: LKS, scope: str = ARM_SCOPE) -> str:
    status, body = _request(server, "POST", f"/{server.config['tenant_id']}/oauth2/v2.0/token",
                            form=_token_form(server, scope=scope))
    assert status == 200, body
    return body["access_token"]


class IssuerCredential:
    """An azure-core TokenCredential that gets its tokens from lks's token endpoint, as
    azure-identity's ClientSecretCredential would from Entra's."""

    def __init__(self, server: LKS):
        self.server = server
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        status, body = _request(self.server, "POST", f"/{self.server.config['tenant_id']}/oauth2/v2.0/token",
                                form=_token_form(self.server, scope=" ".join(scopes)))
        assert status == 200, body
        return AccessToken(body["access_token"], int(time.time()) + body["expires_in"])


class FixedToken:
    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _aks(server: LKS, credential: Any) -> ContainerServiceClient:
    return ContainerServiceClient(credential, server.config["subscription_id"], base_url=server.endpoint,
                                  connection_verify=server.config["ca_file"], credential_scopes=[ARM_SCOPE])


def _grant_contributor(server: LKS) -> None:
    """Contributor on the subscription for the principal, by the bootstrap token (when the
    service authorizes with Azure RBAC; without it every authenticated caller may act)."""
    sub = server.config["subscription_id"]
    status, body = _request(
        server, "PUT", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        "?api-version=2022-04-01", token=server.config["token"],
        body={"properties": {"principalId": server.sp["objectId"], "principalType": "ServicePrincipal",
                             "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                                                 f"roleDefinitions/{CONTRIBUTOR}"}})
    assert status in (200, 201, 404), body


def test_cloud_metadata_and_discovery(server: LKS) -> None:
    tenant = server.config["tenant_id"]
    status, meta = _request(server, "GET", "/metadata/endpoints?api-version=2022-09-01")
    assert status == 200
    assert meta["name"] == "lks" and meta["suffixes"] == {} and meta["resourceManager"] == server.endpoint + "/"
    assert meta["authentication"]["loginEndpoint"] == server.endpoint + "/adfs"
    assert meta["authentication"]["audiences"][0] == "https://management.lks/"
    assert meta["microsoftGraphResourceId"] == server.endpoint + "/graph/"
    status, old = _request(server, "GET", "/metadata/endpoints?api-version=2019-05-01")
    assert status == 200 and old == [meta]  # older api-versions answer a list of clouds
    for path in ("/adfs/.well-known/openid-configuration", f"/{tenant}/v2.0/.well-known/openid-configuration"):
        status, oidc = _request(server, "GET", path)
        assert status == 200
        # msal takes the tenant from the token endpoint's first path segment
        assert oidc["token_endpoint"] == f"{server.endpoint}/{tenant}/oauth2/v2.0/token"
        assert oidc["issuer"] == f"{server.endpoint}/{tenant}/v2.0"
        assert oidc["authorization_endpoint"].startswith("https://")
    status, keys = _request(server, "GET", f"/{tenant}/discovery/v2.0/keys")
    token = _token(server)
    key = next(k for k in keys["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="https://management.lks/",
                        issuer=oidc["issuer"])
    assert (claims["oid"], claims["appid"], claims["tid"], claims["idtyp"]) == (
        server.sp["objectId"], server.sp["appId"], tenant, "app")


def test_azure_sdk_with_an_issued_token(server: LKS) -> None:
    _grant_contributor(server)
    credential = IssuerCredential(server)
    names = [c.name for c in _aks(server, credential).managed_clusters.list()]
    assert "demo" in names
    assert credential.scopes[0] == (ARM_SCOPE,)


def test_wrong_secret(server: LKS) -> None:
    status, body = _request(server, "POST", f"/{server.config['tenant_id']}/oauth2/v2.0/token",
                            form=_token_form(server, secret="abc8Q~" + "x" * 34))
    assert status == 401 and body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith(
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
        f"secret value, not the client secret ID, for a secret added to app '{server.sp['appId']}'.")


def test_unknown_tenant(server: LKS) -> None:
    bad = "72f988bf-0000-0000-0000-2d7cd011db47"
    for method, path, form in (("GET", f"/{bad}/v2.0/.well-known/openid-configuration", None),
                               ("POST", f"/{bad}/oauth2/v2.0/token", _token_form(server))):
        status, body = _request(server, method, path, form=form)
        assert status == 400 and body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
        assert body["error_description"].startswith(f"AADSTS90002: Tenant '{bad}' not found.")


def _arm_error(server: LKS, token: str) -> tuple[int, dict]:
    with pytest.raises(ClientAuthenticationError) as err:
        list(_aks(server, FixedToken(token)).managed_clusters.list())
    resp = err.value.response
    return resp.status_code, {**resp.json()["error"], "challenge": resp.headers.get("WWW-Authenticate")}


def test_expired_token(server: LKS) -> None:
    """A token the issuer signed (with its key from the home) that expired more than ARM's five
    minutes of skew ago."""
    claims = jwt.decode(_token(server), options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 4000, nbf=now - 4000, exp=now - 400)
    key = (server.home / "pki" / "issuer.key").read_bytes()
    expired = jwt.encode(claims, key, algorithm="RS256", headers={"kid": SigningKey(key).kid})
    status, error = _arm_error(server, expired)
    assert status == 401 and error["code"] == "ExpiredAuthenticationToken"
    assert error["message"].startswith("The access token expiry UTC time '")
    assert "' is earlier than current UTC time '" in error["message"]
    assert 'error="invalid_token"' in error["challenge"]


def test_tampered_token(server: LKS) -> None:
    head, payload, sig = _token(server).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["oid"] = str(uuid.uuid4())  # someone else
    forged = f"{head}.{jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()}.{sig}"
    status, error = _arm_error(server, forged)
    assert (status, error["code"], error["message"]) == (401, "InvalidAuthenticationToken",
                                                         "The access token is invalid.")


def test_wrong_audience(server: LKS) -> None:
    graph = server.endpoint + "/graph/"
    status, error = _arm_error(server, _token(server, scope=graph + "/.default"))
    assert (status, error["code"]) == (401, "InvalidAuthenticationTokenAudience")
    assert error["message"].startswith(f"The access token has been obtained for wrong audience or resource "
                                       f"'{graph}'. It should exactly match with one of the allowed audiences "
                                       "'https://management.lks/','https://management.lks',")
