"""`Microsoft.Authorization` on the management API: role definitions (Azure's built-ins that
matter to AKS, `lks.identity.roles`) and role assignments at subscription, resource group and
resource scope (`lks.identity.rbac`), with ARM's shapes, `$filter`s and errors, as `az role`
and the Azure SDK use them. `lks.arm.app` authorizes every request against these assignments.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm.app import Call, Route, json_response
from lks.arm.errors import ARMError
from lks.clock import iso8601
from lks.identity import groups, principals, rbac, roles

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
NAMESPACE = "Microsoft.Authorization"
API_VERSIONS = ("2015-07-01", "2018-01-01-preview", "2018-07-01", "2018-09-01-preview", "2020-03-01-preview",
                "2020-04-01-preview", "2020-08-01-preview", "2020-10-01-preview", "2021-03-01-preview",
                "2021-04-01-preview", "2022-01-01-preview", "2022-04-01", "2022-05-01-preview")
READ_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments/read"
# a scope in the subscription: itself, a group, or anything in a group (a cluster, its namespaces)
_SCOPE = r"(?P<scope>/subscriptions/(?P<subscription>[^/]+)(?:/resourcegroups/(?P<group>[^/]+)(?:/providers/.+?)?)?)"
_ANY_SCOPE = r"(?P<scope>(?:/subscriptions/(?P<subscription>[^/]+)(?:/resourcegroups/(?P<group>[^/]+)" \
             r"(?:/providers/.+?)?)?)?)"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_PRINCIPAL_FILTER = re.compile(r"^principalId\s+eq\s+'([^']*)'$", re.IGNORECASE)
_ASSIGNED_FILTER = re.compile(r"^assignedTo\('([^']*)'\)$", re.IGNORECASE)
_ROLE_NAME_FILTER = re.compile(r"^roleName\s+eq\s+'((?:[^']|'')*)'$", re.IGNORECASE)
_ROLE_TYPE_FILTER = re.compile(r"^type\s+eq\s+'(BuiltInRole|CustomRole)'$", re.IGNORECASE)


def _route(tail: str, methods: dict, type_name: str, *, any_scope: bool = False) -> Route:
    regex = (_ANY_SCOPE if any_scope else _SCOPE) + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", tail)
    return Route("/{scope}" + tail, re.compile(f"^{regex}/?$", re.IGNORECASE), methods, API_VERSIONS, type_name,
                 NAMESPACE)


def routes(plane: ManagementPlane) -> list[Route]:
    h = Authorization(plane)
    base = "/providers/Microsoft.Authorization"
    return [
        _route(base + "/roleAssignments", {"GET": h.list_assignments}, "roleAssignments"),
        _route(base + "/roleAssignments/{name}", {"PUT": h.put_assignment, "GET": h.get_assignment,
                                                  "DELETE": h.delete_assignment}, "roleAssignments"),
        _route(base + "/roleDefinitions", {"GET": h.list_definitions}, "roleDefinitions", any_scope=True),
        _route(base + "/roleDefinitions/{name}", {"GET": h.get_definition, "PUT": h.put_definition,
                                                  "DELETE": h.delete_definition}, "roleDefinitions", any_scope=True),
    ]


def _scope(call: Call) -> str:
    return call.params.get("scope") or "/"


def _assignment_not_found(name: str) -> ARMError:
    return ARMError("RoleAssignmentNotFound", f"The role assignment '{name}' is not found.", 404)


def _definition_not_found(guid: str) -> ARMError:
    return ARMError("RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist.",
                    404)


def _bad_filter(text: str) -> ARMError:
    return ARMError("UnsupportedQuery", f"The filter '{text}' is not supported. Supported filters are either "
                    "'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.", 400)


class Authorization:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.assignments: rbac.RoleAssignments = plane.rbac
        self.principals = principals.Principals(plane.docs.store)
        self.groups = groups.Groups(plane.docs.store)

    async def _require_scope(self, call: Call) -> None:
        """A scope in a resource group needs the group (ARM's ResourceGroupNotFound)."""
        if call.params.get("group"):
            await self.plane.groups.require(call.params["subscription"], call.params["group"])

    # -- role assignments -------------------------------------------------------------------

    async def put_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        name, scope = call.params["name"], _scope(call)
        if not _GUID.match(name):
            raise ARMError("InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid. The role "
                           "assignment ID must be a GUID.", 400)
        props = _properties(call)
        for field in ("roleDefinitionId", "principalId"):
            if not isinstance(props.get(field), str) or not props[field]:
                raise _missing(field, "properties")
        role_guid = roles.guid_of(props["roleDefinitionId"])
        role = self.assignments.role(role_guid)
        if role is None:
            raise ARMError("RoleDefinitionDoesNotExist",
                           f"The specified role definition with ID '{role_guid}' does not exist.", 400)
        key = rbac.scope_key(scope)
        if not any(rbac.covers(rbac.scope_key(s), key) for s in role.assignable_scopes):
            raise ARMError("ScopeDoesNotMatchRoleDefinition", f"The scope '{scope}' is not within the assignable "
                           f"scopes of role definition '{role_guid}'.", 400)  # ARM's code; lks's wording
        principal_id = props["principalId"]
        given_type = props.get("principalType")
        if given_type is not None and not isinstance(given_type, str):
            raise _missing("principalType", "properties")
        principal_type = await self._check_principal(principal_id, given_type or None)
        existing = self.assignments.get(name)
        if existing is not None:
            same = (existing.principal_id == principal_id.lower() and existing.role_id == role_guid
                    and existing.scope_key == rbac.scope_key(scope))
            if not same:
                raise ARMError("RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and "
                               "scope are not allowed to be updated.", 409)
            return json_response(existing.doc, 201)  # the same assignment again: ARM answers as a create
        if self.assignments.find(principal_id, role_guid, scope) is not None:
            raise ARMError("RoleAssignmentExists", "The role assignment already exists.", 409)
        access = call.access
        doc = rbac.document(name.lower(), scope, roles.definition_id(role_guid, scope), principal_id, principal_type,
                            created_by=access.object_id if access else "", now=iso8601(self.plane.clock.now()),
                            description=props.get("description"), condition=props.get("condition"),
                            condition_version=props.get("conditionVersion"))
        return json_response((await self.assignments.create(doc)).doc, 201)

    async def _check_principal(self, principal_id: str, principal_type: str | None) -> str:
        """The principal's type (ARM fills `principalType` in when a request leaves it out): the
        principal must be in the directory (a service principal, a group, the bootstrap one) and
        of the type given (ARM's PrincipalNotFound, UnmatchedPrincipalType). lks's directory has
        no users, so assignments to users (and foreign groups) are taken as given."""
        if principal_type in ("User", "ForeignGroup"):
            return principal_type
        if principal_id.lower() == (self.assignments.bootstrap_id or "").lower():
            return principal_type or "ServicePrincipal"
        actual = None
        if _GUID.match(principal_id):
            sp = await self.principals.get(principal_id)
            if sp is not None and sp.service_principal and sp.object_id.lower() == principal_id.lower():
                actual = "ServicePrincipal"
            elif await self.groups.get(principal_id) is not None:
                actual = "Group"
        if actual is None:
            tenant = self.plane.tenant_id or ""
            raise ARMError(
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist in the directory {tenant}. Check that you "
                "have the correct principal ID. If you are creating this principal and then immediately assigning a "
                "role, this error might be related to a replication delay. In this case, set the role assignment "
                "principalType property to a value, such as ServicePrincipal, User, or Group.  See "
                "https://aka.ms/docs-principaltype", 400)
        if principal_type is not None and principal_type != actual:
            raise ARMError("UnmatchedPrincipalType", f"The PrincipalId '{principal_id.replace('-', '')}' has type "
                           f"'{actual}' , which is different from specified PrincipalType '{principal_type}'.", 400)
        return actual

    async def get_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        a = self.assignments.get(call.params["name"])
        if a is None or a.scope_key != rbac.scope_key(_scope(call)):
            raise _assignment_not_found(call.params["name"])
        return json_response(a.doc)

    async def delete_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        a = self.assignments.get(call.params["name"])
        if a is None or a.scope_key != rbac.scope_key(_scope(call)):
            return web.Response(status=204)
        await self.assignments.delete(a.name)
        return json_response(a.doc)

    async def list_assignments(self, call: Call) -> web.Response:
        """At the scope, above it and below it; `atScope()` only at and above it; by principal with
        `principalId eq '…'` (or `assignedTo('…')`, the principal and its groups). Each shown only
        when the caller may read role assignments where it is."""
        await self._require_scope(call)
        scope = rbac.scope_key(_scope(call))
        at_scope, principal = False, None
        text = call.request.query.get("$filter", "").strip()
        for clause in (re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if text else []):
            clause = clause.strip()
            if clause.lower() == "atscope()":
                at_scope = True
            elif m := _PRINCIPAL_FILTER.match(clause) or _ASSIGNED_FILTER.match(clause):
                principal = m.group(1).lower()
            else:
                raise _bad_filter(text)
        candidates = (self.assignments.of_principals([principal]) if principal is not None
                      else self.assignments.all())
        readable_here = call.may(READ_ASSIGNMENTS, scope)
        value = []
        for a in candidates:
            above = rbac.covers(a.scope_key, scope)
            if not above and (at_scope or not rbac.covers(scope, a.scope_key)):
                continue
            if (above and readable_here) or call.may(READ_ASSIGNMENTS, a.id):
                value.append(a.doc)
        return json_response({"value": value})

    # -- role definitions -------------------------------------------------------------------

    async def list_definitions(self, call: Call) -> web.Response:
        await self._require_scope(call)
        scope = _scope(call)
        wanted_name = wanted_type = None
        text = call.request.query.get("$filter", "").strip()
        if text:
            if m := _ROLE_NAME_FILTER.match(text):
                wanted_name = m.group(1).replace("''", "'").lower()
            elif m := _ROLE_TYPE_FILTER.match(text):
                wanted_type = m.group(1).lower() == "builtinrole"
            else:
                raise ARMError("InvalidFilter", f"The filter '{text}' is not supported. Supported filters are "
                               "'roleName eq '{value}'' and 'type eq 'BuiltInRole|CustomRole''.", 400)
        key = rbac.scope_key(scope)
        value = [r.document(scope) for r in (*roles.BUILTIN, *self.assignments.custom.values())
                 if (wanted_name is None or r.name.lower() == wanted_name)
                 and (wanted_type is None or r.builtin == wanted_type)
                 and any(rbac.covers(rbac.scope_key(s), key) or rbac.covers(key, rbac.scope_key(s))
                         for s in r.assignable_scopes)]
        return json_response({"value": value})

    async def put_definition(self, call: Call) -> web.Response:
        """A custom role: created or replaced (ARM answers 201 for both)."""
        await self._require_scope(call)
        guid = call.params["name"].lower()
        if not _GUID.match(guid):
            raise ARMError("InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid. The role "
                           "definition ID must be a GUID.", 400)
        if roles.get(guid) is not None:  # lks's wording: Azure's built-in roles are not for changing
            raise ARMError("InvalidRoleDefinitionId", f"The role definition '{guid}' is a built-in role and cannot "
                           "be updated.", 400)
        props = _properties(call)
        name = props.get("roleName")
        if not isinstance(name, str) or not name.strip():
            raise _missing("roleName", "properties")
        scopes = props.get("assignableScopes")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise ARMError("InvalidAssignableScopes", "The role definition must have at least one assignable scope.",
                           400)
        permissions = props.get("permissions") or [{}]
        if not isinstance(permissions, list) or not all(isinstance(p, dict) for p in permissions):
            raise _missing("permissions", "properties")
        lists = {k: [a for p in permissions for a in (p.get(k) or [])]
                 for k in ("actions", "notActions", "dataActions", "notDataActions")}
        if not all(isinstance(a, str) for v in lists.values() for a in v):
            raise _missing("permissions", "properties")
        taken = roles.by_name(name) or next((r for r in self.assignments.custom.values()
                                             if r.name.lower() == name.lower() and r.id != guid), None)
        if taken is not None:
            raise ARMError("RoleDefinitionWithSameNameExists", "A role definition cannot be updated with a name that "
                           "already exists.", 409)
        old = self.assignments.custom.get(guid)
        now = iso8601(self.plane.clock.now())
        role = roles.Role(guid, name, props.get("description") or "", tuple(lists["actions"]),
                          tuple(lists["notActions"]), tuple(lists["dataActions"]), tuple(lists["notDataActions"]),
                          builtin=False, assignable_scopes=tuple(scopes), created=old.created if old else now,
                          updated=now)
        await self.assignments.put_role(role)
        return json_response(role.document(_scope(call)), 201)

    async def delete_definition(self, call: Call) -> web.Response:
        await self._require_scope(call)
        guid = call.params["name"].lower()
        role = self.assignments.custom.get(guid)
        if role is None:
            if roles.get(guid) is not None:
                raise ARMError("InvalidRoleDefinitionId", f"The role definition '{guid}' is a built-in role and "
                               "cannot be deleted.", 400)
            return web.Response(status=204)
        if any(a.role_id == guid for a in self.assignments.all()):
            raise ARMError("RoleDefinitionHasAssignments", "There are existing role assignments referencing role.",
                           409)
        await self.assignments.delete_role(guid)
        return json_response(role.document(_scope(call)))

    async def get_definition(self, call: Call) -> web.Response:
        await self._require_scope(call)
        role = self.assignments.role(call.params["name"])
        if role is None:
            raise _definition_not_found(call.params["name"])
        return json_response(role.document(_scope(call)))


def _properties(call: Call) -> dict[str, Any]:
    """A PUT body's `properties`, which ARM requires."""
    props = (call.body if isinstance(call.body, dict) else {}).get("properties")
    if not isinstance(props, dict):
        raise _missing("properties", "")
    return props


def _missing(field: str, path: str) -> ARMError:
    return ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                    f"'Required property '{field}' not found in JSON. Path '{path}'.'.", 400)
