"""Directory groups end to end against a real `lks up`: `lks ad group create|list|show|delete|
member add|remove|list|check|get-member-groups` as az's, a role assignment to a group reaching a
member service principal on the management plane (the `groups` claim of its token), and role
assignments to groups checked against the directory (PrincipalNotFound, UnmatchedPrincipalType,
the principal type filled in)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from .conftest import lks_cli, lks_json
from .test_azure_rbac import AUTH, RG, Endpoint, denied, login, principal

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_group_commands_as_az(lks):
    name = _name("devs")
    group = lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name,
                     "--description", "the developers")
    assert (group["displayName"], group["mailNickname"], group["securityEnabled"], group["mailEnabled"],
            group["description"]) == (name, name, True, False, "the developers")
    again = lks_cli(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)
    assert again.returncode == 0 and json.loads(again.stdout)["id"] == group["id"]
    assert "A group with the same display name and mail nickname already exists, returning." in again.stderr
    assert [g["id"] for g in lks_json(lks, "ad", "group", "list", "--display-name", name)] == [group["id"]]
    assert lks_json(lks, "ad", "group", "show", "-g", name)["id"] == group["id"]  # by display name, as az
    res = lks_cli(lks, "ad", "group", "show", "-g", _name("nobody"))
    assert res.returncode == 1 and "No group matches the name of 'nobody-" in res.stderr

    outer = _name("outer")
    outer_id = lks_json(lks, "ad", "group", "create", "--display-name", outer, "--mail-nickname", outer)["id"]
    sp = principal(lks, "member")
    sp_id = lks_json(lks, "ad", "sp", "show", "--id", sp["appId"])["id"]
    assert lks_cli(lks, "ad", "group", "member", "add", "-g", group["id"], "--member-id", sp_id).returncode == 0
    res = lks_cli(lks, "ad", "group", "member", "add", "-g", group["id"], "--member-id", sp_id)
    assert (res.returncode, res.stderr.strip()) == (1, "ERROR: One or more added object references already exist "
                                                       "for the following modified properties: 'members'.")
    assert lks_cli(lks, "ad", "group", "member", "add", "-g", outer, "--member-id", group["id"]).returncode == 0
    members = lks_json(lks, "ad", "group", "member", "list", "-g", name)
    assert [(m["@odata.type"], m["id"]) for m in members] == [("#microsoft.graph.servicePrincipal", sp_id)]
    assert lks_json(lks, "ad", "group", "member", "check", "-g", outer, "--member-id", sp_id) == {"value": True}
    assert lks_json(lks, "ad", "group", "get-member-groups", "-g", name) == [outer_id]

    assert lks_cli(lks, "ad", "group", "member", "remove", "-g", name, "--member-id", sp_id).returncode == 0
    assert lks_json(lks, "ad", "group", "member", "check", "-g", outer, "--member-id", sp_id) == {"value": False}
    assert lks_json(lks, "ad", "group", "member", "list", "-g", name) == []
    for g in (name, outer):
        assert lks_cli(lks, "ad", "group", "delete", "-g", g).returncode == 0
    res = lks_cli(lks, "ad", "group", "show", "-g", group["id"])
    assert res.returncode == 1 and f"Resource '{group['id']}' does not exist" in res.stderr


def test_role_assignment_to_a_group_reaches_its_members(lks, config):
    sub = f"/subscriptions/{config['subscription_id']}"
    owner_group = _name("rg-readers")
    lks_json(lks, "group", "create", "-n", owner_group, "-l", "westeurope")
    sp = principal(lks, "grouped")
    sp_id = lks_json(lks, "ad", "sp", "show", "--id", sp["appId"])["id"]
    name = _name("readers")
    group = lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]
    # az resolves the object id to a group through getByIds
    assignment = lks_json(lks, "role", "assignment", "create", "--assignee", group, "--role", "Reader",
                          "--scope", f"{sub}/resourceGroups/{owner_group}")
    assert assignment["principalType"] == "Group" and assignment["principalId"] == group

    outsider = login(config, sp)  # no group yet: no right
    denied(outsider("GET", f"{sub}/resourcegroups/{owner_group}?{RG}"), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/read", f"{sub}/resourcegroups/{owner_group}")
    assert lks_cli(lks, "ad", "group", "member", "add", "-g", group, "--member-id", sp_id).returncode == 0
    member = login(config, sp)  # a new token: its `groups` claim names the group
    status, body = member("GET", f"{sub}/resourcegroups/{owner_group}?{RG}")
    assert status == 200 and body["name"] == owner_group
    denied(member("PUT", f"{sub}/resourcegroups/{owner_group}-2?{RG}", {"location": "westeurope"}), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/write", f"{sub}/resourcegroups/{owner_group}-2")
    assert lks_cli(lks, "group", "delete", "-n", owner_group, "--yes").returncode == 0


def test_group_assignments_are_checked_against_the_directory(lks, config):
    sub = f"/subscriptions/{config['subscription_id']}"
    sp = principal(lks, "typed")
    sp_id = lks_json(lks, "ad", "sp", "show", "--id", sp["appId"])["id"]
    name = _name("typed")
    group = lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]
    owner = Endpoint(config, config["token"])
    base = f"{sub}/providers/Microsoft.Authorization/roleAssignments"
    role = f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}"

    def put(principal_id: str, principal_type: str | None) -> tuple[int, Any]:
        props = {"roleDefinitionId": role, "principalId": principal_id}
        if principal_type is not None:
            props["principalType"] = principal_type
        return owner("PUT", f"{base}/{uuid.uuid4()}?{AUTH}", {"properties": props})

    missing = str(uuid.uuid4())
    status, answer = put(missing, "Group")
    assert (status, answer["error"]["code"]) == (400, "PrincipalNotFound")
    assert answer["error"]["message"].startswith(f"Principal {missing.replace('-', '')} does not exist in the "
                                                 f"directory {config['tenant_id']}.")
    status, answer = put(sp_id, "Group")
    assert (status, answer["error"]["code"]) == (400, "UnmatchedPrincipalType")
    assert answer["error"]["message"] == (f"The PrincipalId '{sp_id.replace('-', '')}' has type 'ServicePrincipal' , "
                                          "which is different from specified PrincipalType 'Group'.")
    status, answer = put(group, None)  # ARM fills the type in
    assert status == 201 and answer["properties"]["principalType"] == "Group", answer
    assert owner("DELETE", f"{answer['id']}?{AUTH}")[0] == 200
    # a deleted group is no longer in the directory
    assert lks_cli(lks, "ad", "group", "delete", "-g", group).returncode == 0
    assert put(group, "Group")[1]["error"]["code"] == "PrincipalNotFound"
