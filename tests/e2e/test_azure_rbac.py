"""Azure RBAC on the management plane, end to end against a real `lks up`: the built-in role
definitions and role assignments over raw HTTPS as ARM answers them (shapes, `$filter`s, errors),
the bootstrap token's Owner assignment, `lks role …`, and principals other than the bootstrap
one (service principals logged in through the token issuer): a Reader of one group lists that
group only and cannot create (ARM's 403 text); the Cluster User Role fetches user credentials,
not admin ones; a deleted assignment takes the right away."""

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

AUTH = "api-version=2022-04-01"
RG = "api-version=2025-04-01"
CS = "api-version=2026-08-01"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CLUSTER_USER = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"


class Endpoint:
    """Raw HTTPS to the service with one bearer token."""

    def __init__(self, config: dict[str, Any], token: str):
        self.config = config
        self.token = token
        self.ctx = ssl.create_default_context(cafile=config["ca_file"])

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.config["endpoint"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


@pytest.fixture(scope="module")
def owner(config) -> Endpoint:
    return Endpoint(config, config["token"])


@pytest.fixture(scope="module")
def sub(config) -> str:
    return f"/subscriptions/{config['subscription_id']}"


def principal(lks, name: str) -> dict[str, Any]:
    """A new service principal (`lks ad sp create-for-rbac`): appId, password, tenant."""
    return lks_json(lks, "ad", "sp", "create-for-rbac", "--name", f"{name}-{uuid.uuid4().hex[:6]}")


def directory_group(lks, name: str) -> str:
    """A new security group of the directory (`lks ad group create`): its object id."""
    name = f"{name}-{uuid.uuid4().hex[:6]}"
    return lks_json(lks, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]


def login(config: dict[str, Any], sp: dict[str, Any]) -> Endpoint:
    """The service principal's ARM access token from the token issuer, as az gets one."""
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    with urllib.request.urlopen(f"{config['endpoint']}/metadata/endpoints?api-version=2022-09-01",
                                context=ctx) as r:
        audience = json.load(r)["authentication"]["audiences"][0]
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": sp["appId"],
                                   "client_secret": sp["password"], "scope": f"{audience}/.default"}).encode()
    with urllib.request.urlopen(urllib.request.Request(
            f"{config['endpoint']}/{sp['tenant']}/oauth2/v2.0/token", data=form), context=ctx) as r:
        return Endpoint(config, json.load(r)["access_token"])


def denied(answer: tuple[int, Any], appid: str, action: str, scope: str) -> None:
    status, body = answer
    assert status == 403, answer
    assert body["error"]["code"] == "AuthorizationFailed"
    message = body["error"]["message"]
    assert message.startswith(f"The client '{appid}' with object id '"), message
    assert message.endswith(f"' does not have authorization to perform action '{action}' over scope '{scope}' or "
                            "the scope is invalid. If access was recently granted, please refresh your credentials.")


def test_builtin_role_definitions(owner, sub):
    status, body = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleDefinitions?{AUTH}&$filter="
                         + urllib.parse.quote("roleName eq 'Azure Kubernetes Service Cluster User Role'"))
    assert status == 200 and len(body["value"]) == 1
    role = body["value"][0]
    assert role["name"] == CLUSTER_USER
    assert role["id"] == f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{CLUSTER_USER}"
    assert role["type"] == "Microsoft.Authorization/roleDefinitions"
    assert role["properties"]["type"] == "BuiltInRole" and role["properties"]["assignableScopes"] == ["/"]
    assert role["properties"]["permissions"] == [{
        "actions": ["Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
                    "Microsoft.ContainerService/managedClusters/read"],
        "notActions": [], "dataActions": [], "notDataActions": []}]
    status, body = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleDefinitions?{AUTH}")
    names = {d["properties"]["roleName"] for d in body["value"]}
    assert {"Owner", "Contributor", "Reader", "Azure Kubernetes Service RBAC Writer"} <= names
    status, body = owner("GET", f"/providers/Microsoft.Authorization/roleDefinitions/{READER}?{AUTH}")
    assert status == 200 and body["properties"]["roleName"] == "Reader"
    assert body["id"] == f"/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    missing = str(uuid.uuid4())
    status, body = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{missing}?{AUTH}")
    assert (status, body["error"]["code"]) == (404, "RoleDefinitionDoesNotExist")


def test_bootstrap_token_is_the_subscriptions_owner(owner, sub):
    status, body = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleAssignments?{AUTH}&$filter=atScope()")
    assert status == 200
    owners = [a for a in body["value"] if a["properties"]["roleDefinitionId"].endswith(
        "/8e3af657-a8ff-443c-a75c-2fe8c4bcb635")]
    assert len(owners) == 1 and owners[0]["properties"]["scope"] == sub


