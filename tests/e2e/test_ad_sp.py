"""`lks ad sp …` and `lks ad app federated-credential …` against a real `lks up`, and its
Microsoft Graph subset over raw HTTPS: what az prints (keys, warnings, exit codes), secrets that
get tokens from the service's issuer and stop when reset, and Graph's errors for hostile input."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from .conftest import LKS, lks_cli, lks_json

CREDENTIAL_WARNING = (
    "WARNING: The output includes credentials that you must protect. Be sure that you do not include these "
    "credentials in your code or check the credentials into your source control. For more information, see "
    "https://aka.ms/azadsp-cli")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("ad-sp-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def config(server: LKS) -> dict[str, Any]:
    return json.loads((server.home / "config.json").read_text())


def _http(config: dict[str, Any], method: str, url: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    return status, json.loads(raw) if raw else None


def graph(config: dict[str, Any], method: str, path: str, body: Any = None, token: str | None = None,
          raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or config['token']}"} if token != "" else {}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        headers["Content-Type"] = "application/json"
    return _http(config, method, config["endpoint"] + "/graph/v1.0" + path, data, headers)


def get_token(config: dict[str, Any], app_id: str, secret: str) -> tuple[int, Any]:
    """OAuth2 client credentials at the service's token endpoint, as MSAL asks for an ARM token."""
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
                                   "scope": config["endpoint"] + "/.default"}).encode()
    return _http(config, "POST", f"{config['endpoint']}/{config['tenant_id']}/oauth2/v2.0/token", form,
                 {"Content-Type": "application/x-www-form-urlencoded"})


def test_create_for_rbac_prints_what_az_prints(server: LKS, config: dict[str, Any]) -> None:
    res = lks_cli(server, "ad", "sp", "create-for-rbac", "--name", "ci-deployer", "-o", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out) == ["appId", "displayName", "password", "tenant"]
    assert out["displayName"] == "ci-deployer" and out["tenant"] == config["tenant_id"]
    assert len(out["password"]) == 40
    assert res.stderr.strip() == CREDENTIAL_WARNING

    sp = lks_json(server, "ad", "sp", "show", "--id", out["appId"])
    assert sp["appId"] == out["appId"] and sp["servicePrincipalNames"] == [out["appId"]]
    assert sp["passwordCredentials"][0]["displayName"] == "rbac"
    assert sp["passwordCredentials"][0]["hint"] == out["password"][:3]

    # the secret gets a token from the service's issuer
    status, token = get_token(config, out["appId"], out["password"])
    assert status == 200, token
    assert token["token_type"] == "Bearer" and token["access_token"].count(".") == 2

    # run again under the same name: the same principal, patched, with only a new secret
    again = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "ci-deployer", "-o", "json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["appId"] == out["appId"] and second["password"] != out["password"]
    app_object_id = lks_json(server, "ad", "sp", "list", "--display-name", "ci-deployer")[0]["appId"]
    assert app_object_id == out["appId"]
    assert "WARNING: Found an existing application instance: (id) " in again.stderr
    assert get_token(config, out["appId"], out["password"])[0] == 401
    assert get_token(config, out["appId"], second["password"])[0] == 200


def test_list_show_delete(server: LKS) -> None:
    made = [lks_json(server, "ad", "sp", "create-for-rbac", "-n", name) for name in ("web-a", "web-b", "other")]
    listed = lks_json(server, "ad", "sp", "list", "--display-name", "web-")
    assert sorted(s["displayName"] for s in listed) == ["web-a", "web-b"]
    everything = lks_json(server, "ad", "sp", "list", "--all")
    assert {m["appId"] for m in made} <= {s["appId"] for s in everything}
    by_spn = lks_json(server, "ad", "sp", "list", "--spn", made[2]["appId"])
    assert [s["displayName"] for s in by_spn] == ["other"]
    filtered = lks_json(server, "ad", "sp", "list", "--filter", "displayName eq 'WEB-B'")
    assert [s["displayName"] for s in filtered] == ["web-b"]

    table = lks_cli(server, "ad", "sp", "list", "--display-name", "web-", "-o", "table")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["DisplayName", "Id", "AppId", "CreatedDateTime"]
    assert [line.split()[0] for line in lines[2:]] == ["web-a", "web-b"]

    bad = lks_cli(server, "ad", "sp", "list", "--filter", "password eq 'x'")
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("ERROR: Unsupported or invalid query filter clause specified for property "
                                  "'password' of resource 'ServicePrincipal'.")

    object_id = lks_json(server, "ad", "sp", "show", "--id", made[0]["appId"])["id"]
    res = lks_cli(server, "ad", "sp", "delete", "--id", made[0]["appId"])
    assert res.returncode == 0 and res.stdout == "", res.stderr
    gone = lks_cli(server, "ad", "sp", "show", "--id", made[0]["appId"])
    assert gone.returncode == 1
    assert gone.stderr.strip() == (f"ERROR: Resource '{made[0]['appId']}' does not exist or one of its queried "
                                   "reference-property objects are not present.")
    assert lks_cli(server, "ad", "sp", "show", "--id", object_id).returncode == 1
    named = lks_cli(server, "ad", "sp", "show", "--id", "no-such-sp")
    assert (named.returncode, named.stderr.strip()) == (3, "ERROR: Service principal 'no-such-sp' doesn't exist")


