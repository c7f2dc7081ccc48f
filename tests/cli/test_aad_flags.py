"""The Entra flags of `lks aks create|update` (`lks.cli.commands.aad`): the profile they make
and az's usage errors."""

from __future__ import annotations

import pytest

from lks.cli import output
from lks.cli.main import _parser

G1, G2 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"


def props(*argv: str, current: dict | None = None) -> dict:
    from lks.cli.commands import aad

    args = _parser().parse_args(["aks", argv[0], "-g", "rg", "-n", "c", *argv[1:]])
    out = {"aadProfile": current} if current else {}
    aad.apply(args, out, update=argv[0] == "update")
    return out


def test_create():
    assert props("create", "--enable-aad", "--enable-azure-rbac", "--aad-admin-group-object-ids", f"{G1},{G2}",
                 "--aad-tenant-id", "t")["aadProfile"] == {
        "managed": True, "enableAzureRBAC": True, "adminGroupObjectIDs": [G1, G2], "tenantID": "t"}
    assert props("create") == {} and props("create", "--aad-tenant-id", "t") == {}


def test_update():
    managed = {"managed": True, "adminGroupObjectIDs": [G1], "tenantID": "t"}
    assert props("update", "--enable-azure-rbac", current=managed)["aadProfile"] == {**managed, "enableAzureRBAC": True}
    assert props("update", "--aad-admin-group-object-ids", "", current=managed)["aadProfile"]["adminGroupObjectIDs"] == []
    assert props("update", "--enable-aad")["aadProfile"] == {"managed": True}


@pytest.mark.parametrize(("argv", "current", "message"), [
    (("create", "--enable-azure-rbac"), None, '"--enable-azure-rbac" can only be used together with "--enable-aad"'),
    (("create", "--aad-admin-group-object-ids", G1), None,
     '"--admin-aad-object-id" can only be used together with "--enable-aad"'),
    (("update", "--enable-aad"), {"managed": True}, 'Cannot specify "--enable-aad" if managed AAD is already enabled'),
    (("update", "--disable-azure-rbac"), None, "if managed AAD is not enabled"),
    (("update", "--enable-azure-rbac", "--disable-azure-rbac"), {"managed": True},
     'Cannot specify "--enable-azure-rbac" and "--disable-azure-rbac" at the same time'),
])
def test_usage_errors(argv, current, message):
    with pytest.raises(output.CLIError) as err:
        props(*argv, current=current)
    assert message in str(err.value)
