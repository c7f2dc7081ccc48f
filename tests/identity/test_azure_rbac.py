"""Azure RBAC decisions on the management plane (`lks.identity.rbac`, `lks.identity.roles`): the
built-in roles' action lists, wildcards and notActions, inheritance down scopes (and not into a
sibling whose name starts the same), groups, the bootstrap Owner, persistence, and the action and
scope a route gives (`lks.arm.actions`)."""

from __future__ import annotations

import pytest

from lks import store
from lks.arm import actions
from lks.identity import rbac, roles
from lks.identity.caller import Caller

SUB = "/subscriptions/00000000-0000-0000-0000-00000000000a"
RG1 = SUB + "/resourceGroups/rg1"
C1 = RG1 + "/providers/Microsoft.ContainerService/managedClusters/c1"
MC = "Microsoft.ContainerService/managedClusters"
NOW = "2026-12-07T00:00:00.000000Z"


@pytest.fixture
async def backend():
    b = store.open_store("memory://")
    await b.start()
    yield b
    await b.close()


@pytest.fixture
async def assignments(backend) -> rbac.RoleAssignments:
    a = rbac.RoleAssignments(backend)
    await a.start(SUB.rsplit("/", 1)[1], now=NOW)
    return a


def caller(oid: str, *groups: str) -> Caller:
    return Caller(object_id=oid, tenant_id="t", kind="ServicePrincipal", name=f"app-{oid}", groups=groups)


async def assign(a: rbac.RoleAssignments, principal: str, role: str, scope: str, name: str | None = None) -> None:
    guid = roles.by_name(role).id
    await a.create(rbac.document(name or f"{len(list(a.all())):08d}-0000-0000-0000-000000000000", scope,
                                 roles.definition_id(guid, scope), principal, "ServicePrincipal", created_by="x",
                                 now=NOW))


@pytest.mark.parametrize(("role", "action", "allowed"), [
    pytest.param("Owner", "Microsoft.Authorization/roleAssignments/write", True, id="owner-everything"),
    pytest.param("Contributor", f"{MC}/write", True, id="contributor-writes"),
    pytest.param("Contributor", "Microsoft.Authorization/roleAssignments/write", False, id="contributor-notActions"),
    pytest.param("Contributor", "microsoft.authorization/roleassignments/delete", False, id="notActions-any-case"),
    pytest.param("Reader", f"{MC}/agentPools/read", True, id="reader-star-read"),
    pytest.param("Reader", f"{MC}/write", False, id="reader-no-write"),
    pytest.param("Reader", f"{MC}/listClusterUserCredential/action", False, id="reader-no-action"),
    pytest.param("User Access Administrator", "Microsoft.Authorization/roleAssignments/write", True, id="uaa"),
    pytest.param("Azure Kubernetes Service Cluster User Role", f"{MC}/listClusterUserCredential/action", True,
                 id="user-role-user-credential"),
    pytest.param("Azure Kubernetes Service Cluster User Role", f"{MC}/listClusterAdminCredential/action", False,
                 id="user-role-no-admin"),
    pytest.param("Azure Kubernetes Service Cluster Admin Role", f"{MC}/runCommand/action", True, id="admin-runcommand"),
    pytest.param("Azure Kubernetes Service Contributor Role", f"{MC}/write", True, id="aks-contributor"),
    pytest.param("Azure Kubernetes Service Contributor Role", f"{MC}/delete", False, id="aks-contributor-no-delete"),
    pytest.param("Azure Kubernetes Service RBAC Reader", f"{MC}/read", False, id="rbac-reader-not-arm-read"),
])
def test_builtin_role_actions(role, action, allowed):
    assert roles.by_name(role).permits(action) is allowed


def test_data_actions_and_not_data_actions():
    admin = roles.by_name("Azure Kubernetes Service RBAC Admin")
    assert admin.permits_data(f"{MC}/apps/deployments/write")
    assert not admin.permits_data(f"{MC}/namespaces/write")  # notDataActions
    reader = roles.by_name("Azure Kubernetes Service RBAC Reader")
    assert reader.permits_data(f"{MC}/pods/read") and not reader.permits_data(f"{MC}/secrets/read")
    assert roles.by_name("Azure Kubernetes Service RBAC Writer").permits_data(f"{MC}/secrets/read")


