"""`lks ad sp …`: service principals, shaped like `az ad sp` (azure-cli `command_modules/role`:
`custom.py` for the calls, their order and messages, `_params.py` for the flags); `lks ad app …`
lives in `lks.cli.commands.adapp`, `lks ad group …` in `lks.cli.commands.adgroup`. Like az, it
talks to the service's Microsoft Graph subset
(`lks.cli.graph`) and, for `create-for-rbac --role --scopes`, to ARM's `Microsoft.Authorization`
role definitions and assignments. Graph objects are printed as Graph answers them (no ARM
flattening), Graph's errors as az prints them: `ERROR: <message>`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import uuid
from typing import Any

from lks.cli import graph, output
from lks.cli.client import Client, ServiceError
from lks.cli.commands import adapp, adgroup
from lks.cli.output import CLIError

AUTHORIZATION_API = "2022-04-01"  # Microsoft.Authorization, as az's role commands call it
CREDENTIAL_WARNING = (
    "The output includes credentials that you must protect. Be sure that you do not include these credentials in "
    "your code or check the credentials into your source control. For more information, see https://aka.ms/azadsp-cli")


# -- arguments --------------------------------------------------------------------------------------

def _three_state(p: argparse.ArgumentParser, *names: str, dest: str, help: str) -> None:
    """az's get_three_state_flag: the flag alone means true, or an explicit true/false."""
    p.add_argument(*names, dest=dest, nargs="?", const="true", type=str.lower, choices=("true", "false"), help=help)