def test_credential_reset(server: LKS, config: dict[str, Any]) -> None:
    made = lks_json(server, "ad", "sp", "create-for-rbac", "-n", "rotating")
    res = lks_cli(server, "ad", "sp", "credential", "reset", "--id", made["appId"], "-o", "json")
    assert res.returncode == 0, res.stderr
    reset = json.loads(res.stdout)
    assert sorted(reset) == ["appId", "password", "tenant"] and reset["appId"] == made["appId"]
    assert res.stderr.strip() == CREDENTIAL_WARNING
    assert get_token(config, made["appId"], made["password"])[0] == 401  # the old secret is gone
    assert get_token(config, made["appId"], reset["password"])[0] == 200

    appended = lks_json(server, "ad", "sp", "credential", "reset", "--id", made["appId"], "--append",
                        "--end-date", "2299-12-31", "--display-name", "second")
    creds = lks_json(server, "ad", "sp", "credential", "list", "--id", made["appId"])
    assert sorted(c["displayName"] or "" for c in creds) == ["", "second"]
    assert next(c for c in creds if c["displayName"] == "second")["endDateTime"] == "2299-12-31T00:00:00Z"
    assert get_token(config, made["appId"], reset["password"])[0] == 200
    assert get_token(config, made["appId"], appended["password"])[0] == 200

    both = lks_cli(server, "ad", "sp", "credential", "reset", "--id", made["appId"], "--years", "2",
                   "--end-date", "2299-12-31")
    assert (both.returncode, both.stderr.strip()) == (1, "ERROR: usage error: --years | --end-date")
    key_id = next(c for c in creds if c["displayName"] == "second")["keyId"]
    assert lks_cli(server, "ad", "sp", "credential", "delete", "--id", made["appId"], "--key-id", key_id).returncode == 0
    assert get_token(config, made["appId"], appended["password"])[0] == 401


def test_federated_credentials(server: LKS) -> None:
    made = lks_json(server, "ad", "sp", "create-for-rbac", "-n", "gh-actions", "--create-password", "false")
    assert made["password"] is None
    params = {"name": "main", "issuer": "https://token.actions.githubusercontent.com",
              "subject": "repo:octo/app:ref:refs/heads/main", "audiences": ["api://AzureADTokenExchange"]}
    created = lks_json(server, "ad", "app", "federated-credential", "create", "--id", made["appId"],
                       "--parameters", json.dumps(params))
    assert {k: created[k] for k in params} == params
    listed = lks_json(server, "ad", "app", "federated-credential", "list", "--id", made["appId"])
    assert [c["id"] for c in listed] == [created["id"]]
    shown = lks_json(server, "ad", "app", "federated-credential", "show", "--id", made["appId"],
                     "--federated-credential-id", "main")
    assert shown["subject"] == params["subject"]
    dup = lks_cli(server, "ad", "app", "federated-credential", "create", "--id", made["appId"],
                  "--parameters", json.dumps(params))
    assert dup.returncode == 1 and "already exists" in dup.stderr
    res = lks_cli(server, "ad", "app", "federated-credential", "delete", "--id", made["appId"],
                  "--federated-credential-id", created["id"])
    assert res.returncode == 0, res.stderr
    assert lks_json(server, "ad", "app", "federated-credential", "list", "--id", made["appId"]) == []