def test_role_assignment_errors(lks, owner, sub):
    base = f"{sub}/resourceGroups/demo/providers/Microsoft.Authorization/roleAssignments"
    group = directory_group(lks, "errors")
    body = {"properties": {"roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}",
                           "principalId": group, "principalType": "Group"}}
    status, answer = owner("PUT", f"{base}/not-a-guid?{AUTH}", body)
    assert (status, answer["error"]["code"]) == (400, "InvalidRoleAssignmentId")
    assert answer["error"]["message"] == ("The role assignment ID 'not-a-guid' is not valid. The role assignment ID "
                                          "must be a GUID.")
    wrong_role = {"properties": {**body["properties"], "roleDefinitionId": f"/providers/Microsoft.Authorization/"
                                 f"roleDefinitions/{group}"}}
    status, answer = owner("PUT", f"{base}/{uuid.uuid4()}?{AUTH}", wrong_role)
    assert (status, answer["error"]["code"]) == (400, "RoleDefinitionDoesNotExist")
    missing = str(uuid.uuid4())
    nobody = {"properties": {**body["properties"], "principalId": missing, "principalType": "ServicePrincipal"}}
    status, answer = owner("PUT", f"{base}/{uuid.uuid4()}?{AUTH}", nobody)
    assert (status, answer["error"]["code"]) == (400, "PrincipalNotFound")
    assert answer["error"]["message"].startswith(f"Principal {missing.replace('-', '')} does not exist in the "
                                                 "directory ")
    name = str(uuid.uuid4())
    status, created = owner("PUT", f"{base}/{name}?{AUTH}", body)
    assert status == 201, created
    assert created["id"] == f"{base}/{name}" and created["properties"]["scope"] == f"{sub}/resourceGroups/demo"
    assert created["properties"]["principalType"] == "Group"
    assert owner("PUT", f"{base}/{name}?{AUTH}", body)[0] == 201  # the same again: no change
    status, answer = owner("PUT", f"{base}/{uuid.uuid4()}?{AUTH}", body)
    assert (status, answer["error"]["code"]) == (409, "RoleAssignmentExists")
    assert answer["error"]["message"] == "The role assignment already exists."
    assert owner("GET", f"{base}/{name}?{AUTH}") == (200, created)
    status, listed = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleAssignments?{AUTH}&$filter="
                           + urllib.parse.quote(f"principalId eq '{group}'"))
    assert [a["name"] for a in listed["value"]] == [name]
    status, listed = owner("GET", f"{sub}/providers/Microsoft.Authorization/roleAssignments?{AUTH}&$filter=atScope()")
    assert name not in [a["name"] for a in listed["value"]]  # atScope(): at the subscription and above only
    assert owner("DELETE", f"{base}/{name}?{AUTH}") == (200, created)
    assert owner("DELETE", f"{base}/{name}?{AUTH}")[0] == 204
    status, answer = owner("GET", f"{base}/{name}?{AUTH}")
    assert (status, answer["error"]["code"]) == (404, "RoleAssignmentNotFound")
    status, answer = owner("PUT", f"{sub}/resourceGroups/nosuchgroup/providers/Microsoft.Authorization/"
                           f"roleAssignments/{uuid.uuid4()}?{AUTH}", body)
    assert (status, answer["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_reader_of_one_group_lists_it_only_and_cannot_create(lks, config, owner, sub):
    assert owner("PUT", f"{sub}/resourcegroups/rbac-other?{RG}", {"location": "eastus"})[0] in (200, 201)
    sp = principal(lks, "reader")
    created = lks_json(lks, "role", "assignment", "create", "--assignee", sp["appId"], "--role", "Reader",
                       "--resource-group", "demo")
    assert created["scope"] == f"{sub}/resourceGroups/demo" and created["principalType"] == "ServicePrincipal"
    listed = lks_json(lks, "role", "assignment", "list", "--assignee", sp["appId"], "--all")
    assert [(a["roleDefinitionName"], a["principalName"]) for a in listed] == [("Reader", sp["appId"])]
    reader = login(config, sp)
    status, groups = reader("GET", f"{sub}/resourcegroups?{RG}")
    assert status == 200 and [g["name"] for g in groups["value"]] == ["demo"]
    status, clusters = reader("GET", f"{sub}/providers/Microsoft.ContainerService/managedClusters?{CS}")
    assert status == 200 and [c["name"] for c in clusters["value"]] == ["demo"]
    assert reader("GET", f"{sub}/resourceGroups/demo/providers/Microsoft.ContainerService/managedClusters/demo/"
                  f"agentPools?{CS}")[0] == 200
    denied(reader("GET", f"{sub}/resourcegroups/rbac-other?{RG}"), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/read", f"{sub}/resourcegroups/rbac-other")
    denied(reader("PUT", f"{sub}/resourcegroups/rbac-new?{RG}", {"location": "eastus"}), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/write", f"{sub}/resourcegroups/rbac-new")
    cluster = f"{sub}/resourceGroups/demo/providers/Microsoft.ContainerService/managedClusters/demo"
    denied(reader("POST", f"{cluster}/listClusterAdminCredential?{CS}"), sp["appId"],
           "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", cluster)
    name = str(uuid.uuid4())
    denied(reader("PUT", f"{sub}/providers/Microsoft.Authorization/roleAssignments/{name}?{AUTH}", {"properties": {
        "roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-"
        "2fe8c4bcb635", "principalId": sp["appId"]}}), sp["appId"], "Microsoft.Authorization/roleAssignments/write",
           f"{sub}/providers/Microsoft.Authorization/roleAssignments/{name}")


def test_cluster_user_role_gets_user_credentials_not_admin_ones(lks, config, sub):
    cluster = f"{sub}/resourceGroups/demo/providers/Microsoft.ContainerService/managedClusters/demo"
    sp = principal(lks, "user")
    lks_json(lks, "role", "assignment", "create", "--assignee", sp["appId"], "--role",
             "Azure Kubernetes Service Cluster User Role", "--scope", cluster)
    user = login(config, sp)
    status, body = user("POST", f"{cluster}/listClusterUserCredential?{CS}")
    assert status == 200 and body["kubeconfigs"][0]["name"] == "clusterUser"
    denied(user("POST", f"{cluster}/listClusterAdminCredential?{CS}"), sp["appId"],
           "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", cluster)
    assert user("GET", f"{cluster}?{CS}")[0] == 200
    assert user("GET", f"{sub}?api-version=2022-12-01")[0] == 200  # a role in the subscription shows it
    denied(user("GET", f"{sub}/resourcegroups?{RG}"), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/read", sub)  # nothing to read there: ARM's 403
    res = lks_cli(lks, "role", "assignment", "delete", "--assignee", sp["appId"], "--role",
                  "Azure Kubernetes Service Cluster User Role", "--scope", cluster)
    assert res.returncode == 0, res.stderr
    denied(user("POST", f"{cluster}/listClusterUserCredential?{CS}"), sp["appId"],
           "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action", cluster)


def test_cli_role_definition_list(lks):
    roles = lks_json(lks, "role", "definition", "list", "--name", "Azure Kubernetes Service RBAC Reader")
    assert [(r["roleName"], r["roleType"], r["name"]) for r in roles] == [
        ("Azure Kubernetes Service RBAC Reader", "BuiltInRole", "7f6c6a51-bcf8-42ba-9220-52d62157d7db")]
    assert "Microsoft.ContainerService/managedClusters/pods/read" in roles[0]["permissions"][0]["dataActions"]


def test_custom_role(lks, config, owner, sub):
    spec = {"Name": f"Cluster Reader {uuid.uuid4().hex[:6]}", "Description": "Reads clusters and their pools.",
            "Actions": ["Microsoft.ContainerService/*/read"], "AssignableScopes": [f"{sub}/resourceGroups/demo"]}
    role = lks_json(lks, "role", "definition", "create", "--role-definition", json.dumps(spec))
    assert (role["roleName"], role["roleType"], role["assignableScopes"]) == (spec["Name"], "CustomRole",
                                                                              spec["AssignableScopes"])
    again = lks_cli(lks, "role", "definition", "create", "--role-definition", json.dumps(spec))
    assert again.returncode == 1 and "(RoleDefinitionWithSameNameExists)" in again.stderr
    listed = lks_json(lks, "role", "definition", "list", "--custom-role-only")
    assert spec["Name"] in [r["roleName"] for r in listed]
    sp = principal(lks, "custom")
    res = lks_cli(lks, "role", "assignment", "create", "--assignee", sp["appId"], "--role", spec["Name"], "--scope",
                  sub)  # beyond its assignable scopes
    assert res.returncode == 1 and "(ScopeDoesNotMatchRoleDefinition)" in res.stderr, res.stderr
    lks_json(lks, "role", "assignment", "create", "--assignee", sp["appId"], "--role", spec["Name"], "-g", "demo")
    custom = login(config, sp)
    cluster = f"{sub}/resourceGroups/demo/providers/Microsoft.ContainerService/managedClusters/demo"
    assert custom("GET", f"{cluster}/agentPools?{CS}")[0] == 200  # Microsoft.ContainerService/*/read
    denied(custom("GET", f"{sub}/resourcegroups/demo?{RG}"), sp["appId"],
           "Microsoft.Resources/subscriptions/resourceGroups/read", f"{sub}/resourcegroups/demo")
    status, body = owner("DELETE", f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{role['name']}?{AUTH}")
    assert (status, body["error"]["code"]) == (409, "RoleDefinitionHasAssignments")
    res = lks_cli(lks, "role", "assignment", "delete", "--assignee", sp["appId"], "-g", "demo")
    assert res.returncode == 0, res.stderr
    res = lks_cli(lks, "role", "definition", "delete", "--name", spec["Name"])
    assert res.returncode == 0, res.stderr
    assert spec["Name"] not in [r["roleName"] for r in lks_json(lks, "role", "definition", "list")]


@pytest.mark.parametrize(("query", "body", "code"), [
    pytest.param("&$filter=" + urllib.parse.quote("principalName eq 'x'"), None, "UnsupportedQuery", id="filter"),
    pytest.param("", [], "InvalidRequestContent", id="body-a-list"),
    pytest.param("", {"properties": "x"}, "InvalidRequestContent", id="properties-a-string"),
    pytest.param("", {"properties": {"roleDefinitionId": READER, "principalId": 7}}, "InvalidRequestContent",
                 id="principal-a-number"),
])
def test_hostile_role_assignment_requests(owner, sub, query, body, code):
    path = f"{sub}/providers/Microsoft.Authorization/roleAssignments"
    status, answer = owner("PUT" if body is not None else "GET",
                           (f"{path}/{uuid.uuid4()}" if body is not None else path) + f"?{AUTH}{query}", body)
    assert status == 400 and answer["error"]["code"] == code, answer


def test_a_deleted_group_takes_its_role_assignments_along(lks, owner, sub):
    assert owner("PUT", f"{sub}/resourcegroups/rbac-gone?{RG}", {"location": "eastus"})[0] in (200, 201)
    group = directory_group(lks, "gone")
    lks_json(lks, "role", "assignment", "create", "--assignee-object-id", group, "--assignee-principal-type", "Group",
             "--role", "Reader", "-g", "rbac-gone")
    res = lks_cli(lks, "group", "delete", "-n", "rbac-gone", "--yes")
    assert res.returncode == 0, res.stderr
    assert owner("PUT", f"{sub}/resourcegroups/rbac-gone?{RG}", {"location": "eastus"})[0] == 201
    assert lks_json(lks, "role", "assignment", "list", "--assignee-object-id", group, "--all") == []


def test_cli_role_assignment_as_az(lks, sub):
    group = directory_group(lks, "cli")
    args = ("--assignee-object-id", group, "--assignee-principal-type", "Group", "--role", "Reader",
            "--scope", f"{sub}/resourceGroups/demo")
    first = lks_json(lks, "role", "assignment", "create", *args)
    again = lks_json(lks, "role", "assignment", "create", *args)  # az is idempotent: the one that exists
    assert again["id"] == first["id"] and again["roleDefinitionName"] == "Reader"
    inherited = lks_json(lks, "role", "assignment", "list", "-g", "demo", "--include-inherited")
    assert first["id"] in [a["id"] for a in inherited] and any(a["scope"] == sub for a in inherited)
    assert sub not in [a["scope"] for a in lks_json(lks, "role", "assignment", "list", "-g", "demo")]
    res = lks_cli(lks, "role", "assignment", "list", "--all", "-g", "demo")
    assert (res.returncode, res.stderr.strip()) == (1, "ERROR: group or scope are not required when --all is used")
    res = lks_cli(lks, "role", "assignment", "delete")
    assert res.returncode == 2 and "Please provide at least one of these arguments: --ids" in res.stderr
    res = lks_cli(lks, "role", "assignment", "delete", "--ids", first["id"], "--role", "Reader")
    assert res.returncode == 0 and "WARNING: option '--role' will be ignored due to use of '--ids'." in res.stderr
    res = lks_cli(lks, "role", "assignment", "delete", "--assignee-object-id", group, "-g", "demo")
    assert (res.returncode, res.stderr.strip()) == (1, "ERROR: No matched assignments were found to delete")
