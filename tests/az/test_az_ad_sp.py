"""The real `az ad sp` and `az ad app` against lks's Microsoft Graph subset,
signed in as a service principal that is Owner of the subscription (so it may change the
directory): create-for-rbac with a role, list, show, credential reset, federated credentials,
role assignment list by assignee, app create then sp create, delete; a Reader principal may not
register applications.
Each test is one step of the story and needs the ones before it."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from e2e.conftest import lks_json

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # the Reader role definition's id
CREDENTIAL_WARNING = ("The output includes credentials that you must protect. Be sure that you do not include these "
                      "credentials in your code or check the credentials into your source control. For more "
                      "information, see https://aka.ms/azadsp-cli")


@pytest.fixture(scope="module")
def owner(lks, az) -> dict[str, Any]:
    """Owner of the subscription, made with the lks CLI as the bootstrap owner, signed in to az."""
    sp = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-ad-owner", "--role", "Owner",
                  "--scopes", f"/subscriptions/{az.config['subscription_id']}")
    az("cloud", "register", "-n", "lks", "--endpoint-resource-manager", az.server.endpoint)
    az("cloud", "set", "-n", "lks")
    az("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"], "--tenant", sp["tenant"])
    return sp


@pytest.fixture(scope="module")
def made(az, owner) -> dict[str, Any]:
    return {}


def _token_status(az, app_id: str, secret: str) -> int:
    """The token endpoint's answer to a client-credentials login with `secret`."""
    config = az.config
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
                                   "scope": config["endpoint"] + "/.default"}).encode()
    req = urllib.request.Request(f"{config['endpoint']}/{config['tenant_id']}/oauth2/v2.0/token", data=form)
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=config["ca_file"]), timeout=30):
            return 200
    except urllib.error.HTTPError as err:
        return err.code


def test_create_for_rbac(az, owner, made) -> None:
    scope = f"/subscriptions/{az.config['subscription_id']}/resourceGroups/demo"
    res = az.run("ad", "sp", "create-for-rbac", "-n", "az-made", "--role", "Reader", "--scopes", scope,
                 "--output", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out) == ["appId", "displayName", "password", "tenant"]
    assert out["displayName"] == "az-made" and out["tenant"] == az.config["tenant_id"]
    assert f"WARNING: Creating 'Reader' role assignment under scope '{scope}'" in res.stderr
    assert CREDENTIAL_WARNING in res.stderr
    assert _token_status(az, out["appId"], out["password"]) == 200
    made.update(out)


def test_list_and_show(az, made) -> None:
    listed = az("ad", "sp", "list", "--display-name", "az-made")
    assert [s["appId"] for s in listed] == [made["appId"]]
    shown = az("ad", "sp", "show", "--id", made["appId"])
    assert shown["displayName"] == "az-made" and shown["servicePrincipalNames"] == [made["appId"]]
    made["objectId"] = shown["id"]
    assignments = az("role", "assignment", "list", "--assignee", made["appId"], "--all")
    assert [(a["roleDefinitionId"].rsplit("/", 1)[1], a["principalId"]) for a in assignments] == [
        (READER, shown["id"])]


def test_credential_reset(az, made) -> None:
    res = az.run("ad", "sp", "credential", "reset", "--id", made["appId"], "--output", "json")
    assert res.returncode == 0, res.stderr
    reset = json.loads(res.stdout)
    assert sorted(reset) == ["appId", "password", "tenant"] and CREDENTIAL_WARNING in res.stderr
    assert _token_status(az, made["appId"], made["password"]) == 401
    assert _token_status(az, made["appId"], reset["password"]) == 200
    made["password"] = reset["password"]


def test_federated_credentials(az, made) -> None:
    params = {"name": "main", "issuer": "https://token.actions.githubusercontent.com",
              "subject": "repo:octo/app:ref:refs/heads/main", "audiences": ["api://AzureADTokenExchange"]}
    created = az("ad", "app", "federated-credential", "create", "--id", made["appId"], "--parameters",
                 json.dumps(params))
    assert {k: created[k] for k in params} == params
    assert [c["name"] for c in az("ad", "app", "federated-credential", "list", "--id", made["appId"])] == ["main"]
    az("ad", "app", "federated-credential", "delete", "--id", made["appId"], "--federated-credential-id", "main")
    assert az("ad", "app", "federated-credential", "list", "--id", made["appId"]) == []


def test_app_then_sp(az) -> None:
    """`az ad app create`, then `az ad sp create --id <appId>`, list, show and delete."""
    app = az("ad", "app", "create", "--display-name", "az-two-step")
    assert app["displayName"] == "az-two-step" and app["appId"]
    sp = az("ad", "sp", "create", "--id", app["appId"])
    assert sp["appId"] == app["appId"] and sp["servicePrincipalNames"] == [app["appId"]]
    assert [a["id"] for a in az("ad", "app", "list", "--app-id", app["appId"])] == [app["id"]]
    assert az("ad", "app", "show", "--id", app["appId"])["id"] == app["id"]
    az("ad", "app", "delete", "--id", app["appId"])
    assert az("ad", "app", "list", "--app-id", app["appId"]) == []


def test_a_reader_may_not_register_applications(az, made) -> None:
    az("login", "--service-principal", "-u", made["appId"], "-p", made["password"], "--tenant", made["tenant"])
    res = az.run("ad", "sp", "create-for-rbac", "-n", "not-allowed")
    assert res.returncode == 1
    assert "Directory permission is needed for the current user to register the application." in res.stderr
    assert "Insufficient privileges to complete the operation." in res.stderr


def test_delete(az, owner, made) -> None:
    az("login", "--service-principal", "-u", owner["appId"], "-p", owner["password"], "--tenant", owner["tenant"])
    az("ad", "sp", "delete", "--id", made["appId"])
    res = az.run("ad", "sp", "show", "--id", made["appId"])
    assert res.returncode != 0
    assert f"Resource '{made['appId']}' does not exist" in res.stderr
    # the application stays without its service principal: Entra's AADSTS7000229 (401)
    assert _token_status(az, made["appId"], made["password"]) == 401
    assert az("ad", "app", "show", "--id", made["appId"])["appId"] == made["appId"]
    az("ad", "app", "delete", "--id", made["appId"])  # Azure deletes it; it used to be 404 in lks
    assert _token_status(az, made["appId"], made["password"]) == 400  # Entra: unknown client