def test_graph_over_raw_https(config: dict[str, Any]) -> None:
    status, body = graph(config, "POST", "/applications", {"displayName": "raw"})
    assert status == 201 and body["@odata.context"].endswith("/graph/v1.0/$metadata#applications/$entity")
    status, sp = graph(config, "POST", "/servicePrincipals", {"appId": body["appId"]})
    assert status == 201 and sp["appId"] == body["appId"]
    status, listed = graph(config, "GET", "/servicePrincipals?$filter="
                           + urllib.parse.quote(f"servicePrincipalNames/any(c:c eq '{body['appId']}')"))
    assert status == 200 and [s["id"] for s in listed["value"]] == [sp["id"]]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    pytest.param("GET", "/servicePrincipals", {"token": ""}, 401, "InvalidAuthenticationToken", id="no-token"),
    pytest.param("GET", "/servicePrincipals", {"token": "forged"}, 401, "InvalidAuthenticationToken", id="forged"),
    pytest.param("GET", "/secrets", {}, 400, "BadRequest", id="unknown-segment"),
    pytest.param("POST", "/applications", {"raw": b"{not json"}, 400, "BadRequest", id="bad-json"),
    pytest.param("POST", "/applications", {"raw": b"[" * 5000 + b"]" * 5000}, 400, "BadRequest", id="deep-json"),
    pytest.param("POST", "/applications", {"raw": b'"' + b"x" * (2 * 1024 * 1024) + b'"'}, 413,
                 "Request_EntityTooLarge", id="too-large"),
    pytest.param("GET", "/servicePrincipals?$filter=" + urllib.parse.quote("(" * 1500), {}, 400, "BadRequest",
                 id="deep-filter"),
    pytest.param("GET", "/applications/..%2F..%2Fsubscriptions", {}, 400, "BadRequest", id="traversal"),
    pytest.param("DELETE", "/organization", {}, 405, "Request_BadRequest", id="method"),
])
def test_hostile_input_gets_graph_errors(config: dict[str, Any], method: str, path: str, kwargs: dict[str, Any],
                                         status: int, code: str) -> None:
    got, body = graph(config, method, path, **kwargs)
    assert (got, body["error"]["code"]) == (status, code), body
    assert set(body["error"]) == {"code", "message", "innerError"}


def test_create_for_rbac_with_role(server: LKS, config: dict[str, Any]) -> None:
    scope = f"/subscriptions/{config['subscription_id']}/resourceGroups/demo"
    res = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "watcher", "--role", "Reader", "--scopes", scope,
                  "-o", "json")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [f"WARNING: Creating 'Reader' role assignment under scope '{scope}'",
                                       CREDENTIAL_WARNING]
    made = json.loads(res.stdout)
    object_id = lks_json(server, "ad", "sp", "show", "--id", made["appId"])["id"]
    query = urllib.parse.urlencode({"api-version": "2022-04-01", "$filter": f"principalId eq '{object_id}'"})
    status, assignments = _http(config, "GET", f"{config['endpoint']}{scope}/providers/Microsoft.Authorization/"
                                f"roleAssignments?{query}", headers={"Authorization": f"Bearer {config['token']}"})
    assert status == 200, assignments
    [assignment] = assignments["value"]
    assert assignment["properties"]["roleDefinitionId"].endswith("acdd72a7-3385-48ef-bd42-f606fba81ae7")  # Reader
    assert assignment["properties"]["principalType"] == "ServicePrincipal"

    # the principal's token reads the group's clusters, and may not write
    status, token = get_token(config, made["appId"], made["password"])
    assert status == 200, token
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    clusters = f"{config['endpoint']}{scope}/providers/Microsoft.ContainerService/managedClusters?api-version=2025-04-01"
    status, listed = _http(config, "GET", clusters, headers=bearer)
    assert status == 200 and [c["name"] for c in listed["value"]] == ["demo"], listed
    status, refused = _http(config, "PUT", f"{config['endpoint']}{scope}?api-version=2025-04-01",
                            json.dumps({"location": "eastus"}).encode(), {**bearer, "Content-Type": "application/json"})
    assert status == 403 and refused["error"]["code"] == "AuthorizationFailed", refused

    again = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "watcher", "--role", "Reader", "--scopes", scope)
    assert again.returncode == 0, again.stderr
    assert "WARNING:   Role assignment already exists." in again.stderr

    usage = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "x", "--role", "Reader")
    assert (usage.returncode, usage.stderr.strip()) == (
        1, "ERROR: Usage error: To create role assignments, specify both --role and --scopes.")
    unknown = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "y", "--role", "Janitor", "--scopes", scope)
    assert unknown.returncode == 1 and unknown.stderr.splitlines()[-1] == "ERROR: Role 'Janitor' doesn't exist."


