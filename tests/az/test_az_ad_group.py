"""The real `az ad group` against lks's Microsoft Graph subset, signed in as a service principal
that is Owner of the subscription: `az ad group create` (idempotent as az makes it), `member
add`, `member check`, `member list`, then `az role assignment create` to the group (az resolves
the object id to a Group through getByIds) gives a member service principal, signed in to an az
of its own, read access to a resource group and nothing more."""

from __future__ import annotations

import pytest
from e2e.conftest import lks_json

from .conftest import Az, AzError

GROUP = "az-groups-rg"


@pytest.fixture(scope="module")
def owner(lks, az) -> None:
    sp = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-group-owner", "--role", "Owner",
                  "--scopes", f"/subscriptions/{az.config['subscription_id']}")
    az("cloud", "register", "-n", "lks", "--endpoint-resource-manager", az.server.endpoint)
    az("cloud", "set", "-n", "lks")
    az("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"], "--tenant", sp["tenant"])


def test_group_member_with_a_role_assignment(lks, az, owner, tmp_path_factory):
    group = az("ad", "group", "create", "--display-name", "readers", "--mail-nickname", "readers")
    assert (group["displayName"], group["securityEnabled"], group["mailEnabled"]) == ("readers", True, False)
    again = az.run("ad", "group", "create", "--display-name", "readers", "--mail-nickname", "readers")
    assert again.returncode == 0 and "A group with the same display name and mail nickname already exists" \
        in again.stderr

    member = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-group-member")
    member_id = az("ad", "sp", "show", "--id", member["appId"])["id"]
    az("ad", "group", "member", "add", "--group", "readers", "--member-id", member_id)
    assert az("ad", "group", "member", "check", "--group", group["id"], "--member-id", member_id) == {"value": True}
    assert [m["id"] for m in az("ad", "group", "member", "list", "--group", "readers")] == [member_id]

    az("group", "create", "-n", GROUP, "-l", "westeurope")
    assignment = az("role", "assignment", "create", "--assignee", group["id"], "--role", "Reader",
                    "--scope", f"/subscriptions/{az.config['subscription_id']}/resourceGroups/{GROUP}")
    assert assignment["principalType"] == "Group" and assignment["principalId"] == group["id"]

    as_member = Az(lks, tmp_path_factory.mktemp("az-member"))
    as_member("cloud", "register", "-n", "lks", "--endpoint-resource-manager", lks.endpoint)
    as_member("cloud", "set", "-n", "lks")
    as_member("login", "--service-principal", "-u", member["appId"], "-p", member["password"],
              "--tenant", member["tenant"])
    assert as_member("group", "show", "-n", GROUP)["name"] == GROUP
    with pytest.raises(AzError) as err:
        as_member("group", "create", "-n", f"{GROUP}-2", "-l", "westeurope")
    assert "AuthorizationFailed" in err.value.stderr
    assert "microsoft.resources/subscriptions/resourcegroups/write" in err.value.stderr.lower()