def _credential_dates(p: argparse.ArgumentParser, *, end_date: bool) -> None:
    g = p.add_argument_group("Credential Arguments")
    g.add_argument("--years", type=int, help="Number of years for which the credentials will be valid. Default: 1 year")
    if end_date:
        g.add_argument("--end-date", help="Finer grain of expiry time if '--years' is insufficient, e.g. "
                       "'2020-12-31T11:59:59+00:00' or '2299-12-31'")
        g.add_argument("--append", action="store_true", help="Append the new credential instead of overwriting.")
        g.add_argument("--display-name", help="Friendly name for the credential.")
    k = p.add_argument_group("keyCredential Arguments")
    k.add_argument("--cert", help="Certificate to use for credentials (not supported by lks).")
    k.add_argument("--create-cert", action="store_true", help="Create a self-signed certificate (not supported by lks).")
    k.add_argument("--keyvault", help="Name or ID of a KeyVault (not supported by lks).")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    text = "Manage Microsoft Entra ID entities: service principals, applications and groups."
    ad = sub.add_parser("ad", help=text, description=text)
    groups = ad.add_subparsers(dest="group", required=True, metavar="<group>")

    sp = groups.add_parser("sp", help="Manage Microsoft Entra ID service principals.")
    cmds = sp.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    p = cmds.add_parser("create-for-rbac", parents=[common], help="Create an application and its associated "
                        "service principal, optionally configure the service principal's RBAC role assignments.")
    p.add_argument("--display-name", "--name", "-n", dest="display_name", help="Display name of the service "
                   "principal. If not present, default to azure-cli-%%Y-%%m-%%d-%%H-%%M-%%S where the suffix is the "
                   "time of creation.")
    p.add_argument("--role", help="Role of the service principal.")
    p.add_argument("--scopes", nargs="+", help="Space-separated list of scopes the service principal's role "
                   "assignment applies to, e.g. /subscriptions/{id}/resourceGroups/myGroup.")
    p.add_argument("--service-management-reference", help="Set the serviceManagementReference property of the "
                   "created application.")
    _three_state(p, "--create-password", dest="create_password", help="Create a password credential (secret) on "
                 "the application. This is the default behavior.")
    _three_state(p, "--skip-assignment", dest="skip_assignment", help=argparse.SUPPRESS)
    _three_state(p, "--sdk-auth", "--json-auth", dest="sdk_auth", help="Output service principal credential along "
                 "with cloud endpoints in JSON format.")
    _credential_dates(p, end_date=False)
    p.set_defaults(func=create_for_rbac)

    p = cmds.add_parser("create", parents=[common], help="Create a service principal.")
    p.add_argument("--id", dest="identifier", required=True,
                   help="identifier uri, application id, or object id of the associated application")
    p.set_defaults(func=create_sp)

    p = cmds.add_parser("list", parents=[common], help="List service principals.")
    p.add_argument("--all", dest="include_all", action="store_true",
                   help="list all entities, expect long delay if under a big organization")
    p.add_argument("--display-name", help="object's display name or its prefix")
    p.add_argument("--spn", help="service principal name")
    p.add_argument("--filter", dest="query_filter", help="OData filter, e.g. --filter \"displayname eq 'test' and "
                   "servicePrincipalType eq 'Application'\"")
    p.add_argument("--show-mine", action="store_true", help="list entities owned by the current user")
    p.set_defaults(func=list_sps, table=graph.table)

    for name, func, text in (("show", show_sp, "Get the details of a service principal."),
                             ("delete", delete_sp, "Delete a service principal.")):
        p = cmds.add_parser(name, parents=[common], help=text)
        p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
        p.set_defaults(func=func)

    cred = cmds.add_parser("credential", help="Manage a service principal's credentials.")
    cred_cmds = cred.add_subparsers(dest="credential_command", required=True, metavar="<command>")
    p = cred_cmds.add_parser("reset", parents=[common], help="Reset a service principal credential.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    _credential_dates(p, end_date=True)
    p.set_defaults(func=reset_credential)
    p = cred_cmds.add_parser("list", parents=[common], help="List a service principal's credentials.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    p.add_argument("--cert", action="store_true", help="Operate on certificate credentials")
    p.set_defaults(func=list_credentials)
    p = cred_cmds.add_parser("delete", parents=[common], help="Delete a service principal's credential.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    p.add_argument("--key-id", required=True, help="credential key id")
    p.add_argument("--cert", action="store_true", help="Operate on certificate credentials")
    p.set_defaults(func=delete_credential)

    adapp.register(groups, common)
    adgroup.register(groups, common)


# -- service principals -------------------------------------------------------------------------

def create_for_rbac(args: argparse.Namespace, client: Client) -> Any:
    """az's create_service_principal_for_rbac, call for call."""
    if args.sdk_auth == "true":  # knack warns as it parses the arguments
        output.warning("Option '--sdk-auth' has been deprecated and will be removed in a future release.")
    if bool(args.role) != bool(args.scopes):
        raise CLIError("Usage error: To create role assignments, specify both --role and --scopes.")
    _no_certificates(args)
    now = datetime.datetime.now(datetime.UTC)
    existing_sps = None
    if args.display_name:
        name = args.display_name
        # an existing service principal of that name makes the command idempotent
        existing_sps = graph.call(client, "GET", "/servicePrincipals",
                                  filter=f"displayName eq '{graph.literal(name)}'")
    else:
        name = "azure-cli-" + now.strftime("%Y-%m-%d-%H-%M-%S")
    end = _add_years(now, args.years or 1)

    app = graph.create_application(client, name, args.service_management_reference)
    for cred in app.get("passwordCredentials") or []:  # an existing application loses its old secrets
        graph.call(client, "POST", f"/applications/{app['id']}/removePassword", {"keyId": cred["keyId"]})
    password = None
    if args.create_password != "false":
        made = graph.call(client, "POST", f"/applications/{app['id']}/addPassword",
                          _password_body("rbac", now, end))
        password = made["secretText"]

    sp = existing_sps[0] if existing_sps else graph.call(client, "POST", "/servicePrincipals",
                                                         {"appId": app["appId"], "accountEnabled": True})
    if args.role:
        for scope in args.scopes:
            output.warning(f"Creating '{args.role}' role assignment under scope '{scope}'")
            _assign_role(client, args.role, sp["id"], scope)
    if password:
        output.warning(CREDENTIAL_WARNING)
    tenant = graph.tenant(client)
    if args.sdk_auth == "true":
        _sdk_auth(client, args.scopes, app["appId"], password, tenant)
        return None
    return {"appId": app["appId"], "displayName": name, "password": password, "tenant": tenant}


def _assign_role(client: Client, role: str, principal_id: str, scope: str) -> None:
    """az's _create_role_assignment for a service principal: the role by id or name at `scope`,
    then a PUT of a new assignment; one that exists already is only a warning."""
    scope = "/" + scope.strip("/")
    if re.match(r"/subscriptions/.+/providers/Microsoft.Authorization/roleDefinitions/", role, re.I):
        role_id = role
    elif graph.GUID.match(role):
        role_id = f"/subscriptions/{client.subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    else:
        found = client.request("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions",
                               api_version=AUTHORIZATION_API,
                               query={"$filter": f"roleName eq '{graph.literal(role)}'"}).body
        defs = (found or {}).get("value") or []
        if not defs:
            raise CLIError(f"Role '{role}' doesn't exist.")
        if len(defs) > 1:
            raise CLIError(f"More than one role matches the given name '{role}'. Please pick a value from "
                           f"'{[d['id'] for d in defs]}'")
        role_id = defs[0]["id"]
    body = {"properties": {"roleDefinitionId": role_id, "principalId": principal_id,
                           "principalType": "ServicePrincipal"}}
    try:
        client.request("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                       api_version=AUTHORIZATION_API, body=body)
    except ServiceError as err:
        if err.status == 409 and err.code == "RoleAssignmentExists":
            output.warning("  Role assignment already exists.\n")
            return
        output.warning("  Role assignment creation failed.\n")
        raise


def _sdk_auth(client: Client, scopes: list[str] | None, app_id: str, password: str | None, tenant: str) -> None:
    """az's `--sdk-auth`: Profile.get_sp_auth_info, the credential with the cloud's endpoints
    (the service's cloud metadata, as `az cloud register` read them), printed as az prints it."""
    cloud = client.request("GET", "/metadata/endpoints", api_version="2022-09-01").body or {}
    auth = cloud.get("authentication") or {}
    subscription = scopes[0].strip("/").split("/")[1] if scopes else client.subscription
    print(json.dumps({
        "clientId": app_id, "clientSecret": password, "subscriptionId": subscription, "tenantId": tenant,
        "activeDirectoryEndpointUrl": auth.get("loginEndpoint"), "resourceManagerEndpointUrl": cloud.get(
            "resourceManager"), "activeDirectoryGraphResourceId": cloud.get("graphAudience"),
        "sqlManagementEndpointUrl": cloud.get("sqlManagement"), "galleryEndpointUrl": cloud.get("gallery"),
        "managementEndpointUrl": (auth.get("audiences") or [None])[0]}, indent=2))


def list_sps(args: argparse.Namespace, client: Client) -> Any:
    if args.show_mine:
        return graph.owned(client, "#microsoft.graph.servicePrincipal")
    filters = []
    if args.query_filter:
        filters.append(args.query_filter)
    if args.spn:
        filters.append(f"servicePrincipalNames/any(c:c eq '{graph.literal(args.spn)}')")
    if args.display_name:
        filters.append(f"startswith(displayName,'{graph.literal(args.display_name)}')")
    return graph.listing(client, "/servicePrincipals", filters, args.include_all)


def create_sp(args: argparse.Namespace, client: Client) -> Any:
    """az's _create_service_principal: the application by appId, identifier URI or object id."""
    identifier = args.identifier
    if graph.GUID.match(identifier):
        found = graph.call(client, "GET", "/applications", filter=f"appId eq '{graph.literal(identifier)}'")
    else:
        found = graph.call(client, "GET", "/applications",
                           filter=f"identifierUris/any(s:s eq '{graph.literal(identifier)}')")
    app_id = identifier
    try:
        app_id = (found or [graph.call(client, "GET", f"/applications/{graph.segment(identifier)}")])[0]["appId"]
    except CLIError:
        pass  # as az: fall back to the identifier as an appId
    return graph.call(client, "POST", "/servicePrincipals", {"appId": app_id, "accountEnabled": True})


def show_sp(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", f"/servicePrincipals/{graph.resolve_sp(client, args.identifier)}")


def delete_sp(args: argparse.Namespace, client: Client) -> None:
    graph.call(client, "DELETE", f"/servicePrincipals/{graph.resolve_sp(client, args.identifier)}")


def reset_credential(args: argparse.Namespace, client: Client) -> Any:
    """az's reset_service_principal_credential (_reset_credential with the service principal's calls)."""
    _no_certificates(args)
    sp = show_sp(args, client)
    now = datetime.datetime.now(datetime.UTC)
    if args.years is not None and args.end_date is not None:
        raise CLIError("usage error: --years | --end-date")
    end = _add_years(now, args.years or 1) if args.end_date is None else _parse_date(args.end_date)
    if not args.append:
        for cred in sp.get("passwordCredentials") or []:
            graph.call(client, "POST", f"/servicePrincipals/{sp['id']}/removePassword",
                       {"keyId": cred["keyId"]})
    made = graph.call(client, "POST", f"/servicePrincipals/{sp['id']}/addPassword",
                      _password_body(args.display_name, now, end))
    output.warning(CREDENTIAL_WARNING)
    return {"appId": sp["appId"], "password": made["secretText"], "tenant": graph.tenant(client)}


def list_credentials(args: argparse.Namespace, client: Client) -> Any:
    sp = show_sp(args, client)
    return sp.get("keyCredentials" if args.cert else "passwordCredentials") or []


def delete_credential(args: argparse.Namespace, client: Client) -> None:
    sp = show_sp(args, client)
    if args.cert:
        raise CLIError(f"No key credential found with keyId as '{args.key_id}' in graph object '{sp['id']}'.")
    graph.call(client, "POST", f"/servicePrincipals/{sp['id']}/removePassword", {"keyId": args.key_id})


# -- federated identity credentials -------------------------------------------------------------

# -- helpers ----------------------------------------------------------------------------------------

def _no_certificates(args: argparse.Namespace) -> None:
    if args.cert or args.create_cert or args.keyvault:
        raise CLIError("lks service principals authenticate with client secrets or federated credentials; "
                       "--cert, --create-cert and --keyvault are not supported.")


def _password_body(display_name: str | None, start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """az's _build_add_password_credential_body."""
    return {"passwordCredential": {"displayName": display_name, "endDateTime": _utc(end),
                                   "startDateTime": _utc(start)}}


def _utc(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_years(dt: datetime.datetime, years: int) -> datetime.datetime:
    """dateutil's relativedelta(years=n): the same day n years on (Feb 29 becomes Feb 28)."""
    try:
        return dt.replace(year=dt.year + years)
    except ValueError:
        return dt.replace(year=dt.year + years, day=28)


def _parse_date(value: str) -> datetime.datetime:
    try:
        dt = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CLIError(f"Unknown string format: {value}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=datetime.UTC)


