"""Applications and their service principals apart, end to end against a real `lks up`: `lks ad
sp delete` keeps the application (the token endpoint then answers Entra's AADSTS7000229 over raw
HTTPS), `lks ad sp create --id` gives it a service principal again with a new object id, and
`lks ad sp delete` followed by `lks ad app delete` succeeds as in Azure."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from .conftest import lks_cli, lks_json


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


def _token(config: dict[str, Any], app_id: str, secret: str) -> tuple[int, dict[str, Any]]:
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
                                   "scope": "https://management.lks//.default"}).encode()
    req = urllib.request.Request(f"{config['endpoint']}/{config['tenant_id']}/oauth2/v2.0/token", data=form)
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=config["ca_file"]),
                                    timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_service_principal_delete_keeps_the_application(lks, config):
    made = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", f"apart-{uuid.uuid4().hex[:6]}")
    old_id = lks_json(lks, "ad", "sp", "show", "--id", made["appId"])["id"]
    assert _token(config, made["appId"], made["password"])[0] == 200

    assert lks_cli(lks, "ad", "sp", "delete", "--id", made["appId"]).returncode == 0
    assert lks_json(lks, "ad", "sp", "list", "--spn", made["appId"]) == []
    assert lks_json(lks, "ad", "app", "show", "--id", made["appId"])["appId"] == made["appId"]
    status, body = _token(config, made["appId"], made["password"])
    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [7000229])
    assert body["error_description"].startswith(
        f"AADSTS7000229: The client application {made['appId']} is missing service principal in the tenant "
        f"{config['tenant_id']}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119")

    again = lks_json(lks, "ad", "sp", "create", "--id", made["appId"])
    assert again["appId"] == made["appId"] and again["id"] != old_id
    assert _token(config, made["appId"], made["password"])[0] == 200
    res = lks_cli(lks, "ad", "sp", "create", "--id", made["appId"])
    assert res.returncode == 1 and "is already in use" in res.stderr

    # as az: the service principal, then the application
    assert lks_cli(lks, "ad", "sp", "delete", "--id", made["appId"]).returncode == 0
    res = lks_cli(lks, "ad", "app", "delete", "--id", made["appId"])
    assert res.returncode == 0, res.stderr
    assert lks_json(lks, "ad", "app", "list", "--app-id", made["appId"]) == []
    status, body = _token(config, made["appId"], made["password"])
    assert (status, body["error_codes"]) == (400, [700016])