def test_wildcard_in_the_middle_spans_segments():
    role = roles.Role("00000000-0000-0000-0000-000000000001", "custom", "", ("Microsoft.ContainerService/*/read",),
                      builtin=False)
    assert role.permits(f"{MC}/agentPools/read")
    assert not role.permits(f"{MC}/write")
    assert not role.permits("Microsoft.Resources/subscriptions/resourceGroups/read")


def test_builtin_ids_are_azures():
    assert {r.name: r.id for r in roles.BUILTIN}["Azure Kubernetes Service RBAC Cluster Admin"] == \
        "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
    assert roles.get("ACDD72A7-3385-48EF-BD42-F606FBA81AE7").name == "Reader"
    assert all(r.assignable_scopes == ("/",) for r in roles.BUILTIN)
    doc = roles.OWNER.document(RG1)
    assert doc["id"] == f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{roles.OWNER.id}"
    assert roles.OWNER.document("/")["id"].startswith("/providers/Microsoft.Authorization/")


async def test_inheritance_down_scopes_not_into_siblings(assignments):
    await assign(assignments, "p1", "Reader", RG1)
    access = assignments.access(caller("p1"))
    assert access.allows(f"{MC}/read", C1)
    assert access.allows(f"{MC}/read", C1.replace("/resourceGroups/", "/RESOURCEGROUPS/"))  # ids ignore case
    assert access.allows("Microsoft.Resources/subscriptions/resourceGroups/read", RG1)
    assert not access.allows(f"{MC}/read", SUB + "/resourceGroups/rg10/providers/Microsoft.ContainerService/"
                             "managedClusters/c1")
    assert not access.allows("Microsoft.Resources/subscriptions/resourceGroups/read", SUB)
    assert access.allows_within("Microsoft.Resources/subscriptions/resourceGroups/read", SUB)  # a list: filtered
    assert not access.allows(f"{MC}/write", C1)


async def test_resource_scope_does_not_reach_up(assignments):
    await assign(assignments, "p1", "Azure Kubernetes Service Cluster User Role", C1)
    access = assignments.access(caller("p1"))
    assert access.allows(f"{MC}/listClusterUserCredential/action", C1)
    assert not access.allows(f"{MC}/listClusterUserCredential/action", C1 + "2")
    assert not access.allows(f"{MC}/listClusterAdminCredential/action", C1)
    assert not access.allows(f"{MC}/read", RG1)
    assert access.holds_within(SUB) and access.holds_within(C1) and not access.holds_within(SUB + "/resourceGroups/x")


async def test_groups_grant_their_members(assignments):
    await assign(assignments, "group-a", "Contributor", SUB)
    assert assignments.access(caller("p2", "group-a")).allows(f"{MC}/delete", C1)
    assert not assignments.access(caller("p2")).allows(f"{MC}/delete", C1)


async def test_bootstrap_is_an_owner_assignment_at_the_subscription(assignments, backend):
    owner = [a for a in assignments.all() if a.role_id == roles.OWNER.id]
    assert len(owner) == 1 and owner[0].scope == SUB
    assert owner[0].principal_id == rbac.bootstrap_object_id(SUB.rsplit("/", 1)[1])
    for who in (None, Caller(object_id="", tenant_id="t", kind="ServicePrincipal", name="lks-bootstrap",
                             bootstrap=True)):
        access = assignments.access(who)
        assert access.allows("Microsoft.Authorization/roleAssignments/write", C1)
        assert access.object_id == assignments.bootstrap_id
    again = rbac.RoleAssignments(backend)  # a restart: loaded, not duplicated
    await again.start(SUB.rsplit("/", 1)[1], now=NOW)
    assert [a.name for a in again.all()] == [owner[0].name]


async def test_assignments_survive_a_restart_and_deletion(assignments, backend):
    await assign(assignments, "p1", "Reader", RG1, name="11111111-1111-1111-1111-111111111111")
    again = rbac.RoleAssignments(backend)
    await again.load()
    assert again.find("P1", roles.by_name("Reader").id, RG1.upper()) is not None
    await again.delete("11111111-1111-1111-1111-111111111111")
    assert not again.access(caller("p1")).allows(f"{MC}/read", C1)
    third = rbac.RoleAssignments(backend)
    await third.load()
    assert third.get("11111111-1111-1111-1111-111111111111") is None


