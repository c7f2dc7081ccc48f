"""`lks role assignment create|list|delete` and `lks role definition list`: Azure RBAC on the
management plane, shaped like `az role` (azure-cli `command_modules/role/custom.py`: the scope
from `--scope` / `--resource-group` / the subscription, a role by name or id, an assignee by
appId or object id resolved through the service's Graph subset, the same `$filter`s and the
same client-side filtering of `--all` / `--include-inherited`). Results print as az prints the
SDK's flattened models, with az's added `principalName` and `roleDefinitionName`.
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from typing import Any

from lks.cli import output
from lks.cli.client import Client, ServiceError
from lks.cli.output import CLIError

API = "2022-04-01"  # Microsoft.Authorization, as az's role commands call it
GRAPH = "/graph/v1.0"
AUTHORIZATION = "/providers/Microsoft.Authorization"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    role = sub.add_parser("role", help="Manage Azure role-based access control (Azure RBAC).",
                          description="Manage Azure role-based access control (Azure RBAC).")
    groups = role.add_subparsers(dest="group", required=True, metavar="<group>")

    assignment = groups.add_parser("assignment", help="Manage role assignments.")
    cmds = assignment.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scope", help="Scope at which the role assignment or definition applies to, e.g. "
                       "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/myGroup")
        p.add_argument("--resource-group", "-g", dest="resource_group",
                       help="Use it only if the role or assignment was added at the level of a resource group.")

    def who(p: argparse.ArgumentParser) -> None:  # an assignment's principal, role and scope
        p.add_argument("--assignee", help="Represent a user, group, or service principal. Supported format: object "
                       "id, user sign-in name, or service principal name.")
        p.add_argument("--role", help="Role name or id.")
        where(p)
        p.add_argument("--assignee-object-id", help="Use this parameter instead of '--assignee' to bypass Graph "
                       "API invocation in case of insufficient privileges.")

    p = cmds.add_parser("create", parents=[common], help="Create a new role assignment for a user, group, or "
                        "service principal.")
    who(p)
    p.add_argument("--assignee-principal-type", choices=_PRINCIPAL_TYPES,
                   help="Use with --assignee-object-id to avoid errors caused by propagation latency in Graph.")
    p.add_argument("--name", help="A GUID for the role assignment. If omitted, a new GUID is generated.")
    p.add_argument("--description", help="Description of role assignment.")
    p.set_defaults(func=create)

    p = cmds.add_parser("list", parents=[common], help="List role assignments.")
    who(p)
    p.add_argument("--all", action="store_true", help="Show all assignments under the current subscription.")
    p.add_argument("--include-inherited", action="store_true",
                   help="Include assignments applied on parent scopes.")
    p.add_argument("--include-groups", action="store_true",
                   help="Include extra assignments to the groups of which the user is a member (transitively).")
    p.set_defaults(func=list_, table=_assignment_table)

    p = cmds.add_parser("delete", parents=[common], help="Delete role assignments.")
    who(p)
    p.add_argument("--ids", nargs="+", help="Space-separated role assignment ids.")
    p.add_argument("--include-inherited", action="store_true",
                   help="Include assignments applied on parent scopes.")
    p.add_argument("--yes", "-y", action="store_true", help="Currently no-op.")
    p.set_defaults(func=delete)

    definition = groups.add_parser("definition", help="Manage role definitions.")
    cmds = definition.add_subparsers(dest="subcommand", required=True, metavar="<command>")
    p = cmds.add_parser("list", parents=[common], help="List role definitions.")
    p.add_argument("--name", "-n", help="A role's name (roleName) or id.")
    p.add_argument("--custom-role-only", action="store_true", help="Custom roles only.")
    where(p)
    p.set_defaults(func=definition_list, table=_definition_table)

    p = cmds.add_parser("create", parents=[common], help="Create a custom role definition.")
    p.add_argument("--role-definition", required=True, help="Description of a role as JSON, or a path to a file "
                   "containing a JSON description (@file).")
    p.set_defaults(func=definition_create)

    p = cmds.add_parser("delete", parents=[common], help="Delete a role definition.")
    p.add_argument("--name", "-n", required=True, help="The role's name or id.")
    where(p)
    p.set_defaults(func=definition_delete)


# -- helpers (az's custom.py) -----------------------------------------------------------------------

def _scope(args: argparse.Namespace, client: Client) -> str:
    """az's _build_role_scope."""
    sub = f"/subscriptions/{client.subscription}"
    if args.scope:
        if args.resource_group:
            raise CLIError(f"Resource group '{args.resource_group}' is redundant because 'scope' is supplied")
        return args.scope.rstrip("/") or "/"
    if args.resource_group:
        return f"{sub}/resourceGroups/{args.resource_group}"
    return sub


