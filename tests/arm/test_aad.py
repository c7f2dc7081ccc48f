"""`aadProfile` of a managed cluster (`lks.arm.aad`): defaults, AKS's refusals, the user
credential's shapes."""

from __future__ import annotations

import pytest

from lks.arm import aad
from lks.arm.errors import ARMError

TENANT = "11111111-2222-3333-4444-555555555555"
GROUP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def profile(given, old=None, rbac=True):
    props_in = {} if given is ... else {"aadProfile": given}
    return aad.profile(props_in, {"aadProfile": old} if old else {}, tenant_id=TENANT, rbac=rbac)


def test_managed_defaults():
    assert profile({"managed": True}) == {"managed": True, "enableAzureRBAC": False, "adminGroupObjectIDs": [],
                                          "tenantID": TENANT}
    assert profile({"managed": True, "enableAzureRBAC": True, "adminGroupObjectIDs": [GROUP.upper(), GROUP]}) == {
        "managed": True, "enableAzureRBAC": True, "adminGroupObjectIDs": [GROUP], "tenantID": TENANT}
    assert profile(...) is None and profile(None) is None


def test_kept_when_a_put_leaves_it_out():
    old = profile({"managed": True, "adminGroupObjectIDs": [GROUP]})
    assert profile(..., old) == old


@pytest.mark.parametrize(("given", "old", "rbac", "code", "words"), [
    pytest.param({"managed": False, "serverAppID": "s", "clientAppID": "c", "serverAppSecret": "x"}, None, True,
                 "BadRequest", "legacy", id="legacy"),
    pytest.param({"enableAzureRBAC": True}, None, True, "InvalidParameter", "AKS-managed", id="azure-rbac-unmanaged"),
    pytest.param({"managed": True}, None, False, "InvalidParameter", "Kubernetes RBAC", id="no-k8s-rbac"),
    pytest.param({"managed": True, "serverAppID": "s"}, None, True, "InvalidParameter", "serverAppID",
                 id="legacy-field"),
    pytest.param({"managed": True, "adminGroupObjectIDs": ["x"]}, None, True, "InvalidParameter", "GUID",
                 id="group-id"),
    pytest.param({"managed": True, "adminGroupObjectIDs": GROUP}, None, True, "InvalidParameter",
                 "adminGroupObjectIDs", id="group-ids-not-list"),
    pytest.param({"managed": True, "tenantID": "t"}, None, True, "InvalidParameter", "tenantID", id="tenant"),
    pytest.param({"managed": True, "enableAzureRBAC": "yes"}, None, True, "InvalidParameter", "enableAzureRBAC",
                 id="flag"),
    pytest.param({"managed": False}, {"managed": True, "tenantID": TENANT}, True, "BadRequest", "cannot be disabled",
                 id="disable"),
    pytest.param(None, {"managed": True, "tenantID": TENANT}, True, "BadRequest", "cannot be disabled",
                 id="disable-null"),
    pytest.param("on", None, True, "InvalidParameter", "aadProfile", id="not-an-object"),
])
def test_refused(given, old, rbac, code, words):
    with pytest.raises(ARMError) as err:
        profile(given, old, rbac)
    assert err.value.code == code and words in err.value.message


def test_user_credential_shapes():
    exec_ = aad.user_credential({"tenantID": TENANT}, "https://127.0.0.1:8443", "exec")["exec"]
    assert exec_["command"] == "lks" and exec_["args"][:2] == ["get-token", "--environment"]
    assert exec_["args"][exec_["args"].index("--authority-host") + 1] == "https://127.0.0.1:8443/"
    legacy = aad.user_credential({"tenantID": TENANT}, "https://x", "azure")["auth-provider"]
    assert legacy == {"name": "azure", "config": {"apiserver-id": aad.SERVER_APP, "client-id": aad.CLIENT_APP,
                                                  "config-mode": "1", "environment": "AzurePublicCloud",
                                                  "tenant-id": TENANT}}
