"""Entra-integrated clusters end to end against a real `lks up`: `lks aks create --enable-aad
--enable-azure-rbac --aad-admin-group-object-ids --disable-local-accounts`, the user kubeconfig
from `lks aks get-credentials` (an exec plugin running `lks get-token` with a service
principal's credentials from the environment) used by kubectl, Azure RBAC on one namespace,
the admin group (a directory group, `lks ad group`, with a service principal in it: its token's
`groups` claim) as cluster-admin, admin credentials refused, bad tokens answered 401, and the
`aadProfile` through the Azure SDK with AKS's validation."""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedClusterAADProfile

from .conftest import KUBECTL, StaticToken, lks_cli, lks_json

RG, NAME = "rg-entra", "entra1"
SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
RBAC_READER = "Azure Kubernetes Service RBAC Reader"


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


@pytest.fixture(scope="module")
def admin_group(lks) -> str:
    name = f"aks-admins-{uuid.uuid4().hex[:6]}"
    return lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]


@pytest.fixture(scope="module")
def admin(lks, admin_group) -> dict[str, Any]:
    """A service principal in the admin group, with no role assignment of its own."""
    sp = _sp(lks, "admin")
    res = lks_cli(lks, "ad", "group", "member", "add", "-g", admin_group, "--member-id", _object_id(lks, sp["appId"]))
    assert res.returncode == 0, res.stderr
    return sp


@pytest.fixture(scope="module")
def cluster(lks, config, admin_group) -> dict[str, Any]:
    lks_json(lks, "group", "create", "-n", RG, "-l", "westeurope")
    doc = lks_json(lks, "aks", "create", "-g", RG, "-n", NAME, "--node-count", "1", "--enable-aad",
                   "--enable-azure-rbac", "--aad-admin-group-object-ids", admin_group, "--disable-local-accounts")
    yield doc
    for group in (RG, f"{RG}-v"):  # the cluster goes with its group
        lks_cli(lks, "group", "delete", "-n", group, "--yes")


@pytest.fixture(scope="module")
def user_kubeconfig(lks, cluster) -> Path:
    path = lks.home / "entra-kubeconfig"
    res = lks_cli(lks, "aks", "get-credentials", "-g", RG, "-n", NAME, "--file", str(path))
    assert res.returncode == 0, res.stderr
    return path


def _sp(lks, name: str) -> dict[str, Any]:
    return lks_json(lks, "ad", "sp", "create-for-rbac", "--name", f"{name}-{uuid.uuid4().hex[:6]}")


def _object_id(lks, app_id: str) -> str:
    return lks_json(lks, "ad", "sp", "show", "--id", app_id)["id"]


def _kubectl(lks, kubeconfig: Path, sp: dict[str, Any] | None, *args: str):
    """kubectl with the user kubeconfig: its exec plugin (`lks get-token`) finds the principal's
    credentials in the environment, as kubelogin's spn login does."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "LKS_HOME")}
    env.update(KUBECONFIG=str(kubeconfig), HOME=str(lks.kube_home),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    if sp is not None:
        env.update(AAD_SERVICE_PRINCIPAL_CLIENT_ID=sp["appId"], AAD_SERVICE_PRINCIPAL_CLIENT_SECRET=sp["password"])
    return subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=60)


def _signed(lks, config: dict[str, Any], **claims: Any) -> str:
    """A token of the tenant's issuer with the claims Entra would put in it (groups of the
    principal, another lifetime), signed with the issuer's key as the service signs."""
    from lks.kube.serviceaccounts.keys import SigningKey

    key = SigningKey((lks.home / "pki" / "issuer.key").read_bytes())
    now = int(time.time())
    body = {"aud": SERVER_APP, "iss": f"{config['endpoint']}/{config['tenant_id']}/v2.0", "iat": now - 300,
            "nbf": now - 300, "exp": now + 3600, "tid": config["tenant_id"], "idtyp": "app", "ver": "1.0",
            "oid": str(uuid.uuid4()), "appid": str(uuid.uuid4()), **claims}
    return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": key.kid})