def _definitions(client: Client, scope: str, name: str | None = None) -> list[dict[str, Any]]:
    query = {"$filter": f"roleName eq '{name}'"} if name else None
    return client.request("GET", f"{scope}{AUTHORIZATION}/roleDefinitions", api_version=API,
                          query=query).body.get("value") or []


def _role_id(client: Client, role: str, scope: str) -> str:
    """az's _resolve_role_id: an id as given, a GUID as the subscription's, else by roleName."""
    if re.match(r"^/(subscriptions|providers)/", role, re.IGNORECASE):
        return role
    if _GUID.match(role):
        return f"/subscriptions/{client.subscription}{AUTHORIZATION}/roleDefinitions/{role}"
    found = _definitions(client, scope, role)
    if not found:
        raise CLIError(f"Role '{role}' doesn't exist.")
    if len(found) > 1:
        ids = [d["id"] for d in found]
        raise CLIError(f"More than one role matches the given name '{role}'. Please pick an id from '{ids}'")
    return found[0]["id"]


def _graph(client: Client, path: str, filter: str | None = None) -> Any:
    try:
        return client.request("GET", client.config.endpoint + GRAPH + path,
                              query={"$filter": filter} if filter else None).body
    except ServiceError:
        return None


def _principal(client: Client, assignee: str, *, object_id: bool = False) -> tuple[str, str | None]:
    """az's _resolve_object_id_and_type: a service principal by its name (appId), else a directory
    object by its id. (object id, principal type); with `object_id` (an --assignee-object-id whose
    type az looks up) an id the directory does not know is taken as given, without a type."""
    found = (_graph(client, "/servicePrincipals", f"servicePrincipalNames/any(c:c eq '{assignee}')") or {})
    if found.get("value") and not object_id:
        return found["value"][0]["id"], "ServicePrincipal"
    if _GUID.match(assignee):
        obj = _graph(client, f"/directoryObjects/{assignee}")
        if obj or object_id:
            return assignee, {"#microsoft.graph.servicePrincipal": "ServicePrincipal", "#microsoft.graph.user": "User",
                              "#microsoft.graph.group": "Group"}.get((obj or {}).get("@odata.type", ""))
    raise CLIError(f"Cannot find user or service principal in graph database for '{assignee}'. If the assignee is "
                   "an appId, make sure the corresponding service principal is created with 'az ad sp create "
                   f"--id {assignee}'.")


def _flat(doc: dict[str, Any]) -> dict[str, Any]:
    """The SDK model's flattening: `properties` lifted, its `type` named `roleType`, and the
    model's `systemData` (which lks's answers do not carry)."""
    out: dict[str, Any] = {k: v for k, v in doc.items() if k != "properties"}
    for key, value in (doc.get("properties") or {}).items():
        out["roleType" if key == "type" else key] = value
    out.setdefault("systemData", None)
    return out


def _object_id(args: argparse.Namespace, client: Client) -> str | None:
    if args.assignee and getattr(args, "assignee_object_id", None):
        raise CLIError("Usage error: Provide only one of --assignee or --assignee-object-id.")
    return getattr(args, "assignee_object_id", None) or (_principal(client, args.assignee)[0] if args.assignee
                                                          else None)