@pytest.mark.parametrize(("template", "method", "path", "action", "scope", "listing"), [
    pytest.param("/subscriptions/{subscription}/resourcegroups", "GET", "/subscriptions/s/resourcegroups",
                 "Microsoft.Resources/subscriptions/resourceGroups/read", "/subscriptions/s", True, id="groups"),
    pytest.param("/subscriptions/{subscription}/resourcegroups/{group}", "PUT", "/subscriptions/s/resourcegroups/g",
                 "Microsoft.Resources/subscriptions/resourceGroups/write", "/subscriptions/s/resourcegroups/g", False,
                 id="group-put"),
    pytest.param("/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.ContainerService/"
                 "managedClusters/{name}/listClusterAdminCredential", "POST",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c/"
                 "listClusterAdminCredential", f"{MC}/listClusterAdminCredential/action",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c", False,
                 id="admin-credential"),
    pytest.param("/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.ContainerService/"
                 "managedClusters/{name}/agentPools/{pool}", "DELETE",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c/"
                 "agentPools/p", f"{MC}/agentPools/delete",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c/"
                 "agentPools/p", False, id="pool-delete"),
    pytest.param("/subscriptions/{subscription}/providers/Microsoft.ContainerService/managedClusters", "GET",
                 "/subscriptions/s/providers/Microsoft.ContainerService/managedClusters", f"{MC}/read",
                 "/subscriptions/s", True, id="clusters-in-subscription"),
    pytest.param("/{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", "PUT",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.Authorization/roleAssignments/x",
                 "Microsoft.Authorization/roleAssignments/write",
                 "/subscriptions/s/resourcegroups/g/providers/Microsoft.Authorization/roleAssignments/x", False,
                 id="role-assignment"),
])
def test_route_actions(template, method, path, action, scope, listing):
    assert actions.of(template, method, path) == actions.Operation(action, scope, listing)


def test_operation_polls_and_tenant_reads_need_no_role():
    assert actions.of("/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{location}/"
                      "operations/{operation}", "GET",
                      "/subscriptions/s/providers/Microsoft.ContainerService/locations/l/operations/o") is None
    assert actions.of("/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.ContainerService/"
                      "managedClusters/{name}/commandResults/{id}", "GET", "/subscriptions/s/resourcegroups/g/providers/"
                      "Microsoft.ContainerService/managedClusters/c/commandResults/x") is None
    assert actions.of("/providers/Microsoft.ContainerService/operations", "GET",
                      "/providers/Microsoft.ContainerService/operations") is None


async def test_decision_cost_does_not_grow_with_assignments(assignments):
    for i in range(1000):
        await assign(assignments, f"other-{i}", "Reader", f"{SUB}/resourceGroups/g{i}")
    await assign(assignments, "p1", "Azure Kubernetes Service Cluster User Role", C1)
    access = assignments.access(caller("p1"))
    assert len(assignments.of_principals(["p1"])) == 1  # a decision reads the caller's own assignments only
    assert access.allows(f"{MC}/listClusterUserCredential/action", C1)


async def test_custom_roles_decide_and_survive_a_restart(assignments, backend):
    role = roles.Role("22222222-2222-2222-2222-222222222222", "pool reader", "", ("Microsoft.ContainerService/*/read",),
                      builtin=False, assignable_scopes=(SUB,))
    await assignments.put_role(role)
    await assignments.create(rbac.document("33333333-3333-3333-3333-333333333333", RG1,
                                           roles.definition_id(role.id, RG1), "p1", "ServicePrincipal",
                                           created_by="x", now=NOW))
    again = rbac.RoleAssignments(backend)
    await again.load()
    assert again.role(role.id).name == "pool reader" and not again.role(role.id).builtin
    access = again.access(caller("p1"))
    assert access.allows(f"{MC}/agentPools/read", C1) and not access.allows(f"{MC}/write", C1)
    await again.delete_role(role.id)
    assert not again.access(caller("p1")).allows(f"{MC}/agentPools/read", C1)  # an unknown role grants nothing


async def test_deleting_a_scope_deletes_the_assignments_in_it(assignments):
    await assign(assignments, "p1", "Reader", RG1)
    await assign(assignments, "p1", "Reader", C1)
    await assign(assignments, "p1", "Reader", SUB + "/resourceGroups/rg10")
    await assignments.delete_within(RG1.upper())
    assert sorted(a.scope for a in assignments.of_principals(["p1"])) == [SUB + "/resourceGroups/rg10"]