def _raw(user_kubeconfig: Path, path: str, token: str) -> tuple[int, dict[str, Any]]:
    doc = yaml.safe_load(user_kubeconfig.read_text())
    server = doc["clusters"][0]["cluster"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(server["certificate-authority-data"]).decode())
    req = urllib.request.Request(server["server"] + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_aad_profile_and_credentials(lks, config, cluster, user_kubeconfig, admin_group):
    aad = cluster["aadProfile"]
    # as az prints it (the SDK's names)
    assert aad == {"managed": True, "enableAzureRbac": True, "adminGroupObjectIDs": [admin_group],
                   "tenantId": config["tenant_id"]}
    res = lks_cli(lks, "aks", "get-credentials", "-g", RG, "-n", NAME, "--admin", "--file", "-")
    assert res.returncode != 0
    assert "Getting static credential is not allowed because this cluster is set to disable local accounts." \
        in res.stderr
    user = yaml.safe_load(user_kubeconfig.read_text())["users"][0]
    assert user["name"] == f"clusterUser_{RG}_{NAME}"
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "lks" and exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    args = exec_["args"]
    assert args[0] == "get-token"
    assert args[args.index("--server-id") + 1] == SERVER_APP
    assert args[args.index("--tenant-id") + 1] == config["tenant_id"]
    assert args[args.index("--login") + 1] == "spn"


def test_admin_group_is_cluster_admin(lks, config, cluster, user_kubeconfig, admin_group, admin):
    who = _kubectl(lks, user_kubeconfig, admin, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == _object_id(lks, admin["appId"]) and admin_group in info["groups"]
    binding = _kubectl(lks, user_kubeconfig, admin, "get", "clusterrolebinding", "aks-cluster-admin-binding-aad",
                       "-o", "json")
    assert binding.returncode == 0, binding.stderr
    doc = json.loads(binding.stdout)
    assert doc["roleRef"]["name"] == "cluster-admin"
    assert doc["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": admin_group}]
    # someone in no admin group, with no role assignment: refused by both RBACs
    outsider = _kubectl(lks, user_kubeconfig, _sp(lks, "outsider"), "get", "namespaces")
    assert outsider.returncode != 0
    assert "User does not have access to the resource in Azure. Update role assignment to allow access." \
        in outsider.stderr


def test_rbac_reader_on_one_namespace(lks, config, cluster, user_kubeconfig, admin):
    for args in (("create", "namespace", "ns1"), ("run", "web", "-n", "ns1", "--image", "nginx")):
        res = _kubectl(lks, user_kubeconfig, admin, *args)
        assert res.returncode == 0, res.stderr
    reader = _sp(lks, "reader")
    scope = f"{cluster['id']}/namespaces/ns1"
    lks_json(lks, "role", "assignment", "create", "--assignee", reader["appId"], "--role", RBAC_READER,
             "--scope", scope)

    who = _kubectl(lks, user_kubeconfig, reader, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == _object_id(lks, reader["appId"])
    assert "system:authenticated" in info["groups"]

    pods = _kubectl(lks, user_kubeconfig, reader, "get", "pods", "-n", "ns1", "-o", "name")
    assert pods.returncode == 0, pods.stderr
    assert pods.stdout.split() == ["pod/web"]
    other = _kubectl(lks, user_kubeconfig, reader, "get", "pods", "-n", "default")
    assert other.returncode != 0
    assert (f'pods is forbidden: User "{info["username"]}" cannot list resource "pods" in API group "" in the '
            'namespace "default": User does not have access to the resource in Azure. Update role assignment to '
            "allow access.") in other.stderr
    everywhere = _kubectl(lks, user_kubeconfig, reader, "get", "pods", "-A")
    assert everywhere.returncode != 0 and "at the cluster scope" in everywhere.stderr
    write = _kubectl(lks, user_kubeconfig, reader, "delete", "pod", "web", "-n", "ns1")
    assert write.returncode != 0 and "cannot delete resource" in write.stderr

    # the token was cached: a second run of the plugin does not log in again
    cache = lks.kube_home / ".kube" / "cache" / "kubelogin"
    assert [p.name for p in cache.glob("lks-*.json")]


def test_rbac_reader_through_a_group(lks, cluster, user_kubeconfig):
    """Azure RBAC for Kubernetes honours an assignment to a group the principal is in (its token's
    `groups` claim), as guard does."""
    name = f"ns1-readers-{uuid.uuid4().hex[:6]}"
    group = lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]
    lks_json(lks, "role", "assignment", "create", "--assignee-object-id", group, "--assignee-principal-type", "Group",
             "--role", RBAC_READER, "--scope", f"{cluster['id']}/namespaces/ns1")
    member = _sp(lks, "grouped-reader")
    res = lks_cli(lks, "ad", "group", "member", "add", "-g", group, "--member-id", _object_id(lks, member["appId"]))
    assert res.returncode == 0, res.stderr
    pods = _kubectl(lks, user_kubeconfig, member, "get", "pods", "-n", "ns1", "-o", "name")
    assert pods.returncode == 0, pods.stderr
    assert pods.stdout.split() == ["pod/web"]
    other = _kubectl(lks, user_kubeconfig, member, "get", "pods", "-n", "default")
    assert other.returncode != 0 and "User does not have access to the resource in Azure." in other.stderr


def test_bad_tokens_are_401(lks, config, cluster, user_kubeconfig):
    sp = _sp(lks, "arm")
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    form = (f"grant_type=client_credentials&client_id={sp['appId']}&client_secret="
            f"{urllib.parse.quote(sp['password'])}&scope=https://management.lks//.default").encode()
    with urllib.request.urlopen(urllib.request.Request(
            f"{config['endpoint']}/{config['tenant_id']}/oauth2/v2.0/token", data=form), context=ctx) as r:
        arm_token = json.load(r)["access_token"]
    now = int(time.time())
    for token in (arm_token,  # another audience
                  _signed(lks, config, exp=now - 600, nbf=now - 4000, iat=now - 4000),  # expired
                  _signed(lks, config, tid=str(uuid.uuid4())),  # another tenant
                  _signed(lks, config)[:-4] + "AAAA",  # tampered
                  "not-a-token"):
        status, body = _raw(user_kubeconfig, "/api/v1/namespaces/ns1/pods", token)
        assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    status, _ = _raw(user_kubeconfig, "/api", _signed(lks, config))
    assert status == 200


def test_get_token_errors(lks):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AAD_", "AZURE_"))}
    env.update(LKS_HOME=str(lks.home), HOME=str(lks.home / "cli-home"))
    res = subprocess.run([str(Path(sys.executable).parent / "lks"), "get-token", "--server-id", SERVER_APP,
                          "--tenant-id", str(uuid.uuid4()), "--login", "spn", "--client-id", "x"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "client secret is required" in res.stderr
    cfg = json.loads((lks.home / "config.json").read_text())
    res = subprocess.run([str(Path(sys.executable).parent / "lks"), "get-token", "--server-id", SERVER_APP,
                          "--tenant-id", cfg["tenant_id"], "--login", "spn"],
                         env={**env, "AAD_SERVICE_PRINCIPAL_CLIENT_ID": str(uuid.uuid4()),
                              "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET": "nope"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "unauthorized_client" in res.stderr and "AADSTS700016" in res.stderr


def test_aad_profile_through_the_sdk(lks, config, cluster, admin_group):
    aks = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"],
                                 base_url=config["endpoint"], connection_verify=config["ca_file"])
    mc = aks.managed_clusters.get(RG, NAME)
    assert mc.aad_profile.managed and mc.aad_profile.enable_azure_rbac
    assert mc.aad_profile.tenant_id == config["tenant_id"]
    assert mc.aad_profile.admin_group_object_i_ds == [admin_group]
    user = aks.managed_clusters.list_cluster_user_credentials(RG, NAME, format="azure")
    legacy = yaml.safe_load(user.kubeconfigs[0].value)["users"][0]["user"]["auth-provider"]
    assert legacy["name"] == "azure" and legacy["config"]["apiserver-id"] == SERVER_APP

    mc.aad_profile = ManagedClusterAADProfile(managed=False)
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_create_or_update(RG, NAME, mc)
    assert err.value.error.code == "BadRequest"
    assert "cannot be disabled" in err.value.error.message
    mc.aad_profile = ManagedClusterAADProfile(managed=True, enable_azure_rbac=True,
                                              admin_group_object_i_ds=["not-a-guid"])
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_create_or_update(RG, NAME, mc)
    assert err.value.error.code == "InvalidParameter"


def test_aad_profile_validation(lks):
    body = {"location": "westeurope", "properties": {"agentPoolProfiles": [
        {"name": "nodepool1", "count": 1, "mode": "System"}]}}
    for aad, code, words in (
            ({"managed": False, "clientAppID": "a", "serverAppID": "b", "serverAppSecret": "c"}, "BadRequest",
             "legacy"),
            ({"enableAzureRBAC": True}, "InvalidParameter", "can only be enabled with AKS-managed"),
            ({"managed": True, "serverAppID": "b"}, "InvalidParameter", "serverAppID")):
        doc = {**body, "properties": {**body["properties"], "aadProfile": aad}}
        status, answer = _arm_put(lks, f"{RG}-v", "v1", doc)
        assert status == 400 and answer["error"]["code"] == code and words in answer["error"]["message"], answer
    doc = {**body, "properties": {**body["properties"], "enableRBAC": False, "aadProfile": {"managed": True}}}
    status, answer = _arm_put(lks, f"{RG}-v", "v1", doc)
    assert status == 400 and "requires Kubernetes RBAC" in answer["error"]["message"]


def _arm_put(lks, group: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    cfg = json.loads((lks.home / "config.json").read_text())
    ctx = ssl.create_default_context(cafile=cfg["ca_file"])
    sub = f"{cfg['endpoint']}/subscriptions/{cfg['subscription_id']}"

    def call(method: str, url: str, data: Any) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(url, method=method, data=json.dumps(data).encode(),
                                     headers={"Authorization": f"Bearer {cfg['token']}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    call("PUT", f"{sub}/resourcegroups/{group}?api-version=2025-04-01", {"location": "westeurope"})
    return call("PUT", f"{sub}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"
                       "?api-version=2026-08-01", body)