def _search(client: Client, scope: str | None, object_id: str | None, role: str | None, *,
            include_inherited: bool, include_groups: bool) -> list[dict[str, Any]]:
    """az's _search_role_assignments: `atScope()` at a scope (ARM takes it with `assignedTo`, not
    with `principalId eq`), else the subscription's by principal or all; then az's own filtering."""
    if scope:
        flt: str | None = "atScope()" + (f" and assignedTo('{object_id}')" if object_id and include_groups else "")
    elif object_id:
        flt = f"assignedTo('{object_id}')" if include_groups else f"principalId eq '{object_id}'"
    else:
        flt = None
    base = scope or f"/subscriptions/{client.subscription}"
    found = client.request("GET", f"{base}{AUTHORIZATION}/roleAssignments", api_version=API,
                           query={"$filter": flt} if flt else None).body.get("value") or []
    if scope and not include_inherited:
        found = [a for a in found if a["properties"]["scope"].lower() == scope.lower()]
    if role:
        role_guid = _role_id(client, role, base).rsplit("/", 1)[-1].lower()
        found = [a for a in found if a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower() == role_guid]
    if object_id and not include_groups:
        found = [a for a in found if a["properties"]["principalId"].lower() == object_id.lower()]
    return found


def _named(client: Client, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each assignment flattened, with az's `principalName` and `roleDefinitionName` (and, as
    az's list prints them, without the fields that are null)."""
    names = {d["name"].lower(): d["properties"]["roleName"]
             for d in _definitions(client, f"/subscriptions/{client.subscription}")}
    out = []
    for a in assignments:
        flat = {k: v for k, v in _flat(a).items() if v is not None}
        flat["roleDefinitionName"] = names.get(flat["roleDefinitionId"].rsplit("/", 1)[-1].lower(), "")
        sp = _graph(client, f"/servicePrincipals/{flat['principalId']}") if flat.get("principalId") else None
        flat["principalName"] = ((sp or {}).get("servicePrincipalNames") or [(sp or {}).get("displayName", "")])[0] \
            if sp else ""
        out.append(flat)
    return out


# -- commands -----------------------------------------------------------------------------------------

def create(args: argparse.Namespace, client: Client) -> Any:
    if not args.role:
        raise CLIError("the following arguments are required: --role")
    if bool(args.assignee) == bool(args.assignee_object_id):
        raise CLIError("usage error: --assignee STRING | --assignee-object-id GUID")
    if args.assignee_principal_type and not args.assignee_object_id:
        raise CLIError("usage error: --assignee-object-id GUID --assignee-principal-type TYPE")
    if not args.scope and not args.resource_group:
        raise CLIError("the following arguments are required: --scope")  # az 2.50+: no implicit scope
    scope = _scope(args, client)
    if args.assignee:
        object_id, principal_type = _principal(client, args.assignee)
    elif args.assignee_principal_type:
        object_id, principal_type = args.assignee_object_id, args.assignee_principal_type
    else:
        output.warning("RBAC service might reject creating role assignment without --assignee-principal-type in the "
                       "future. Better to specify --assignee-principal-type manually.")
        object_id, principal_type = _principal(client, args.assignee_object_id, object_id=True)
    role_id = _role_id(client, args.role, scope)
    props: dict[str, Any] = {"roleDefinitionId": role_id, "principalId": object_id}
    if principal_type:
        props["principalType"] = principal_type
    if args.description:
        props["description"] = args.description
    name = args.name or str(uuid.uuid4())
    try:
        doc = client.request("PUT", f"{scope}{AUTHORIZATION}/roleAssignments/{name}", api_version=API,
                             body={"properties": props}).body
    except ServiceError as err:
        if err.code != "RoleAssignmentExists":
            raise
        # az is idempotent here: the assignment that exists
        return _named(client, _search(client, scope, object_id, args.role, include_inherited=False,
                                      include_groups=False))[0]
    return _flat(doc)


def list_(args: argparse.Namespace, client: Client) -> Any:
    if args.all and (args.resource_group or args.scope):
        raise CLIError("group or scope are not required when --all is used")
    scope = None if args.all else _scope(args, client)
    return _named(client, _search(client, scope, _object_id(args, client), args.role,
                                  include_inherited=args.include_inherited, include_groups=args.include_groups))


class UsageError(CLIError):
    exit_code = 2  # az's ArgumentUsageError


def delete(args: argparse.Namespace, client: Client) -> None:
    if not any((args.ids, args.assignee, args.assignee_object_id, args.role, args.resource_group, args.scope)):
        raise UsageError("Please provide at least one of these arguments: --ids, --assignee, --assignee-object-id, "
                         "--role, --resource-group, --scope")
    if args.ids:
        for flag, value in (("--assignee", args.assignee), ("--role", args.role),
                            ("--resource-group", args.resource_group), ("--scope", args.scope),
                            ("--include-inherited", args.include_inherited)):
            if value:
                output.warning(f"option '{flag}' will be ignored due to use of '--ids'.")
        for rid in args.ids:
            client.request("DELETE", rid, api_version=API)
        return
    found = _search(client, _scope(args, client), _object_id(args, client), args.role,
                    include_inherited=args.include_inherited, include_groups=False)
    if not found:
        raise CLIError("No matched assignments were found to delete")
    for a in found:
        client.request("DELETE", a["id"], api_version=API)


def definition_list(args: argparse.Namespace, client: Client) -> Any:
    scope = _scope(args, client)
    if args.name and _GUID.match(args.name):
        found = [client.get(f"{scope}{AUTHORIZATION}/roleDefinitions/{args.name}", API)]
    else:
        found = _definitions(client, scope, args.name)
    if args.custom_role_only:
        found = [d for d in found if d["properties"].get("type") == "CustomRole"]
    return [_flat(d) for d in found]


def _field(spec: dict[str, Any], name: str) -> Any:
    """A field of a role's JSON description, in az's PascalCase or camelCase."""
    return next((v for k, v in spec.items() if k.lower() == name.lower()), None)


def definition_create(args: argparse.Namespace, client: Client) -> Any:
    """az's create_role_definition: the JSON's Name/roleName, Description, Actions, NotActions,
    DataActions, NotDataActions and AssignableScopes; PUT at the first assignable scope."""
    raw = args.role_definition
    if raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as f:
                raw = f.read()
        except OSError as err:
            raise CLIError(f"Cannot read {raw[1:]}: {err.strerror}") from None
    try:
        spec = json.loads(raw)
    except ValueError:
        raise CLIError(f"Invalid role definition '{args.role_definition}': not JSON.") from None
    if not isinstance(spec, dict):
        raise CLIError("Invalid role definition: a JSON object is expected.")
    name = _field(spec, "name") or _field(spec, "roleName")
    scopes = _field(spec, "assignableScopes")
    if not name or not scopes:
        raise CLIError("Invalid role definition: 'Name' and 'AssignableScopes' are required.")
    permission = {k: _field(spec, k) or [] for k in ("actions", "notActions", "dataActions", "notDataActions")}
    body = {"name": (guid := str(uuid.uuid4())), "properties": {
        "roleName": name, "description": _field(spec, "description"), "type": "CustomRole",
        "permissions": [permission], "assignableScopes": scopes}}
    doc = client.request("PUT", f"{scopes[0]}{AUTHORIZATION}/roleDefinitions/{guid}", api_version=API,
                         body=body).body
    return _flat(doc)


def definition_delete(args: argparse.Namespace, client: Client) -> None:
    scope = _scope(args, client)
    if _GUID.match(args.name):
        guids = [args.name]
    else:
        guids = [d["name"] for d in _definitions(client, scope, args.name)
                 if d["properties"].get("type") == "CustomRole"]
        if not guids:
            raise CLIError(f"Role '{args.name}' doesn't exist.")
    for guid in guids:
        client.request("DELETE", f"{scope}{AUTHORIZATION}/roleDefinitions/{guid}", api_version=API)


def _assignment_table(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Principal": a.get("principalName"), "Role": a.get("roleDefinitionName"), "Scope": a.get("scope")}
            for a in result]


def _definition_table(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Name": d.get("roleName"), "Type": d.get("type"), "Description": d.get("description")}
            for d in result]