def test_graph_takes_tokens_for_its_audience_only(server: LKS, config: dict[str, Any]) -> None:
    made = lks_json(server, "ad", "sp", "create-for-rbac", "-n", "graph-reader")
    graph_scope = config["endpoint"] + "/graph//.default"  # az: the resource id (ending in /) + /.default
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": made["appId"],
                                   "client_secret": made["password"], "scope": graph_scope}).encode()
    status, token = _http(config, "POST", f"{config['endpoint']}/{config['tenant_id']}/oauth2/v2.0/token", form,
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, token
    status, listed = graph(config, "GET", "/servicePrincipals?$filter="
                           + urllib.parse.quote(f"appId eq '{made['appId']}'"), token=token["access_token"])
    assert status == 200 and [s["displayName"] for s in listed["value"]] == ["graph-reader"]
    # a reader of the directory, not a writer
    status, refused = graph(config, "POST", "/applications", {"displayName": "nope"}, token=token["access_token"])
    assert (status, refused["error"]["code"]) == (403, "Authorization_RequestDenied")
    # an ARM token is not a Graph token
    status, arm = get_token(config, made["appId"], made["password"])
    assert status == 200
    status, wrong = graph(config, "GET", "/servicePrincipals", token=arm["access_token"])
    assert status == 401
    assert wrong["error"] == {**wrong["error"], "code": "InvalidAuthenticationToken",
                              "message": "Access token validation failure. Invalid audience."}


def test_sdk_auth(server: LKS, config: dict[str, Any]) -> None:
    res = lks_cli(server, "ad", "sp", "create-for-rbac", "-n", "sdk", "--sdk-auth")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines()[0] == ("WARNING: Option '--sdk-auth' has been deprecated and will be removed in a "
                                          "future release.")
    auth = json.loads(res.stdout)
    assert list(auth) == ["clientId", "clientSecret", "subscriptionId", "tenantId", "activeDirectoryEndpointUrl",
                          "resourceManagerEndpointUrl", "activeDirectoryGraphResourceId", "sqlManagementEndpointUrl",
                          "galleryEndpointUrl", "managementEndpointUrl"]
    assert (auth["subscriptionId"], auth["tenantId"]) == (config["subscription_id"], config["tenant_id"])
    assert auth["activeDirectoryGraphResourceId"] == config["endpoint"] + "/graph/"
    assert get_token(config, auth["clientId"], auth["clientSecret"])[0] == 200


def test_app_commands(server: LKS) -> None:
    app = lks_json(server, "ad", "app", "create", "--display-name", "two-step")
    assert app["displayName"] == "two-step" and app["passwordCredentials"] == []
    assert app["@odata.context"].endswith("$metadata#applications/$entity")
    again = lks_cli(server, "ad", "app", "create", "--display-name", "two-step", "-o", "json")
    assert json.loads(again.stdout)["id"] == app["id"]  # az patches the one application of that name
    assert f"WARNING: Found an existing application instance: (id) {app['id']}. We will patch it." in again.stderr
    sp = lks_json(server, "ad", "sp", "create", "--id", app["appId"])
    assert sp["appId"] == app["appId"] and sp["@odata.context"].endswith("$metadata#servicePrincipals/$entity")
    assert [a["id"] for a in lks_json(server, "ad", "app", "list", "--app-id", app["appId"])] == [app["id"]]
    assert [a["appId"] for a in lks_json(server, "ad", "app", "list", "--display-name", "two-")] == [app["appId"]]
    assert lks_json(server, "ad", "app", "show", "--id", app["appId"])["id"] == app["id"]
    assert lks_json(server, "ad", "app", "show", "--id", app["id"])["appId"] == app["appId"]  # by object id too
    missing = lks_cli(server, "ad", "app", "show", "--id", "api://nothing")
    assert (missing.returncode, missing.stderr.strip()) == (
        3, "ERROR: Application with identifier URI 'api://nothing' doesn't exist")
    assert lks_cli(server, "ad", "app", "delete", "--id", app["appId"]).returncode == 0
    assert lks_json(server, "ad", "app", "list", "--app-id", app["appId"]) == []
    assert lks_json(server, "ad", "sp", "list", "--spn", app["appId"]) == []  # its service principal went with it


def test_show_mine_is_for_signed_in_users(server: LKS) -> None:
    res = lks_cli(server, "ad", "sp", "list", "--show-mine")
    assert (res.returncode, res.stderr.strip()) == (
        1, "ERROR: /me request is only valid with delegated authentication flow.")
